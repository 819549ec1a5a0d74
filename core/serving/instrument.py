"""Watching every generation, whatever started it: lifecycle, metrics, audit.

The UI tabs, the named API, the HTTP routes, scripts and History's
regenerate all generate through ``SynthesisService.stream`` (``synthesize``
calls it too), so the server wraps that one method on its service instance
at start-up instead of adding bookkeeping to every entry point. The wrapper
asks the lifecycle for admission (refused while shutting down), counts the
generation in flight, stops it at the next chunk or live piece when a
shutdown cancels (through the take runner, core/takes/jobs.py), and feeds the metrics. ``SynthesisService.synthesize_many``
(requests batched together) is wrapped the same way, without the per-piece
cancellation: a shutdown lets a running batch finish.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from core.serving.audit import AuditLog, watch_library, watch_models
from core.serving.lifecycle import Lifecycle
from core.serving.metrics import Metrics
from core.types import CloneRequest, CustomVoiceRequest, Mode, SynthesisResult

if TYPE_CHECKING:
    from core.context import AppContext

# Which entry point a generation came from, for the metrics' endpoint label.
# The HTTP routes set it; anything else is the Gradio app (UI and named API).
current_endpoint: contextvars.ContextVar[str | None] = contextvars.ContextVar("endpoint", default=None)
GRADIO_ENDPOINT = "gradio"


def mode_of(request: Any) -> str:
    if isinstance(request, CustomVoiceRequest):
        return Mode.CUSTOM_VOICE.value
    if isinstance(request, CloneRequest):
        return Mode.BASE.value
    return Mode.VOICE_DESIGN.value


def _watched(items: Iterator[Any], mode: str, lifecycle: Lifecycle, metrics: Metrics, counted: bool) -> Iterator[Any]:
    # closing(): stopping early stops the engine too (the engine's stream is a generator).
    with lifecycle.work(), contextlib.closing(items):  # type: ignore[type-var]
        try:
            for item in items:
                if isinstance(item, SynthesisResult):
                    metrics.generation(mode, item.timings.get("generate_s", 0.0), item.duration)
                yield item
        except GeneratorExit:
            raise
        except BaseException:
            if counted:
                metrics.error(GRADIO_ENDPOINT, mode, 500)
            raise


def instrument(app: AppContext, lifecycle: Lifecycle, metrics: Metrics, audit: AuditLog) -> None:
    """Wraps this app's synthesis service, library and model manager (their instances only)."""
    service = app.synthesis
    original = service.stream

    @functools.wraps(original)
    def stream(request: Any, progress: Any = None, *, client: str | None = None, live: bool = False) -> Iterator[Any]:
        lifecycle.admit()
        mode = mode_of(request)
        # The HTTP routes count their own requests (with their endpoint); count the rest here.
        counted = current_endpoint.get() is None
        if counted:
            metrics.request(GRADIO_ENDPOINT, mode)
        items = original(request, progress, client=client, live=live)  # validates: bad input raises here
        return _watched(items, mode, lifecycle, metrics, counted)

    service.stream = stream  # type: ignore[method-assign]
    many = service.synthesize_many

    @functools.wraps(many)
    def synthesize_many(requests: Any, progress: Any = None, *, client: str | None = None, **each: Any) -> list[Any]:
        # The batch endpoint, API variants and scripts' later lines: admitted, counted in flight
        # (a shutdown waits for them) and measured like any generation.
        lifecycle.admit()
        with lifecycle.work():
            outcomes = many(requests, progress, client=client, **each)
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, SynthesisResult):
                metrics.generation(mode_of(request), outcome.timings.get("generate_s", 0.0), outcome.duration)
        return outcomes

    service.synthesize_many = synthesize_many  # type: ignore[method-assign]
    watch_library(app.library, audit)
    watch_models(app.models, app.store, audit)
