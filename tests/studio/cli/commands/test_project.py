"""`qwen-tts-studio project render|list` as a user runs them: a Markdown manuscript to an M4B on
the demo models (read back with ffprobe), the project kept in the data dir, one line per error."""

from __future__ import annotations

import json
import subprocess

import pytest

from studio.cli.main import main

BOOK = "# The Lighthouse\n\n## Arrival\n\nThe keeper climbed the stairs.\n\n## Night\n\nThe sea was calm.\n"


@pytest.fixture
def base_args(tmp_path, demo_checkpoints, demo_asr):
    return [
        "--demo-models",
        "--data-dir",
        str(tmp_path / "data"),
        "--device",
        "cpu",
        "--checkpoint-custom-voice",
        str(demo_checkpoints["custom_voice"]),
        "--checkpoint-base",
        str(demo_checkpoints["base"]),
        "--checkpoint-asr",
        str(demo_asr),
    ]


def test_a_manuscript_becomes_an_m4b_and_a_listed_project(base_args, tmp_path, capsys):
    source = tmp_path / "book.md"
    source.write_text(BOOK, encoding="utf-8")
    out = tmp_path / "out" / "book.m4b"
    args = ["--voice", "Ryan (calm)", "--out", str(out), "--author", "A. Writer", "--max-new-tokens", "10"]
    code = main(["project", "render", str(source), *base_args, *args, "--qa-tries", "0"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "wrote " + str(out) in printed.out and "2 chapters, 2 blocks" in printed.out
    # A line for every block, however fast it went (a render between two polls printed none).
    for line in ("Chapter 1 of 2 · block 1 of 1", "Chapter 2 of 2 · block 1 of 1"):
        assert line in printed.err, printed.err
    assert "demo ASR" in printed.err
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(probe.stdout)
    assert [c["tags"]["title"] for c in info["chapters"]] == ["Arrival", "Night"]
    assert info["format"]["tags"]["title"] == "The Lighthouse"

    assert main(["project", "list", *base_args]) == 0
    listed = capsys.readouterr().out
    assert "The Lighthouse (A. Writer): 2 chapters, 2 blocks, 2 rendered" in listed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "book.mp3"], "error: --out must end in .m4b or .zip (got 'book.mp3')."),
        (["--out", "book.m4b", "--voice", "Nobody"], "error: The narrator"),
        (["--out", "book.m4b", "--preset", "loud"], "error: Mastering preset 'loud' is not one of"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_project(base_args, tmp_path, capsys, extra, message):
    source = tmp_path / "book.md"
    source.write_text(BOOK, encoding="utf-8")
    code = main(["project", "render", str(source), *base_args, *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(message) and len(err.splitlines()) == 1, err
    assert main(["project", "list", *base_args]) == 0
    assert capsys.readouterr().out.startswith("No projects yet")


def test_a_missing_manuscript_is_one_line(base_args, tmp_path, capsys):
    code = main(["project", "render", str(tmp_path / "nope.epub"), *base_args, "--out", str(tmp_path / "b.m4b")])
    assert (
        code == 2 and capsys.readouterr().err.strip() == f"error: There is no manuscript file {tmp_path / 'nope.epub'}."
    )
