"""`qwen-tts-studio engines list|install|remove` and `synth --engine mlx`, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from core.engine.mlx.install import MARKER, engine_dir
from tests.mlx_engine import link_engine, mlx_engine_home  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[4]


def studio(args: list[str], data_dir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWEN_TTS_STUDIO_")}
    env["QWEN_TTS_STUDIO_CONFIG"] = str(data_dir.parent / "no-config.toml")
    return subprocess.run(
        [sys.executable, "-m", "studio.cli", *args, "--data-dir", str(data_dir), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_install_is_idempotent_and_list_shows_it(mlx_engine_home):  # noqa: F811
    # The session fixture made the real install into the cache; running it again only checks it.
    again = studio(["engines", "install", "mlx"], mlx_engine_home)
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stderr and "mlx: installed (mlx-audio 0.6.2" in again.stdout
    listed = studio(["engines", "list", "--mlx-quantize", "6bit"], mlx_engine_home)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "built in" in rows["torch"] and "installed" in rows["mlx"] and "mlx-audio 0.6.2" in rows["mlx"]
    assert "weights 6bit" in rows["mlx"]
    # A bad value is one line naming the choices.
    bad = studio(["engines", "list", "--mlx-quantize", "3bit"], mlx_engine_home)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0, bad.stderr
    assert "'3bit'" in bad.stderr and "bf16, 8bit, 6bit, 4bit" in bad.stderr


def test_list_remove_and_errors_on_a_fresh_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    listed = studio(["engines", "list"], data_dir)
    assert "not installed" in listed.stdout and "engines install mlx" in listed.stdout
    half = engine_dir(data_dir) / "venv"
    half.mkdir(parents=True)  # an install that stopped half-way (no marker)
    assert "not installed" in studio(["engines", "list"], data_dir).stdout
    removed = studio(["engines", "remove", "mlx"], data_dir)
    assert removed.returncode == 0 and "mlx: removed" in removed.stdout and not engine_dir(data_dir).exists()
    assert "was not installed" in studio(["engines", "remove", "mlx"], data_dir).stdout
    wrong = studio(["engines", "install", "torch"], data_dir)
    assert wrong.returncode != 0 and wrong.stderr.count("\n") == 1 and "try `mlx`" in wrong.stderr
    assert not (engine_dir(data_dir) / MARKER).exists()


def test_synth_engine_mlx_writes_audio_in_custom_and_clone_modes(tmp_path, mlx_engine_home, speech_wav):  # noqa: F811
    data_dir = link_engine(tmp_path / "data", mlx_engine_home)
    runs = {
        "custom": ["--mode", "custom", "--speaker", "Vivian"],
        "clone": ["--mode", "clone", "--ref-audio", str(speech_wav), "--ref-text", "The quick brown fox."],
    }
    for name, mode_args in runs.items():
        out = tmp_path / f"{name}.wav"
        done = studio(
            [
                "synth",
                *mode_args,
                "--text",
                "Hello from MLX.",
                "--seed",
                "3",
                "--max-new-tokens",
                "12",
                "--out",
                str(out),
            ],
            data_dir,
            "--engine",
            "mlx",
            "--demo-models",
            "--offline",
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "engine mlx" in done.stdout, done.stdout
        audio, rate = sf.read(out, dtype="float32")
        assert rate == 24_000 and audio.size >= 1920 and np.all(np.isfinite(audio)) and np.abs(audio).max() > 1e-3


def test_synth_engine_mlx_not_installed_says_how_in_one_line(tmp_path):
    done = studio(
        ["synth", "--mode", "custom", "--speaker", "Vivian", "--text", "Hi.", "--out", str(tmp_path / "x.wav")],
        tmp_path / "data",
        "--engine",
        "mlx",
        "--demo-models",
        "--offline",
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: The MLX engine is not installed") and "engines install mlx" in last
