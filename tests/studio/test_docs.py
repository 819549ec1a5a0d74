"""The self-hosting docs stay true: the launchd example parses and its flags work."""

from __future__ import annotations

import plistlib
import re
from pathlib import Path

from core.serving.access import check_serving
from studio.cli.main import build_parser, settings_from_args

ROOT = Path(__file__).resolve().parents[2]
PLIST = ROOT / "docs" / "macos" / "com.qwen-tts-studio.plist"


def test_launchd_plist_is_valid_and_matches_the_self_hosting_guide():
    data = plistlib.loads(PLIST.read_bytes())
    assert data["Label"] == "com.qwen-tts-studio" and data["RunAtLoad"] and data["KeepAlive"]
    assert data["StandardOutPath"].endswith("Library/Logs/qwen-tts-studio.log")
    guide = (ROOT / "docs" / "SELF_HOSTING.md").read_text(encoding="utf-8")
    block = re.search(r"```xml\n(.*?)```", guide, re.S).group(1)
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


def test_every_relative_link_in_the_readme_and_docs_resolves():
    """The README is a short guide that links into docs/: every relative link points at a file,
    and every #anchor at a heading of that file."""

    def anchors(path: Path) -> set[str]:
        headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
        return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}

    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            assert path.exists(), f"{doc.name}: {target} points at nothing"
            if anchor and path.suffix == ".md":
                assert anchor in anchors(path), f"{doc.name}: no heading for #{anchor} in {path.name}"
