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
from core.engine.catalog import Catalog, Checkpoint
from core.context import AppContext
from core.errors import InvalidInput, StudioError
from core.engine.model_store import ModelStore
from core.settings import Settings
from core.engine.speakers import speakers
from core.engine.synthesis import (
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


# --- studio path vs the stock qwen_tts call (issue 8) ---------------------------
#
# Method: per mode, the same model, seed, text and frame cap go once through the
# studio's path -- ``SynthesisService.stream(request, live=True)``, what the UI
# plays -- and once through the stock ``Qwen3TTSModel.generate_*`` call, in
# alternating order (stock first in even pairs, studio first in odd ones) so that
# drifting background load hits both. One short untimed warm-up of each first.
#
# * rtf: wall seconds of the whole call per second of audio (median of the pairs);
# * ttfa: wall seconds until the first audio a player could start: the first
#   LiveAudio piece for the studio; the whole call for the stock path, which
#   only returns audio at the end;
# * peak memory: the process's peak RSS during the call (Linux VmHWM, reset
#   before each call; elsewhere sampled every 10 ms);
# * ratio: median over the pairs of studio wall / stock wall (< 1: studio faster);
# * the stock call runs twice per round: in the calling thread, as a script makes
#   it, and in a fresh worker thread, as the studio's server ran it before the
#   fast path (Gradio handlers run in worker threads). On a busy CPU the two
#   differ a lot: libgomp's idle OpenMP threads spin-wait for CPU time the
#   calling thread needs, unless it manages more threads than there are cores,
#   which a second calling thread makes it (see docs/PERFORMANCE.md). Both
#   ratios are reported so no gain is claimed that the thread alone explains;
# * same codes / same audio: the talker's codes and the final take compared
#   element for element between the two paths, on every pair.

COMPARE_JSON_VERSION = 1
ARCH_DEFAULT_FRAMES = 25  # ~1 s of wall per frame at 0.6B on a shared 2-core CPU: ~4 min for 2 modes x 2 pairs
ARCH_DEFAULT_RUNS = 2
TWENTY_SECOND_FRAMES = 250  # "a 20-second line"
GOAL_RATIO = 0.5  # studio/stock wall time
GOAL_TTFA_SHARE = 0.25  # first audio within a quarter of the full take


@dataclass(frozen=True)
class CompareFigure:
    mode: str
    model: str
    path: str  # "studio" | "studio-int8" (lossy, opt-in)
    frames: int
    audio_seconds: float
    studio_rtf: float
    stock_rtf: float
    ratio: float  # median of per-pair studio/stock wall
    studio_ttfa_s: float
    stock_ttfa_s: float
    studio_total_s: float
    stock_total_s: float
    ttfa_share: float  # studio ttfa / studio total
    thread_stock_total_s: float  # the stock call in a worker thread (the studio's path before)
    thread_stock_rtf: float
    ratio_vs_thread_stock: float  # median of per-round studio / thread-stock wall
    studio_peak_bytes: int
    stock_peak_bytes: int
    same_codes: bool
    same_audio: bool
    max_abs_diff: float
    live_pieces: int
    generation_threads: int | None
    pairs: int
    samples: list[float]  # per-pair ratios


@dataclass(frozen=True)
class ProfileFigure:
    """Where the time of one stock call goes, from forward hooks around the modules."""

    mode: str
    threads: int
    frames: int
    total_s: float
    talker_s: float  # the 28-layer talker transformer (one step per frame)
    code_predictor_s: float  # its forwards (15 steps per frame, lm heads included)
    code_predictor_overhead_s: float  # HF generate() around those 15 steps, per frame
    decode_s: float  # speech tokenizer decoder (codes -> 24 kHz)
    other_s: float  # prompt building, talker sampling, embeddings, Python

    def per_frame_ms(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {k: 1000 * getattr(self, k) / n for k in
                ("talker_s", "code_predictor_s", "code_predictor_overhead_s", "decode_s", "other_s", "total_s")}


@dataclass
class CompareReport:
    arch: str | None  # "0.6b" / "1.7b" / a test spec name; None: the configured models
    spec: str
    device: str
    threads: int
    cores: int
    frames: int
    runs: int
    seed: int
    text_chars: int
    build_seconds: float = 0.0
    compare: list[CompareFigure] = field(default_factory=list)
    profile: list[ProfileFigure] = field(default_factory=list)
    total_seconds: float = 0.0

    def goals(self) -> dict[str, Any]:
        exact = [f for f in self.compare if f.path == "studio"]
        return goal_summary(exact, self.frames)

    def as_json(self) -> dict[str, Any]:
        return {
            "version": COMPARE_JSON_VERSION,
            "arch": self.arch,
            "spec": self.spec,
            "device": self.device,
            "threads": self.threads,
            "cores": self.cores,
            "frames": self.frames,
            "runs": self.runs,
            "seed": self.seed,
            "text_chars": self.text_chars,
            "build_seconds": self.build_seconds,
            "compare": [asdict(f) for f in self.compare],
            "profile": [dict(asdict(f), per_frame_ms=f.per_frame_ms()) for f in self.profile],
            "goals": self.goals(),
            "total_seconds": self.total_seconds,
        }


def goal_summary(figures: Sequence[CompareFigure], frames: int) -> dict[str, Any]:
    """The issue's goals against the measured figures (never faked: projections are labelled)."""
    if not figures:
        return {}
    ratio = max(f.ratio for f in figures)
    share = max(f.ttfa_share for f in figures)
    # Projection to a 20-second line: the first piece comes after the same few frames
    # whatever the length, the rest of the take grows with the frame count.
    projected = []
    for f in figures:
        per_frame = f.studio_total_s / max(f.frames, 1)
        projected.append(f.studio_ttfa_s / max(per_frame * TWENTY_SECOND_FRAMES, 1e-9))
    return {
        "ratio_goal": GOAL_RATIO,
        "ratio_worst_mode": ratio,
        "ratio_met": ratio <= GOAL_RATIO,
        "ratio_vs_thread_stock_worst_mode": max(f.ratio_vs_thread_stock for f in figures),
        "ratio_vs_thread_stock_met": max(f.ratio_vs_thread_stock for f in figures) <= GOAL_RATIO,
        "ttfa_share_goal": GOAL_TTFA_SHARE,
        "ttfa_share_worst_mode": share,
        "ttfa_share_met": share <= GOAL_TTFA_SHARE,
        "ttfa_share_projected_20s": max(projected),
        "measured_frames": frames,
        "twenty_second_frames": TWENTY_SECOND_FRAMES,
        "same_codes_all": all(f.same_codes for f in figures),
        "same_audio_all": all(f.same_audio for f in figures),
    }


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


def _request(requests: BenchRequests, mode: str) -> Any:
    if mode == "voice_design":
        return DesignRequest(text=requests.text, description=requests.description, sampling=requests.sampling)
    if mode == "custom_voice":
        return CustomVoiceRequest(text=requests.text, speaker=requests.speaker(), sampling=requests.sampling)
    return CloneRequest(text=requests.text, prompt=requests.prompt(), sampling=requests.sampling)


def stock_call(model: Any, mode: str, requests: BenchRequests, text: str, frames: int) -> tuple[list, int]:
    """The plain qwen_tts call the studio's path is compared with (same arguments as the studio's)."""
    if mode == "voice_design":
        return model.generate_voice_design(text=text, language="auto", instruct=requests.description,
                                           max_new_tokens=frames)
    if mode == "custom_voice":
        return model.generate_custom_voice(text=text, language="auto", speaker=requests.speaker(),
                                           instruct=None, max_new_tokens=frames)
    if mode == "base":
        return model.generate_voice_clone(text=text, language="auto", voice_clone_prompt=requests.prompt().to_qwen(),
                                          max_new_tokens=frames)
    raise InvalidInput(f"Unknown mode {mode!r}.")


@contextlib.contextmanager
def _talker_codes(model: Any) -> Iterator[list]:
    """Collects the talker's per-frame codes (read-only hook; returns nothing)."""
    codes: list = []

    def hook(_module, _args, output) -> None:
        step = output.hidden_states[1] if isinstance(output.hidden_states, tuple) else None
        if step is not None:
            codes.append(step[0].detach().cpu().clone())

    handle = model.model.talker.register_forward_hook(hook)
    try:
        yield codes
    finally:
        handle.remove()


def _run_stock(model: Any, mode: str, requests: BenchRequests, text: str, frames: int, seed: int,
               *, in_thread: bool = False) -> dict[str, Any]:
    if in_thread:  # a fresh worker thread with the process's default thread count, like a server handler
        import threading

        out: dict[str, Any] = {}

        def body() -> None:
            try:
                out["result"] = _run_stock(model, mode, requests, text, frames, seed)
            except BaseException as exc:  # re-raised in the calling thread
                out["error"] = exc

        worker = threading.Thread(target=body, name="bench-stock")
        worker.start()
        worker.join()
        if "error" in out:
            raise out["error"]
        return out["result"]
    from core.engine.device import seed_everything

    seed_everything(seed)
    with peak_rss() as peak, _talker_codes(model) as codes:
        start = time.perf_counter()
        wavs, sr = stock_call(model, mode, requests, text, frames)
        wall = time.perf_counter() - start
    samples = np.asarray(wavs[0], dtype=np.float32)
    return {"wall": wall, "ttfa": wall, "samples": samples, "audio_s": samples.size / sr,
            "codes": _stack(codes), "peak": peak.get("peak", 0)}


def _run_studio(context: AppContext, request: Any) -> dict[str, Any]:
    from core.engine.live_decoding import LiveAudio

    service = context.synthesis
    first = None
    result = None
    pieces = 0
    with peak_rss() as peak:
        start = time.perf_counter()
        for item in service.stream(request, live=True):
            if isinstance(item, LiveAudio):
                pieces += 1
                if first is None:
                    first = time.perf_counter() - start
            elif isinstance(item, SynthesisResult):
                result = item
        wall = time.perf_counter() - start
    if result is None:
        raise BenchError("The studio's stream ended without a result.")
    stats = service.fast.last
    return {"wall": wall, "ttfa": first if first is not None else wall, "samples": result.audio.samples,
            "audio_s": result.duration, "codes": stats.codes, "peak": peak.get("peak", 0),
            "pieces": pieces, "threads": stats.generation_threads}


def _stack(codes: list) -> Any:
    import torch

    return torch.stack(codes) if codes else None


def _same(a: Any, b: Any) -> bool:
    import torch

    return a is not None and b is not None and a.shape == b.shape and bool(torch.equal(a, b))


def measure_compare(
    context: AppContext, modes: Sequence[str] = MODES, frames: int = DEFAULT_FRAMES, runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED, text: str | None = None, progress: Progress | None = None,
    path: str = "studio", warmup_frames: int = 3, studio_context: AppContext | None = None,
) -> list[CompareFigure]:
    """Studio path vs the stock call, alternating (see the method above).

    The stock call runs on ``context``'s model; the studio path goes through
    ``studio_context`` (default: the same context, i.e. the same loaded model).
    A separate studio context serves the opt-in int8 path, whose loader
    quantises its own copy of the model.
    """
    studio_context = studio_context or context
    check_runs(runs)
    text = text or bench_text(frames, context.synthesis.chunk_chars)
    chunk_text = textlib.chunk_text(textlib.validate_text(text, max_chars=context.synthesis.max_text_chars),
                                    max_chars=context.synthesis.chunk_chars)
    if len(chunk_text) != 1:
        raise BenchError("The bench text must be one chunk.")
    chunk_text = chunk_text[0]
    checkpoints = ensure_available(context, modes)
    requests = BenchRequests(context, text, Sampling(seed=seed, max_new_tokens=frames))
    warm = BenchRequests(context, text, Sampling(seed=seed, max_new_tokens=warmup_frames))
    figures = []
    for mode, checkpoint in zip(modes, checkpoints):
        context.models.unload()  # one model in memory at a time
        _say(progress, f"compare {path}: {checkpoint.key} {frames} frames, warm-up + {runs} alternating pair(s)")
        requests.prepare(mode)
        warm._speaker, warm._prompt = requests._speaker, requests._prompt
        loaded = context.models.get(checkpoint)
        if studio_context is not context:
            studio_context.models.unload()
        _run_stock(loaded.model, mode, warm, chunk_text, warmup_frames, seed)
        _run_studio(studio_context, _request(warm, mode))
        loads_before = _loads_of(context, checkpoint.key)
        stock_runs, thread_runs, studio_runs = [], [], []
        kinds = ("stock", "studio", "thread")
        for i in range(runs):
            order = kinds[i % 3:] + kinds[:i % 3]  # rotate, so no path always runs first
            if i % 2:
                order = order[::-1]
            for which in order:
                if which == "stock":
                    stock_runs.append(_run_stock(loaded.model, mode, requests, chunk_text, frames, seed))
                elif which == "thread":
                    thread_runs.append(_run_stock(loaded.model, mode, requests, chunk_text, frames, seed,
                                                  in_thread=True))
                else:
                    studio_runs.append(_run_studio(studio_context, _request(requests, mode)))
            _say(progress, f"  round {i + 1}: stock {stock_runs[-1]['wall']:.1f} s (in a thread "
                           f"{thread_runs[-1]['wall']:.1f} s), studio {studio_runs[-1]['wall']:.1f} s "
                           f"(first audio {studio_runs[-1]['ttfa']:.1f} s)")
        if _loads_of(context, checkpoint.key) != loads_before:
            raise BenchError(f"{checkpoint.key} was reloaded during the timed runs.")
        ratios = [s["wall"] / max(k["wall"], 1e-9) for s, k in zip(studio_runs, stock_runs)]
        thread_ratios = [s["wall"] / max(k["wall"], 1e-9) for s, k in zip(studio_runs, thread_runs)]
        thread_total = median([k["wall"] for k in thread_runs])
        same_codes = all(_same(s["codes"], k["codes"]) for s, k in zip(studio_runs, stock_runs))
        same_audio = all(s["samples"].shape == k["samples"].shape and np.array_equal(s["samples"], k["samples"])
                         for s, k in zip(studio_runs, stock_runs))
        diffs = [float(np.max(np.abs(s["samples"] - k["samples"]))) if s["samples"].shape == k["samples"].shape
                 else float("inf") for s, k in zip(studio_runs, stock_runs)]
        audio_s = median([k["audio_s"] for k in stock_runs])
        studio_total = median([s["wall"] for s in studio_runs])
        stock_total = median([k["wall"] for k in stock_runs])
        studio_ttfa = median([s["ttfa"] for s in studio_runs])
        figures.append(CompareFigure(
            mode=mode, model=checkpoint.key, path=path, frames=frames, audio_seconds=audio_s,
            studio_rtf=studio_total / max(audio_s, 1e-9), stock_rtf=stock_total / max(audio_s, 1e-9),
            ratio=median(ratios), studio_ttfa_s=studio_ttfa, stock_ttfa_s=median([k["ttfa"] for k in stock_runs]),
            studio_total_s=studio_total, stock_total_s=stock_total,
            ttfa_share=studio_ttfa / max(studio_total, 1e-9),
            thread_stock_total_s=thread_total, thread_stock_rtf=thread_total / max(audio_s, 1e-9),
            ratio_vs_thread_stock=median(thread_ratios),
            studio_peak_bytes=max(s["peak"] for s in studio_runs), stock_peak_bytes=max(k["peak"] for k in stock_runs),
            same_codes=same_codes, same_audio=same_audio, max_abs_diff=max(diffs),
            live_pieces=int(median([s["pieces"] for s in studio_runs])),
            generation_threads=studio_runs[-1]["threads"], pairs=runs, samples=ratios,
        ))
        del loaded
        if studio_context is not context:
            studio_context.models.unload()
    return figures


def measure_profile(
    context: AppContext, mode: str, frames: int, seed: int = DEFAULT_SEED, text: str | None = None,
    threads: int | None = None, progress: Progress | None = None, in_thread: bool = True,
) -> ProfileFigure:
    """One stock call with timers around the talker, the code predictor and the decoder.

    Runs in a fresh worker thread by default, like the studio's own generation
    (see the note on OpenMP spin-waits above) with ``threads`` torch threads.
    """
    if in_thread:
        import threading

        out: dict[str, Any] = {}

        def body() -> None:
            try:
                out["figure"] = measure_profile(context, mode, frames, seed, text, threads, progress, in_thread=False)
            except BaseException as exc:  # re-raised in the calling thread
                out["error"] = exc

        worker = threading.Thread(target=body, name="bench-profile")
        worker.start()
        worker.join()
        if "error" in out:
            raise out["error"]
        return out["figure"]
    import torch

    text = text or bench_text(frames, context.synthesis.chunk_chars)
    (checkpoint,) = ensure_available(context, [mode])
    requests = BenchRequests(context, text, Sampling(seed=seed, max_new_tokens=frames))
    requests.prepare(mode)
    model = context.models.get(checkpoint).model
    talker = model.model.talker
    timers: dict[str, float] = {"talker": 0.0, "cp": 0.0, "cp_generate": 0.0, "decode": 0.0}
    handles = []

    def timed(module: Any, key: str) -> None:
        starts: list[float] = []

        def pre(*_a: Any) -> None:
            starts.append(time.perf_counter())

        def post(*_a: Any) -> None:
            timers[key] += time.perf_counter() - starts.pop()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    timed(talker.model, "talker")
    timed(talker.code_predictor, "cp")
    timed(model.model.speech_tokenizer.model.decoder, "decode")
    predictor = talker.code_predictor
    original = predictor.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timers["cp_generate"] += time.perf_counter() - start

    saved_threads = torch.get_num_threads()
    predictor.generate = generate
    try:
        if threads:
            torch.set_num_threads(threads)
        stock_call(model, mode, requests, text, 3)  # warm-up
        for key in timers:
            timers[key] = 0.0
        _say(progress, f"profile: {checkpoint.key} {frames} frames, {torch.get_num_threads()} thread(s)")
        from core.engine.device import seed_everything

        seed_everything(seed)
        with _talker_codes(model) as codes:
            start = time.perf_counter()
            stock_call(model, mode, requests, text, frames)
            total = time.perf_counter() - start
    finally:
        del predictor.generate
        for handle in handles:
            handle.remove()
        used = torch.get_num_threads()
        torch.set_num_threads(saved_threads)
    n = len(codes)
    overhead = max(timers["cp_generate"] - timers["cp"], 0.0)
    other = max(total - timers["talker"] - timers["cp_generate"] - timers["decode"], 0.0)
    return ProfileFigure(mode=mode, threads=used, frames=n, total_s=total, talker_s=timers["talker"],
                         code_predictor_s=timers["cp"], code_predictor_overhead_s=overhead,
                         decode_s=timers["decode"], other_s=other)


def arch_modes(spec_name: str) -> tuple[str, ...]:
    """Real 0.6B checkpoints exist for custom voice and clone only (voice design is 1.7B-only)."""
    return ("custom_voice", "base") if spec_name == "0.6b" else MODES


def arch_settings(settings: Settings, paths: dict[str, Path], spec_name: str) -> Settings:
    """The user's device/dtype settings, pointed at the random-weight benchmark checkpoints."""
    size = "0.6B" if spec_name == "0.6b" else "1.7B"
    pinned = {f"checkpoint_{mode}": path for mode, path in paths.items()}
    return settings.replace(demo_models=True, preferred_size=size, max_resident=1, **pinned)
