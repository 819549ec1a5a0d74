"""The studio served through the MLX engine (real mlx-audio child on MLX's CPU backend):
the named API in all three modes with a library voice, the OpenAI route, and a studio
whose MLX engine is missing that still serves and says how to install it."""

from __future__ import annotations

import httpx
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import free_port, make_demo_settings
from tests.mlx_engine import link_engine, mlx_engine_home  # noqa: F401 (fixture)

FAST = {"seed": 5, "max_seconds": 1}


@pytest.fixture(scope="module")
def mlx_server(tmp_path_factory, demo_checkpoints, mlx_engine_home):  # noqa: F811
    from studio.server import serve

    data_dir = link_engine(tmp_path_factory.mktemp("mlx-studio") / "data", mlx_engine_home)
    settings = make_demo_settings(data_dir, demo_checkpoints, port=free_port(), engine="mlx")
    app, ctx = serve(settings, block=False)
    url = f"http://127.0.0.1:{settings.port}/"
    try:
        yield {"url": url, "ctx": ctx, "client": Client(url, verbose=False)}
    finally:
        app.close()
        ctx.app.synthesis.engine.process.stop()


def _take(path: str, info: dict, mode: str) -> None:
    data, rate = sf.read(path)
    assert rate == 24_000 and len(data) >= 1920
    assert info["mode"] == mode and info["engine"] == "mlx"


def test_named_api_in_every_mode_and_with_a_library_voice(mlx_server, speech_wav):
    client = mlx_server["client"]
    path, info = client.predict(text="Hello.", speaker="Ryan", **FAST, api_name="/custom_voice")
    _take(path, info, "custom_voice")
    again, _ = client.predict(text="Hello.", speaker="Ryan", **FAST, api_name="/custom_voice")
    assert (sf.read(path)[0] == sf.read(again)[0]).all(), "a seed remakes the same take through MLX"
    path, info = client.predict(text="Designed.", description="A calm voice.", **FAST, api_name="/design")
    _take(path, info, "voice_design")
    path, info = client.predict(
        reference=handle_file(str(speech_wav)),
        transcript="The quick brown fox.",
        text="Cloned.",
        **FAST,
        api_name="/clone",
    )
    _take(path, info, "base")
    client.predict(
        reference=handle_file(str(speech_wav)),
        transcript="The quick brown fox.",
        name="Fox",
        consent="mine",
        api_name="/voice_save",
    )
    path, info = client.predict(voice="Fox", text="From the library.", **FAST, api_name="/clone")
    _take(path, info, "base")


def test_openai_route_through_mlx(mlx_server):
    response = httpx.post(
        mlx_server["url"] + "v1/audio/speech",
        json={"model": "tts-1", "input": "Hello there.", "voice": "vivian", "response_format": "wav", "seed": 2},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    assert response.content[:4] == b"RIFF"


def test_a_studio_without_the_mlx_engine_keeps_serving_and_says_how(tmp_path, demo_checkpoints):
    from studio.server import serve

    settings = make_demo_settings(tmp_path / "data", demo_checkpoints, port=free_port(), engine="mlx")
    app, ctx = serve(settings, block=False)
    try:
        client = Client(f"http://127.0.0.1:{settings.port}/", verbose=False)
        for _ in range(2):
            with pytest.raises(AppError, match="engines install mlx"):
                client.predict(text="Hello.", speaker="Ryan", **FAST, api_name="/custom_voice")
        assert client.predict(api_name="/speakers")  # still serving
    finally:
        app.close()
