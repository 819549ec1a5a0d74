"""The OpenAI batch endpoint and variants served by batched generation, on a real server.

The engine's methods are wrapped (not replaced) to count calls: the real tiny
qwen-tts models still make every item, and each item must sound exactly as the
same request made alone with the same seed.
"""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from studio.server import serve
from tests.conftest import free_port, make_demo_settings

LONG = "The first sentence is here. A second one follows now. And a third ends it."


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_checkpoints):
    settings = make_demo_settings(
        tmp_path_factory.mktemp("batched-data"),
        demo_checkpoints,
        port=free_port(),
        rate_limit_per_minute=0,
        mcp_server=False,
        chunk_chars=40,  # LONG becomes several chunks, so takes of more than one chunk batch too
    )
    app, ctx = serve(settings, block=False)
    try:
        yield f"http://127.0.0.1:{settings.port}/", ctx
    finally:
        app.close()


@pytest.fixture
def calls(server, monkeypatch):
    """Counts the real engine's generation calls by wrapping its methods."""
    engine = server[1].app.synthesis.engine
    counted: dict[str, list[int]] = {"generate_batch": [], "generate_one": [], "stream_chunk": []}
    for name in counted:
        original = getattr(engine, name)

        def wrapper(loaded, mode, items, *args, _name=name, _original=original, **kwargs):
            counted[_name].append(len(items) if isinstance(items, list) else 1)
            return _original(loaded, mode, items, *args, **kwargs)

        monkeypatch.setattr(engine, name, wrapper)
    return counted


def samples(data: bytes) -> np.ndarray:
    audio, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == 24_000
    return audio


ITEMS = [
    {"input": "One, from Ryan.", "voice": "Ryan", "seed": 3},
    {"input": "Two, from Vivian.", "voice": "Vivian", "seed": 4},
    {"input": LONG, "voice": "Ryan", "seed": 5},
    {"input": "Four, designed.", "task_type": "VoiceDesign", "instructions": "A deep voice.", "seed": 6},
]


def test_batch_items_equal_each_item_alone_with_fewer_engine_calls(server, calls):
    url, ctx = server
    body = {"model": "qwen3-tts", "response_format": "wav", "max_new_tokens": 12, "items": ITEMS}
    response = httpx.post(f"{url}v1/audio/speech/batch", json=body, timeout=600)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [d["index"] for d in data] == [0, 1, 2, 3]
    assert [d["seed"] for d in data] == [3, 4, 5, 6]
    # Every item is a job of the take runner, listed for its client, with its own take.
    jobs = {j.id: j for j in ctx.jobs.all()}
    assert all(jobs[d["job_id"]].state.value == "done" and jobs[d["job_id"]].client == "127.0.0.1" for d in data)
    # Measured like any generation (the server wraps synthesize_many: metrics, in-flight count).
    text = httpx.get(f"{url}metrics").text
    counts = [line for line in text.splitlines() if line.startswith("qwen_tts_studio_generation_seconds_count")]
    assert any('mode="custom_voice"' in c and float(c.split()[-1]) >= 3 for c in counts), counts
    assert any('mode="voice_design"' in c and float(c.split()[-1]) >= 1 for c in counts), counts
    # The three custom-voice items (5 chunks: LONG has 3) share one call despite different
    # speakers and seeds; the design item (another model) goes alone, as an ordinary take
    # (its chunk through stream_chunk, which makes it with generate_one): 2 calls for 4 items.
    assert calls == {"generate_batch": [5], "generate_one": [1], "stream_chunk": [1]}, calls
    assert all(ctx.app.history.get(d["take_id"]) for d in data)  # each item is a kept take

    for name in calls:
        calls[name].clear()
    oai = openai.OpenAI(base_url=f"{url}v1", api_key="unused", max_retries=0, timeout=600)
    for item, entry in zip(ITEMS, data, strict=True):
        extra = {k: v for k, v in item.items() if k not in ("input", "voice")}
        alone = oai.audio.speech.create(
            model="qwen3-tts",
            voice=item.get("voice", "Ryan"),
            input=item["input"],
            response_format="wav",
            extra_body={**extra, "max_new_tokens": 12},
        )
        assert np.array_equal(samples(alone.content), samples(base64.b64decode(entry["audio"]))), item
    assert sum(len(v) for v in calls.values()) >= len(ITEMS)  # one by one: at least one call per item


def test_batch_item_that_fails_keeps_its_error_and_the_others(server, calls, monkeypatch):
    """A clone item whose library voice vanished fails alone; the rest still come back."""
    url, ctx = server
    from core.errors import VoiceNotFound

    real_build = __import__("studio.api.openai.batch", fromlist=["build_job"]).build_job

    def build(ctx_, plan):
        if plan.text == "Broken.":
            raise VoiceNotFound("The voice 'Gone' is no longer in the library.")
        return real_build(ctx_, plan)

    monkeypatch.setattr("studio.api.openai.batch.build_job", build)
    body = {
        "model": "tts-1",
        "response_format": "wav",
        "max_new_tokens": 8,
        "items": [{"input": "Fine.", "voice": "Ryan", "seed": 1}, {"input": "Broken.", "voice": "Ryan"}],
    }
    response = httpx.post(f"{url}v1/audio/speech/batch", json=body, timeout=300)
    assert response.status_code == 200, response.text
    ok, bad = response.json()["data"]
    assert ok["seed"] == 1 and samples(base64.b64decode(ok["audio"])).size > 0
    assert "audio" not in bad and "no longer in the library" in bad["error"]["message"]


def test_variants_over_the_openai_route(server, calls):
    url, ctx = server
    oai = openai.OpenAI(base_url=f"{url}v1", api_key="unused", max_retries=0, timeout=600)
    raw = oai.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="Ryan",
        input="Pick the best one.",
        response_format="wav",
        extra_body={"variants": 3, "seed": 40, "max_new_tokens": 10},
    )
    assert raw.headers["content-type"].startswith("application/json")
    data = raw.http_response.json()["data"]
    assert [d["variant"] for d in data] == [1, 2, 3]
    assert [d["seed"] for d in data] == [40, 41, 42]
    assert calls["generate_batch"] == [3] and not calls["generate_one"]  # the three takes in one call
    takes = [samples(base64.b64decode(d["audio"])) for d in data]
    assert not np.array_equal(takes[0], takes[1])
    assert all(ctx.app.history.get(d["take_id"]).seed == d["seed"] for d in data)
    # A variant is an ordinary take: its seed alone makes it again.
    again = oai.audio.speech.create(
        model="tts-1",
        voice="Ryan",
        input="Pick the best one.",
        response_format="wav",
        extra_body={"seed": 41, "max_new_tokens": 10},
    )
    assert np.array_equal(samples(again.content), takes[1])


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"variants": 9}, "1 to 8"),
        ({"variants": "3"}, "1 to 8"),
        ({"variants": 2, "stream": True}, "cannot stream"),
    ],
)
def test_bad_variants_are_clear_400s(server, extra, match):
    url, ctx = server
    before = len(ctx.app.history.list())
    response = httpx.post(
        f"{url}v1/audio/speech", json={"model": "tts-1", "voice": "Ryan", "input": "x", **extra}, timeout=60
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "variants" and match in error["message"]
    assert len(ctx.app.history.list()) == before
