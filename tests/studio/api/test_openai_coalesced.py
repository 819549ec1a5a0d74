"""Concurrent /v1/audio/speech calls that queue for a busy device are served together.

A real server on the demo models; real clients (the openai package) on threads.
The device is kept busy by a turn of the take runner's device lane, as a running take
does; the calls that arrive meanwhile queue as jobs, and when it frees the runner
serves all of them through one batched engine call, each still its own job. Each answer must be byte for
byte the answer the same call got alone, and /metrics and the log must say the
takes were served together.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from studio.server import serve
from tests.conftest import free_port, make_demo_settings

CALLS = [
    {"voice": "Ryan", "input": "The first caller asks for this.", "seed": 101},
    {"voice": "Vivian", "input": "A second caller, another voice.", "seed": 102},
    {"voice": "Aiden", "input": "And a third one. It has two sentences.", "seed": 103},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_checkpoints):
    settings = make_demo_settings(
        tmp_path_factory.mktemp("coalesced-data"),
        demo_checkpoints,
        port=free_port(),
        rate_limit_per_minute=0,
        mcp_server=False,
    )
    app, ctx = serve(settings, block=False)
    try:
        yield f"http://127.0.0.1:{settings.port}/", ctx
    finally:
        app.close()


def speak(url: str, call: dict) -> bytes:
    client = openai.OpenAI(base_url=f"{url}v1", api_key="unused", max_retries=0, timeout=600)
    answer = client.audio.speech.create(
        model="tts-1",
        voice=call["voice"],
        input=call["input"],
        response_format="pcm",
        extra_body={"seed": call["seed"], "max_new_tokens": 12},
    )
    return answer.content


def counter(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


def test_concurrent_calls_queued_behind_a_busy_device_are_served_together(server, caplog):
    import httpx

    url, ctx = server
    alone = [speak(url, call) for call in CALLS]  # the device is free: each call runs alone
    assert ctx.jobs.counts() == (0, 0)
    busy, free = threading.Event(), threading.Event()

    def running_take() -> None:  # what a take in progress does: hold the device
        with ctx.jobs.device():
            busy.set()
            free.wait(120)

    holder = threading.Thread(target=running_take)
    holder.start()
    assert busy.wait(10)
    with caplog.at_level(logging.INFO), ThreadPoolExecutor(len(CALLS)) as pool:
        futures = [pool.submit(speak, url, call) for call in CALLS]
        deadline = time.monotonic() + 120
        while len([j for j in ctx.jobs.all() if j.state.value == "queued"]) < len(CALLS):
            assert time.monotonic() < deadline, "the calls never queued"
            time.sleep(0.02)
        free.set()
        together = [f.result(timeout=600) for f in futures]
    holder.join()
    assert together == alone  # each caller got exactly what it got alone
    assert ctx.jobs.counts() == (3, 1)
    served = [j for j in ctx.jobs.all() if j.together == 3]
    assert len(served) == 3 and all(j.state.value == "done" and j.kept for j in served)  # each its own job
    metrics = httpx.get(f"{url}metrics", timeout=30).text
    assert counter(metrics, "qwen_tts_studio_requests_served_together_total") == 3
    assert counter(metrics, "qwen_tts_studio_coalesced_batches_total") == 1
    lines = [r.getMessage() for r in caplog.records if "event=coalesce" in r.getMessage()]
    assert len(lines) == 1 and "requests=3" in lines[0] and "clients=127.0.0.1" in lines[0]
    batched = [r.getMessage() for r in caplog.records if "event=request_batch" in r.getMessage()]
    assert len(batched) == 1 and "engine_calls=1" in batched[0]
    # Every caller's take is in the history, as any API take is.
    assert len(ctx.app.history.list()) >= 2 * len(CALLS)
