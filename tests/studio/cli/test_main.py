"""The command line end to end: synth in all three modes, models, launch."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

from studio.cli.main import main
from tests.conftest import free_port

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def base_args(tmp_path, demo_checkpoints):
    return [
        "--demo-models",
        "--data-dir",
        str(tmp_path / "data"),
        "--device",
        "cpu",
        "--checkpoint-voice-design",
        str(demo_checkpoints["voice_design"]),
        "--checkpoint-custom-voice",
        str(demo_checkpoints["custom_voice"]),
        "--checkpoint-base",
        str(demo_checkpoints["base"]),
    ]


def test_synth_design_custom_and_clone(base_args, tmp_path, speech_wav, capsys, caplog):
    runs = [
        (["--mode", "design", "--instruct", "A deep calm voice."], "design.wav"),
        (["--mode", "custom", "--speaker", "Aiden", "--instruct", "Slowly", "--size", "1.7B"], "custom.flac"),
        (["--mode", "clone", "--ref-audio", str(speech_wav), "--ref-text", "The quick brown fox."], "clone.mp3"),
    ]
    for extra, name in runs:
        out = tmp_path / name
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="core.takes.jobs"):
            code = main(
                [
                    "synth",
                    *base_args,
                    "--text",
                    "Hello from the command line.",
                    "--seed",
                    "3",
                    "--max-new-tokens",
                    "10",
                    *extra,
                    "--out",
                    str(out),
                ]
            )
        printed = capsys.readouterr().out
        assert code == 0, printed
        info = sf.info(str(out))
        assert info.samplerate == 24_000 and info.frames > 0
        assert re.search(r"wrote .*: [\d.]+ s of audio at 24000 Hz, seed 3", printed)
        assert "real-time factor" in printed
        # A job of the take runner, as every take (not kept in History: the file is the take).
        jobs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=job ")]
        assert len(jobs) == 1 and "kind=take state=done" in jobs[0] and "client=cli" in jobs[0], jobs


def test_synth_reads_text_files_and_formats_from_flag(base_args, tmp_path, capsys):
    text = tmp_path / "line.txt"
    text.write_text("A line from a file.", encoding="utf-8")
    out = tmp_path / "take.bin"
    assert (
        main(
            [
                "synth",
                *base_args,
                "--mode",
                "design",
                "--instruct",
                "Bright.",
                "--text-file",
                str(text),
                "--max-new-tokens",
                "6",
                "--format",
                "ogg",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sf.info(str(out)).format == "OGG"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--mode", "custom", "--text", "hi", "--speaker", "Bob"], "Unknown speaker 'Bob'"),
        (["--mode", "custom", "--text", "hi"], "needs --speaker"),
        (["--mode", "design", "--text", "hi"], "needs --instruct"),
        (["--mode", "clone", "--text", "hi"], "needs --ref-audio"),
        (["--mode", "design", "--text", "  ", "--instruct", "x"], "Enter some text"),
        (["--mode", "design", "--text", "hi", "--instruct", "x", "--language", "Elvish"], "Elvish"),
        (["--mode", "design", "--text", "hi", "--instruct", "x", "--size", "0.6B"], "no 0.6B model"),
        (["--mode", "clone", "--text", "hi", "--ref-audio", "/nonexistent.wav"], "nonexistent.wav"),
        (["--mode", "design", "--text", "hi", "--instruct", "x", "--device", "tpu"], "'device'"),
    ],
)
def test_synth_errors_are_one_readable_line(base_args, tmp_path, capsys, extra, message):
    code = main(["synth", *base_args, *extra, "--out", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "x.wav").exists()


def test_models_build_demo_and_list(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["models", "build-demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for mode in ("base", "custom_voice", "voice_design"):
        assert f"{mode}: {out / mode}" in printed
        assert (out / mode / "config.json").is_file()
    assert (
        main(["models", "list", "--offline", "--hf-cache-dir", str(tmp_path / "hf"), "--data-dir", str(tmp_path)]) == 0
    )
    listing = capsys.readouterr().out
    assert re.search(r"0\.6B-Base\s+Clone\s+0\.6B\s+not downloaded", listing)  # the mode as people read it


def test_models_download_offline_is_a_clear_error(tmp_path, capsys):
    code = main(
        [
            "models",
            "download",
            "0.6B-Base",
            "--offline",
            "--hf-cache-dir",
            str(tmp_path / "hf"),
            "--data-dir",
            str(tmp_path),
        ]
    )
    assert code != 0
    assert "offline mode" in capsys.readouterr().err


def test_console_script_launches_the_studio_without_loading_a_model(tmp_path):
    port = free_port()
    env = {**os.environ, "QWEN_TTS_STUDIO_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [str(VENV_BIN / "qwen-tts-studio"), "--demo-models", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.time() + 120
        lines = []
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "running at" in line:
                break
        assert any(f"http://127.0.0.1:{port}/" in line for line in lines), "".join(lines)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
        assert "Qwen TTS Studio" in page
        config = urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=30).read().decode()
        assert "/design" in config
        assert not any("event=model_load" in line for line in lines)
    finally:
        proc.terminate()
        proc.wait(30)


def test_models_list_and_remove_with_a_models_dir(tmp_path, demo_checkpoints, capsys):
    import shutil

    models_dir = tmp_path / "models"
    shutil.copytree(demo_checkpoints["base"], models_dir / "Qwen3-TTS-12Hz-0.6B-Base")
    common = ["--models-dir", str(models_dir), "--data-dir", str(tmp_path / "data"), "--offline"]
    assert main(["models", "list", *common]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"0\.6B-Base\s+Clone\s+0\.6B\s+downloaded\s+[\d.]+ MB\s+.*Qwen3-TTS-12Hz-0\.6B-Base", listing)
    assert re.search(r"1\.7B-Base\s+Clone\s+1\.7B\s+not downloaded", listing)
    assert main(["models", "remove", "0.6B-Base", *common]) == 0
    assert "0.6B-Base: removed" in capsys.readouterr().out
    assert not (models_dir / "Qwen3-TTS-12Hz-0.6B-Base").exists()
    assert main(["models", "remove", "0.6B-Base", *common]) == 0
    assert "was not downloaded" in capsys.readouterr().out
    assert main(["models", "download", "nonsense", *common]) == 2
    assert "Unknown model 'nonsense'" in capsys.readouterr().err
