"""The self-hosting docs stay true: the launchd example parses and its flags work."""

from __future__ import annotations

import plistlib
import re
from pathlib import Path

from core.serving.access import check_serving
from studio.cli.main import build_parser, settings_from_args

ROOT = Path(__file__).resolve().parents[2]
PLIST = ROOT / "docs" / "macos" / "com.qwen-tts-studio.plist"


def test_launchd_plist_is_valid_and_matches_the_readme():
    data = plistlib.loads(PLIST.read_bytes())
    assert data["Label"] == "com.qwen-tts-studio" and data["RunAtLoad"] and data["KeepAlive"]
    assert data["StandardOutPath"].endswith("Library/Logs/qwen-tts-studio.log")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```xml\n(.*?)```", readme, re.S).group(1)
    assert plistlib.loads(re.sub(r"^   ", "", block, flags=re.M).encode()) == data


def test_launchd_arguments_are_accepted_by_the_studio(tmp_path):
    args = plistlib.loads(PLIST.read_bytes())["ProgramArguments"]
    assert args[0].endswith("/.venv/bin/qwen-tts-studio")
    users = tmp_path / "users"
    users.write_text("me:a-long-passphrase\n")
    flags = [str(users) if a.endswith(".qwen-tts-studio-users") else a for a in args[1:]]
    settings = settings_from_args(build_parser().parse_args(flags))
    assert settings.host == "0.0.0.0" and settings.preferred_size == "0.6B"
    assert check_serving(settings) == [("me", "a-long-passphrase")]
