"""`qwen-tts-studio models download|list|remove` as a user runs them, against a local hub.

The real command line runs in a subprocess with ``HF_ENDPOINT`` pointing at
tests/fake_hub.py, which serves the tiny real Base checkpoint under the real
repo id; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_hub import fake_hub  # noqa: F401 (fixture)

REPO = "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def hub(fake_hub, demo_checkpoints):  # noqa: F811 (the fixture imported above)
    fake_hub.add_repo(REPO, demo_checkpoints["base"])
    return fake_hub


def studio(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    # The fake_hub fixture put HF_ENDPOINT (and HF_HUB_OFFLINE=0) in the environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("QWEN_TTS_STUDIO_")}
    env["QWEN_TTS_STUDIO_CONFIG"] = str(tmp_path / "no-config.toml")
    common = ["--hf-cache-dir", str(tmp_path / "hf"), "--data-dir", str(tmp_path / "data")]
    return subprocess.run(
        [sys.executable, "-m", "studio.cli", "models", *args, *common],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def row_for(listing: str, key: str) -> str:
    return next(line for line in listing.splitlines() if line.startswith(key + " "))


def test_download_list_and_remove_from_the_command_line(hub, tmp_path):
    assert os.environ["HF_ENDPOINT"] == hub.url

    done = studio(["download", "0.6B-Base"], tmp_path)

    assert done.returncode == 0, done.stderr
    bars = re.findall(r"\[([#.]{30})\]\s+(\d+)%", done.stderr)
    assert bars, done.stderr
    assert bars[-1] == ("#" * 30, "100") and "Downloaded Qwen3-TTS-12Hz-0.6B-Base" in done.stderr
    assert any(0 < int(pct) < 100 for _, pct in bars), "the bar should move before it is full"
    snapshot = tmp_path / "hf" / "models--Qwen--Qwen3-TTS-12Hz-0.6B-Base" / "snapshots" / hub.repos[REPO].sha
    assert done.stdout.strip() == f"0.6B-Base: {snapshot}"
    assert "Traceback" not in done.stderr
    assert any(r.path == f"/api/models/{REPO}/revision/main" for r in hub.requests)

    listed = studio(["list"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = row_for(listed.stdout, "0.6B-Base")
    assert " downloaded " in row and str(snapshot) in row
    size = f"{hub.repos[REPO].total_bytes / 1e6:.1f} MB"  # the tiny checkpoint: about 13 MB
    assert f" {size} " in row, row
    assert "not downloaded" in row_for(listed.stdout, "1.7B-Base")

    requests_before = len(hub.requests)
    removed = studio(["remove", "0.6B-Base"], tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"0.6B-Base: removed ({size} freed)"
    assert not snapshot.exists()

    listed = studio(["list"], tmp_path)
    assert "not downloaded" in row_for(listed.stdout, "0.6B-Base")
    assert len(hub.requests) == requests_before, "list and remove never reach the hub"


def test_download_with_the_hub_down_is_one_clear_line(hub, tmp_path):
    hub.stop()
    failed = studio(["download", "0.6B-Base"], tmp_path)
    assert failed.returncode == 2  # a StudioError: one "error: ..." line, like every clear failure
    assert "Traceback" not in failed.stderr
    assert f"error: Could not download {REPO}" in failed.stderr
    assert "qwen-tts-studio models download 0.6B-Base" in failed.stderr
