"""What both bench suites share: defaults, the bench text, requests, memory readings.

:mod:`core.tools.bench.studio_suite` (loads, real-time factor, switches,
memory) and :mod:`core.tools.bench.compare_suite` (the studio path against the
stock ``qwen_tts`` call) measure the same way: on checkpoints that are already
on disk, with one fixed text that is a single chunk, the same seeded requests
and the process's own resident memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import text as textlib
from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.context import AppContext
from core.engine.catalog import Catalog, Checkpoint
from core.engine.model_store import ModelStore
from core.engine.speakers import speakers
from core.errors import InvalidInput, StudioError
from core.settings import Settings
from core.types import (
    FRAMES_PER_SECOND,
    MODES,
    ClonePrompt,
    CloneRequest,
    CustomVoiceRequest,
    DesignRequest,
    Mode,
    Sampling,
    SynthesisResult,
)

DEFAULT_FRAMES = 48
DEFAULT_RUNS = 3
DEFAULT_SEED = 1234
DESCRIPTION = "A calm, clear adult voice speaking at an even pace."
PREFERRED_SPEAKER = "ryan"

# Sentences the bench text is built from, shortest first so that the text
# fits even the smallest chunk size (50 characters) as one chunk.
_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Then it sits down in the warm afternoon sun.",
    "A light breeze moves the tall grass by the river.",
    "Somewhere far away, a church bell rings twice.",
    "The fox closes its eyes and listens to the water.",
    "Evening comes slowly over the hills and the fields.",
)


class BenchError(StudioError):
    """A measurement could not be made or would not be meaningful."""


Progress = Callable[[str], None]


def say(progress: Progress | None, message: str) -> None:
    """Passes a progress line on, when anyone listens."""
    if progress:
        progress(message)


def median(values: Sequence[float]) -> float:
    if not values:
        raise BenchError("No samples were taken.")
    return float(statistics.median(values))


def check_runs(runs: int) -> int:
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise InvalidInput(f"--runs must be a whole number of at least 1, not {runs!r}.")
    return runs


def max_seconds_for(frames: int) -> float:
    """The API's max_seconds that the studio turns back into exactly ``frames``."""
    seconds = frames / FRAMES_PER_SECOND
    # The studio computes ceil(seconds * 12.5); never let rounding add a frame.
    while math.ceil(seconds * FRAMES_PER_SECOND) > frames:
        seconds = math.nextafter(seconds, 0.0)
    return seconds


def bench_text(frames: int, chunk_chars: int) -> str:
    """A fixed English text that is one chunk and whose own frame cap is at least ``frames``.

    The engine caps frames per chunk by the text's length, so a longer
    ``frames`` needs a longer text; the text stays one chunk so no pause is
    inserted and the frame count stays exactly ``frames``.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= 4096:
        raise InvalidInput(f"--frames must be a whole number from 1 to 4096, not {frames!r}.")
    text = ""
    for sentence in _SENTENCES:
        candidate = f"{text} {sentence}".strip()
        if len(textlib.chunk_text(candidate, max_chars=chunk_chars)) != 1:
            break
        text = candidate
        if textlib.estimate_max_new_tokens(text) >= frames:
            return text
    most = textlib.estimate_max_new_tokens(text) if text else 0
    raise InvalidInput(
        f"--frames {frames} is more than one chunk of the bench text allows (at most {most} with "
        f"--chunk-chars {chunk_chars}); use fewer frames or a larger --chunk-chars."
    )


def synthetic_reference(seconds: float = 3.0) -> Audio:
    """A deterministic voiced-like signal (harmonics + a little noise) to clone from."""
    t = np.arange(int(seconds * TARGET_SAMPLE_RATE)) / TARGET_SAMPLE_RATE
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / TARGET_SAMPLE_RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 6))
    noise = np.random.default_rng(0).normal(0, 0.01, t.size)
    samples = 0.2 * signal * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2) + noise
    return Audio(samples.astype(np.float32), TARGET_SAMPLE_RATE)


def rss_bytes() -> tuple[int | None, str]:
    """The process's resident set size and where it came from."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss), "psutil"
    except Exception:  # not installed, or unsupported platform
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "statm"
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) * (1 if sys.platform == "darwin" else 1024), "getrusage-peak"
    except (ImportError, OSError):
        return None, "unavailable"


def checkpoint_for(context: AppContext, mode: str) -> Checkpoint:
    return context.synthesis.checkpoint_for(mode, None)


def ensure_available(context: AppContext, modes: Sequence[str] = MODES) -> list[Checkpoint]:
    """Every checkpoint the bench will load is on disk (demo models are built; real
    ones must already be downloaded -- a bench never starts a multi-GB download)."""
    checkpoints = []
    for mode in modes:
        checkpoint = checkpoint_for(context, mode)
        if context.store.local_path(checkpoint) is None:
            if checkpoint.demo:
                context.store.download(checkpoint)
            else:
                context.store.require(checkpoint)  # raises the clear message
        checkpoints.append(checkpoint)
    return checkpoints


@contextlib.contextmanager
def isolated_settings(settings: Settings) -> Iterator[Settings]:
    """The user's model settings with a scratch data folder, removed afterwards.

    The bench must leave no trace in the user's data: takes made through the
    API would otherwise land in (and could prune) their history. Each mode's
    checkpoint is pinned to the folder it resolves to now, so the scratch
    folder needs no models of its own; in demo mode the demo build is linked
    in (the server builds it there otherwise).
    """
    catalog = Catalog(demo=settings.demo_models)
    store = ModelStore(settings)
    pinned: dict[str, Path] = {}
    for mode in MODES:
        checkpoint = catalog.resolve(mode, None, settings.preferred_size)
        path = store.local_path(checkpoint)
        if path is None:
            # Demo models are built (seconds, cached); a bench never starts a multi-GB download.
            path = store.download(checkpoint) if checkpoint.demo else store.require(checkpoint)
        pinned[f"checkpoint_{mode}"] = Path(path)
    scratch = Path(tempfile.mkdtemp(prefix="qwen-tts-bench-"))
    try:
        if settings.demo_models and settings.demo_dir.is_dir():
            with contextlib.suppress(OSError):  # no symlinks here: the server rebuilds them
                (scratch / settings.demo_dir.name).symlink_to(settings.demo_dir.resolve(), target_is_directory=True)
        engines = settings.data_dir / "engines"  # the MLX engine's environment (--engine mlx)
        if engines.is_dir():
            with contextlib.suppress(OSError):
                (scratch / "engines").symlink_to(engines.resolve(), target_is_directory=True)
        yield settings.replace(data_dir=scratch, **pinned)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def loads_of(context: AppContext, key: str) -> int:
    """How many times the context's model manager has loaded ``key`` so far."""
    return context.models.load_count.get(key, 0)


@contextlib.contextmanager
def peak_rss() -> Iterator[dict[str, int]]:
    """The process's peak RSS while the block runs (``out["peak"]``, bytes)."""
    out: dict[str, int] = {}
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
        exact = True
    except OSError:
        exact = False
    if exact:
        try:
            yield out
        finally:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out["peak"] = int(line.split()[1]) * 1024
        return
    import threading

    stop = threading.Event()
    peak = [int(rss_bytes()[0] or 0)]

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], int(rss_bytes()[0] or 0))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        stop.set()
        sampler.join()
        out["peak"] = max(peak[0], int(rss_bytes()[0] or 0))


# --- generation requests ----------------------------------------------------


@dataclass
class BenchRequests:
    """Builds the same request for a mode every time (clone prompt made once)."""

    context: AppContext
    text: str
    sampling: Sampling
    description: str = DESCRIPTION
    _prompt: ClonePrompt | None = None
    _speaker: str | None = None

    def speaker(self) -> str:
        if self._speaker is None:
            loaded = self.context.models.get(checkpoint_for(self.context, Mode.CUSTOM_VOICE))
            supported = {s.lower() for s in loaded.speakers}
            ids = [s.id for s in speakers()]
            if not supported or PREFERRED_SPEAKER in supported:
                self._speaker = PREFERRED_SPEAKER
            else:
                usable = [i for i in ids if i in supported]
                if not usable:
                    raise BenchError("The CustomVoice model offers none of the studio's speakers.")
                self._speaker = usable[0]
        return self._speaker

    def prompt(self) -> ClonePrompt:
        if self._prompt is None:
            self._prompt = self.context.synthesis.create_clone_prompt(synthetic_reference(), None, x_vector_only=True)
        return self._prompt

    def prepare(self, mode: str) -> None:
        """Everything a generation needs besides the timed call itself."""
        if mode == Mode.CUSTOM_VOICE:
            self.speaker()
        elif mode == Mode.BASE:
            self.prompt()

    def generate(self, mode: str) -> SynthesisResult:
        service = self.context.synthesis
        if mode == Mode.VOICE_DESIGN:
            return service.design(DesignRequest(text=self.text, description=self.description, sampling=self.sampling))
        if mode == Mode.CUSTOM_VOICE:
            return service.custom_voice(
                CustomVoiceRequest(text=self.text, speaker=self.speaker(), sampling=self.sampling)
            )
        if mode == Mode.BASE:
            return service.clone(CloneRequest(text=self.text, prompt=self.prompt(), sampling=self.sampling))
        raise InvalidInput(f"Unknown mode {mode!r}.")
