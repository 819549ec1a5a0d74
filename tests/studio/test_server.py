"""Serving safety on a real server: auth for UI, API and gradio_client; refusals; rate limit."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, AuthenticationError

from studio.server import serve
from tests.conftest import free_port, make_demo_settings

VENV_BIN = __import__("pathlib").Path(sys.executable).parent


@pytest.fixture(scope="module")
def protected_server(tmp_path_factory, demo_checkpoints):
    settings = make_demo_settings(
        tmp_path_factory.mktemp("auth-data"),
        demo_checkpoints,
        port=free_port(),
        auth="anna:correct-horse",
        rate_limit_per_minute=2,
    )
    app, ctx = serve(settings, block=False)
    try:
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        app.close()


def test_api_rejects_missing_and_wrong_credentials(protected_server):
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(protected_server, verbose=False).predict(api_name="/languages")
    with pytest.raises(ValueError, match="Could not login"):
        Client(protected_server, auth=("anna", "wrong"), verbose=False)
    client = Client(protected_server, auth=("anna", "correct-horse"), verbose=False)
    assert "English" in client.predict(api_name="/languages")


def test_ui_config_is_not_served_without_login(protected_server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(protected_server + "config", timeout=10)
    assert info.value.code in (401, 403)
    page = urllib.request.urlopen(protected_server, timeout=10).read().decode()
    assert "Qwen TTS Studio" in page  # the login page is served, nothing else


def test_rate_limit_returns_a_clear_error(protected_server):
    client = Client(protected_server, auth=("anna", "correct-horse"), verbose=False)
    for seed in (1, 2):
        client.predict(text="Hi.", description="Any.", seed=seed, max_seconds=0.5, api_name="/design")
    with pytest.raises(AppError, match="2 generations per minute"):
        client.predict(text="Hi.", description="Any.", seed=3, max_seconds=0.5, api_name="/design")


def test_public_bind_without_auth_is_refused_by_the_real_command(tmp_path):
    start = time.time()
    result = subprocess.run(
        [
            str(VENV_BIN / "qwen-tts-studio"),
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Refusing to listen on 0.0.0.0 without a password" in result.stderr
    assert "--insecure-no-auth" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.time() - start < 60


@pytest.fixture(scope="module")
def small_upload_server(tmp_path_factory, demo_checkpoints):
    settings = make_demo_settings(
        tmp_path_factory.mktemp("upload-data"), demo_checkpoints, port=free_port(), max_upload_mb=1
    )
    app, _ = serve(settings, block=False)
    try:
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        app.close()


def test_upload_size_limit_is_enforced_with_a_clear_error(small_upload_server, tmp_path):
    import httpx
    import numpy as np
    import soundfile as sf
    from gradio_client import handle_file

    big = tmp_path / "big.wav"
    sf.write(
        big, (0.1 * np.random.default_rng(0).standard_normal(24_000 * 60)).astype("float32"), 24_000, subtype="PCM_16"
    )
    assert big.stat().st_size > 2_000_000
    client = Client(small_upload_server, verbose=False)
    with pytest.raises(ValueError, match="exceeds the maximum file size of 1048576 bytes"):
        client.predict(reference=handle_file(str(big)), text="hi", api_name="/clone")
    # The server enforces it too, not only the polite client.
    with big.open("rb") as fh:
        response = httpx.post(small_upload_server + "gradio_api/upload", files={"files": fh}, timeout=30)
    assert response.status_code == 413
    assert "maximum" in response.text.lower() or "too large" in response.text.lower()
