"""`qwen-tts-studio doctor` end to end: its lines, its JSON, its exit codes.

The in-process tests call `run_doctor` as `studio/cli/main.py` does; the subprocess
tests run the real command line.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

from core.settings import Settings
from core.tools import doctor
from studio.cli.commands.doctor import format_check, run_doctor
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[4]
LINE = re.compile(r"^(PASS|WARN|FAIL)  \S+\s+\S")
SUMMARY = re.compile(r"^\d+ passed, \d+ warnings?, \d+ failed$")
NAMES = ["python", "torch", "qwen-tts", "device", "ffmpeg", "data-dir", "disk", "models", "serving", "port"]


def _fast_imports(monkeypatch) -> None:
    """Skips the two child imports (~10 s) where a test is about the command, not them."""
    monkeypatch.setattr(
        doctor,
        "probe_torch_pair",
        lambda: {"torch": {"version": "2.11.0", "error": None}, "torchaudio": {"version": "2.11.0", "error": None}},
    )
    monkeypatch.setattr(doctor, "probe_qwen_tts", lambda: {"version": "0.1.1", "error": None})


def _settings(tmp_path: Path, port: int) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=port, demo_models=True, device="auto")


def test_real_run_in_process_passes_on_this_machine(tmp_path, capsys):
    code = run_doctor(argparse.Namespace(json=False), _settings(tmp_path, free_port()))
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0, "\n".join(lines)
    assert len(lines) == len(NAMES) + 1
    assert all(LINE.match(line) for line in lines[:-1]), lines
    assert [line.split()[1] for line in lines[:-1]] == NAMES
    assert SUMMARY.match(lines[-1]) and lines[-1].endswith(" 0 failed")
    assert lines[0] == f"PASS  python        {'.'.join(map(str, sys.version_info[:3]))}"
    assert lines[2].startswith("PASS  qwen-tts")  # the real child import


def test_busy_port_fails_with_the_fix(tmp_path, capsys, monkeypatch):
    _fast_imports(monkeypatch)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = run_doctor(argparse.Namespace(json=False), _settings(tmp_path, port))
    out = capsys.readouterr().out
    assert code == 1
    assert f"FAIL  port          port {port} is in use — fix: pass --port {port + 1} or stop the other process" in out
    assert out.strip().splitlines()[-1].endswith(" 1 failed")


def test_json_is_a_list_of_checks(tmp_path, capsys, monkeypatch):
    _fast_imports(monkeypatch)
    code = run_doctor(argparse.Namespace(json=True), _settings(tmp_path, free_port()))
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [item["name"] for item in data] == NAMES
    assert all(set(item) == {"name", "status", "detail", "fix"} for item in data)
    assert all(item["status"] in ("pass", "warn", "fail") for item in data)


def test_a_crashing_check_is_a_fail_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    _fast_imports(monkeypatch)

    def boom(which):
        raise RuntimeError("probe exploded\nand a second line")

    monkeypatch.setattr(doctor, "check_ffmpeg", boom)
    code = run_doctor(argparse.Namespace(json=False), _settings(tmp_path, free_port()))
    captured = capsys.readouterr()
    assert code == 1
    assert "FAIL  ffmpeg        the check itself crashed: RuntimeError: probe exploded — fix:" in captured.out
    assert "Traceback" not in captured.out + captured.err and "second line" not in captured.out


def test_line_format():
    assert format_check(doctor.Check("python", "pass", "3.11.7")) == "PASS  python        3.11.7"
    assert format_check(doctor.Check("ffmpeg", "warn", "not found on PATH", doctor.FFMPEG_FIX)) == (
        "WARN  ffmpeg        not found on PATH — MP3 export needs ffmpeg: brew install ffmpeg / apt install ffmpeg"
    )
    assert format_check(doctor.Check("port", "fail", "port 7860 is in use", "pass --port 7861")) == (
        "FAIL  port          port 7860 is in use — fix: pass --port 7861"
    )


# --- the real command line (needs `doctor` in studio/cli/main.py) -----------------------------


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio.cli", "doctor", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_happy_path_exits_zero(tmp_path):
    done = _doctor("--demo-models", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()))
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[1] for line in lines[:-1]] == NAMES
    assert SUMMARY.match(lines[-1])
    assert "Traceback" not in done.stderr


def test_cli_busy_port_exits_one_with_the_fix(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        done = _doctor("--demo-models", "--data-dir", str(tmp_path / "data"), "--port", str(port))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"port {port} is in use — fix: pass --port {port + 1} or stop the other process" in done.stdout
    assert done.stdout.strip().splitlines()[-1].endswith(" 1 failed")


def test_cli_json_parses(tmp_path):
    done = _doctor("--json", "--demo-models", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()))
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert [item["name"] for item in data] == NAMES
    assert {item["status"] for item in data} <= {"pass", "warn", "fail"}
