"""Real engine studios for the remote-engine tests: `qwen-tts-studio serve` processes on 127.0.0.1.

Each one is a second studio on the session's demo checkpoints; a test may stop
(SIGKILL: a crash, not a polite shutdown) and restart one on the same port.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from core.storage.history import History
from tests.conftest import free_port

VENV_BIN = Path(sys.executable).parent
AUTH = "engine:s3cret-key-123"


class EngineStudio:
    def __init__(self, data_dir: Path, demo_checkpoints: dict[str, Path], *, auth: str | None = None):
        self.data_dir = data_dir
        self.port = free_port()
        self.auth = auth
        self.checkpoints = demo_checkpoints
        self.process: subprocess.Popen | None = None
        self.log = data_dir.parent / f"engine-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> EngineStudio:
        command = [
            str(VENV_BIN / "qwen-tts-studio"),
            "serve",
            "--demo-models",
            "--offline",
            "--data-dir",
            str(self.data_dir),
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--checkpoint-voice-design",
            str(self.checkpoints["voice_design"]),
            "--checkpoint-custom-voice",
            str(self.checkpoints["custom_voice"]),
            "--checkpoint-base",
            str(self.checkpoints["base"]),
            "--port",
            str(self.port),
            "--rate-limit-per-minute",
            "0",
            "--mcp-server",
            "false",
            "--shutdown-timeout",
            "0",
        ]
        if self.auth:
            command += ["--auth", self.auth]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait(self, timeout_s: float = 300) -> EngineStudio:  # a loaded CI machine starts a studio slowly
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.3)
        self.kill()
        raise AssertionError("the engine studio did not start")

    def kill(self) -> None:
        """SIGKILL: the server dies as a crashed or unplugged one would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self.process = None

    def takes(self) -> int:
        """Takes this engine studio generated (each API call keeps one in its history)."""
        return len(History(self.data_dir / "history").list())


@pytest.fixture(scope="module")
def engines(tmp_path_factory, demo_checkpoints) -> Iterator[list[EngineStudio]]:
    """Two engine studios, started together (the second one requires a bearer key)."""
    root = tmp_path_factory.mktemp("engines")
    studios = [
        EngineStudio(root / "a", demo_checkpoints),
        EngineStudio(root / "b", demo_checkpoints, auth=AUTH),
    ]
    for studio in studios:
        studio.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(EngineStudio.wait, studios))
        yield studios
    finally:
        for studio in studios:
            studio.kill()


def running(studio: EngineStudio) -> EngineStudio:
    """The studio, restarted on its port if a test stopped it."""
    if studio.process is None or studio.process.poll() is not None:
        studio.start().wait()
    return studio
