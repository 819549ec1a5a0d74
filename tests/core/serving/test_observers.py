"""Metrics and the audit log observe the app's events (core/events.py) once the server watches.

Real components on the demo checkpoints: the context's own library, model manager, store and
synthesis service emit; ServingContext.watch() subscribes Metrics.observe and AuditLog.observe.
The full server flow (HTTP routes, Gradio client) is tests/studio/api/test_ops.py.
"""

from __future__ import annotations

import json

import pytest

from core.engine.cancel import CancelToken, cancellable
from core.errors import Stopped
from core.events import Events, GenerationFinished, VoiceAction, VoiceChanged
from core.serving.context import ServingContext
from core.serving.lifecycle import ShuttingDown
from core.serving.metrics import current_endpoint
from core.types import DesignRequest, Sampling, SynthesisResult
from tests.conftest import spoken


def _lines(ctx: ServingContext) -> list[dict]:
    return [json.loads(line) for line in ctx.audit.path.read_text(encoding="utf-8").splitlines()]


def _metric(ctx: ServingContext, name: str, **labels: str) -> float:
    value = ctx.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _request(text: str = "Hello there.") -> DesignRequest:
    return DesignRequest(text=text, description="A calm voice.", sampling=Sampling(seed=1, max_new_tokens=4))


@pytest.fixture
def watched(demo_context):
    ctx = ServingContext(demo_context)
    ctx.watch()
    yield ctx
    ctx.audit.close()


def test_library_and_model_changes_are_audited(watched):
    app = watched.app
    voice = app.library.save(name="Anna", kind="clone", reference=spoken(3.0), transcript="Hello.")
    app.library.rename(voice, "Anna B")
    app.library.update(voice, notes="warm", tags=None)
    copy = app.library.duplicate(voice)
    app.library.delete(copy)
    checkpoint = app.catalog.resolve("voice_design", None, "1.7B")
    app.models.get(checkpoint)
    app.models.get(checkpoint)  # resident: a cache hit is not a load
    app.models.set_max_resident(2)
    app.models.unload()
    lines = _lines(watched)
    assert [(line["action"], line["object"]) for line in lines] == [
        ("voice.save", voice.id),
        ("voice.rename", voice.id),
        ("voice.update", voice.id),
        ("voice.duplicate", copy.id),
        ("voice.delete", copy.id),
        ("model.load", checkpoint.key),
        ("settings.change", "max_resident"),
        ("model.unload", checkpoint.key),
    ]
    assert lines[0]["name"] == "Anna" and lines[0]["kind"] == "clone" and lines[0]["client"] == "local"
    assert lines[2]["fields"] == ["notes"] and lines[3]["source"] == voice.id
    assert lines[5]["device"] == "cpu" and lines[5]["seconds"] > 0 and "reason" not in lines[5]
    assert lines[6]["value"] == 2


def test_an_eviction_names_the_model_that_needed_the_room(watched):
    app = watched.app
    design = app.catalog.resolve("voice_design", None, "1.7B")
    custom = app.catalog.resolve("custom_voice", None, "1.7B")
    app.models.get(design)
    app.models.get(custom)  # --max-resident 1: the design model makes room
    evicted = [line for line in _lines(watched) if line["action"] == "model.unload"]
    assert evicted == [evicted[0]] and evicted[0]["object"] == design.key
    assert evicted[0]["reason"] == "evicted" and evicted[0]["for_model"] == custom.key


def test_generations_are_counted_by_entry_point_and_admitted_by_the_lifecycle(watched):
    synthesis = watched.app.synthesis
    result = synthesis.synthesize(_request())
    assert isinstance(result, SynthesisResult)
    labels = {"endpoint": "gradio", "mode": "voice_design"}
    assert _metric(watched, "qwen_tts_studio_requests_total", **labels) == 1
    assert _metric(watched, "qwen_tts_studio_generation_seconds_count", mode="voice_design") == 1
    assert _metric(watched, "qwen_tts_studio_audio_seconds_sum", mode="voice_design") == pytest.approx(result.duration)

    # An HTTP route labels its requests and counts them itself: the observer leaves them alone.
    token = current_endpoint.set("/v1/audio/speech")
    try:
        synthesis.synthesize(_request("Once more."))
    finally:
        current_endpoint.reset(token)
    assert _metric(watched, "qwen_tts_studio_requests_total", **labels) == 1
    assert _metric(watched, "qwen_tts_studio_generation_seconds_count", mode="voice_design") == 2

    # A take stopped by its job's token (Stop, or a shutdown through JobRegistry.stop_all)
    # is counted as a failed generation ...
    token = CancelToken()
    with cancellable(token):
        stream = synthesis.stream(_request("A longer take. " * 4))
        token.cancel()  # before its first chunk: the service checks the token before every chunk
        with pytest.raises(Stopped):
            list(stream)
    assert _metric(watched, "qwen_tts_studio_request_errors_total", status="500", **labels) == 1
    assert watched.lifecycle.in_flight == 0
    # ... and once draining, none starts.
    watched.lifecycle.begin_drain()
    with pytest.raises(ShuttingDown):
        synthesis.stream(_request())


def test_an_observer_that_fails_never_fails_the_action(caplog):
    seen: list[object] = []
    events = Events()
    events.subscribe(lambda event: 1 / 0)
    events.subscribe(seen.append)
    event = VoiceChanged(VoiceAction.DELETE, "v1")
    events.emit(event)
    events.emit(GenerationFinished("base", 1.0, 2.0))
    assert seen == [event, GenerationFinished("base", 1.0, 2.0)]
    assert "observer_failed" in caplog.text
