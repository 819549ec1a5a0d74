"""TakeService: every take is synthesized and kept one way, on the real demo models."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.io import load_audio
from core.engine.synthesis import DEMO_WARNING
from core.takes.recipes import clone_request_for_voice, recipe_of, voice_summary
from core.takes.script_render import plan_script, render_script, script_recipe, script_voice_summary
from core.takes.service import TakeJob, TakeService
from core.types import CustomVoiceRequest, DesignRequest, Sampling
from tests.conftest import SPEECH_TEXT

FAST = Sampling(seed=3, max_new_tokens=6)


@pytest.fixture
def service(demo_context) -> TakeService:
    return TakeService.for_app(demo_context)


def design(text: str = "Kept.") -> DesignRequest:
    return DesignRequest(text=text, description="Calm.", sampling=FAST)


def samples(path: str) -> np.ndarray:
    return load_audio(path).samples


def test_keep_stores_the_take_with_its_recipe_and_returns_the_details(demo_context, service):
    request = design()
    result = demo_context.synthesis.synthesize(request)
    job = TakeJob(
        request, "flac", info={"description": "Calm.", "language": "auto"}, warnings=["The reference is short."]
    )
    kept = service.keep(job, result)

    take = demo_context.history.get(kept.take.id)
    assert kept.path == str(take.audio_path) and kept.path.endswith(".flac") and take.format == "flac"
    # The recipe pins the pronunciation lexicon that was current when the take was kept.
    assert take.request == recipe_of(service.pin_lexicon(job).request, result.seed)
    assert take.request["lexicon_version"]
    assert take.voice == voice_summary(request)
    # The job's warnings come right after the demo-model notice, in the take and in the details.
    assert result.warnings[:2] == [DEMO_WARNING, "The reference is short."]
    assert take.warnings == result.warnings
    assert kept.details == result.info() | {
        "text": "Kept.",
        "take_id": take.id,
        "description": "Calm.",
        "language": "auto",
    }


def test_make_synthesizes_then_keeps(demo_context, service):
    request = CustomVoiceRequest(text="Made.", speaker="Ryan", size="0.6B", sampling=FAST)
    kept = service.make(TakeJob(request, "wav", info={"speaker": "Ryan"}), client="tester@127.0.0.1")
    direct = demo_context.synthesis.synthesize(request)
    np.testing.assert_allclose(samples(kept.path), direct.audio.samples, atol=1e-4)  # 16-bit WAV on disk
    assert kept.details["take_id"] == kept.take.id and kept.details["speaker"] == "Ryan"
    assert kept.details["mode"] == "custom_voice" and kept.details["seed"] == 3
    assert [t.id for t in demo_context.history.list()] == [kept.take.id]


def test_regenerate_a_single_take_gives_the_same_audio(demo_context, service):
    first = service.make(TakeJob(design("Again."), "wav"))
    again = service.regenerate(first.take.id)
    assert again.original.id == first.take.id and again.kept.take.id != first.take.id
    assert again.seed == first.take.seed == 3
    assert again.kept.take.format == "wav" and again.kept.take.request == first.take.request
    assert np.array_equal(samples(again.kept.path), samples(first.path))
    assert again.kept.details["take_id"] == again.kept.take.id


def test_regenerate_a_library_clone_keeps_the_voice(demo_context, service, speech_wav):
    voice = demo_context.library.save(
        name="Service Fox", kind="clone", reference=load_audio(speech_wav), transcript=SPEECH_TEXT
    )
    request, _ = clone_request_for_voice(
        demo_context.library, demo_context.synthesis, voice.id, text="Cloned.", size="0.6B", sampling=FAST
    )
    first = service.make(TakeJob(request, "wav", voice_id=voice.id, voice_name=voice.name))
    assert first.take.request["voice_id"] == voice.id and first.take.voice["voice"] == "Service Fox"
    again = service.regenerate(first.take.id)
    assert again.kept.take.request["voice_id"] == voice.id and again.kept.take.voice["voice"] == "Service Fox"
    assert np.array_equal(samples(again.kept.path), samples(first.path))


def test_keep_script_then_regenerate_it(demo_context, service):
    plan = plan_script(
        demo_context.synthesis,
        demo_context.library,
        "A: One.\nB: Two.",
        "A = Ryan\nB = Sohee",
        size="0.6B",
        sampling=FAST,
    )
    result = render_script(demo_context.synthesis, demo_context.library, plan)
    kept = service.keep_script(plan, result, "wav")
    take = kept.take
    assert take.mode == "script" and take.request == script_recipe(plan, result, fmt="wav")
    assert take.voice == script_voice_summary(result) and take.language == plan.language
    assert kept.details["take_id"] == take.id and kept.details["format"] == "wav"
    assert kept.details["post"]["normalize"] == "none" and len(kept.details["lines"]) == 2

    again = service.regenerate(take.id)
    assert again.kept.details == {"take_id": again.kept.take.id}
    assert again.kept.take.mode == "script" and again.kept.take.request == take.request
    assert np.array_equal(samples(again.kept.path), samples(kept.path))
