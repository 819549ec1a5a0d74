"""Concurrent requests served together: N callers at once against the same N one after another.

``concurrent`` (printed by ``bench --long``): ``requests`` single-chunk custom-voice
takes (different speakers and seeds, one checkpoint), made

* ``sequential``: one after another, each on a free device (what one caller sees);
* ``together``: all at once, as jobs of the take runner queued together: the runner
  serves them together in shared batches (``core/takes/jobs.py``);
* ``queued_alone``: all at once with the runner's batching off, each waiting for its
  turn (the studio before coalescing).

``ratio`` = together wall / sequential wall. ``same_audio`` says whether every take
made together is bit-identical to the same take made alone. The ``*_cpu_s`` figures
are this process's CPU time (all threads) for the same runs: on a shared machine
other processes stretch the wall times, not these.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.context import AppContext
from core.takes.jobs import JobRegistry
from core.takes.service import TakeJob, TakeService
from core.types import CustomVoiceRequest, Mode, Sampling, SynthesisResult

DEFAULT_REQUESTS = 4
LINES = (
    "The morning light crept slowly over the hills.",
    "A small boat drifted near the old stone harbour.",
    "Somebody had left the lantern burning all night.",
    "We counted seventeen gulls on the broken pier.",
)


@dataclass
class ConcurrentFigures:
    requests: int
    frames: int
    runs: int
    sequential_s: float
    together_s: float
    queued_alone_s: float
    sequential_cpu_s: float
    together_cpu_s: float
    served_together: int
    same_audio: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "frames": self.frames,
            "runs": self.runs,
            "sequential_s": round(self.sequential_s, 3),
            "together_s": round(self.together_s, 3),
            "queued_alone_s": round(self.queued_alone_s, 3),
            "ratio": round(self.together_s / self.sequential_s, 3),
            "ratio_queued_alone": round(self.queued_alone_s / self.sequential_s, 3),
            "sequential_cpu_s": round(self.sequential_cpu_s, 3),
            "together_cpu_s": round(self.together_cpu_s, 3),
            "cpu_ratio": round(self.together_cpu_s / max(self.sequential_cpu_s, 1e-9), 3),
            "served_together": self.served_together,
            "same_audio": self.same_audio,
        }


def measure_concurrent(
    context: AppContext,
    *,
    requests: int = DEFAULT_REQUESTS,
    frames: int = 6,
    runs: int = 1,
    seed: int = 1234,
    progress: Callable[[str], None] | None = None,
) -> ConcurrentFigures:
    synthesis = context.synthesis
    say = progress or (lambda _m: None)
    loaded = synthesis.engine.load(synthesis.checkpoint_for(Mode.CUSTOM_VOICE, None))
    speakers = sorted(s.lower() for s in loaded.speakers) or ["ryan"]
    # A cap of N new tokens gives N - 1 frames (core/engine/torch_engine.py); one chunk per line.
    synthesis.chunk_chars = max(synthesis.chunk_chars, max(len(line) for line in LINES) + 2)
    batch = [
        CustomVoiceRequest(
            text=LINES[k % len(LINES)],
            speaker=speakers[k % len(speakers)],
            language="english",
            sampling=Sampling(seed=seed + 100 * k, max_new_tokens=frames + 1),
        )
        for k in range(requests)
    ]

    def sequential() -> tuple[float, float, list[SynthesisResult]]:
        start, cpu = time.perf_counter(), _cpu_s()
        made = [synthesis.synthesize(r) for r in batch]
        return time.perf_counter() - start, _cpu_s() - cpu, made

    runner = JobRegistry(TakeService.for_app(context))

    def at_once() -> tuple[float, float, list[SynthesisResult]]:
        start, cpu = time.perf_counter(), _cpu_s()
        jobs = runner.start_whole([TakeJob(r, "wav") for r in batch], keep=False)
        made = []
        for job in jobs:
            job.wait()
            if job.result is None:
                raise job.error or RuntimeError("a take was not made")
            made.append(job.result)
        return time.perf_counter() - start, _cpu_s() - cpu, made

    say(f"concurrent requests: warm-up, {requests} takes x {frames} frames")
    synthesis.synthesize(batch[0])
    seq_times, together_times, alone_times, seq_cpu, together_cpu = [], [], [], [], []
    same = True
    before = runner.counts()[0]
    for round_ in range(runs):
        say(f"concurrent round {round_ + 1}/{runs}: one after another")
        wall, cpu, alone = sequential()
        seq_times.append(wall)
        seq_cpu.append(cpu)
        say(f"concurrent round {round_ + 1}/{runs}: {requests} at once, served together")
        wall, cpu, together = at_once()
        together_times.append(wall)
        together_cpu.append(cpu)
        same = same and all(
            np.array_equal(a.audio.samples, b.audio.samples) for a, b in zip(alone, together, strict=True)
        )
        say(f"concurrent round {round_ + 1}/{runs}: {requests} at once, each alone in turn")
        runner.batching = False
        try:
            wall, _cpu, _ = at_once()
        finally:
            runner.batching = True
        alone_times.append(wall)
    return ConcurrentFigures(
        requests=requests,
        frames=frames,
        runs=runs,
        sequential_s=statistics.median(seq_times),
        together_s=statistics.median(together_times),
        queued_alone_s=statistics.median(alone_times),
        sequential_cpu_s=statistics.median(seq_cpu),
        together_cpu_s=statistics.median(together_cpu),
        served_together=runner.counts()[0] - before,
        same_audio=same,
    )


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
