"""Issue 14: a take's chunks and a script's lines as a list in History, redone one by one, and subtitles.

At desktop (1440x900) and phone (390x844) size, against a real server on the demo models (chunks of
at most 50 characters, so a short text makes a take of three chunks). Screenshots:
history-parts-chunk-<size>.png, history-parts-script-<size>.png and history-table-<size>.png,
copied to /tmp/e2e-shots/.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect

from tests.conftest import free_port, make_demo_settings
from tests.e2e.browser import TAKE_TIMEOUT_S

FAST = {"max_seconds": 1}
SHOTS = Path("/tmp/shots/parts")  # this area's screenshots, kept for people to look at


def shoot(studio, flow: str, must_see: dict) -> None:
    path = studio.shoot(flow, must_see)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory, demo_checkpoints):
    from studio.server import serve

    settings = make_demo_settings(
        tmp_path_factory.mktemp("e2e-parts"), demo_checkpoints, port=free_port(), chunk_chars=50
    )
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx, "settings": settings}
    finally:
        app.close()


# [scrollWidth, clientWidth] of the element that scrolls the table sideways (the table's own box if none).
SCROLLER_WIDTHS = """e => {
  const t = e.querySelector('table');
  for (let n = t; n && n !== e.parentElement; n = n.parentElement) {
    const o = getComputedStyle(n).overflowX;
    if (o === 'auto' || o === 'scroll') return [n.scrollWidth, n.clientWidth];
  }
  return [t.offsetWidth, e.clientWidth];
}"""


def pick(studio, text: str) -> None:
    """Clicks the History row that shows ``text`` and waits for its parts to be listed."""
    page = studio.page
    studio.fill("history-search", text[:24])
    page.locator("#history-table span.text:visible", has_text=text[:24]).first.click()
    expect(studio.field("history-picker")).to_have_value(re.compile(re.escape(text[:20])))


def test_redo_one_chunk_with_its_seed_and_download_subtitles(studio, size, e2e_server, e2e_client):
    page = studio.page
    history = e2e_server["ctx"].app.history
    tag = uuid.uuid4().hex[:6]
    text = f"Chunk one {tag} is here. The second chunk comes next. And a third one ends it."
    e2e_client.predict(text=text, speaker="Ryan", size="0.6B", seed=40, **FAST, api_name="/custom_voice")
    original = history.list()[0]
    assert len(original.parts) == 3

    studio.tab("History")
    pick(studio, text)
    parts = page.locator("#history-parts")
    expect(parts).to_contain_text("The second chunk comes next.")
    expect(parts).to_contain_text("And a third one ends it.")
    part = studio.field("history-part-picker")
    expect(part).to_have_value(re.compile(r"^Chunk 1 ·"))
    # Pick the second chunk: its own audio plays in the part player.
    part.click()
    page.get_by_role("option", name=re.compile(r"^Chunk 2 ·")).click()
    expect(part).to_have_value(re.compile(r"^Chunk 2 ·"))
    expect(page.locator("#history-part-audio #duration")).to_have_text(re.compile(r"^\s*0:0[1-9]"))

    same = page.locator("#history-part-same")
    expect(same).to_be_enabled()
    studio.dismiss_toasts()
    same.click()
    message = page.locator("#history-part-message")
    expect(message).to_contain_text("Part 2 made again with its own seed (seed 41)", timeout=TAKE_TIMEOUT_S * 1000)
    expect(message).to_contain_text("✓ Identical to the original part.")
    expect(message).to_contain_text(f"the original {original.id} stays")
    assert not studio.error_toasts(), studio.error_toasts()
    assert not studio.error_pills(), studio.error_pills()
    derived = history.list()[0]
    assert derived.request["derived_from"] == original.id and len(derived.parts) == 3
    assert history.get(original.id)  # the original is still there
    # The new take is picked, with its parts listed.
    expect(studio.field("history-picker")).to_have_value(re.compile(re.escape(text[:20])))
    expect(page.locator("#history-details")).to_contain_text(f"Derived from take {original.id} (part 2 redone)")

    # Subtitles for the picked take: SRT and WebVTT downloads, timed from the chunks.
    with page.expect_download() as download:
        page.locator("#history-srt").click()
    srt = open(download.value.path(), encoding="utf-8").read()
    assert download.value.suggested_filename == f"{derived.id}.srt"
    assert srt.startswith("1\n00:00:00,000 --> ") and "\n3\n" in srt and "The second chunk comes next." in srt
    with page.expect_download() as download:
        page.locator("#history-vtt").click()
    assert open(download.value.path(), encoding="utf-8").read().startswith("WEBVTT\n\n00:00:00.000 --> ")

    shoot(
        studio,
        "history-parts-chunk",
        {
            "table": page.locator("#history-table"),
            "parts": parts,
            "part picker": part,
            "part player": page.locator("#history-part-audio"),
            "redo same": same,
            "redo new": page.locator("#history-part-new"),
            "delete part": page.locator("#history-part-delete"),
            "message": message,
            "subtitles": page.locator("#history-srt"),
        },
    )


def test_redo_one_script_line_with_a_new_seed(studio, size, e2e_server, e2e_client):
    page = studio.page
    history = e2e_server["ctx"].app.history
    tag = uuid.uuid4().hex[:6]
    script = f"Maya: Good morning {tag}, Tom.\nTom: Morning, Maya!\nMaya: Coffee?"
    e2e_client.predict(
        script=script, casting="Maya = Ryan\nTom = Aiden", size="0.6B", seed=7, **FAST, api_name="/script"
    )
    original = history.list()[0]
    assert [p.speaker for p in original.parts] == ["Maya", "Tom", "Maya"]

    studio.tab("History")
    pick(studio, f"Maya: Good morning {tag}")
    parts = page.locator("#history-parts")
    expect(parts).to_contain_text("Tom: Morning, Maya!")
    part = studio.field("history-part-picker")
    part.click()
    page.get_by_role("option", name=re.compile(r"^Line 2 · Tom")).click()
    expect(part).to_have_value(re.compile(r"^Line 2 · Tom"))
    new = page.locator("#history-part-new")
    expect(new).to_be_enabled()
    studio.dismiss_toasts()
    new.click()
    message = page.locator("#history-part-message")
    expect(message).to_contain_text("Part 2 made again with a new seed", timeout=TAKE_TIMEOUT_S * 1000)
    assert not studio.error_toasts(), studio.error_toasts()
    derived = history.list()[0]
    assert derived.request["derived_from"] == original.id
    assert derived.parts[1].seed != original.parts[1].seed
    assert [p.seed for i, p in enumerate(derived.parts) if i != 1] == [original.parts[0].seed, original.parts[2].seed]
    expect(parts).to_contain_text(str(derived.parts[1].seed))
    shoot(
        studio,
        "history-parts-script",
        {"parts": parts, "part picker": part, "redo new": new, "message": message},
    )


def test_history_table_fits_or_scrolls_and_nothing_picked_disables_the_actions(studio, size, e2e_server, e2e_client):
    page = studio.page
    tag = uuid.uuid4().hex[:6]
    e2e_client.predict(
        text=f"Table {tag}.",
        description="A warm, mature male narrator in his fifties with a rich baritone, speaking slowly and "
        "clearly with gentle warmth, like reading a bedtime story.",
        seed=3,
        **FAST,
        api_name="/design",
    )
    studio.tab("History")
    table = page.locator("#history-table")
    expect(table).to_contain_text("Warm audiobook narrator (preset)")  # the preset's name, not its description
    studio.fill("history-search", tag)
    expect(table).to_contain_text(f"Table {tag}.")
    # The table scrolls inside itself on a phone; the page never scrolls sideways (checked by shoot()).
    widths = table.evaluate(SCROLLER_WIDTHS)
    if size == "phone":
        assert widths[0] > widths[1], f"the table should scroll sideways on a phone: {widths}"
    shoot(studio, "history-table", {"table": table, "search": studio.field("history-search")})

    # Nothing picked: Regenerate, Delete, the part buttons and the subtitle downloads cannot be pressed.
    studio.fill("history-search", f"{tag}-nothing")
    expect(table).to_contain_text("No take matches this search.")
    for elem_id in (
        "history-regenerate",
        "history-delete",
        "history-part-same",
        "history-part-new",
        "history-part-delete",
        "history-srt",
        "history-vtt",
    ):
        expect(page.locator(f"#{elem_id}")).to_be_disabled()
