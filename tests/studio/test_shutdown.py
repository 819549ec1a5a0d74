"""Graceful shutdown of the real `qwen-tts-studio` process on SIGTERM / SIGINT."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from core.storage.history import History
from tests.conftest import free_port

VENV_BIN = Path(sys.executable).parent


def launch(tmp_path: Path, demo_checkpoints, timeout_s: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        str(VENV_BIN / "qwen-tts-studio"),
        "--demo-models",
        "--offline",
        "--data-dir",
        str(tmp_path / "data"),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--checkpoint-voice-design",
        str(demo_checkpoints["voice_design"]),
        "--checkpoint-custom-voice",
        str(demo_checkpoints["custom_voice"]),
        "--checkpoint-base",
        str(demo_checkpoints["base"]),
        "--port",
        str(port),
        "--shutdown-timeout",
        str(timeout_s),
        "--mcp-server",
        "false",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise AssertionError(process.stdout.read().decode()[-3000:])
        time.sleep(0.5)
    process.kill()
    raise AssertionError("the studio did not start")


def wait_in_flight(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{url}health", timeout=5).json()["queue"]["in_flight"] >= 1:
            return
        time.sleep(0.05)
    raise AssertionError("the request never started generating")


def history_is_whole(data_dir: Path) -> list:
    """Every take folder is a complete take (no staging or half-written folder is left)."""
    takes = History(data_dir / "history").list()
    folders = [p for p in (data_dir / "history").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == len(takes)
    leftovers = [p.name for p in (data_dir / "history").iterdir() if p.name.startswith((".tmp-", ".trash-"))]
    assert leftovers == []
    return takes


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_drains_the_take_in_flight(tmp_path, demo_checkpoints, sig):
    process, url = launch(tmp_path, demo_checkpoints, timeout_s=60)
    results: list[httpx.Response] = []
    body = {"model": "tts-1", "voice": "Ryan", "input": "Hello.", "response_format": "wav", "seed": 1, "max_seconds": 4}
    worker = threading.Thread(
        target=lambda: results.append(httpx.post(f"{url}v1/audio/speech", json=body, timeout=120))
    )
    try:
        worker.start()
        wait_in_flight(url)
        process.send_signal(sig)
        time.sleep(0.3)
        refused = httpx.post(f"{url}v1/audio/speech", json=body, timeout=10)
        assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
        health = httpx.get(f"{url}health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "draining"
        worker.join(120)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode()
    assert results and results[0].status_code == 200, output[-2000:]
    audio, sr = sf.read(io.BytesIO(results[0].content))
    assert sr == 24_000 and len(audio) / sr > 3  # the whole take, not a cut-off one
    takes = history_is_whole(tmp_path / "data")
    assert [t.id for t in takes] == [results[0].headers["x-take-id"]]
    audit = [json.loads(line)["action"] for line in (tmp_path / "data" / "audit.log").read_text().splitlines()]
    assert audit[0] == "server.start" and audit[-1] == "server.stop"
    assert "Qwen TTS Studio stopped." in output


def test_past_the_timeout_takes_are_cancelled_cleanly(tmp_path, demo_checkpoints):
    process, url = launch(tmp_path, demo_checkpoints, timeout_s=1)
    received: list[bytes] = []
    body = {
        "model": "tts-1",
        "voice": "Ryan",
        # Many sentences and a seed known to run long: the random model can end a
        # one-sentence take within the second of grace (it did on CI's machine).
        "input": " ".join(["This sentence keeps the model busy for a while."] * 60),
        "seed": 1,
        "stream": True,
        "response_format": "pcm",
        "max_seconds": 120,
    }

    def listen() -> None:
        with httpx.stream("POST", f"{url}v1/audio/speech", json=body, timeout=120) as response:
            for piece in response.iter_raw():
                received.append(piece)

    worker = threading.Thread(target=listen)
    try:
        worker.start()
        wait_in_flight(url)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        stopped_s = time.monotonic() - started
        worker.join(30)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode()
    assert "cancelling 1 take" in output, output[-2000:]
    assert stopped_s < 30  # not the two minutes of audio asked for
    assert sum(len(p) for p in received) / 2 / 24_000 < 110  # the stream was cut short
    assert history_is_whole(tmp_path / "data") == []  # a cancelled take is not kept, not even in part
