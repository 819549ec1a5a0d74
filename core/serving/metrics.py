"""Prometheus metrics for GET /metrics (prometheus_client text format).

Each server gets its own registry (not prometheus_client's global one), so
several studios in one process — the tests start many — never share counters.
Counts and histograms are fed by the synthesis service's events
(:meth:`Metrics.observe`: every generation, whatever the entry point) and by
the HTTP routes (their own requests and errors); gauges of state (queue, in flight, resident models,
memory) are read when Prometheus scrapes, so they are never stale.
"""

from __future__ import annotations

import contextvars
import os
import resource
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.events import Event, GenerationFailed, GenerationFinished, GenerationStarted

if TYPE_CHECKING:
    from core.engine.model_manager import ModelManager
    from core.serving.lifecycle import Lifecycle

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "qwen_tts_studio"
_SECONDS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
_RTF = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20)
# Which entry point a generation came from, for the endpoint label. The HTTP routes set it
# and count their own requests and errors; anything else is the Gradio app (UI, named API).
current_endpoint: contextvars.ContextVar[str | None] = contextvars.ContextVar("endpoint", default=None)
GRADIO_ENDPOINT = "gradio"


def process_memory_bytes() -> int:
    """Resident memory of this process (the peak where the current value is not readable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


class _StateCollector(Collector):
    """Gauges read at scrape time from the engine and the lifecycle."""

    def __init__(
        self,
        manager: ModelManager,
        lifecycle: Lifecycle,
        generating: Callable[[], bool],
        together: Callable[[], tuple[int, int]] | None = None,
    ):
        self.manager = manager
        self.lifecycle = lifecycle
        self.generating = generating
        self.together = together

    def queue(self) -> tuple[int, int]:
        """(in flight, waiting for the device): the job on the device is not waiting."""
        in_flight = self.lifecycle.in_flight
        return in_flight, max(0, in_flight - (1 if self.generating() else 0))

    def collect(self) -> Iterable[Metric]:
        in_flight, depth = self.queue()
        yield GaugeMetricFamily(f"{PREFIX}_in_flight_generations", "Generations running or waiting.", in_flight)
        yield GaugeMetricFamily(f"{PREFIX}_queue_depth", "Generations waiting for the device.", depth)
        resident = self.manager.resident_models()
        yield GaugeMetricFamily(f"{PREFIX}_resident_models", "Models loaded in memory.", len(resident))
        load = GaugeMetricFamily(
            f"{PREFIX}_model_load_seconds", "How long each resident model took to load.", labels=["model"]
        )
        for loaded in resident:
            load.add_metric([loaded.checkpoint.key], loaded.load_seconds)
        yield load
        yield GaugeMetricFamily(
            f"{PREFIX}_process_memory_bytes", "Resident memory of the studio process.", process_memory_bytes()
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_draining", "1 while the studio is shutting down.", int(self.lifecycle.draining)
        )
        if self.together is not None:
            # Whole takes that queued and were served together (core/takes/jobs.py).
            served, batches = self.together()
            yield CounterMetricFamily(
                f"{PREFIX}_requests_served_together",
                "Takes that waited for the device and were generated in one batch with others.",
                served,
            )
            yield CounterMetricFamily(
                f"{PREFIX}_coalesced_batches", "Runs that served several queued takes together.", batches
            )


class Metrics:
    def __init__(
        self,
        manager: ModelManager,
        lifecycle: Lifecycle,
        generating: Callable[[], bool] = lambda: False,
        together: Callable[[], tuple[int, int]] | None = None,
    ):
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests", "Requests by endpoint and mode.", ["endpoint", "mode"], registry=registry
        )
        self.errors = Counter(
            f"{PREFIX}_request_errors",
            "Failed requests by endpoint, mode and HTTP status.",
            ["endpoint", "mode", "status"],
            registry=registry,
        )
        self.generation_seconds = Histogram(
            f"{PREFIX}_generation_seconds", "Wall time of generation.", ["mode"], buckets=_SECONDS, registry=registry
        )
        self.audio_seconds = Histogram(
            f"{PREFIX}_audio_seconds", "Seconds of audio generated.", ["mode"], buckets=_SECONDS, registry=registry
        )
        self.real_time_factor = Histogram(
            f"{PREFIX}_real_time_factor",
            "Generation seconds per second of audio (below 1 is faster than real time).",
            ["mode"],
            buckets=_RTF,
            registry=registry,
        )
        self.state = _StateCollector(manager, lifecycle, generating, together)
        registry.register(self.state)
        if sys.platform.startswith("linux"):
            ProcessCollector(registry=registry)  # process_* (memory, CPU, open files); Linux only

    def request(self, endpoint: str, mode: str) -> None:
        self.requests.labels(endpoint, mode).inc()

    def error(self, endpoint: str, mode: str, status: int) -> None:
        self.errors.labels(endpoint, mode, str(status)).inc()

    def generation(self, mode: str, generate_s: float, audio_s: float) -> None:
        self.generation_seconds.labels(mode).observe(generate_s)
        self.audio_seconds.labels(mode).observe(audio_s)
        self.real_time_factor.labels(mode).observe(generate_s / max(audio_s, 1e-6))

    def observe(self, event: Event) -> None:
        """Counts the generations the synthesis service tells of (core/events.py)."""
        if isinstance(event, GenerationFinished):
            self.generation(event.mode, event.generate_s, event.audio_s)
        elif current_endpoint.get() is None and isinstance(event, GenerationStarted):
            self.request(GRADIO_ENDPOINT, event.mode)
        elif current_endpoint.get() is None and isinstance(event, GenerationFailed):
            self.error(GRADIO_ENDPOINT, event.mode, 500)

    def render(self) -> bytes:
        return generate_latest(self.registry)
