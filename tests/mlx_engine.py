"""The MLX engine's environment for tests: installed once into a cache folder, then reused.

Import the fixtures (``mlx_engine_home``, ``mlx_settings``) into a test module or conftest.

``engines install mlx`` downloads about 370 MB of wheels and takes ~25 s with uv
(minutes with pip) when nothing is cached, so the suite installs it once per lock,
into ``$QWEN_TTS_STUDIO_TEST_CACHE`` (default ``~/.cache/qwen-tts-studio-tests``),
and every test's data dir links ``engines/mlx`` to that install. The install itself
is the real one (``core/engine/mlx/install.py``); with the lock unchanged and the
folder complete, later runs only check it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.engine.mlx import install as mlx_install
from tests.conftest import make_demo_settings


def engine_cache_home() -> Path:
    root = Path(os.environ.get("QWEN_TTS_STUDIO_TEST_CACHE", Path.home() / ".cache" / "qwen-tts-studio-tests"))
    return root / f"mlx-engine-{mlx_install.lock_digest()}"


@pytest.fixture(scope="session")
def mlx_engine_home() -> Path:
    """A data dir whose ``engines/mlx`` holds a complete MLX engine (installed here when missing)."""
    reason = mlx_install.platform_support()
    if reason:
        pytest.skip(reason)
    home = engine_cache_home()
    lines: list[str] = []
    mlx_install.install(home, lines.append)
    assert mlx_install.installed(home), "\n".join(lines[-20:])
    return home


def link_engine(data_dir: Path, home: Path) -> Path:
    """Makes ``data_dir`` use the cached MLX engine (a symlink, so nothing is copied)."""
    target = mlx_install.engine_dir(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(mlx_install.engine_dir(home), target_is_directory=True)
    return data_dir


@pytest.fixture
def mlx_settings(tmp_path, demo_checkpoints, mlx_engine_home):
    data_dir = link_engine(tmp_path / "data", mlx_engine_home)
    return make_demo_settings(data_dir, demo_checkpoints, engine="mlx")
