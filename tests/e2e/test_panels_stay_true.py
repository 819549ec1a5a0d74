"""Issue 23, first half: every panel shows the take, the job and the library as they are now.

- history: picking another take's row refills the part player with that take's part (it kept the
  previous take's); a search typed fast is not refused with a traceback; on a phone the table shows
  When and Text without scrolling, and the search box's placeholder fits (desktop and phone).
- stop-resume: Stop in Custom Voice offers Resume; Resume from "Running & recent" leaves no stale
  "Stopped" row to resume twice; the lexicon's regex group (\\1) is used and a new row shows at
  once; a reload keeps the open tab and the text typed.
- script: the voices list names the library's voices (it said "none yet"), auto-cast gives Maya a
  woman's voice, and the progress line counts the lines made and names the line being made.
Every flow ends by checking the server's log: no traceback for an ordinary refusal, no HTTP 422.
Screenshots: <flow>-<size>.png in the session folder and /tmp/e2e-shots/.
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

from tests.conftest import SPEECH_TEXT
from tests.e2e.browser import TAKE_TIMEOUT_S, Studio

# Run after the rest, in one process (scripts/test.sh): a Stop lands part-way through takes being made.
pytestmark = pytest.mark.serial

# How wide a text box's placeholder is, against the room the box gives it.
PLACEHOLDER_FITS = """e => {
  const style = getComputedStyle(e);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = style.font;
  const room = e.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return [ctx.measureText(e.placeholder).width, room];
}"""
SHOTS = Path("/tmp/shots/panels")  # a copy for people: other runs empty /tmp/e2e-shots
LONG = " ".join(f"Sentence number {n} of a long take." for n in range(1, 9))


def shoot(studio: Studio, flow: str, must_see: dict) -> Path:
    path = studio.shoot(flow, must_see)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def clean_log(text: str, recwarn) -> None:
    """The server's output holds no traceback (a refusal is one line) and no "422" warning (Gradio
    read Starlette's deprecated HTTP_422_UNPROCESSABLE_ENTITY on every queued event)."""
    about_422 = [str(w.message) for w in recwarn if "422" in str(w.message)]
    assert not about_422, about_422[:3]
    assert "Traceback" not in text, text[text.index("Traceback") :][:3000]
    assert "is not in the list of choices" not in text
    assert not re.search(r"\b422\b", text), [line for line in text.splitlines() if re.search(r"\b422\b", line)]


def test_history_follows_the_picked_take(studio, size, e2e_client, capfd, recwarn):
    page = studio.page
    tag = uuid.uuid4().hex[:6]
    # Two one-chunk takes of different lengths (the demo models always run to the length cap).
    long_text, short_text = f"Longer {tag} take, {size}.", f"Shorter {tag} take, {size}."
    e2e_client.predict(text=long_text, speaker="Ryan", size="0.6B", max_seconds=2, api_name="/custom_voice")
    e2e_client.predict(text=short_text, speaker="Ryan", size="0.6B", max_seconds=1, api_name="/custom_voice")
    capfd.readouterr()  # the log from here on

    studio.tab("History")
    table = page.locator("#history-table")
    search = studio.field("history-search")
    # A search typed fast: each key replaces the picker's choices while the last pick is on its way.
    search.click()
    search.press_sequentially(tag, delay=15)
    expect(table).to_contain_text(long_text)
    expect(table).to_contain_text(short_text)
    part_player = page.locator("#history-part-audio")
    # Major 1: the part player holds the picked take's part, row after row.
    for text, length in ((long_text, "0:02"), (short_text, "0:01"), (long_text, "0:02")):
        table.locator("span.text:visible", has_text=text).first.click()
        expect(studio.field("history-picker")).to_have_value(re.compile(re.escape(text[:12])))
        expect(studio.field("history-part-picker")).to_have_value(re.compile(r"^Chunk 1 ·"))
        expect(part_player.locator("#duration")).to_have_text(re.compile(rf"^\s*{length}\s*$"))
    if size == "phone":
        # When and Text are in view before any scrolling; the rest scrolls sideways.
        for header in ("When", "Text"):
            cell = table.locator("thead").get_by_text(header, exact=True).first
            box = cell.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 390, f"{header} is cut off: {box}"
    width, room = search.evaluate(PLACEHOLDER_FITS)
    assert width <= room, f"the search placeholder needs {width:.0f}px and has {room:.0f}px"
    shoot(
        studio,
        "panels-history",
        {"table": table, "search": search, "part": part_player, "picker": studio.field("history-picker")},
    )
    clean_log("".join(capfd.readouterr()), recwarn)


@pytest.mark.parametrize("size", ["desktop"])
def test_stop_resume_and_lexicon_stay_true(studio, e2e_server, long_takes, capfd, recwarn):
    page = studio.page
    capfd.readouterr()
    # Major 2: Stop part-way offers Resume, every time.
    studio.tab("Custom Voice")
    progress = page.locator("#custom-progress")
    for attempt in (1, 2):
        studio.fill("custom-text", f"Stop try {attempt}. {LONG}")
        studio.set_max_length(2)
        studio.recheck()
        page.locator("#custom-generate").click()
        expect(progress).to_contain_text(re.compile(r"Chunk [2-8] of 9"), timeout=TAKE_TIMEOUT_S * 1000)
        page.locator("#custom-stop").click()
        expect(progress).to_contain_text("Press Resume", timeout=TAKE_TIMEOUT_S * 1000)
        expect(page.locator("#custom-resume")).to_be_visible()
    # Major 3: Resume from "Running & recent": the stopped row is resumed once, and says so.
    studio.accordion("Running & recent")
    pick = studio.field("jobs-pick")
    studio.choose("jobs-pick", "Stopped")
    chosen = pick.input_value()
    page.locator("#jobs-resume").click()
    expect(page.locator("#jobs-progress")).to_contain_text(
        re.compile(r"Done · .* is in History"), timeout=TAKE_TIMEOUT_S * 1000
    )
    listing = page.locator("#jobs-list")
    expect(listing).to_contain_text("Resumed ·", timeout=10_000)
    # The tab that stopped it no longer says "Press Resume", and offers no Resume of its own.
    expect(progress).to_contain_text("Resumed: Done", timeout=30_000)
    expect(page.locator("#custom-resume")).to_be_hidden()
    # Only the other try's stopped take is left to resume; this one's row no longer offers it.
    pick.click()
    options = page.locator("ul.options li[role=option]").filter(visible=True)
    expect(options.filter(has_text=re.compile(r"Stop try 2"))).to_have_count(0 if "try 2" in chosen else 1)
    expect(options.filter(has_text=re.compile(r"Stop try 1"))).to_have_count(0 if "try 1" in chosen else 1)
    page.keyboard.press("Escape")
    shoot(studio, "panels-resumed", {"list": listing, "pick": pick})
    # Stop from Running & recent shows "Stopped" at once (it said "Stopping…" until the timer or a
    # Follow caught up).
    studio.fill("custom-text", f"Stop try 3. {LONG}")
    page.locator("#custom-generate").click()
    expect(progress).to_contain_text(re.compile(r"Chunk [2-8] of 9"), timeout=TAKE_TIMEOUT_S * 1000)
    studio.choose("jobs-pick", "Stop try 3")
    page.locator("#jobs-stop").click()
    expect(page.locator("#jobs-progress")).to_contain_text(re.compile(r"Stopped · .*Stop try 3"), timeout=10_000)

    # Lexicon: a regex's group is used, and the new row shows without a reload.
    studio.tab("Voice Library")
    studio.accordion("Pronunciation lexicon")
    studio.fill("lexicon-pattern", r"\bEp\.? ?(\d+)")
    studio.fill("lexicon-spoken", r"episode \1")
    page.locator("#lexicon-regex input").check()
    page.locator("#lexicon-add").click()
    expect(page.locator("#lexicon-status")).to_contain_text("Added")
    expect(page.locator("#lexicon-table span.text:visible", has_text="episode \\1")).to_be_visible()
    studio.fill("lexicon-try", "In Ep. 4 we meet.")
    page.locator("#lexicon-try-button").click()
    expect(page.locator("#lexicon-try-result")).to_contain_text("In episode 4 we meet.")
    shoot(studio, "panels-lexicon", {"table": page.locator("#lexicon-table")})
    e2e_server["ctx"].app.synthesis.lexicon.save([])  # the other flows speak without it

    # A reload keeps the open tab and the text typed.
    studio.tab("Custom Voice")
    typed = f"Kept over a reload {uuid.uuid4().hex[:6]}."
    studio.fill("custom-text", typed)
    studio.tab("Voice Library")
    page.reload()
    page.get_by_role("tab").first.wait_for()
    expect(page.locator("#library-count")).to_be_visible()
    studio.tab("Custom Voice")
    expect(studio.field("custom-text")).to_have_value(typed)
    clean_log("".join(capfd.readouterr()), recwarn)


def test_script_tab_knows_the_library_and_the_names(
    browser, e2e_server, e2e_client, shots_dir, speech_wav, capfd, recwarn
):
    from gradio_client import handle_file

    name = f"Narrator voice {uuid.uuid4().hex[:6]}"
    # Saved before the page opens: the list was made once, when the studio started.
    e2e_client.predict(
        reference=handle_file(str(speech_wav)), transcript=SPEECH_TEXT, name=name, api_name="/voice_save"
    )
    capfd.readouterr()
    studio = Studio.open(browser, e2e_server["url"], "desktop", shots_dir)
    try:
        page = studio.page
        studio.tab("Script")
        studio.accordion("Available voices and casting syntax")
        voices = page.locator("#script-voices-list")
        expect(voices).to_contain_text(name)
        expect(voices).not_to_contain_text("none yet")
        # Auto-cast by name: Maya a woman's voice, Tom a man's.
        studio.fill("script-text", "Maya: Good morning, Tom.\nTom: Morning, Maya!\nMaya: Coffee?")
        page.locator("#script-fill").click()
        casting = studio.field("script-casting")
        expect(casting).to_have_value(re.compile(r"Maya = (Vivian|Serena|Ono Anna|Sohee)"))
        expect(casting).to_have_value(re.compile(r"Tom = (Ryan|Aiden|Uncle Fu|Dylan|Eric)"))
        studio.filled.append((casting, casting.input_value()))
        studio.set_max_length(1)
        page.locator("#script-render").click()
        progress = page.locator("#script-progress")
        # Progress counts the lines made ("1 of 3 lines made"), never "Line 2 of 3" before line 1.
        expect(progress).to_contain_text(re.compile(r"\d of 3 lines made"), timeout=TAKE_TIMEOUT_S * 1000)
        expect(page.locator("#script-summary")).to_contain_text("3 lines", timeout=TAKE_TIMEOUT_S * 1000)
        expect(page.locator("#script-summary")).to_contain_text("2 voices")
        shoot(studio, "panels-script", {"voices": voices, "casting": casting, "progress": progress})
    finally:
        studio.page.close()
    clean_log("".join(capfd.readouterr()), recwarn)
