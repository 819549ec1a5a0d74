"""A studio served with --remote-engine: /models, /health, the Models tab and /v1/audio/speech.

The engine is a second real studio process (with a bearer key); the studio under
test runs in this process. Nothing shown may hold the key.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import free_port, make_demo_settings
from tests.core.engine.remote.conftest import AUTH, EngineStudio


@pytest.fixture(scope="module")
def remote_studio(tmp_path_factory, demo_checkpoints):
    from studio.server import serve

    engine = EngineStudio(tmp_path_factory.mktemp("engine"), demo_checkpoints, auth=AUTH).start().wait()
    settings = make_demo_settings(
        tmp_path_factory.mktemp("studio"),
        demo_checkpoints,
        port=free_port(),
        remote_engine=(f"{engine.url}#key={AUTH}",),
    )
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx, "engine": engine}
    finally:
        app.close()
        if ctx.app.remote:
            ctx.app.remote.close()
        engine.kill()


def test_models_health_and_models_tab_show_remote_servers_without_the_key(remote_studio):
    from gradio_client import Client

    from studio.ui.tabs.models import device_summary

    engine = remote_studio["engine"]
    models = Client(remote_studio["url"], verbose=False).predict(api_name="/models")
    rows = models["remote"]
    assert {r["key"] for r in rows} == {c.key for c in remote_studio["ctx"].app.catalog}
    assert all(r["server"] == engine.url and r["health"] == "up" and r["in_flight"] == 0 for r in rows)
    health = httpx.get(remote_studio["url"] + "health", timeout=30)
    assert [r["server"] for r in health.json()["remote"]] == [engine.url] * len(rows)
    summary = device_summary(remote_studio["ctx"])
    assert "Remote engines" in summary and engine.url in summary and "| up |" in summary
    assert "**dtype:** `float32` (--dtype float32)" in summary  # which precision, and why (issue 26)
    for shown in (str(models), health.text, summary):
        assert AUTH not in shown and "s3cret" not in shown


def test_the_speech_api_generates_on_the_remote_engine(remote_studio):
    engine = remote_studio["engine"]
    before = engine.takes()
    answer = httpx.post(
        remote_studio["url"] + "v1/audio/speech",
        json={
            "model": "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice",
            "input": "Made on the engine studio.",
            "voice": "Ryan",
            "task_type": "CustomVoice",
            "response_format": "wav",
            "seed": 7,
        },
        timeout=300,
    )
    assert answer.status_code == 200, answer.text
    assert answer.content[:4] == b"RIFF"
    assert engine.takes() == before + 1  # the engine studio made it
