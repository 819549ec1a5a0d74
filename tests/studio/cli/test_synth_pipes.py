"""`synth --text -` and `--out -`: text from stdin, audio to stdout, through the real command."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import soundfile as sf

VENV_BIN = Path(sys.executable).parent


def synth_command(args: list[str], demo_checkpoints, tmp_path) -> list[str]:
    """`synth` in custom mode with Ryan on the demo checkpoints, then ``args``."""
    return [
        str(VENV_BIN / "qwen-tts-studio"),
        "synth",
        "--demo-models",
        "--offline",
        "--data-dir",
        str(tmp_path / "data"),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--checkpoint-custom-voice",
        str(demo_checkpoints["custom_voice"]),
        "--mode",
        "custom",
        "--speaker",
        "Ryan",
        *args,
    ]


def synth(args: list[str], demo_checkpoints, tmp_path, stdin: bytes) -> subprocess.CompletedProcess:
    command = synth_command(["--seed", "2", "--max-new-tokens", "10", *args], demo_checkpoints, tmp_path)
    return subprocess.run(command, input=stdin, capture_output=True, timeout=300)


def test_text_from_stdin_and_audio_to_stdout(demo_checkpoints, tmp_path):
    result = synth(
        ["--text", "-", "--out", "-", "--format", "flac"], demo_checkpoints, tmp_path, b"Hello from a pipe.\n"
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    info = sf.info(io.BytesIO(result.stdout))
    assert info.format == "FLAC" and info.samplerate == 24_000 and info.frames > 0
    assert b"wrote stdout" in result.stderr  # the summary goes to stderr: stdout is audio only
    # WAV is the default for stdout, and text from stdin works with a file too.
    result = synth(["--text", "-", "--out", "-"], demo_checkpoints, tmp_path, "Grüße.".encode())
    assert result.returncode == 0 and result.stdout[:4] == b"RIFF"
    out = tmp_path / "piped.wav"
    result = synth(["--text", "-", "--out", str(out)], demo_checkpoints, tmp_path, b"To a file.")
    assert result.returncode == 0 and sf.info(str(out)).frames > 0


def test_empty_or_undecodable_stdin_is_one_clear_line(demo_checkpoints, tmp_path):
    result = synth(["--text", "-", "--out", "-"], demo_checkpoints, tmp_path, b"   \n")
    assert result.returncode != 0 and result.stdout == b""
    assert "text" in result.stderr.decode().lower() and "Traceback" not in result.stderr.decode()
    result = synth(["--text", "-", "--out", "-"], demo_checkpoints, tmp_path, b"\xff\xfe\xfa")
    assert result.returncode != 0 and "UTF-8" in result.stderr.decode()


def test_ctrl_c_stops_the_take_and_says_so(demo_checkpoints, tmp_path):
    """The CLI's take is a job of the one take runner; Ctrl-C (SIGINT) stops it part-way: the
    process ends within seconds with exit 130 and one line, no traceback and no file."""
    import signal
    import time

    out = tmp_path / "stopped.wav"
    text = " ".join(f"Sentence {n} of a long take that Ctrl-C stops." for n in range(40))
    process = subprocess.Popen(
        synth_command(["--text", text, "--out", str(out)], demo_checkpoints, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # As in a terminal: a shell's background job (CI's, for one) starts with SIGINT ignored,
        # and Python then installs no KeyboardInterrupt handler; a person's Ctrl-C is never ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Its progress goes to stderr; Ctrl-C once the model is generating.
    seen = b""
    deadline = time.monotonic() + 240
    while b"chunk" not in seen.lower():
        assert process.poll() is None, seen.decode()[-2000:]
        assert time.monotonic() < deadline, seen.decode()[-2000:]
        seen += process.stderr.read1(4096)  # type: ignore[union-attr]
    process.send_signal(signal.SIGINT)
    stopped_at = time.monotonic()
    _, rest = process.communicate(timeout=60)
    waited = time.monotonic() - stopped_at
    log = (seen + rest).decode()
    assert process.returncode == 130, log[-2000:]
    assert waited < 15, f"Ctrl-C took {waited:.1f} s to stop the take"
    assert log.rstrip().endswith("interrupted"), log[-500:]
    assert "Traceback" not in log, log[-3000:]
    assert not out.exists()
