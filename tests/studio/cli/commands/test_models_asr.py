"""`qwen-tts-studio models download whisper-small`: the ASR model downloads like a TTS checkpoint.

The real command line runs in a subprocess against tests/fake_hub.py, which serves
the tiny random-weight Whisper under the real repo id; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.fake_hub import fake_hub  # noqa: F401 (fixture)
from tests.studio.cli.commands.test_models import row_for, studio

REPO = "openai/whisper-small"


@pytest.fixture
def hub(fake_hub, demo_asr, tmp_path):  # noqa: F811 (the fixture imported above)
    served = tmp_path / "served"
    shutil.copytree(demo_asr, served)
    # Real Whisper repos also carry .bin / TensorFlow / Flax copies; the studio fetches safetensors only.
    (served / "pytorch_model.bin").write_bytes(b"\0" * 4096)
    (served / "tf_model.h5").write_bytes(b"\0" * 4096)
    fake_hub.add_repo(REPO, served)
    return fake_hub


def test_download_list_and_remove_the_asr_model(hub, tmp_path):
    before = studio(["list"], tmp_path)
    assert before.returncode == 0, before.stderr
    assert re.search(r"^whisper-small\s+Transcribe\s+small\s+not downloaded", before.stdout, re.M), before.stdout

    done = studio(["download", "whisper-small"], tmp_path)
    assert done.returncode == 0, done.stderr
    bars = re.findall(r"\[([#.]{30})\]\s+(\d+)%", done.stderr)
    assert bars and bars[-1] == ("#" * 30, "100"), done.stderr
    assert "Downloaded whisper-small" in done.stderr
    snapshot = tmp_path / "hf" / "models--openai--whisper-small" / "snapshots" / hub.repos[REPO].sha
    assert done.stdout.strip() == f"whisper-small: {snapshot}"
    got = {p.name for p in snapshot.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "tokenizer.json"} <= got
    assert not {"pytorch_model.bin", "tf_model.h5"} & got
    asked = {r.path.rsplit("/", 1)[-1] for r in hub.requests if "/resolve/" in r.path}
    assert "pytorch_model.bin" not in asked and "tf_model.h5" not in asked

    listed = studio(["list"], tmp_path)
    assert re.search(r"\bdownloaded\b", row_for(listed.stdout, "whisper-small"))

    removed = studio(["remove", "whisper-small"], tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert "whisper-small: removed" in removed.stdout
    assert "not downloaded" in row_for(studio(["list"], tmp_path).stdout, "whisper-small")


def test_offline_download_names_the_command(hub, tmp_path):
    done = studio(["download", "whisper-small", "--offline"], tmp_path)
    assert done.returncode == 2
    assert "openai/whisper-small is not downloaded and the studio is in offline mode" in done.stderr
    assert "`qwen-tts-studio models download whisper-small`" in done.stderr
    assert os.environ["HF_ENDPOINT"] == hub.url
