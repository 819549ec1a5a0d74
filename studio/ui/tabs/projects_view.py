"""What the Projects tab shows of a project, as plain values: table rows, choices and Markdown.

No Gradio and no service here: every function reads a ``core.projects.model.Project`` (or what
``ProjectService`` returned) and says it in words, so the tab's panels are all drawn from the same
project and the tests can check the words without a browser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from core.projects.model import Block, BlockStatus, BlockTake, Chapter, Project
from studio.ui.widgets import markdown_text

# The badge each status wears, in the block table, the block panel and the QA report.
BADGES = {
    BlockStatus.NOT_RENDERED: "○ not rendered",
    BlockStatus.RENDERED: "● rendered",
    BlockStatus.CHECKED: "✓ checked",
    BlockStatus.FLAGGED: "⚠ flagged",
}
LOCKED = "locked"  # a word, not 🔒: not every system font has the emoji (headless Chromium showed a box)
CHOSEN = "✓ chosen"
CHAPTER_COLUMNS = ["#", "Chapter", "Blocks", "Rendered", "Checked", "Flagged", "Voice", "QA"]
BLOCK_COLUMNS = ["#", "Text", "Voice", "Status", "Lock", "Takes"]
NO_PROJECT = "No project yet: make one under **New project**, then import a manuscript."
DEMO_QA = (
    "Checked by the **demo** speech recogniser: its words are noise, so nearly every block is flagged "
    "for what it heard. With the real models the same checks mean what they say."
)


def badge(status: BlockStatus) -> str:
    return BADGES[status]


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def counts(blocks: Iterable[Block]) -> dict[BlockStatus, int]:
    tally = dict.fromkeys(BlockStatus, 0)
    for block in blocks:
        tally[block.status] += 1
    return tally


def all_blocks(project: Project) -> list[Block]:
    return [block for chapter in project.chapters for block in chapter.blocks]


def qa_summary(blocks: Sequence[Block]) -> str:
    """One chapter's QA in a few words: "all 4 checked", "1 flagged · 2 checked · 1 to render"."""
    if not blocks:
        return "empty"
    tally = counts(blocks)
    if tally[BlockStatus.CHECKED] == len(blocks):
        return f"all {len(blocks)} checked"
    if tally[BlockStatus.NOT_RENDERED] == len(blocks):
        return "not rendered"
    parts = []
    if tally[BlockStatus.FLAGGED]:
        parts.append(f"{tally[BlockStatus.FLAGGED]} flagged")
    if tally[BlockStatus.CHECKED]:
        parts.append(f"{tally[BlockStatus.CHECKED]} checked")
    if tally[BlockStatus.RENDERED]:
        parts.append(f"{tally[BlockStatus.RENDERED]} unchecked")
    if tally[BlockStatus.NOT_RENDERED]:
        parts.append(f"{tally[BlockStatus.NOT_RENDERED]} to render")
    return " · ".join(parts)


def preview(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def voice_label(project: Project, chapter: Chapter, block: Block) -> str:
    """Who reads the block: its own voice, its chapter's, the narrator, or its dialogue name's casting."""
    if block.speaker and block.voice is None:
        return f"{block.speaker} (cast)"
    return project.voice_of(chapter, block).label


# --- the project ------------------------------------------------------------------


def project_choices(listing: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """The picker's (label, id) pairs from ``ProjectService.list()``."""
    choices = []
    for row in listing:
        label = str(row.get("title") or row["id"])
        if row.get("author"):
            label += f" — {row['author']}"
        choices.append((label, str(row["id"])))
    return choices


def project_header(project: Project | None) -> str:
    if project is None:
        return NO_PROJECT
    blocks = all_blocks(project)
    tally = counts(blocks)
    byline = f" · {markdown_text(project.author)}" if project.author else ""
    lines = [
        f"### {markdown_text(project.title)}{byline}",
        f"Narrator **{markdown_text(project.narrator.label)}** · {plural(len(project.chapters), 'chapter')} · "
        f"{plural(len(blocks), 'block')} · {tally[BlockStatus.CHECKED]} checked · "
        f"{tally[BlockStatus.FLAGGED]} flagged · {tally[BlockStatus.NOT_RENDERED]} to render"
        + (" · has a cover" if project.cover else ""),
    ]
    if not project.chapters:
        lines.append("_No chapters yet: import a manuscript (paste it, or upload .txt, .md or .epub)._")
    return "\n\n".join(lines)


# --- chapters -----------------------------------------------------------------------


def chapter_choices(project: Project | None) -> list[tuple[str, str]]:
    if project is None:
        return []
    return [(f"{i}. {preview(c.title, 50)}", c.id) for i, c in enumerate(project.chapters, 1)]


def chapter_rows(project: Project | None) -> list[list[Any]]:
    if project is None or not project.chapters:
        # One row that says so: Gradio's table keeps its old rows when given none.
        return [["", "No chapters yet", "", "", "", "", "", ""]]
    rows = []
    for i, chapter in enumerate(project.chapters, 1):
        tally = counts(chapter.blocks)
        rendered = len(chapter.blocks) - tally[BlockStatus.NOT_RENDERED]
        voice = chapter.voice.label if chapter.voice else f"{project.narrator.label} (narrator)"
        rows.append(
            [
                i,
                chapter.title,
                len(chapter.blocks),
                rendered,
                tally[BlockStatus.CHECKED],
                tally[BlockStatus.FLAGGED],
                voice,
                qa_summary(chapter.blocks),
            ]
        )
    return rows


# --- blocks -------------------------------------------------------------------------


def block_choices(chapter: Chapter | None) -> list[tuple[str, str]]:
    if chapter is None:
        return []
    return [(f"{i}. {preview(b.text, 50)}", b.id) for i, b in enumerate(chapter.blocks, 1)]


def block_rows(project: Project | None, chapter: Chapter | None) -> list[list[Any]]:
    if project is None or chapter is None or not chapter.blocks:
        return [["", "No blocks in this chapter", "", "", "", ""]]
    return [
        [
            i,
            preview(block.text),
            voice_label(project, chapter, block),
            badge(block.status),
            LOCKED if block.locked else "",
            len(block.takes),
        ]
        for i, block in enumerate(chapter.blocks, 1)
    ]


def stale(block: Block) -> bool:
    """The chosen take was made from other words (the text was edited since)."""
    take = block.chosen_take
    return take is not None and " ".join(take.text.split()) != " ".join(block.text.split())


def block_header(project: Project | None, chapter: Chapter | None, block: Block | None) -> str:
    """The picked block in words: where it is, its badge, voice and takes; why it is flagged."""
    if project is None or chapter is None or block is None:
        return "Pick a block in the table to play, edit or redo it."
    index = chapter.blocks.index(block) + 1
    head = [
        f"**Block {index} of {len(chapter.blocks)}** in _{markdown_text(chapter.title, 80)}_",
        f"**{badge(block.status)}**",
        f"voice {markdown_text(voice_label(project, chapter, block))}",
        plural(len(block.takes), "take"),
    ]
    if block.locked:
        head.append("locked (never re-rendered)")
    lines = [" · ".join(head)]
    if block.status is BlockStatus.FLAGGED:
        lines.append(f"**Flagged:** {markdown_text(block.flag or 'it failed the QA checks', 500)}")
    take = block.chosen_take
    if take is not None and take.qa is not None and take.qa.demo:
        lines.append("_QA by the demo speech recogniser: what it heard is noise._")
    if take is not None and take.qa is not None and take.qa.heard:
        lines.append(f"Heard: “{markdown_text(take.qa.heard, 300)}”")
    if stale(block):
        lines.append("_The text was edited after this take: render the block to hear the new words._")
    elif block.status is BlockStatus.NOT_RENDERED and not block.takes:
        lines.append("_Not rendered yet: press Render (this block) or Redo._")
    return "\n\n".join(lines)


def take_label(number: int, take: BlockTake, chosen: bool) -> str:
    if take.qa is None:
        verdict = "not checked"
    elif take.qa.passed:
        verdict = "passed QA"
    else:
        verdict = "failed QA"
    label = f"Take {number} · seed {take.seed} · {take.seconds:.1f} s · {verdict}"
    return f"{label} · {CHOSEN}" if chosen else label


def take_choices(block: Block | None) -> list[tuple[str, str]]:
    """The block's alternates for the radio, newest last; the chosen one says so."""
    if block is None:
        return []
    return [(take_label(i, t, t.id == block.chosen), t.id) for i, t in enumerate(block.takes, 1)]


# --- reports ------------------------------------------------------------------------


def qa_report_markdown(project: Project | None) -> str:
    """Per chapter: what passed, what is flagged and why (from the blocks' own verdicts)."""
    if project is None:
        return NO_PROJECT
    if not project.chapters:
        return "Nothing to report: the project has no chapters yet."
    demo = any(t.qa is not None and t.qa.demo for b in all_blocks(project) for t in b.takes)
    lines = [DEMO_QA] if demo else []
    for i, chapter in enumerate(project.chapters, 1):
        lines.append(f"**{i}. {markdown_text(chapter.title, 80)}** — {qa_summary(chapter.blocks)}")
        for number, block in enumerate(chapter.blocks, 1):
            if block.status is BlockStatus.FLAGGED:
                reason = markdown_text(block.flag or "failed the QA checks", 300)
                lines.append(f"- ⚠ block {number} (“{markdown_text(preview(block.text, 40))}”): {reason}")
    return "\n\n".join(lines)


def compliance_markdown(compliance: Sequence[tuple[str, Any]]) -> str:
    """The export's compliance report: per chapter, each rule with its measure, limit and pass/fail."""
    if not compliance:
        return "No compliance report: the preset is none (audio as rendered)."
    lines = []
    for title, report in compliance:
        verdict = "✓ passes" if report.passed else "✗ fails"
        lines.append(f"**{markdown_text(str(title), 80)}** — {verdict} {str(report.preset).upper()}")
        lines.append("| Rule | Measured | Limit | Result |\n| --- | --- | --- | --- |")
        lines[-1] += "".join(
            f"\n| {markdown_text(rule.rule)} | {rule.measured:.1f} | {markdown_text(rule.limit)} | "
            f"{'✓ pass' if rule.passed else '✗ FAIL'} |"
            for rule in report.rules
        )
    return "\n\n".join(lines)
