"""`/transcribe` and --auto-transcribe through real gradio_client calls against a real server."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import free_port, make_demo_settings


@pytest.fixture(scope="module")
def asr_server(tmp_path_factory, demo_checkpoints, demo_asr):
    from studio.server import serve

    settings = make_demo_settings(
        tmp_path_factory.mktemp("asr-studio"),
        demo_checkpoints,
        port=free_port(),
        checkpoint_asr=demo_asr,
        auto_transcribe=True,
    )
    app, ctx = serve(settings, block=False)
    try:
        url = f"http://127.0.0.1:{settings.port}/"
        yield {"client": Client(url, verbose=False), "ctx": ctx, "url": url}
    finally:
        app.close()


def test_transcribe_returns_text_language_and_seconds(asr_server, speech_wav):
    client = asr_server["client"]
    result = client.predict(reference=handle_file(str(speech_wav)), api_name="/transcribe")
    assert result["text"].strip()
    assert result["language"] in {
        "English",
        "Chinese",
        "German",
        "Spanish",
        "Russian",
        "Korean",
        "French",
        "Japanese",
        "Portuguese",
        "Italian",
    }
    assert result["seconds"] == pytest.approx(sf.info(str(speech_wav)).duration, abs=0.01)
    assert result["demo"] is True and result["model"] == "demo-whisper-small"
    assert asr_server["ctx"].app.models.resident_keys() == ["demo-whisper-small"]


def test_transcribe_with_start_and_end(asr_server, speech_wav):
    result = asr_server["client"].predict(
        reference=handle_file(str(speech_wav)), start_s=1.0, end_s=2.5, api_name="/transcribe"
    )
    assert result["seconds"] == pytest.approx(1.5, abs=0.01)


def test_silence_is_refused_with_a_sentence(asr_server, tmp_path):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(48_000, dtype=np.float32), 24_000)
    with pytest.raises(AppError, match="no speech to transcribe"):
        asr_server["client"].predict(reference=handle_file(str(quiet)), api_name="/transcribe")


def test_no_reference_is_refused(asr_server):
    with pytest.raises(AppError, match="Add a reference clip to transcribe"):
        asr_server["client"].predict(api_name="/transcribe")


def test_auto_transcribe_fills_an_empty_transcript_at_generate_time(asr_server, speech_wav):
    _, info = asr_server["client"].predict(
        reference=handle_file(str(speech_wav)),
        transcript="",
        text="Hello.",
        size="0.6B",
        seed=3,
        max_seconds=1,
        api_name="/clone",
    )
    heard = info["transcription"]
    assert heard["text"].strip() and heard["demo"] is True
    take = asr_server["ctx"].app.history.get(info["take_id"])
    assert take.request["reference_text"] == heard["text"]  # the take was cloned with what was heard


def test_a_written_transcript_is_kept(asr_server, speech_wav):
    _, info = asr_server["client"].predict(
        reference=handle_file(str(speech_wav)),
        transcript="The quick brown fox.",
        text="Hello.",
        size="0.6B",
        seed=3,
        max_seconds=1,
        api_name="/clone",
    )
    assert "transcription" not in info


def test_auto_transcribe_fills_an_empty_transcript_at_save_time(asr_server, speech_wav):
    saved = asr_server["client"].predict(
        reference=handle_file(str(speech_wav)), transcript="", name="Auto fox", consent="test", api_name="/voice_save"
    )
    assert saved["transcript"] and saved["transcript"].strip()


def test_the_transcription_model_cannot_speak_through_the_openai_route(asr_server):
    import httpx

    answer = httpx.post(
        asr_server["url"] + "v1/audio/speech",
        json={"model": "whisper-small", "input": "Hello.", "voice": "Ryan"},
        timeout=60,
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "model_not_found" and "whisper-small" in error["message"]
    listed = httpx.get(asr_server["url"] + "v1/models", timeout=60).json()["data"]
    assert not any("whisper" in entry["id"] for entry in listed)
