"""The OpenAI-compatible /v1 API on a real server, driven by the official openai client."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
import soundfile as sf

from core.audio.io import load_audio
from core.errors import ModelUnavailable
from core.serving.rate_limit import RateLimiter
from studio.server import serve
from tests.conftest import SPEECH_TEXT, free_port, make_demo_settings

ROOT = Path(__file__).resolve().parents[3]

FAST = {"seed": 1, "max_seconds": 1}  # a 1 s frame cap: demo models never stop on their own
MIME = {"mp3": "audio/mpeg", "opus": "audio/ogg", "wav": "audio/wav", "flac": "audio/flac", "pcm": "audio/pcm"}
BUILTINS = {"vivian", "serena", "uncle_fu", "dylan", "eric", "ryan", "aiden", "ono_anna", "sohee"}


def start(tmp_path_factory, demo_checkpoints, **extra):
    settings = make_demo_settings(tmp_path_factory.mktemp("openai-data"), demo_checkpoints, port=free_port(), **extra)
    app, ctx = serve(settings, block=False)
    return app, ctx, f"http://127.0.0.1:{settings.port}/"


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_checkpoints):
    app, ctx, url = start(tmp_path_factory, demo_checkpoints, rate_limit_per_minute=0)
    try:
        yield url, ctx
    finally:
        app.close()


@pytest.fixture(scope="module")
def oai(server):
    return openai.OpenAI(base_url=f"{server[0]}v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def library_voice(server, speech_wav):
    return server[1].app.library.save(
        name="Narrator", kind="clone", reference=load_audio(speech_wav), transcript=SPEECH_TEXT, language="English"
    )


def speak(oai, **kwargs):
    """(bytes, headers) of one /v1/audio/speech call."""
    kwargs = {"model": "tts-1", "voice": "Ryan", "input": "Hello", **kwargs}
    kwargs["extra_body"] = {**FAST, **kwargs.get("extra_body", {})}
    raw = oai.audio.speech.with_raw_response.create(**kwargs)
    return raw.content, raw.headers


def decoded_seconds(data: bytes, fmt: str) -> float:
    if fmt == "pcm":
        assert len(data) % 2 == 0
        return len(data) / 2 / 24_000
    samples, sr = sf.read(io.BytesIO(data))
    assert samples.ndim == 1 and len(samples) > 0
    return len(samples) / sr


def assert_error(
    exc: openai.APIStatusError | httpx.Response, status: int, type_: str, param: str | None, match: str
) -> None:
    response = exc if isinstance(exc, httpx.Response) else exc.response
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == type_ and error["param"] == param
    assert match in error["message"]
    assert "Traceback" not in response.text


# --------------------------------------------------------------------------- speech


@pytest.mark.parametrize("fmt", ["mp3", "opus", "wav", "flac", "pcm"])
def test_each_format_decodes_to_the_reported_duration(server, oai, fmt):
    data, headers = speak(oai, response_format=fmt, speed=1.0)
    assert headers["content-type"] == MIME[fmt]
    assert headers["x-model"] == "demo-0.6B-CustomVoice" and headers["x-seed"] == "1"
    reported = float(headers["x-duration"])
    assert 0.5 < reported <= 1.1
    tolerance = {"mp3": 0.08, "opus": 0.03}.get(fmt, 0.001)  # codec padding
    assert decoded_seconds(data, fmt) == pytest.approx(reported, abs=tolerance)
    take = server[1].app.history.get(headers["x-take-id"])  # kept like a UI take
    assert take.format == {"pcm": "wav", "opus": "ogg"}.get(fmt, fmt)
    assert take.request["kind"] == "custom_voice" and take.request["speaker"] == "Ryan"
    assert take.seed == 1 and take.text == "Hello"


def test_default_format_is_wav_and_speaker_ids_work(server):
    # vLLM-Omni's default (its clients save .wav), and no model: the task's checkpoint.
    response = httpx.post(
        f"{server[0]}v1/audio/speech", json={"voice": "uncle_fu", "input": "Hi.", **FAST}, timeout=120
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav" and response.headers["x-model"] == "demo-1.7B-CustomVoice"
    assert sf.info(io.BytesIO(response.content)).format == "WAV"
    # vLLM-Omni's sample_rate: the answer resampled, the kept take still 24 kHz.
    body = {"voice": "Ryan", "input": "Hi.", "sample_rate": 16_000, **FAST}
    resampled = httpx.post(f"{server[0]}v1/audio/speech", json=body, timeout=120)
    assert sf.info(io.BytesIO(resampled.content)).samplerate == 16_000 and resampled.headers["x-sample-rate"] == "16000"


def test_mlx_audio_fields_change_the_take(server):
    """mlx-audio's request shape: instruct, lang_code and max_tokens reach take.json; its ids resolve."""
    body = {
        "model": "mlx-community/Qwen3-TTS-12Hz-1.7B-CustomVoice-bf16",
        "input": "Hello there.",
        "voice": "Ryan",
        "instruct": "Speak softly.",
        "lang_code": "a",
        "max_tokens": 9,
        "seed": 1,
    }
    response = httpx.post(f"{server[0]}v1/audio/speech", json=body, timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "demo-1.7B-CustomVoice"
    take = server[1].app.history.get(response.headers["x-take-id"])
    assert take.request["instruct"] == "Speak softly." and take.language == "english"
    assert take.request["sampling"]["max_new_tokens"] == 9
    assert float(response.headers["x-duration"]) <= 9 / 12.5 + 0.05  # 9 codec frames at 12.5 per second
    for model in ("mlx-community/Qwen3-TTS-12Hz-0.6B-Base-4bit", "mlx-community/Qwen3-TTS-12Hz-1.7B-Base-6bit"):
        assert httpx.get(f"{server[0]}v1/models/{model}").json()["id"] == model
    # A typo is refused by name, with the field it was probably meant to be; so are conflicting aliases.
    typo = httpx.post(f"{server[0]}v1/audio/speech", json={**body, "instruction": "x"})
    assert_error(typo, 400, "invalid_request_error", "instruction", "Did you mean 'instructions'?")
    both = httpx.post(f"{server[0]}v1/audio/speech", json={**body, "instructions": "Shout."})
    assert_error(both, 400, "invalid_request_error", "instruct", "same field")


def test_instructions_are_applied_on_tts_1_hd(server, oai):
    plain, _ = speak(oai, model="tts-1-hd", response_format="wav")
    styled, headers = speak(oai, model="tts-1-hd", response_format="wav", instructions="Whisper, very slowly.")
    assert headers["x-model"] == "demo-1.7B-CustomVoice"
    assert "ignores style instructions" not in headers["x-warnings"]
    assert styled != plain  # same seed, so only the instruction changed the take
    take = server[1].app.history.get(headers["x-take-id"])
    assert take.request["instruct"] == "Whisper, very slowly." and take.request["size"] == "1.7B"
    # tts-1 (0.6B) cannot follow them: the take is still made, with the studio's warning.
    _, headers = speak(oai, model="tts-1", response_format="wav", instructions="Whisper.")
    assert "ignores style instructions" in headers["x-warnings"]


def test_model_ids_pick_size_and_checkpoint(oai):
    for model, expected in [
        ("gpt-4o-mini-tts", "demo-1.7B-CustomVoice"),
        ("qwen3-tts-0.6b", "demo-0.6B-CustomVoice"),
        ("1.7B-CustomVoice", "demo-1.7B-CustomVoice"),
    ]:
        _, headers = speak(oai, model=model, response_format="wav")
        assert headers["x-model"] == expected


def test_library_voice_is_cloned_with_base(server, oai, library_voice):
    data, headers = speak(oai, voice="narrator", response_format="wav", instructions="Ignored for clones.")
    assert headers["x-model"] == "demo-0.6B-Base"
    assert sf.read(io.BytesIO(data))[1] == 24_000
    take = server[1].app.history.get(headers["x-take-id"])
    assert take.request["kind"] == "clone" and take.request["voice_id"] == library_voice.id
    assert take.voice == {"kind": "clone", "voice": "Narrator"} and take.language == "english"
    # OpenAI's custom-voice object form, by id, at 1.7B.
    _, headers = speak(oai, voice={"id": library_voice.id}, model="tts-1-hd", response_format="wav")
    assert headers["x-model"] == "demo-1.7B-Base"


def test_voices_and_models_listing(server, oai, library_voice):
    listing = httpx.get(f"{server[0]}v1/audio/voices").json()
    # vLLM-Omni's shape: names (what a client sends back as voice), then the library's uploads.
    assert listing["voices"][:2] == ["Vivian", "Serena"] and "Narrator" in listing["voices"]
    assert [v["name"] for v in listing["uploaded_voices"]] == ["Narrator"]
    assert isinstance(listing["uploaded_voices"][0]["created_at"], int)
    voices = listing["voice_details"]
    builtin = [v for v in voices if v["type"] == "builtin"]
    assert {v["id"] for v in builtin} == BUILTINS
    assert all(v["name"] and v["description"] and v["language"] for v in voices)
    assert [v["name"] for v in voices if v["type"] == "library"] == ["Narrator"]
    assert next(v for v in voices if v["type"] == "library")["id"] == library_voice.id
    ids = [m.id for m in oai.models.list()]
    assert ids[:3] == ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"]
    assert "demo-1.7B-CustomVoice" in ids and "demo-0.6B-Base" in ids
    # VoiceDesign is served too (task_type VoiceDesign), and the Hugging Face ids are listed.
    assert "demo-1.7B-VoiceDesign" in ids and "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice" in ids
    assert oai.models.retrieve("tts-1").id == "tts-1"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "change, param, match",
    [
        ({"voice": "Nobody"}, "voice", "Unknown voice 'Nobody'"),
        ({"model": "tts-9"}, "model", "tts-1, tts-1-hd"),
        ({"model": "1.7B-VoiceDesign"}, "model", "designs voices"),
        ({"model": "0.6B-Base"}, "model", "cannot speak a built-in speaker"),
        ({"input": "   "}, "input", "Enter some text"),
        ({"input": "x" * 50_001}, "input", "the limit is 50,000"),
        ({"response_format": "wma"}, "response_format", "mp3, opus, wav, flac, pcm, aac"),
        ({"extra_body": {"speaker_embedding": [0.1, 0.2]}}, "speaker_embedding", "send ref_audio"),
        ({"extra_body": {"word_timestamps": True, "stream": True}}, "word_timestamps", "not supported with streaming"),
        ({"extra_body": {"initial_codec_chunk_frames": 4}}, "initial_codec_chunk_frames", "not supported"),
        ({"extra_body": {"non_streaming_mode": False}}, "non_streaming_mode", "leave it out"),
        ({"extra_body": {"sample_rate": 7}}, "sample_rate", "8000 to 48000"),
        ({"extra_body": {"pitch": 1.2}}, "pitch", "no pitch control"),
        ({"extra_body": {"lang_code": "h"}}, "language", "not supported"),
        ({"speed": 1.5}, "speed", "speed is not supported"),
        ({"extra_body": {"seed": "lucky"}}, "seed", "seed must be a number"),
        ({"extra_body": {"language": "Klingon"}}, "language", "not supported"),
    ],
)
def test_bad_requests_come_back_in_openai_shape(oai, change, param, match):
    kwargs = {"model": "tts-1", "voice": "Ryan", "input": "Hello", **change}
    with pytest.raises(openai.BadRequestError) as info:
        oai.audio.speech.create(**kwargs)
    assert info.value.param == param and info.value.type == "invalid_request_error"
    assert match in info.value.body["message"]
    assert_error(info.value, 400, "invalid_request_error", param, match)


def test_malformed_and_missing_fields(server):
    url = f"{server[0]}v1/audio/speech"
    response = httpx.post(url, content=b'{"model": "tts-1", "input": ', headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error", None, "could not parse the JSON body")
    assert_error(httpx.post(url, json=["tts-1"]), 400, "invalid_request_error", None, "a JSON object")
    assert_error(
        httpx.post(url, json={"input": "Hi", "voice": "Ryan", "model": 7}),
        400,
        "invalid_request_error",
        "model",
        "model must be a model id",
    )
    # Nested thousands deep (the JSON parser's own limit) or just deeper than a request can be.
    deep = b"[" * 100_000 + b"]" * 100_000
    response = httpx.post(url, content=deep, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request_error", None, "nested too deeply")
    nested: dict = {"input": "Hi"}
    for _ in range(10):
        nested = {"voice": nested}
    assert_error(httpx.post(url, json=nested), 400, "invalid_request_error", None, "nested more than 8 levels")
    assert_error(
        httpx.post(url, json={"model": "tts-1", "input": "Hi"}),
        400,
        "invalid_request_error",
        "voice",
        "must provide a voice",
    )


def test_unknown_routes_and_methods(server):
    assert_error(httpx.get(f"{server[0]}v1/audio/transcriptions"), 404, "invalid_request_error", None, "Unknown route")
    assert_error(httpx.get(f"{server[0]}v1/audio/speech"), 405, "invalid_request_error", None, "use POST")
    assert_error(httpx.get(f"{server[0]}v1/models/whisper-1"), 404, "invalid_request_error", "model", "does not exist")


def test_rate_limit_is_429(server, oai, monkeypatch):
    limiter = RateLimiter(1)
    limiter.check("127.0.0.1")  # this client's one request this minute is spent
    monkeypatch.setattr(server[1], "limiter", limiter)
    with pytest.raises(openai.RateLimitError) as info:
        oai.audio.speech.create(model="tts-1", voice="Ryan", input="Hello")
    assert_error(info.value, 429, "rate_limit_error", None, "1 generations per minute")
    assert int(info.value.response.headers["retry-after"]) >= 1


def test_unavailable_model_is_503_and_surprises_are_500(server, oai, monkeypatch):
    synthesis = server[1].app.synthesis

    # The take is a job of the runner, which makes it through SynthesisService.stream.
    def offline(request, progress=None, **_kwargs):
        raise ModelUnavailable("1.7B-CustomVoice is not downloaded and the studio is offline.")

    monkeypatch.setattr(synthesis, "stream", offline)
    with pytest.raises(openai.InternalServerError) as info:
        oai.audio.speech.create(model="tts-1", voice="Ryan", input="Hello")
    assert_error(info.value, 503, "server_error", "model", "is not downloaded and the studio is offline")

    def broken(request, progress=None, **_kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(synthesis, "stream", broken)
    with pytest.raises(openai.InternalServerError) as info:
        oai.audio.speech.create(model="tts-1", voice="Ryan", input="Hello")
    assert_error(info.value, 500, "server_error", None, "Something went wrong (RuntimeError)")
    assert "secret internal detail" not in info.value.response.text


def test_generation_runs_off_the_event_loop(server, oai, monkeypatch):
    synthesis = server[1].app.synthesis
    real, entered, release = synthesis.stream, threading.Event(), threading.Event()

    def slow(request, progress=None, **kwargs):  # in the runner's worker thread
        entered.set()
        assert release.wait(30)
        return real(request, progress, **kwargs)

    monkeypatch.setattr(synthesis, "stream", slow)
    results = []
    worker = threading.Thread(target=lambda: results.append(speak(oai, response_format="wav")))
    worker.start()
    try:
        assert entered.wait(30)
        start_time = time.monotonic()
        assert httpx.get(f"{server[0]}v1/models", timeout=10).status_code == 200  # not stuck behind it
        assert time.monotonic() - start_time < 5
    finally:
        release.set()
        worker.join(60)
    assert results and results[0][1]["content-type"] == "audio/wav"


# --------------------------------------------------------------------------- auth


@pytest.fixture(scope="module")
def protected(tmp_path_factory, demo_checkpoints):
    app, _, url = start(tmp_path_factory, demo_checkpoints, auth="anna:pw")
    try:
        yield url
    finally:
        app.close()


def test_auth_needs_the_password_as_bearer_key(protected):
    response = httpx.post(f"{protected}v1/audio/speech", json={"model": "tts-1", "voice": "Ryan", "input": "Hi"})
    assert_error(response, 401, "authentication_error", None, "didn't provide an API key")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert_error(httpx.get(f"{protected}v1/audio/voices"), 401, "authentication_error", None, "API key")
    wrong = openai.OpenAI(base_url=f"{protected}v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.audio.speech.create(model="tts-1", voice="Ryan", input="Hi")
    assert_error(info.value, 401, "authentication_error", None, "Incorrect API key")
    for key in ("pw", "anna:pw"):
        right = openai.OpenAI(base_url=f"{protected}v1", api_key=key, max_retries=0, timeout=120)
        assert "tts-1" in [m.id for m in right.models.list()]
    data, headers = speak(right, response_format="wav")
    assert headers["content-type"] == "audio/wav" and sf.read(io.BytesIO(data))[1] == 24_000


def test_gradio_ui_still_asks_for_login(protected):
    assert httpx.get(f"{protected}config").status_code in (401, 403)
    page = httpx.get(protected)
    assert page.status_code == 200 and "Qwen TTS Studio" in page.text  # the login page


# --------------------------------------------------------------------------- layering


def test_the_routes_do_not_import_gradio():
    """The HTTP layer depends on core only: importing it must not load Gradio (a fresh interpreter)."""
    code = (
        "import sys; import studio.api.openai_routes; "
        "print(sorted(m for m in sys.modules if m == 'gradio' or m.startswith('gradio.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    source = (ROOT / "studio" / "api" / "openai_routes.py").read_text(encoding="utf-8")
    assert "gradio" not in source  # "Gradio" in prose is fine; no gradio module is named
