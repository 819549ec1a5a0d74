"""What the Projects tab says about a project: its tables, badges, takes and reports."""

from __future__ import annotations

from types import SimpleNamespace

from core.projects.model import (
    Block,
    BlockStatus,
    BlockTake,
    Chapter,
    MasteringPreset,
    Project,
    QAVerdict,
    VoiceChoice,
)
from studio.ui.tabs import projects_view as view


def take(take_id: str, seed: int, text: str, passed: bool | None) -> BlockTake:
    qa = (
        None if passed is None else QAVerdict(passed=passed, reasons=() if passed else ("runs 2.6x longer",), demo=True)
    )
    return BlockTake(take_id, f"audio/{take_id}.wav", seed, 1.5, text, "Ryan", 0.0, qa=qa)


def book() -> Project:
    flagged = Block(
        "b2",
        "The lighthouse keeper waited.",
        takes=[
            take("t1", 7, "The lighthouse keeper waited.", False),
            take("t2", 8, "The lighthouse keeper waited.", False),
        ],
        chosen="t2",
        status=BlockStatus.FLAGGED,
        flag="runs 2.6x longer than expected",
    )
    checked = Block(
        "b1", "It was dark.", takes=[take("t0", 5, "It was dark.", True)], chosen="t0", status=BlockStatus.CHECKED
    )
    edited = Block("b3", "New words now.", takes=[take("t3", 9, "Old words.", True)], chosen="t3", locked=True)
    dialogue = Block("b4", "Maya: Who is there?", speaker="Maya")
    return Project(
        "p1",
        "The Keeper",
        author="A. Writer",
        narrator=VoiceChoice(speaker="Ryan", instruct="calm"),
        chapters=[
            Chapter("c1", "One", [checked, flagged, edited]),
            Chapter("c2", "Two", [dialogue], voice=VoiceChoice(voice="Ada")),
        ],
    )


def test_chapter_rows_count_blocks_by_status_and_name_the_voice():
    rows = view.chapter_rows(book())
    assert rows[0] == [1, "One", 3, 2, 1, 1, "Ryan (calm) (narrator)", "1 flagged · 1 checked · 1 to render"]
    assert rows[1] == [2, "Two", 1, 0, 0, 0, "voice: Ada", "not rendered"]
    assert view.chapter_rows(None) == [["", "No chapters yet", "", "", "", "", "", ""]]


def test_block_rows_show_badges_lock_takes_and_cast_dialogue():
    project = book()
    rows = view.block_rows(project, project.chapters[0])
    assert [r[3] for r in rows] == ["✓ checked", "⚠ flagged", "○ not rendered"]
    assert [r[4] for r in rows] == ["", "", view.LOCKED]
    assert [r[5] for r in rows] == [1, 2, 1]
    assert view.block_rows(project, project.chapters[1])[0][2] == "Maya (cast)"


def test_block_header_says_why_a_block_is_flagged_and_when_its_take_is_stale():
    project = book()
    chapter = project.chapters[0]
    flagged = view.block_header(project, chapter, chapter.blocks[1])
    assert "Block 2 of 3" in flagged and "⚠ flagged" in flagged
    assert "**Flagged:** runs 2.6x longer than expected" in flagged
    assert "demo speech recogniser" in flagged
    edited = view.block_header(project, chapter, chapter.blocks[2])
    assert "edited after this take" in edited and "locked" in edited
    assert "Pick a block" in view.block_header(project, chapter, None)


def test_take_choices_mark_the_chosen_one_only():
    block = book().chapters[0].blocks[1]
    choices = view.take_choices(block)
    assert [value for _, value in choices] == ["t1", "t2"]
    assert choices[1][0].endswith(view.CHOSEN) and view.CHOSEN not in choices[0][0]
    assert "seed 7" in choices[0][0] and "failed QA" in choices[0][0]


def test_project_header_and_choices():
    header = view.project_header(book())
    assert "The Keeper" in header and "2 chapters" in header and "1 flagged" in header
    assert view.project_header(None) == view.NO_PROJECT
    listing = [{"id": "p1", "title": "The Keeper", "author": "A. Writer"}, {"id": "p2", "title": ""}]
    assert view.project_choices(listing) == [("The Keeper — A. Writer", "p1"), ("p2", "p2")]


def test_qa_report_lists_flagged_blocks_with_reasons_and_says_demo():
    report = view.qa_report_markdown(book())
    assert report.startswith(view.DEMO_QA)
    assert "block 2" in report and "runs 2.6x longer than expected" in report
    assert "**2. Two** — not rendered" in report


def test_compliance_markdown_has_a_row_per_rule_with_pass_or_fail():
    rule = SimpleNamespace(rule="Peak", measured=-3.4, limit="≤ -3 dBFS", passed=True)
    bad = SimpleNamespace(rule="RMS", measured=-25.0, limit="-23 to -18 dBFS", passed=False)
    report = SimpleNamespace(preset=MasteringPreset.ACX, rules=(rule, bad), passed=False)
    text = view.compliance_markdown([("One", report)])
    assert "**One** — ✗ fails ACX" in text
    assert "| Peak | -3.4 | ≤ -3 dBFS | ✓ pass |" in text and "| RMS | -25.0 | -23 to -18 dBFS | ✗ FAIL |" in text
    assert "none" in view.compliance_markdown([])
