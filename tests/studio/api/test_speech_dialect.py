"""The vLLM-Omni dialect, streaming, voices and batch on a real server, with real clients."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import httpx
import openai
import pytest
import soundfile as sf

from studio.server import serve
from tests.conftest import SPEECH_TEXT, free_port, make_demo_settings, spoken

FAST = {"seed": 1, "max_seconds": 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_checkpoints, demo_asr):
    settings = make_demo_settings(
        tmp_path_factory.mktemp("dialect-data"),
        demo_checkpoints,
        checkpoint_asr=demo_asr,  # word_timestamps: the tiny demo Whisper times the words
        port=free_port(),
        rate_limit_per_minute=0,
        mcp_server=False,
    )
    app, ctx = serve(settings, block=False)
    try:
        yield f"http://127.0.0.1:{settings.port}/", ctx
    finally:
        app.close()


@pytest.fixture(scope="module")
def speech_bytes(speech_wav):
    return speech_wav.read_bytes()


def data_url(data: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(data).decode()


def post(url: str, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}v1/audio/speech", json={**FAST, **body}, timeout=120, **kwargs)


def error_of(response: httpx.Response, status: int, param: str | None, match: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and match in error["message"], error
    return error


# --------------------------------------------------------------------------- the dialect


@pytest.mark.parametrize(
    "body, model",
    [
        # A vLLM-Omni CustomVoice request, with the real Hugging Face id: served by the demo mirror.
        (
            {
                "model": "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
                "task_type": "CustomVoice",
                "voice": "vivian",
                "language": "English",
                "instructions": "Speak happily.",
            },
            "demo-1.7B-CustomVoice",
        ),
        ({"model": "qwen3-tts", "voice": "Ryan"}, "demo-1.7B-CustomVoice"),  # the generic id: preferred size
        (
            {
                "model": "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign",
                "task_type": "VoiceDesign",
                "instructions": "A calm old man.",
            },
            "demo-1.7B-VoiceDesign",
        ),
        (
            {"model": "qwen3-tts", "task_type": "VoiceDesign", "instructions": "A bright young woman."},
            "demo-1.7B-VoiceDesign",
        ),
    ],
)
def test_vllm_omni_requests_work_in_demo_mode(server, body, model):
    response = post(server[0], {"input": "Hello there.", "response_format": "wav", **body})
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == model
    samples, sr = sf.read(io.BytesIO(response.content))
    assert sr == 24_000 and len(samples) > 0
    take = server[1].app.history.get(response.headers["x-take-id"])
    if body.get("task_type") == "VoiceDesign":
        assert take.request["kind"] == "design" and take.request["description"] == body["instructions"]


def test_base_with_ref_audio_data_url_clones(server, speech_bytes):
    body = {
        "model": "Qwen/Qwen3-TTS-12Hz-0.6B-Base",
        "task_type": "Base",
        "input": "Hello.",
        "ref_audio": data_url(speech_bytes),
        "ref_text": SPEECH_TEXT,
        "response_format": "flac",
        "max_new_tokens": 8,
    }
    response = post(server[0], body)
    assert response.status_code == 200, response.text
    assert response.headers["x-model"] == "demo-0.6B-Base"
    audio, sr = sf.read(io.BytesIO(response.content))
    assert sr == 24_000 and len(audio) <= 8 * 1920 + 1  # max_new_tokens caps the frames
    # x-vector-only needs no transcript; the official openai client sends the extra fields as extra_body.
    client = openai.OpenAI(base_url=f"{server[0]}v1", api_key="x", max_retries=0, timeout=120)
    raw = client.audio.speech.with_raw_response.create(
        model="qwen3-tts",
        voice="ignored",
        input="Hi.",
        response_format="wav",
        extra_body={**FAST, "task_type": "Base", "ref_audio": data_url(speech_bytes), "x_vector_only_mode": True},
    )
    assert raw.headers["x-model"] == "demo-1.7B-Base"
    take = server[1].app.history.get(raw.headers["x-take-id"])
    assert take.request["kind"] == "clone"


def test_aac_is_served(server):
    response = post(server[0], {"model": "tts-1", "voice": "Ryan", "input": "Hi.", "response_format": "aac"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/aac"
    assert response.content[:2] in (b"\xff\xf1", b"\xff\xf9")  # an ADTS frame sync word


@pytest.mark.parametrize(
    "body, param, match",
    [
        ({"ref_audio": "https://example.com/voice.wav", "ref_text": "x"}, "ref_audio", "never fetches URLs"),
        ({"ref_audio": "file:///etc/passwd", "ref_text": "x"}, "ref_audio", "never fetches URLs or reads files"),
        ({"ref_audio": "/etc/passwd", "ref_text": "x"}, "ref_audio", "never fetches URLs"),
        ({"ref_audio": "data:audio/wav;base64,@@@", "ref_text": "x"}, "ref_audio", "not valid base64"),
        ({"ref_audio": data_url(b"not audio at all"), "ref_text": "x"}, "ref_audio", "could not be used"),
        ({"ref_audio": "SPEECH"}, "ref_text", "ref_text is needed"),
        ({"task_type": "Singing"}, "task_type", "CustomVoice, VoiceDesign or Base"),
        ({"task_type": "VoiceDesign"}, "instructions", "VoiceDesign needs instructions"),
        ({"task_type": "CustomVoice", "voice": "Narrator2"}, "voice", "Unknown voice"),
        ({"task_type": "Base", "voice": "Ryan"}, "voice", "is a built-in speaker"),
        ({"max_new_tokens": 0}, "max_new_tokens", "from 1 to 4096"),
        ({"max_new_tokens": 2.5}, "max_new_tokens", "whole number"),
        ({"x_vector_only_mode": "yes"}, "x_vector_only_mode", "true or false"),
        ({"model": "Qwen/Qwen3-TTS-99Hz"}, "model", "does not exist"),
        ({"stream": True, "response_format": "mp3"}, "response_format", "use response_format pcm or wav"),
        ({"stream_format": "chunks"}, "stream_format", "audio or sse"),
        ({"word_timestamps": "yes"}, "word_timestamps", "true or false"),
        ({"word_timestamps": True, "stream": True}, "word_timestamps", "not supported with streaming"),
        ({"word_timestamps": True, "stream_format": "sse"}, "word_timestamps", "not supported with streaming"),
        ({"word_timestamps": True, "variants": 2}, "word_timestamps", "single POST"),
    ],
)
def test_dialect_bad_input_is_a_clear_400(server, speech_bytes, body, param, match):
    if body.get("ref_audio") == "SPEECH":
        body = {**body, "ref_audio": data_url(speech_bytes)}
    before = len(server[1].app.history.list())
    response = post(server[0], {"model": "qwen3-tts", "voice": "Ryan", "input": "Hi.", **body})
    error_of(response, 400, param, match)
    assert len(server[1].app.history.list()) == before  # nothing was made or kept


def _assert_word_list(words: list, audio_ms: float) -> None:
    """vLLM-Omni's X-Word-Timestamps list: {word, start_ms, end_ms}, in order, inside the audio."""
    assert isinstance(words, list)
    for word in words:
        assert set(word) == {"word", "start_ms", "end_ms"}
        assert isinstance(word["word"], str) and word["word"].strip()
        assert isinstance(word["start_ms"], int) and isinstance(word["end_ms"], int)
        assert 0 <= word["start_ms"] <= word["end_ms"] <= audio_ms + 1
    for before, after in zip(words, words[1:]):
        assert before["end_ms"] <= after["start_ms"]


@pytest.mark.parametrize("response_format", ["wav", "mp3"])
def test_word_timestamps_come_in_vllm_omni_header(server, response_format):
    """vLLM-Omni's word_timestamps (protocol/audio.py): the audio as usual, and the words in
    X-Word-Timestamps, a JSON list of {word, start_ms, end_ms}. The demo Whisper's words are noise
    (and the demo TTS's noise has no speech, so its list is usually empty: see the next test)."""
    body = {"voice": "vivian", "input": SPEECH_TEXT, "word_timestamps": True, "max_seconds": 3}
    response = post(server[0], {**body, "response_format": response_format})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == {"wav": "audio/wav", "mp3": "audio/mpeg"}[response_format]
    audio_ms = float(response.headers["X-Duration"]) * 1000
    assert response.headers["X-Word-Timestamps-Model"] == "demo-whisper-small"
    assert "demo" in response.headers["X-Word-Timestamps-Demo"]
    assert "X-Word-Timestamps-Omitted" not in response.headers
    _assert_word_list(json.loads(response.headers["X-Word-Timestamps"]), audio_ms)
    if response_format == "wav":
        assert sf.info(io.BytesIO(response.content)).duration * 1000 == pytest.approx(audio_ms, abs=2)
        # false (vLLM-Omni's default) asks for nothing: no header
        plain = post(server[0], {**body, "word_timestamps": False})
        assert plain.status_code == 200 and "X-Word-Timestamps" not in plain.headers


def test_word_timestamp_headers_of_real_speech(server, monkeypatch):
    """The same headers for a take that holds real (espeak-ng) speech: words, then the 4 KB rule."""
    from studio.api.openai import speech

    ctx = server[1]
    plan = speech.parse_speech(ctx, {"voice": "vivian", "input": "Hi.", "word_timestamps": True})
    assert plan.word_timestamps
    clip = spoken(4.0, seed=0)
    headers = speech.word_timestamp_headers(ctx, plan, clip)
    words = json.loads(headers["X-Word-Timestamps"])
    assert words and headers["X-Word-Timestamps"].isascii()
    _assert_word_list(words, clip.duration * 1000)
    monkeypatch.setattr(speech, "WORD_TIMESTAMPS_MAX_BYTES", 10)  # a long take's list
    over = speech.word_timestamp_headers(ctx, plan, clip)
    assert "X-Word-Timestamps" not in over and f"{len(words)} words" in over["X-Word-Timestamps-Omitted"]


def test_vllm_omni_e2e_requests(server):
    """The requests and checks of vLLM-Omni's own e2e test of /v1/audio/speech for CustomVoice
    (tests/e2e/online_serving/test_qwen3_tts.py): no model, no response_format -> WAV."""
    for text, voice, language in (
        ("Hello, how are you?", "vivian", "English"),
        ("你好，我是通义千问", "vivian", "Chinese"),
        ("Testing voice selection.", "ryan", "English"),
    ):
        response = post(server[0], {"input": text, "voice": voice, "language": language})
        assert response.status_code == 200, response.text
        assert response.headers.get("content-type") == "audio/wav"
        assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
        assert len(response.content) > 10_000
    voices = httpx.get(f"{server[0]}v1/audio/voices").json()["voices"]
    assert isinstance(voices, list) and "vivian" in [v.lower() for v in voices]
    assert len(httpx.get(f"{server[0]}v1/models").json()["data"]) > 0


def test_vllm_omni_gradio_demo_requests(server, speech_bytes):
    """The payloads vLLM-Omni's Gradio demo builds (tts_common.build_payload): no model,
    speed 1.0 when whole, stream true with raw PCM when streaming."""
    ref = data_url(speech_bytes)
    whole = [
        {"task_type": "CustomVoice", "voice": "Vivian", "instructions": "Speak happily"},
        {"task_type": "VoiceDesign", "instructions": "A warm, friendly female voice"},
        {"task_type": "Base", "ref_audio": ref, "ref_text": SPEECH_TEXT},
        {"task_type": "Base", "ref_audio": ref, "x_vector_only_mode": True},
    ]
    for fields in whole:
        body = {"input": "Hello there.", "response_format": "flac", "stream": False, "speed": 1.0, "language": "Auto"}
        response = post(server[0], {**body, **fields})
        assert response.status_code == 200, response.text
        assert sf.info(io.BytesIO(response.content)).samplerate == 24_000
    body = {
        "input": "Hello there.",
        "response_format": "pcm",
        "stream": True,
        "task_type": "CustomVoice",
        "voice": "Ryan",
    }
    with httpx.stream("POST", f"{server[0]}v1/audio/speech", json={**FAST, **body}, timeout=120) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "audio/pcm"
        pcm = b"".join(response.iter_bytes())
    assert len(pcm) % 2 == 0 and len(pcm) > 24_000


# --------------------------------------------------------------------------- streaming


def test_stream_audio_pcm_arrives_in_pieces_before_the_end(server):
    body = {"model": "tts-1", "voice": "Ryan", "input": "Hello there.", "stream": True, "response_format": "pcm"}
    body["max_seconds"] = 4
    pieces, times = [], []
    start = time.monotonic()
    with httpx.stream("POST", f"{server[0]}v1/audio/speech", json={**FAST, **body}, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/pcm"
        for piece in response.iter_raw():
            pieces.append(piece)
            times.append(time.monotonic() - start)
    data = b"".join(pieces)
    assert len(pieces) > 2, "the audio came in one piece: not streamed"
    assert times[0] < times[-1]  # the first bytes came before the last ones
    assert len(data) % 2 == 0 and 3.0 < len(data) / 2 / 24_000 <= 4.1
    print(f"stream: first bytes {times[0]:.2f} s, last {times[-1]:.2f} s, {len(pieces)} pieces")


def test_stream_wav_has_a_streaming_header(server):
    body = {"model": "tts-1", "voice": "Ryan", "input": "Hi.", "stream": True, "response_format": "wav"}
    response = post(server[0], body)
    assert response.status_code == 200 and response.content[:4] == b"RIFF" and response.content[8:12] == b"WAVE"
    assert response.content[40:44] == b"\xff\xff\xff\xff"  # data length unknown while streaming
    assert (len(response.content) - 44) / 2 / 24_000 > 0.5


def test_stream_sse_events(server):
    body = {"model": "tts-1", "voice": "Ryan", "input": "Hi.", "stream_format": "sse", "response_format": "pcm"}
    response = post(server[0], body)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    done = events[-1]
    assert done["type"] == "speech.audio.done" and done["usage"]["output_tokens"] > 0
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(audio) / 2 / 24_000 == pytest.approx(done["duration"], abs=0.35)  # pauses vs the final take
    assert server[1].app.history.get(done["take_id"]).text == "Hi."


def test_openai_client_streams(server):
    client = openai.OpenAI(base_url=f"{server[0]}v1", api_key="x", max_retries=0, timeout=120)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="Ryan", input="Hi.", response_format="pcm", extra_body={**FAST, "stream": True}
    ) as response:
        chunks = list(response.iter_bytes())
    assert sum(len(c) for c in chunks) / 2 / 24_000 > 0.5


def test_client_disconnect_stops_the_generation(server):
    ctx = server[1]
    body = {"model": "tts-1", "voice": "Ryan", "input": "Hello there.", "stream": True, "response_format": "pcm"}
    body["max_seconds"] = 60  # demo models never stop on their own: a minute of frames
    before = len(ctx.app.history.list())
    with httpx.stream("POST", f"{server[0]}v1/audio/speech", json={**FAST, **body}, timeout=120) as response:
        assert response.status_code == 200
        next(response.iter_raw())
    # The response is closed after the first piece: the generation must stop well before a minute of audio.
    job = ctx.jobs.get(response.headers["X-Job-Id"])
    assert job.wait(30), "the generation kept running after the client left"
    assert job.state.value == "stopped" and ctx.lifecycle.in_flight == 0
    assert len(ctx.app.history.list()) == before  # no chunk was finished: nothing to keep


LONG = " ".join(f"Sentence number {n} of a long streamed take." for n in range(1, 7))


def test_a_stream_left_midway_keeps_a_partial_take_and_frees_the_device_within_a_second(server):
    url, ctx = server
    synthesis = ctx.app.synthesis
    saved = synthesis.chunk_chars, synthesis.batching
    synthesis.chunk_chars, synthesis.batching = 50, False  # six chunks, made one by one
    body = {"model": "tts-1", "voice": "Ryan", "input": LONG, "stream": True, "response_format": "pcm"}
    try:
        with httpx.stream(
            "POST", f"{url}v1/audio/speech", json={**body, "seed": 7, "max_seconds": 2}, timeout=120
        ) as response:
            assert response.status_code == 200
            job = ctx.jobs.get(response.headers["X-Job-Id"])
            assert job.client == "127.0.0.1" and job in ctx.jobs.all()  # listed in Running & recent
            pieces = response.iter_raw()
            while job.chunks_done < 2:  # reading keeps the take going
                next(pieces)
        left = time.monotonic()
        assert job.wait(1.0), "the job kept running after the client left"
        next_one = post(url, {"model": "tts-1", "voice": "Ryan", "input": "Next.", "response_format": "wav"})
    finally:
        synthesis.chunk_chars, synthesis.batching = saved
    assert next_one.status_code == 200
    assert ctx.jobs.get(next_one.headers["X-Job-Id"]).started - left < 1.0  # the device was free at once
    assert job.state.value == "stopped"
    kept = ctx.app.history.get(job.partial.take.id)  # the chunks made are a partial take in History
    assert kept.status == "stopped" and 2 <= kept.stopped_at < 6 and kept.total_chunks == 6


def test_takes_are_jobs_cancelled_by_id_and_logged_with_their_client(server, caplog):
    import logging

    url, ctx = server
    with caplog.at_level(logging.INFO):
        whole = post(url, {"model": "tts-1", "voice": "Ryan", "input": "A whole take.", "response_format": "wav"})
    assert whole.status_code == 200
    job = ctx.jobs.get(whole.headers["X-Job-Id"])  # listed in Running & recent, for its client
    assert job.state.value == "done" and job.client == "127.0.0.1" and job.kept[0].take.id == whole.headers["X-Take-Id"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=generation")]
    assert lines and all("client=127.0.0.1" in line for line in lines)  # not client=local
    # A running take stops by its id (a stream here: its id arrives with the first bytes).
    body = {"model": "tts-1", "voice": "Ryan", "input": "Hello.", "stream": True, "response_format": "pcm"}
    with httpx.stream(
        "POST", f"{url}v1/audio/speech", json={**body, "seed": 2, "max_seconds": 60}, timeout=120
    ) as response:
        job_id = response.headers["X-Job-Id"]
        cancelled = httpx.post(f"{url}v1/audio/speech/{job_id}/cancel", timeout=30)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["id"] == job_id and cancelled.json()["status"] == "stopped"
        assert sum(len(p) for p in response.iter_raw()) / 2 / 24_000 < 30  # the stream ended early
    missing = httpx.post(f"{url}v1/audio/speech/job-0-0/cancel", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"


def _ws_session(url: str, config: dict, pieces: list[str]) -> list:
    """Speaks ``pieces`` over WebSocket /v1/audio/speech/stream; every frame received, in order."""
    from websockets.sync.client import connect

    frames: list = []
    with connect(url.replace("http://", "ws://") + "v1/audio/speech/stream", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "session.config", **FAST, **config}))
        for piece in pieces:
            ws.send(json.dumps({"type": "input.text", "text": piece}))
        ws.send(json.dumps({"type": "input.done"}))
        while True:
            frame = ws.recv(timeout=120)
            frames.append(frame if isinstance(frame, bytes) else json.loads(frame))
            if isinstance(frames[-1], dict) and frames[-1]["type"] == "session.done":
                return frames


def test_websocket_speaks_per_sentence(server):
    """vLLM-Omni's streaming-text protocol: text in pieces, audio out per sentence."""
    frames = _ws_session(
        server[0],
        {"voice": "Vivian", "task_type": "CustomVoice", "language": "Auto"},
        ["Hello world. How ", "are you?"],
    )
    events = [f for f in frames if isinstance(f, dict)]
    assert [(e["type"], e.get("sentence_index")) for e in events] == [
        ("audio.start", 0),
        ("audio.done", 0),
        ("audio.start", 1),
        ("audio.done", 1),
        ("session.done", None),
    ]
    assert [e["sentence_text"] for e in events if e["type"] == "audio.start"] == ["Hello world.", "How are you?"]
    assert events[-1] == {"type": "session.done", "utterance_index": 0, "total_sentences": 2}
    first = frames[frames.index(events[0]) + 1]
    assert isinstance(first, bytes) and first[:4] == b"RIFF" and len(first) == events[1]["total_bytes"]
    assert events[1]["error"] is False and sf.info(io.BytesIO(first)).samplerate == 24_000
    texts = [t.text for t in server[1].app.history.list()[:2]]
    assert sorted(texts) == ["Hello world.", "How are you?"]  # each sentence is a kept take
    # stream_audio: raw PCM frames; a bad sentence is reported and the session goes on.
    frames = _ws_session(
        server[0], {"voice": "Ryan", "response_format": "pcm", "stream_audio": True}, ["One. ", "Two."]
    )
    pcm = b"".join(f for f in frames if isinstance(f, bytes))
    assert len(pcm) > 24_000 and len(pcm) % 2 == 0


def test_websocket_refuses_a_bad_config(server):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(server[0].replace("http://", "ws://") + "v1/audio/speech/stream") as ws:
        ws.send(json.dumps({"type": "session.config", "voice": "Nobody"}))
        error = json.loads(ws.recv(timeout=30))
        assert error["type"] == "error" and error["param"] == "voice" and "Unknown voice" in error["message"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)  # closed (policy violation)
        assert ws.close_code == 1008
    with connect(server[0].replace("http://", "ws://") + "v1/audio/speech/stream") as ws:
        # vLLM-Omni sends timestamp frames here; the studio does not yet, and says so
        ws.send(json.dumps({"type": "session.config", "voice": "vivian", "word_timestamps": True}))
        error = json.loads(ws.recv(timeout=30))
        assert error["param"] == "word_timestamps" and "WebSocket" in error["message"]
    with connect(server[0].replace("http://", "ws://") + "v1/audio/speech/stream") as ws:
        ws.send(json.dumps({"type": "input.text", "text": "Hi."}))
        assert "session.config" in json.loads(ws.recv(timeout=30))["message"]


# --------------------------------------------------------------------------- voices


def test_voice_upload_list_use_delete(server, speech_bytes):
    url = f"{server[0]}v1/audio/voices"
    files = {"audio_sample": ("narrator.wav", speech_bytes, "audio/wav")}
    # vLLM-Omni's documented upload, speaker_description included, and its answer.
    data = {
        "name": "Narrator2",
        "consent": "Recorded by me, for this studio.",
        "ref_text": SPEECH_TEXT,
        "speaker_description": "warm narrator",
    }
    created = httpx.post(url, files=files, data=data, timeout=60)
    assert created.status_code == 200, created.text
    assert created.json()["success"] is True
    voice = created.json()["voice"]
    assert voice["name"] == "Narrator2" and voice["consent"] == data["consent"] and voice["ref_text"] == SPEECH_TEXT
    assert voice["speaker_description"] == "warm narrator" and isinstance(voice["created_at"], int)
    assert voice["type"] == "library" and voice["has_transcript"]
    saved = server[1].app.library.get("Narrator2")
    assert saved.consent == data["consent"] and saved.description == "warm narrator"
    listing = httpx.get(url).json()
    assert "Narrator2" in listing["voices"] and any(v["id"] == voice["id"] for v in listing["voice_details"])
    spoken = post(
        server[0],
        {"model": "qwen3-tts", "task_type": "Base", "voice": "Narrator2", "input": "Hi.", "response_format": "wav"},
    )
    assert spoken.status_code == 200 and spoken.headers["x-model"] == "demo-1.7B-Base"
    deleted = httpx.delete(f"{url}/Narrator2")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert "Narrator2" not in httpx.get(url).json()["voices"]
    error_of(httpx.delete(f"{url}/Narrator2"), 404, "name", "no library voice")


@pytest.mark.parametrize(
    "files, data, param, match",
    [
        (None, {"name": "A", "consent": "yes"}, "audio_sample", "must provide audio_sample"),
        ("speech", {"consent": "yes"}, "name", "must provide name"),
        ("speech", {"name": "A"}, "consent", "must provide consent"),
        ("speech", {"name": "Ryan", "consent": "yes"}, "name", "built-in speaker"),
        ("speech", {"name": "A", "consent": "yes", "language": "Klingon"}, "language", "not supported"),
        ("speech", {"name": "A", "consent": "yes", "colour": "red"}, "colour", "Unknown field"),
        ("noise", {"name": "A", "consent": "yes"}, "audio_sample", "could not be used"),
        ("silence", {"name": "A", "consent": "yes"}, "audio_sample", "silent"),
    ],
)
def test_voice_upload_is_validated_and_saves_nothing(server, speech_bytes, files, data, param, match):
    silence = io.BytesIO()
    sf.write(silence, [0.0] * 48_000, 24_000, format="WAV")
    payload = {"speech": speech_bytes, "noise": b"RIFF-not-really", "silence": silence.getvalue()}
    before = [v.id for v in server[1].app.library.list()]
    kwargs = {"files": {"audio_sample": ("clip.wav", payload[files], "audio/wav")}} if files else {}
    if not files:
        kwargs["files"] = {"other": ("x.txt", b"x", "text/plain")}
    response = httpx.post(f"{server[0]}v1/audio/voices", data=data, timeout=60, **kwargs)
    if files is None:
        error_of(response, 400, "other", "Unknown field")
        response = httpx.post(f"{server[0]}v1/audio/voices", data=data, files={}, timeout=60)
        assert response.status_code == 400
    else:
        error_of(response, 400, param, match)
    assert [v.id for v in server[1].app.library.list()] == before


def test_voice_routes_refuse_bad_requests(server):
    url = f"{server[0]}v1/audio/voices"
    error_of(httpx.post(url, json={"name": "A"}), 400, None, "multipart/form-data")
    error_of(httpx.delete(f"{url}/Ryan"), 400, "name", "built-in speaker")


# --------------------------------------------------------------------------- batch


def test_batch_returns_one_audio_per_item(server):
    body = {
        **FAST,
        "model": "tts-1",
        "response_format": "wav",
        "items": [
            {"input": "One.", "voice": "Ryan"},
            {"input": "Two.", "voice": "Vivian", "response_format": "flac"},
            {"input": "Three.", "task_type": "VoiceDesign", "instructions": "A deep voice.", "model": "qwen3-tts"},
        ],
    }
    response = httpx.post(f"{server[0]}v1/audio/speech/batch", json=body, timeout=300)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [d["index"] for d in data] == [0, 1, 2]
    assert [d["response_format"] for d in data] == ["wav", "flac", "wav"]
    assert data[2]["model"] == "demo-1.7B-VoiceDesign"
    for item in data:
        audio, sr = sf.read(io.BytesIO(base64.b64decode(item["audio"])))
        assert sr == 24_000 and len(audio) / sr == pytest.approx(item["duration"], abs=0.01)
        assert server[1].app.history.get(item["take_id"])


@pytest.mark.parametrize(
    "body, param, match",
    [
        ({"items": []}, "items", "1 to 32"),
        ({"items": [{"input": "x", "voice": "Ryan"}] * 33}, "items", "got 33"),
        ({"items": "hello"}, "items", "1 to 32"),
        (
            {"items": [{"input": "x", "voice": "Ryan"}, {"input": "x", "voice": "Nobody"}]},
            "items[1].voice",
            "Unknown voice",
        ),
        ({"items": [{"input": "x", "voice": "Ryan", "stream": True}]}, "items[0].stream", "cannot stream"),
        ({"items": [3]}, "items[0]", "JSON object"),
    ],
)
def test_batch_bad_input_generates_nothing(server, body, param, match):
    before = len(server[1].app.history.list())
    response = httpx.post(f"{server[0]}v1/audio/speech/batch", json={"model": "tts-1", **FAST, **body}, timeout=60)
    error_of(response, 400, param, match)
    assert len(server[1].app.history.list()) == before


def test_speech_requests_run_concurrently_with_listing(server):
    """A long stream does not block the voice list (generation is off the event loop)."""
    body = {
        "model": "tts-1",
        "voice": "Ryan",
        "input": "Hi.",
        "stream": True,
        "response_format": "pcm",
        "max_seconds": 3,
    }
    results = []
    worker = threading.Thread(target=lambda: results.append(post(server[0], body)))
    worker.start()
    try:
        assert httpx.get(f"{server[0]}v1/audio/voices", timeout=10).status_code == 200
    finally:
        worker.join(120)
    assert results and results[0].status_code == 200
