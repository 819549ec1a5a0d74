"""Measuring the engine: model loads, real-time factor, mode switches, memory.

Every function here takes the one :class:`~core.context.AppContext`, measures
on whatever checkpoints it is configured with (the tiny random-weight demo
models or the real ones) and returns a small dataclass of figures; nothing is
estimated or hard-coded. ``qwen-tts-studio bench`` (``studio/commands/bench.py``)
adds the one measurement that needs the web layer -- the named API's overhead
over a direct engine call -- and prints the figures.

Methods
-------
* **loads** -- per mode, ``runs`` fresh loads (everything is unloaded before
  each), median wall seconds of ``ModelManager.get`` plus the loader's own
  ``LoadedModel.load_seconds``.
* **rtf** -- per mode, one warm-up generation (which also loads the model),
  then ``runs`` generations of the same text with ``Sampling(seed=..,
  max_new_tokens=frames)``; the figure is the median of
  ``generate seconds / audio seconds``. Random weights never stop early, so
  the frame count is fixed; a real model may stop before the cap, which the
  ``audio_seconds`` figure shows. Clone mode uses a clone prompt built once
  before timing (x-vector only, from a synthetic reference), so only
  generation is timed.
* **switch** -- with ``max_resident`` temporarily 1, the cycle
  design -> custom -> clone -> design repeated ``runs`` times; each switch is
  one ``get`` that evicts the resident model and loads the next.
* **memory** -- process RSS before any model is loaded, after importing the
  model package (no weights yet), after loading each
  mode's model (one at a time) and after unloading it (``unload`` = gc +
  releasing the device cache, exactly what the studio does). RSS comes from
  ``psutil``; without it from ``/proc/self/statm``; as a last resort from
  ``resource.getrusage`` (the *peak* RSS; ``source`` says which).

JSON keys (``qwen-tts-studio bench --json``; stable, version 1)
---------------------------------------------------------------
Top level: ``version`` (int), ``device`` (str), ``dtype_policy`` (str),
``demo`` (bool), ``frames`` (int), ``runs`` (int), ``seed`` (int),
``text_chars`` (int), ``loads``, ``rtf``, ``switch``, ``api_overhead``,
``memory``, ``total_seconds`` (float).

* ``loads``: ``{mode: {"model", "seconds", "loader_seconds", "samples",
  "loads", "memory_bytes"}}`` -- seconds is the median wall time of a fresh
  load, samples the individual wall times, loads how many loads happened.
* ``rtf``: ``{mode: {"model", "rtf", "generate_seconds", "audio_seconds",
  "frames", "samples"}}`` -- rtf is the median generate/audio ratio, samples
  the individual ratios.
* ``switch``: ``{"sequence", "median_seconds", "samples", "loads"}``.
* ``api_overhead``: ``{"endpoint", "model", "pairs", "ratio",
  "direct_seconds", "api_seconds", "overhead_seconds", "samples"}`` -- ratio is
  the median of the per-pair api/direct ratios, samples those ratios,
  direct/api seconds the medians of each side.
* ``memory``: ``{"source", "before_bytes", "runtime_bytes", "loaded_bytes",
  "unloaded_bytes", "after_unload_bytes", "model_bytes"}`` -- before_bytes is
  the RSS before any model, runtime_bytes after importing the model package
  (``qwen_tts``) but before any weights; loaded_bytes, unloaded_bytes and
  model_bytes map mode to bytes (RSS with that model loaded, RSS after it was
  unloaded, its parameter + buffer bytes); after_unload_bytes is the RSS
  after the last unload.

Modes are always the keys ``voice_design``, ``custom_voice`` and ``base``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from core import text as textlib
from core.audio import TARGET_SAMPLE_RATE, Audio
from core.catalog import Catalog, Checkpoint
from core.context import AppContext
from core.errors import InvalidInput, StudioError
from core.model_store import ModelStore
from core.settings import Settings
from core.speakers import speakers
from core.synthesis import (
    ClonePrompt,
    CloneRequest,
    CustomVoiceRequest,
    DesignRequest,
    Sampling,
    SynthesisResult,
)

JSON_VERSION = 1
MODES: tuple[str, ...] = ("voice_design", "custom_voice", "base")
SWITCH_SEQUENCE: tuple[str, ...] = ("voice_design", "custom_voice", "base", "voice_design")
FRAMES_PER_SECOND = 12.5
DEFAULT_FRAMES = 48
DEFAULT_RUNS = 3
DEFAULT_SEED = 1234
DESCRIPTION = "A calm, clear adult voice speaking at an even pace."
PREFERRED_SPEAKER = "ryan"
MODEL_RUNTIME = "qwen_tts"  # the package the loader imports on first use

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


# --- figures ---------------------------------------------------------------


@dataclass(frozen=True)
class LoadFigure:
    mode: str
    model: str
    seconds: float  # median wall seconds of a fresh ModelManager.get
    loader_seconds: float  # median LoadedModel.load_seconds (the loader alone)
    samples: list[float]
    loads: int  # how many loads this measurement caused
    memory_bytes: int


@dataclass(frozen=True)
class RtfFigure:
    mode: str
    model: str
    rtf: float  # median generate seconds per audio second
    generate_seconds: float  # median
    audio_seconds: float  # median
    frames: int  # the frame cap asked for
    samples: list[float]


@dataclass(frozen=True)
class SwitchFigure:
    sequence: list[str]
    median_seconds: float
    samples: list[float]
    loads: int


@dataclass(frozen=True)
class MemoryFigure:
    source: str  # psutil | statm | getrusage-peak
    before_bytes: int
    runtime_bytes: int  # after importing the model package, before any weights
    loaded_bytes: dict[str, int]
    unloaded_bytes: dict[str, int]
    after_unload_bytes: int
    model_bytes: dict[str, int]


@dataclass(frozen=True)
class OverheadFigure:
    """The named API against a direct engine call (measured in studio/commands/bench.py)."""

    endpoint: str
    model: str
    pairs: int
    ratio: float  # median of per-pair api/direct
    direct_seconds: float  # median
    api_seconds: float  # median
    overhead_seconds: float  # api_seconds - direct_seconds
    samples: list[float]


@dataclass
class BenchReport:
    device: str
    dtype_policy: str
    demo: bool
    frames: int
    runs: int
    seed: int
    text_chars: int
    memory: MemoryFigure | None = None
    loads: list[LoadFigure] = field(default_factory=list)
    rtf: list[RtfFigure] = field(default_factory=list)
    switch: SwitchFigure | None = None
    api_overhead: OverheadFigure | None = None
    total_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        def strip_mode(figure: Any) -> dict[str, Any]:
            data = asdict(figure)
            data.pop("mode", None)
            return data

        return {
            "version": JSON_VERSION,
            "device": self.device,
            "dtype_policy": self.dtype_policy,
            "demo": self.demo,
            "frames": self.frames,
            "runs": self.runs,
            "seed": self.seed,
            "text_chars": self.text_chars,
            "loads": {f.mode: strip_mode(f) for f in self.loads},
            "rtf": {f.mode: strip_mode(f) for f in self.rtf},
            "switch": asdict(self.switch) if self.switch else None,
            "api_overhead": asdict(self.api_overhead) if self.api_overhead else None,
            "memory": asdict(self.memory) if self.memory else None,
            "total_seconds": self.total_seconds,
        }


# --- helpers ------------------------------------------------------------------


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
        yield settings.replace(data_dir=scratch, **pinned)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _loads_of(context: AppContext, key: str) -> int:
    return context.models.load_count.get(key, 0)


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
            loaded = self.context.models.get(checkpoint_for(self.context, "custom_voice"))
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
            self._prompt = self.context.synthesis.create_clone_prompt(
                synthetic_reference(), None, x_vector_only=True
            )
        return self._prompt

    def prepare(self, mode: str) -> None:
        """Everything a generation needs besides the timed call itself."""
        if mode == "custom_voice":
            self.speaker()
        elif mode == "base":
            self.prompt()

    def generate(self, mode: str) -> SynthesisResult:
        service = self.context.synthesis
        if mode == "voice_design":
            return service.design(DesignRequest(text=self.text, description=self.description,
                                                sampling=self.sampling))
        if mode == "custom_voice":
            return service.custom_voice(CustomVoiceRequest(text=self.text, speaker=self.speaker(),
                                                           sampling=self.sampling))
        if mode == "base":
            return service.clone(CloneRequest(text=self.text, prompt=self.prompt(), sampling=self.sampling))
        raise InvalidInput(f"Unknown mode {mode!r}.")


# --- measurements -------------------------------------------------------------

Progress = Callable[[str], None]


def _say(progress: Progress | None, message: str) -> None:
    if progress:
        progress(message)


def measure_memory(
    context: AppContext, modes: Sequence[str] = MODES, progress: Progress | None = None
) -> MemoryFigure:
    """RSS before any model, with each mode's model loaded, and after unloading it."""
    checkpoints = ensure_available(context, modes)
    context.models.unload()
    gc.collect()
    before, source = rss_bytes()
    if before is None:
        raise BenchError("Could not read the process's memory (no psutil, /proc or resource).")
    # The model package's code is imported by the first load anyway; measured on
    # its own so the "loaded" figures show what a model itself costs.
    with contextlib.suppress(ImportError):
        importlib.import_module(MODEL_RUNTIME)
    gc.collect()
    runtime = int(rss_bytes()[0] or 0)
    loaded_bytes: dict[str, int] = {}
    unloaded_bytes: dict[str, int] = {}
    model_bytes: dict[str, int] = {}
    for mode, checkpoint in zip(modes, checkpoints):
        _say(progress, f"memory: loading {checkpoint.key}")
        loaded = context.models.get(checkpoint)
        model_bytes[mode] = int(loaded.memory_bytes)
        del loaded
        loaded_bytes[mode] = int(rss_bytes()[0] or 0)
        context.models.unload()  # gc + device cache release, as the studio does
        unloaded_bytes[mode] = int(rss_bytes()[0] or 0)
    return MemoryFigure(
        source=source,
        before_bytes=int(before),
        runtime_bytes=runtime,
        loaded_bytes=loaded_bytes,
        unloaded_bytes=unloaded_bytes,
        after_unload_bytes=unloaded_bytes[modes[-1]] if modes else int(before),
        model_bytes=model_bytes,
    )


def measure_loads(
    context: AppContext, modes: Sequence[str] = MODES, runs: int = DEFAULT_RUNS,
    progress: Progress | None = None,
) -> list[LoadFigure]:
    """Median seconds of a fresh load (everything unloaded first) per mode."""
    check_runs(runs)
    checkpoints = ensure_available(context, modes)
    figures = []
    for mode, checkpoint in zip(modes, checkpoints):
        _say(progress, f"loads: {checkpoint.key} x{runs}")
        walls: list[float] = []
        loader: list[float] = []
        count_before = _loads_of(context, checkpoint.key)
        memory = 0
        for _ in range(runs):
            context.models.unload()
            start = time.perf_counter()
            loaded = context.models.get(checkpoint)
            walls.append(time.perf_counter() - start)
            loader.append(loaded.load_seconds)
            memory = loaded.memory_bytes
            del loaded
        loads = _loads_of(context, checkpoint.key) - count_before
        if loads != runs:
            raise BenchError(f"Expected {runs} fresh loads of {checkpoint.key}, saw {loads}.")
        figures.append(LoadFigure(mode, checkpoint.key, median(walls), median(loader), walls, loads, memory))
    return figures


def measure_rtf(
    context: AppContext, modes: Sequence[str] = MODES, frames: int = DEFAULT_FRAMES,
    runs: int = DEFAULT_RUNS, seed: int = DEFAULT_SEED, progress: Progress | None = None,
    text: str | None = None,
) -> list[RtfFigure]:
    """Median generation seconds per audio second for a fixed frame cap, per mode."""
    check_runs(runs)
    text = text or bench_text(frames, context.synthesis.chunk_chars)
    checkpoints = ensure_available(context, modes)
    requests = BenchRequests(context, text, Sampling(seed=seed, max_new_tokens=frames))
    figures = []
    for mode, checkpoint in zip(modes, checkpoints):
        _say(progress, f"rtf: {checkpoint.key} {frames} frames, 1 warm-up + {runs}")
        requests.prepare(mode)
        requests.generate(mode)  # warm-up; also loads the model
        count_before = _loads_of(context, checkpoint.key)
        ratios, gens, audio = [], [], []
        for _ in range(runs):
            result = requests.generate(mode)
            if result.model != checkpoint.key:
                raise BenchError(f"Generation used {result.model}, not {checkpoint.key}.")
            gens.append(result.timings["generate_s"])
            audio.append(result.duration)
            ratios.append(result.timings["generate_s"] / max(result.duration, 1e-9))
        if _loads_of(context, checkpoint.key) != count_before:
            raise BenchError(f"{checkpoint.key} was reloaded during the timed runs; the figures would mix in loads.")
        figures.append(RtfFigure(mode, checkpoint.key, median(ratios), median(gens), median(audio), frames, ratios))
    return figures


def measure_switches(
    context: AppContext, runs: int = DEFAULT_RUNS, sequence: Sequence[str] = SWITCH_SEQUENCE,
    progress: Progress | None = None,
) -> SwitchFigure:
    """Seconds per mode switch (evict + load) with one resident model, median."""
    check_runs(runs)
    if len(sequence) < 2:
        raise BenchError("A switch sequence needs at least two modes.")
    checkpoints = {mode: c for mode, c in zip(sequence, ensure_available(context, sequence))}
    manager = context.models
    previous_max = manager.max_resident
    manager.set_max_resident(1)
    try:
        manager.unload()
        manager.get(checkpoints[sequence[0]])  # the starting state, not timed
        _say(progress, f"switches: {' -> '.join(sequence)} x{runs}")
        samples: list[float] = []
        loads = 0
        for _ in range(runs):
            for mode in sequence[1:]:
                checkpoint = checkpoints[mode]
                count_before = _loads_of(context, checkpoint.key)
                start = time.perf_counter()
                manager.get(checkpoint)
                samples.append(time.perf_counter() - start)
                loaded_now = _loads_of(context, checkpoint.key) - count_before
                if loaded_now != 1 or manager.resident_keys() != [checkpoint.key]:
                    raise BenchError(f"Switching to {checkpoint.key} did not evict and load exactly once.")
                loads += loaded_now
    finally:
        manager.set_max_resident(previous_max)
    return SwitchFigure(list(sequence), median(samples), samples, loads)
