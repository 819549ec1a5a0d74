"""Fixtures shared by the whole suite: the tiny real demo checkpoints and settings.

The demo checkpoints are built once and kept in pytest's cache folder between
runs (the builder's own marker invalidates them when the layout changes).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from core.settings import Settings

# Never let a test reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Run by pytest-xdist (scripts/test.sh), the workers share the cores: each gets its share of
# math threads (inherited by the studios it spawns), not a full pool that busy-waits against
# the other worker's. Set before anything imports torch.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    share = (os.cpu_count() or 2) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, share)))
    # Each worker's studios get their own Gradio file cache. Gradio copies a file into its cache
    # when the copy is missing (check, then copy2), so two processes caching the same file raced:
    # one served it while the other was still writing it ("Too little data for declared
    # Content-Length" in a worker's server log).
    os.environ.setdefault(
        "GRADIO_TEMP_DIR", os.path.join(tempfile.gettempdir(), f"gradio-{os.environ.get('PYTEST_XDIST_WORKER', 'gw')}")
    )


def demo_models_folder(config, tmp_path_factory) -> Path:
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    return Path(cache.mkdir("demo-models")) if cache else tmp_path_factory.mktemp("demo-models")


@contextmanager
def building_in(folder: Path) -> Iterator[Path]:
    """The shared cache folder, held by one pytest process at a time: the suite's
    workers (pytest-xdist) share it, and the first one in builds what the others reuse."""
    import filelock

    with filelock.FileLock(str(folder / ".build.lock")):
        yield folder


@pytest.fixture(scope="session")
def demo_checkpoints(request, tmp_path_factory) -> dict[str, Path]:
    from core.engine.demo_models.build import build_demo_checkpoints

    with building_in(demo_models_folder(request.config, tmp_path_factory)) as folder:
        return build_demo_checkpoints(folder)


@pytest.fixture(scope="session")
def demo_asr(request, tmp_path_factory) -> Path:
    """The tiny random-weight Whisper (core/engine/demo_models/whisper.py), built once."""
    from core.engine.demo_models.whisper import build_demo_asr

    with building_in(demo_models_folder(request.config, tmp_path_factory)) as folder:
        return build_demo_asr(folder)


def make_demo_settings(data_dir: Path, demo_checkpoints: dict[str, Path], **overrides: Any) -> Settings:
    """Settings for ``data_dir`` on the session's demo checkpoints: CPU, float32, offline.

    Every test that builds a context or a server on the demo models starts here, so
    a new setting they all need is added once; ``overrides`` carry what a test
    changes on purpose (a port, a rate limit, how many models stay loaded).
    """
    from core.settings import Settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "demo_models": True,
        "device": "cpu",
        "dtype": "float32",
        "checkpoint_voice_design": demo_checkpoints["voice_design"],
        "checkpoint_custom_voice": demo_checkpoints["custom_voice"],
        "checkpoint_base": demo_checkpoints["base"],
        "offline": True,
    }
    return Settings(**{**values, **overrides})


def free_port() -> int:
    """A localhost port that was free a moment ago, for a test server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo_settings(tmp_path, demo_checkpoints):
    """Settings for a fresh data dir that use the session's demo checkpoints."""
    return make_demo_settings(tmp_path / "data", demo_checkpoints)


@pytest.fixture
def demo_context(demo_settings):
    from core.context import build_context

    return build_context(demo_settings)


# Debian's chromium under Playwright in a container: no sandbox, no GPU, no background traffic.
HEADLESS_CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """Where chromium is, for the browser tests (they skip when it is not there)."""
    return shutil.which("chromium") or "/usr/bin/chromium"


SPEECH_TEXT = "The quick brown fox jumps over the lazy dog. Then it sits down in the sun and has a rest."


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt install {tool}); it makes the test audio")


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def speech_wav(audio_dir: Path) -> Path:
    """About 5 s of real English speech, 22,050 Hz mono 16-bit, from espeak-ng."""
    need("espeak-ng")
    path = audio_dir / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SPEECH_TEXT], check=True)
    return path


_SPOKEN_LINES = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore every summer.",
    "A clear voice reads this sentence for the studio test.",
    "Numbers like seven, twelve and forty one are spoken here.",
)


def spoken(seconds: float = 2.0, seed: int = 0) -> Any:
    """Real espeak-ng speech as a 24 kHz ``Audio`` of exactly ``seconds``: a reference
    that passes the speech check (core/audio/speech_check.py). Different seeds give
    different words and pitch, so different voices; the speech repeats to fill long clips."""
    import numpy as np

    from core.audio.clip import Audio

    samples = _espeak_samples(seed)
    n = int(round(seconds * 24_000))
    reps = -(-n // len(samples))
    return Audio(np.tile(samples, reps)[:n], 24_000)


def _espeak_samples(seed: int) -> Any:
    cached = _SPOKEN_CACHE.get(seed)
    if cached is not None:
        return cached
    line = _SPOKEN_LINES[seed % len(_SPOKEN_LINES)]
    samples = espeak(line, pitch=30 + (seed * 7) % 50)
    _SPOKEN_CACHE[seed] = samples
    return samples


def espeak(line: str, *, pitch: int = 50) -> Any:
    """``line`` spoken by espeak-ng, as 24 kHz float32 samples (with espeak's own short
    silence at each end); skips the test when espeak-ng is not installed."""
    import tempfile

    from core.audio.io import load_audio

    need("espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-p", str(pitch), "-w", str(path), line], check=True)
        return load_audio(path).samples


_SPOKEN_CACHE: dict[int, Any] = {}
