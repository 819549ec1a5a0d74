"""The MLX engine's own environment: install, check, remove (``qwen-tts-studio engines``).

mlx-audio 0.6.2 needs ``transformers>=5.14`` and ``huggingface_hub>=1.0``; qwen-tts
0.1.1 pins older ones, so the two cannot share a Python environment. The MLX
engine therefore gets its own virtual environment under the data dir,
``<data_dir>/engines/mlx/venv``, installed from the pinned, universal lock that
ships next to this module (``engine.lock``: MLX with Metal on macOS, MLX's CPU
backend ``mlx-cpu`` on Linux). The studio never imports it: it runs
``child_main.py`` with that environment's Python as a child process.

An install is complete when ``installed.json`` is written, last, with the lock's
digest; an install that stopped half-way (or an older lock) is redone. uv installs
in seconds when it is on the PATH or next to the studio's Python; pip does the same
job otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import DependencyError
from core.settings import EngineKind

ENGINE = EngineKind.MLX.value
HERE = Path(__file__).resolve().parent
LOCK_FILE = HERE / "engine.lock"
CHILD_MAIN = HERE / "child_main.py"
MARKER = "installed.json"

Progress = Callable[[str], None]


def engine_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "engines" / ENGINE


def venv_python(data_dir: Path) -> Path:
    venv = engine_dir(data_dir) / "venv"
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def lock_digest() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:16]


def platform_support() -> str | None:
    """None when MLX runs here; otherwise the sentence that says why not."""
    system, machine = platform.system(), platform.machine().lower()
    if system == "Darwin":
        if machine != "arm64":
            return "The MLX engine needs Apple Silicon; this Mac has an Intel processor."
        return None
    if system == "Linux":
        if machine not in ("x86_64", "amd64", "aarch64", "arm64"):
            return f"The MLX engine's CPU backend has no build for {machine} Linux."
        return None
    return f"The MLX engine runs on macOS (Apple Silicon) and Linux, not on {system}."


def is_apple_silicon() -> bool:
    return platform.system() == "Darwin" and platform.machine().lower() == "arm64"


@dataclass(frozen=True)
class EngineState:
    name: str
    state: str  # built in | installed | not installed | outdated | unsupported
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"engine": self.name, "state": self.state, "detail": self.detail}


def read_marker(data_dir: Path) -> dict | None:
    try:
        data = json.loads((engine_dir(data_dir) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def installed(data_dir: Path) -> bool:
    """True when the MLX environment is complete, from this lock, and its Python is there."""
    marker = read_marker(data_dir)
    return bool(marker and marker.get("lock") == lock_digest() and venv_python(data_dir).exists())


def mlx_state(data_dir: Path) -> EngineState:
    reason = platform_support()
    if reason:
        return EngineState(ENGINE, "unsupported", reason)
    marker = read_marker(data_dir)
    if marker is None or not venv_python(data_dir).exists():
        return EngineState(ENGINE, "not installed", "run `qwen-tts-studio engines install mlx`")
    versions = marker.get("versions", {})
    described = ", ".join(f"{k} {v}" for k, v in versions.items()) or "unknown versions"
    if marker.get("lock") != lock_digest():
        return EngineState(ENGINE, "outdated", f"{described}; run `qwen-tts-studio engines install mlx` to update")
    return EngineState(ENGINE, "installed", f"{described} in {engine_dir(data_dir)}")


def engine_states(data_dir: Path) -> list[EngineState]:
    return [
        EngineState(EngineKind.TORCH.value, "built in", "qwen-tts in the studio's own environment"),
        mlx_state(data_dir),
    ]


def install(data_dir: Path, progress: Progress, *, force: bool = False) -> EngineState:
    """Creates (or reuses) ``<data_dir>/engines/mlx/venv`` from the lock; safe to repeat."""
    reason = platform_support()
    if reason:
        raise DependencyError(reason)
    root = engine_dir(data_dir)
    if not force and installed(data_dir):
        progress(f"The MLX engine is already installed in {root} (nothing to do).")
        return mlx_state(data_dir)
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)  # incomplete from here until the end
    venv = root / "venv"
    if venv.exists():
        progress(f"Removing the previous environment in {venv}")
        shutil.rmtree(venv)
    uv = find_uv()
    progress(f"[1/3] Creating the MLX engine's environment in {venv}")
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], progress)
    else:
        _run([sys.executable, "-m", "venv", str(venv)], progress)
    python = venv_python(data_dir)
    pins = sum(1 for line in LOCK_FILE.read_text(encoding="utf-8").splitlines() if "==" in line)
    progress(f"[2/3] Installing {pins} pinned packages from {LOCK_FILE.name} with {'uv' if uv else 'pip'}")
    if uv:
        _run([uv, "pip", "install", "--python", str(python), "--no-deps", "-r", str(LOCK_FILE)], progress)
    else:
        _run(
            [str(python), "-m", "pip", "install", "--no-deps", "--progress-bar", "off", "-r", str(LOCK_FILE)], progress
        )
    progress("[3/3] Checking that mlx-audio and MLX import")
    versions = check_environment(python)
    marker = {"lock": lock_digest(), "versions": versions, "python": str(python), "installed_at": time.time()}
    (root / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    progress(
        f"MLX engine installed in {time.perf_counter() - started:.0f} s: {', '.join(f'{k} {v}' for k, v in versions.items())}"
    )
    return mlx_state(data_dir)


def remove(data_dir: Path) -> bool:
    """Deletes the MLX environment; False when there was none."""
    root = engine_dir(data_dir)
    if not root.exists():
        return False
    shutil.rmtree(root)
    return True


def check_environment(python: Path) -> dict[str, str]:
    """Imports MLX and mlx-audio's server with the engine's Python; their versions and MLX's device."""
    script = (
        "import json, importlib.metadata as m, mlx.core as mx, mlx_audio.server;"
        "names=('mlx-audio','mlx','mlx-cpu','mlx-metal','transformers');"
        "v={}\n"
        "for n in names:\n"
        "  try: v[n]=m.version(n)\n"
        "  except m.PackageNotFoundError: pass\n"
        "v['device']='metal' if mx.is_available(mx.gpu) else 'cpu'\n"
        "print(json.dumps(v))"
    )
    try:
        done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyError(f"The MLX engine's Python could not run ({exc}).") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DependencyError(f"The MLX engine was installed but does not import: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def find_uv() -> str | None:
    beside = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    if beside.exists():
        return str(beside)
    return shutil.which("uv")


def _run(command: list[str], progress: Progress) -> None:
    """Runs one install step, passing its output on line by line; a failure in one line."""
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise DependencyError(f"Could not run {Path(command[0]).name}: {exc}") from exc
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        if line:
            tail = (tail + [line])[-5:]
            progress("    " + line)
    if process.wait() != 0:
        cause = next((t for t in reversed(tail) if "error" in t.lower()), tail[-1] if tail else "no output")
        raise DependencyError(
            f"Installing the MLX engine failed ({Path(command[0]).name} exited with {process.returncode}): "
            f"{cause.strip()[:300]}"
        )
