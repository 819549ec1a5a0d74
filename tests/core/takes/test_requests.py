"""The request factory: one Ask per take, from any entry point, to the engine's request and TakeJob."""

from __future__ import annotations

import dataclasses

import pytest

from core.audio.edit import PostProcessing
from core.audio.io import load_audio
from core.errors import InvalidInput, VoiceNotFound
from core.takes.requests import Ask, request_for, take_job
from core.takes.values import Options, options_from_values
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Mode, Sampling
from tests.conftest import SPEECH_TEXT

OPTIONS = options_from_values(seed=7, temperature=0.8, max_seconds=2, format="flac", output_normalize="peak")


def test_design_ask_becomes_a_design_request_with_its_options_and_details():
    job = take_job(Ask(Mode.VOICE_DESIGN, "Hello.", "English", "1.7B", description="A calm voice.", options=OPTIONS))
    assert job.request == DesignRequest(
        text="Hello.",
        description="A calm voice.",
        language="English",
        size="1.7B",
        sampling=OPTIONS.sampling,
        post=PostProcessing(normalize="peak"),
    )
    assert job.fmt == "flac" and job.voice_id is None
    assert job.info == {"language": "english", "description": "A calm voice."}


def test_custom_voice_ask_reports_the_speakers_name_and_drops_an_empty_instruction():
    job = take_job(Ask(Mode.CUSTOM_VOICE, "Hi.", None, " ", speaker="ryan", instruct=""))
    assert isinstance(job.request, CustomVoiceRequest)
    assert (job.request.speaker, job.request.instruct, job.request.size, job.request.language) == (
        "ryan",
        None,
        None,
        "auto",
    )
    assert job.info == {"language": "auto", "speaker": "Ryan"} and job.fmt == "wav"
    with pytest.raises(InvalidInput, match="Nobody"):
        take_job(Ask(Mode.CUSTOM_VOICE, "Hi.", speaker="Nobody"))


def test_fields_that_are_not_text_are_refused_by_name():
    with pytest.raises(InvalidInput, match="^Text must be text, not int"):
        request_for(Ask(Mode.VOICE_DESIGN, 5, description="A voice."))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="^Voice description must be text"):
        request_for(Ask(Mode.VOICE_DESIGN, "Hi.", description=["a", "voice"]))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="^Style instruction must be text"):
        request_for(Ask(Mode.CUSTOM_VOICE, "Hi.", speaker="Ryan", instruct=3))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="reference clip or a library voice"):
        request_for(Ask(Mode.BASE, "Hi."))
    with pytest.raises(InvalidInput, match="Library voices are not available"):
        request_for(Ask(Mode.BASE, "Hi.", voice="Somebody"))
    with pytest.raises(InvalidInput, match="cannot speak"):
        request_for(Ask(Mode.ASR, "Hi."))


def test_a_reference_clone_keeps_its_transcript_unless_x_vector_only(speech_wav):
    clip = load_audio(speech_wav)
    ask = Ask(Mode.BASE, "Cloned.", reference=clip, reference_text=SPEECH_TEXT, reference_options={"start_s": 0.5})
    job = take_job(ask)
    assert isinstance(job.request, CloneRequest)
    assert job.request.reference is clip and job.request.reference_text == SPEECH_TEXT
    assert job.request.reference_options == {"start_s": 0.5}
    assert job.info == {"language": "auto", "reference_s": round(clip.duration, 3)}
    request, voice, cached = request_for(dataclasses.replace(ask, x_vector_only=True))
    assert isinstance(request, CloneRequest) and request.reference_text is None and request.x_vector_only
    assert voice is None and cached is False


def test_a_library_voice_clone_uses_its_language_and_cached_prompt(demo_context, speech_wav):
    library, synthesis = demo_context.library, demo_context.synthesis
    voice = library.save(
        name="Factory Fox", kind="clone", reference=load_audio(speech_wav), transcript=SPEECH_TEXT, language="german"
    )
    ask = Ask(Mode.BASE, "Cloned.", None, "0.6B", voice="factory fox", options=OPTIONS)
    first = take_job(ask, library, synthesis)
    assert isinstance(first.request, CloneRequest) and first.request.prompt is not None
    assert first.request.language == "german" and first.request.post == PostProcessing(normalize="peak")
    assert first.request.sampling == OPTIONS.sampling and first.request.reference_text == SPEECH_TEXT
    assert (first.voice_id, first.voice_name) == (voice.id, "Factory Fox")
    assert first.info["voice"] == "Factory Fox" and first.info["prompt_cached"] is False
    again = take_job(dataclasses.replace(ask, language="English"), library, synthesis)
    assert again.info["prompt_cached"] is True and again.request.language == "English"
    # The text is checked before the voice's prompt is encoded; an unknown voice says so.
    with pytest.raises(InvalidInput, match="[Tt]ext"):
        take_job(dataclasses.replace(ask, text="   "), library, synthesis)
    with pytest.raises(VoiceNotFound):
        take_job(dataclasses.replace(ask, voice="Nobody Here"), library, synthesis)


def test_options_default_to_the_model_defaults():
    assert Options() == options_from_values() == Options(Sampling(), PostProcessing(), "wav")
