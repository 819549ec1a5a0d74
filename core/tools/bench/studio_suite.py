"""Measuring the engine: model loads, real-time factor, mode switches, memory.

Every function here takes the one :class:`~core.context.AppContext`, measures
on whatever checkpoints it is configured with (the tiny random-weight demo
models or the real ones) and returns a small dataclass of figures; nothing is
estimated or hard-coded. ``qwen-tts-studio bench`` (``studio/cli/commands/bench.py``)
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
Top level: ``version`` (int), ``device`` (str), ``engine`` (str: torch or mlx), ``dtype_policy`` (str),
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
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.context import AppContext
from core.tools.bench.common import (
    DEFAULT_FRAMES,
    DEFAULT_RUNS,
    DEFAULT_SEED,
    BenchError,
    BenchRequests,
    Progress,
    bench_text,
    check_runs,
    ensure_available,
    loads_of,
    median,
    rss_bytes,
    say,
)
from core.types import MODES, Mode, Sampling

JSON_VERSION = 1
SWITCH_SEQUENCE: tuple[Mode, ...] = (Mode.VOICE_DESIGN, Mode.CUSTOM_VOICE, Mode.BASE, Mode.VOICE_DESIGN)
MODEL_RUNTIME = "qwen_tts"  # the package the loader imports on first use


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
    """The named API against a direct engine call (measured in studio/cli/commands/bench.py)."""

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
    engine: str = "torch"  # --engine: torch, or mlx (core/engine/mlx/)

    def as_json(self) -> dict[str, Any]:
        def strip_mode(figure: Any) -> dict[str, Any]:
            data = asdict(figure)
            data.pop("mode", None)
            return data

        return {
            "version": JSON_VERSION,
            "device": self.device,
            "engine": self.engine,
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


# --- measurements -------------------------------------------------------------


def measure_memory(context: AppContext, modes: Sequence[str] = MODES, progress: Progress | None = None) -> MemoryFigure:
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
        say(progress, f"memory: loading {checkpoint.key}")
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
    context: AppContext,
    modes: Sequence[str] = MODES,
    runs: int = DEFAULT_RUNS,
    progress: Progress | None = None,
) -> list[LoadFigure]:
    """Median seconds of a fresh load (everything unloaded first) per mode."""
    check_runs(runs)
    checkpoints = ensure_available(context, modes)
    figures = []
    for mode, checkpoint in zip(modes, checkpoints):
        say(progress, f"loads: {checkpoint.key} x{runs}")
        walls: list[float] = []
        loader: list[float] = []
        count_before = loads_of(context, checkpoint.key)
        memory = 0
        for _ in range(runs):
            context.models.unload()
            start = time.perf_counter()
            loaded = context.models.get(checkpoint)
            walls.append(time.perf_counter() - start)
            loader.append(loaded.load_seconds)
            memory = loaded.memory_bytes
            del loaded
        loads = loads_of(context, checkpoint.key) - count_before
        if loads != runs:
            raise BenchError(f"Expected {runs} fresh loads of {checkpoint.key}, saw {loads}.")
        figures.append(LoadFigure(mode, checkpoint.key, median(walls), median(loader), walls, loads, memory))
    return figures


def measure_rtf(
    context: AppContext,
    modes: Sequence[str] = MODES,
    frames: int = DEFAULT_FRAMES,
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
    text: str | None = None,
) -> list[RtfFigure]:
    """Median generation seconds per audio second for a fixed frame cap, per mode."""
    check_runs(runs)
    text = text or bench_text(frames, context.synthesis.chunk_chars)
    checkpoints = ensure_available(context, modes)
    requests = BenchRequests(context, text, Sampling(seed=seed, max_new_tokens=frames))
    figures = []
    for mode, checkpoint in zip(modes, checkpoints):
        say(progress, f"rtf: {checkpoint.key} {frames} frames, 1 warm-up + {runs}")
        requests.prepare(mode)
        requests.generate(mode)  # warm-up; also loads the model
        count_before = loads_of(context, checkpoint.key)
        ratios, gens, audio = [], [], []
        for _ in range(runs):
            result = requests.generate(mode)
            if result.model != checkpoint.key:
                raise BenchError(f"Generation used {result.model}, not {checkpoint.key}.")
            gens.append(result.timings["generate_s"])
            audio.append(result.duration)
            ratios.append(result.timings["generate_s"] / max(result.duration, 1e-9))
        if loads_of(context, checkpoint.key) != count_before:
            raise BenchError(f"{checkpoint.key} was reloaded during the timed runs; the figures would mix in loads.")
        figures.append(RtfFigure(mode, checkpoint.key, median(ratios), median(gens), median(audio), frames, ratios))
    return figures


def measure_switches(
    context: AppContext,
    runs: int = DEFAULT_RUNS,
    sequence: Sequence[str] = SWITCH_SEQUENCE,
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
        say(progress, f"switches: {' -> '.join(sequence)} x{runs}")
        samples: list[float] = []
        loads = 0
        for _ in range(runs):
            for mode in sequence[1:]:
                checkpoint = checkpoints[mode]
                count_before = loads_of(context, checkpoint.key)
                start = time.perf_counter()
                manager.get(checkpoint)
                samples.append(time.perf_counter() - start)
                loaded_now = loads_of(context, checkpoint.key) - count_before
                if loaded_now != 1 or manager.resident_keys() != [checkpoint.key]:
                    raise BenchError(f"Switching to {checkpoint.key} did not evict and load exactly once.")
                loads += loaded_now
    finally:
        manager.set_max_resident(previous_max)
    return SwitchFigure(list(sequence), median(samples), samples, loads)
