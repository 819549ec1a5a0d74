"""Issue 24: the Projects tab in a real browser, on the demo models, at desktop and phone size.

A creator makes a project, imports a tiny Markdown manuscript (two chapters), renders it, plays a
block, edits one and re-renders it, picks the older take back, sees a flagged block (the demo
speech recogniser hears noise, so QA flags) and exports the M4B with the compliance report.
Switching project, chapter and block redraws every panel (the bugs of the last round hid there).
Screenshots: projects-rendered-<size>.png, projects-block-<size>.png, projects-export-<size>.png.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect

from tests.e2e.browser import TAKE_TIMEOUT_S

BOOK = """## Harbour

The lamp was lit at dusk.

The keeper climbed the stairs.

## Storm

Waves broke on the rocks.
"""
OTHER = "## Elsewhere\n\nA different book entirely."


@pytest.fixture
def short_blocks(e2e_server):
    """Blocks of a fraction of a second: demo models never stop early, so a cap keeps renders quick."""
    projects = e2e_server["ctx"].projects
    saved = projects.max_new_tokens
    projects.max_new_tokens = 12
    yield
    projects.max_new_tokens = saved


def cell(studio, table: str, text: str):
    return studio.page.locator(f"#projects-{table} span.text:visible", has_text=text).first


def wait_render(studio) -> str:
    """Waits for the render job started by the last click to end; returns the progress line."""
    page = studio.page
    stop = page.locator("#projects-stop")
    try:
        stop.wait_for(state="visible", timeout=5_000)
    except Exception:  # a tiny render may be over before the button shows
        pass
    deadline = time.monotonic() + TAKE_TIMEOUT_S
    while stop.is_visible():
        assert not studio.error_toasts(), f"the render failed: {studio.error_toasts()}"
        assert time.monotonic() < deadline, "the render did not end"
        page.wait_for_timeout(250)
    expect(page.locator("#projects-render")).to_be_enabled()
    assert not studio.error_toasts(), f"the render failed: {studio.error_toasts()}"
    return page.locator("#projects-progress").inner_text()


def test_manuscript_to_export_with_every_panel_following(studio, size, e2e_server, e2e_client, short_blocks):
    page = studio.page
    service = e2e_server["ctx"].projects
    title = f"Lamp {size}"
    studio.tab("Projects")

    # Create and import.
    studio.accordion("New project")
    studio.fill("projects-title", title)
    page.locator("#projects-create").click()
    expect(page.locator("#projects-header")).to_contain_text(title)
    # Made: the form folds away and Import manuscript opens by itself.
    expect(page.locator("#projects-import-panel button.label-wrap").first).to_have_class(re.compile(r"\bopen\b"))
    studio.fill("projects-paste", BOOK)
    page.locator("#projects-import").click()
    expect(page.locator("#projects-note")).to_contain_text("Imported 2 chapter(s) with 3 block(s)")
    expect(cell(studio, "chapters", "Storm")).to_be_visible()
    expect(cell(studio, "blocks", "The keeper climbed")).to_be_visible()
    pid = next(p["id"] for p in service.list() if p["title"] == title)

    # Render the whole project: every block gets a take, the demo ASR flags what it heard.
    page.locator("#projects-render").click()
    assert "Done" in wait_render(studio)
    project = service.get(pid)
    assert all(b.takes for c in project.chapters for b in c.blocks)
    expect(cell(studio, "blocks", "⚠ flagged")).to_be_visible()
    expect(page.locator("#projects-block-info")).to_contain_text("Flagged:")
    studio.shoot(
        "projects-rendered", {"blocks": page.locator("#projects-blocks"), "player": page.locator("#projects-player")}
    )

    # Play the second block's chosen take (its row picks it).
    cell(studio, "blocks", "The keeper climbed").click()
    expect(studio.field("projects-block-text")).to_have_value("The keeper climbed the stairs.")
    studio.assert_has_audio("projects-player")
    studio.play("projects-player")

    # Edit it: only that block is marked for re-rendering, then Redo renders it.
    studio.fill("projects-block-text", "The keeper climbed the long stairs.")
    page.locator("#projects-save").click()
    expect(page.locator("#projects-note")).to_contain_text("Only this block")
    expect(page.locator("#projects-block-info")).to_contain_text("edited after this take")
    statuses = {b.text: b.status.value for b in service.get(pid).chapters[0].blocks}
    assert statuses["The keeper climbed the long stairs."] == "not rendered"
    assert statuses["The lamp was lit at dusk."] != "not rendered"
    page.locator("#projects-redo-same").click()
    assert "Done" in wait_render(studio)
    edited = service.get(pid).chapters[0].blocks[1]
    assert edited.status.value != "not rendered" and edited.chosen_take.text == edited.text
    expect(page.locator("#projects-block-info")).not_to_contain_text("edited after this take")

    # An alternate: Redo the first block with a new seed, then choose its first take back.
    cell(studio, "blocks", "The lamp was lit").click()
    expect(studio.field("projects-block-text")).to_have_value("The lamp was lit at dusk.")
    page.locator("#projects-redo-new").click()
    assert "Done" in wait_render(studio)
    block = service.get(pid).chapters[0].blocks[0]
    assert len(block.takes) >= 2 and block.chosen == block.takes[-1].id
    assert block.takes[0].seed != block.takes[-1].seed
    takes = page.locator("#projects-takes label")
    expect(takes).to_have_count(len(block.takes))
    expect(takes.last).to_contain_text("✓ chosen")
    takes.first.click()
    expect(page.locator("#projects-player")).to_contain_text("Alternate take")
    page.locator("#projects-choose").click()
    expect(takes.first).to_contain_text("✓ chosen")
    expect(takes.last).not_to_contain_text("✓ chosen")
    assert service.get(pid).block(block.id)[1].chosen == block.takes[0].id
    # Locked: the table says so.
    page.locator("#projects-lock input").check()
    expect(cell(studio, "blocks", "locked")).to_be_visible()
    assert service.get(pid).block(block.id)[1].locked
    studio.shoot(
        "projects-block", {"takes": page.locator("#projects-takes"), "text": page.locator("#projects-block-text")}
    )

    # QA report and export.
    studio.accordion("QA report")
    expect(page.locator("#projects-qa-report")).to_contain_text("demo")
    studio.accordion("Export")
    page.locator("#projects-export").click()
    files = page.locator("#projects-files")
    deadline = time.monotonic() + TAKE_TIMEOUT_S
    while not files.is_visible():
        assert not studio.error_toasts(), f"the export failed: {studio.error_toasts()}"
        assert time.monotonic() < deadline, "no export"
        page.wait_for_timeout(250)
    expect(files).to_contain_text(".m4b")
    expect(page.locator("#projects-compliance")).to_contain_text("Harbour")
    expect(page.locator("#projects-compliance")).to_contain_text(re.compile("pass|FAIL"))
    studio.shoot("projects-export", {"files": files, "report": page.locator("#projects-compliance")})

    # Switching: another project (made through the API) redraws every panel, and back again.
    other = e2e_client.predict(title=f"Other {size}", text=OTHER, api_name="/project_create")
    page.locator("#projects-refresh").click()
    studio.choose("projects-pick", f"Other {size}")
    expect(page.locator("#projects-header")).to_contain_text(f"Other {size}")
    expect(cell(studio, "chapters", "Elsewhere")).to_be_visible()
    expect(cell(studio, "blocks", "A different book")).to_be_visible()
    expect(studio.field("projects-block-text")).to_have_value("A different book entirely.")
    expect(page.locator("#projects-block-info")).to_contain_text("Not rendered yet")
    expect(page.locator("#projects-takes label")).to_have_count(0)
    expect(page.locator("#projects-player [data-testid=download-link]")).to_have_count(0)
    expect(files).to_be_hidden()  # the first project's export is not offered for this one
    expect(page.locator("#projects-qa-report")).to_contain_text("Elsewhere")
    studio.choose("projects-pick", title)
    expect(cell(studio, "chapters", "Harbour")).to_be_visible()
    # Another chapter: its blocks, its first block's text and player.
    studio.choose("projects-chapter", "2. Storm")
    expect(cell(studio, "blocks", "Waves broke")).to_be_visible()
    expect(studio.field("projects-block-text")).to_have_value("Waves broke on the rocks.")
    expect(page.locator("#projects-block-info")).to_contain_text("Block 1 of 1")
    studio.assert_has_audio("projects-player")
    # Another block through its picker.
    studio.choose("projects-chapter", "1. Harbour")
    studio.choose("projects-block", "1. The lamp")
    expect(studio.field("projects-block-text")).to_have_value("The lamp was lit at dusk.")
    expect(page.locator("#projects-takes label")).to_have_count(len(block.takes))
    expect(page.locator("#projects-lock input")).to_be_checked()
    e2e_client.predict(project_id=other["id"], api_name="/project_get")  # still there
