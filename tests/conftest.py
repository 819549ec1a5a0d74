"""Fixtures shared by the whole suite: the tiny real demo checkpoints and settings.

The demo checkpoints are built once and kept in pytest's cache folder between
runs (the builder's own marker invalidates them when the layout changes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Never let a test reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def demo_models_folder(config, tmp_path_factory) -> Path:
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    return Path(cache.mkdir("demo-models")) if cache else tmp_path_factory.mktemp("demo-models")


@pytest.fixture(scope="session")
def demo_checkpoints(request, tmp_path_factory) -> dict[str, Path]:
    from core.engine.demo_models.build import build_demo_checkpoints

    return build_demo_checkpoints(demo_models_folder(request.config, tmp_path_factory))


@pytest.fixture
def demo_settings(tmp_path, demo_checkpoints):
    """Settings for a fresh data dir that use the session's demo checkpoints."""
    from core.settings import Settings

    return Settings(
        data_dir=tmp_path / "data",
        demo_models=True,
        device="cpu",
        dtype="float32",
        checkpoint_voice_design=demo_checkpoints["voice_design"],
        checkpoint_custom_voice=demo_checkpoints["custom_voice"],
        checkpoint_base=demo_checkpoints["base"],
        offline=True,
    )


@pytest.fixture
def demo_context(demo_settings):
    from core.context import build_context

    return build_context(demo_settings)


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
