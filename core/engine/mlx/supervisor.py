"""The MLX engine's child process: start, health, restart after a crash, stop on exit.

The child is mlx-audio's own OpenAI-compatible server (``child_main.py``), run
with the MLX environment's Python (``core/engine/mlx/install.py``) and bound to
loopback on a free port. ``ensure()`` is called before every request: it starts
the child when none runs -- the first time, after a crash, after ``stop()`` --
and waits until ``GET /v1/models`` answers. Every start begins a new *epoch*;
a model handle loaded in an older epoch loads itself again (``MlxModel.ensure``),
so a crash costs the take that was running and nothing after it.

The child's output goes to ``<data_dir>/engines/mlx/run/child.log``; the last
lines of it word a failed start. The child also exits by itself when the studio
process is gone (``--parent-pid``), and ``stop()`` runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from core.engine.mlx.install import CHILD_MAIN, engine_dir, installed, platform_support, venv_python
from core.errors import DependencyError, ModelLoadError
from core.settings import MlxQuantize

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # importing mlx-audio's server took 15-40 s on this busy 2-core box
STOP_TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 600.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MlxProcess:
    """One supervised child server (see the module notes)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        start_timeout_s: float = START_TIMEOUT_S,
        quantize: MlxQuantize = MlxQuantize.BF16,
    ):
        self.data_dir = Path(data_dir)
        self.quantize = MlxQuantize(quantize)  # the child quantizes every model it loads (child_main.py)
        self.start_timeout_s = start_timeout_s
        self.run_dir = engine_dir(self.data_dir) / "run"
        self.log_path = self.run_dir / "child.log"
        self.epoch = 0  # bumped on every start
        self.starts = 0
        self.crashes = 0
        self.loaded: set[str] = set()  # model ids the current child holds
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._lock = threading.RLock()
        self._http: httpx.Client | None = None
        atexit.register(self.stop)

    # --- state --------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def running(self) -> bool:
        return self.pid is not None

    def exit_code(self, wait_s: float = 0.0) -> int | None:
        """The child's exit code once it has exited (waiting up to ``wait_s``: a dropped connection
        arrives before the exit is reaped); None while it runs or when none was started."""
        process = self._process
        if process is None:
            return None
        try:
            return process.wait(wait_s) if wait_s > 0 else process.poll()
        except subprocess.TimeoutExpired:
            return None

    # --- start / stop -------------------------------------------------------

    def ensure(self) -> str:
        """The child's API base URL, starting (or restarting) the child first when needed."""
        with self._lock:
            if self._process is not None and self._process.poll() is not None:
                self.crashes += 1
                log.warning(
                    "event=mlx_engine_exited code=%s; restarting it (%s)", self._process.returncode, self.log_path
                )
                self._forget()
            if self._process is None:
                self._start()
            return self.url

    def _start(self) -> None:
        reason = platform_support()
        if reason:
            raise DependencyError(reason)
        if not installed(self.data_dir):
            raise DependencyError(
                "The MLX engine is not installed. Install it with `qwen-tts-studio engines install mlx` "
                "(or choose the torch engine: --engine torch)."
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._port = free_port()
        command = [
            str(venv_python(self.data_dir)),
            str(CHILD_MAIN),
            "--host",
            "127.0.0.1",
            "--port",
            str(self._port),
            "--parent-pid",
            str(os.getpid()),
            "--quantize",
            self.quantize.value,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        env.pop("PYTHONPATH", None)  # the studio's packages must not leak into the engine's Python
        started = time.perf_counter()
        with open(self.log_path, "ab") as log_file:
            log_file.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} port {self._port} ---\n".encode())
            log_file.flush()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env
            )
        self._http = httpx.Client(base_url=self.url + "/", timeout=httpx.Timeout(LOAD_TIMEOUT_S, connect=3.0))
        deadline = started + self.start_timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                tail = self.log_tail()
                self._forget()
                raise ModelLoadError(f"The MLX engine failed to start (exit code {code}): {tail}")
            try:
                if self._http.get("models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() > deadline:
                self.stop()
                raise ModelLoadError(
                    f"The MLX engine did not answer within {self.start_timeout_s:.0f} s of starting; "
                    f"its log is {self.log_path}."
                )
            time.sleep(0.25)
        self.epoch += 1
        self.starts += 1
        log.info(
            "event=mlx_engine_started pid=%s port=%s seconds=%.1f",
            self._process.pid,
            self._port,
            time.perf_counter() - started,
        )

    def stop(self) -> None:
        """Stops the child (all its memory goes back to the system); the next ensure() starts a new one."""
        with self._lock:
            process = self._process
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_TIMEOUT_S)
                log.info("event=mlx_engine_stopped pid=%s", process.pid)
            self._forget()

    def _forget(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None
        self._process = None
        self.loaded.clear()

    # --- model calls ----------------------------------------------------------

    def load(self, model_id: str) -> None:
        """Loads a model into the child (idempotent there)."""
        self.ensure()
        response = self._call("POST", "models", params={"model_name": model_id})
        if response.status_code >= 400:
            raise ModelLoadError(f"The MLX engine could not load {model_id}: {_detail(response)}")
        self.loaded.add(model_id)

    def memory(self) -> dict[str, Any]:
        """The child's MLX memory and resident size (``GET /studio/memory``); {} when none runs."""
        if not self.running():
            return {}
        response = self._call("GET", f"http://127.0.0.1:{self._port}/studio/memory")
        return dict(response.json()) if response.status_code == 200 else {}

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        http = self._http
        if http is None:
            raise ModelLoadError("The MLX engine is not running.")
        try:
            return http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ModelLoadError(
                f"The MLX engine stopped answering ({type(exc).__name__}); see {self.log_path}."
            ) from exc

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no log"
        kept = [t.strip() for t in text.splitlines() if t.strip() and not t.startswith(("---", " "))]
        return " | ".join(kept[-lines:])[-400:] or "no output"


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    detail = data.get("detail") if isinstance(data, dict) else None
    return str(detail or data)[:300]
