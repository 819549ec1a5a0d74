"""Issue 14: the creator workflow in a real browser, one test per defect a creator hit.

Each flow runs at desktop (1440x900) and phone (390x844) size against a real server on the demo
models and leaves a checked screenshot (<flow>-<size>.png, copied to /tmp/e2e-shots/):

- history-regenerate: search filters as you type, a clicked row picks that take (not the newest),
  and "Regenerate with the same settings" makes it again without an error.
"""

from __future__ import annotations

import re
import threading
import uuid

import pytest

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect

from tests.e2e.browser import TAKE_TIMEOUT_S

FAST = {"max_seconds": 1}


def rows_of(table):
    """The rows a Gradio table shows (it draws them as a virtual list: one first-column cell each)."""
    return table.locator('[data-testid^=cell-][data-col="0"]')


def test_history_search_row_pick_and_regenerate(studio, size, e2e_server, e2e_client):
    page = studio.page
    history = e2e_server["ctx"].app.history
    tag = f"hx{uuid.uuid4().hex[:6]}"
    older, newer = f"Older {tag} line, {size}.", f"Newer {tag} line, {size}."
    for text, seed in ((f"Unrelated take, {size}.", 10), (older, 11), (newer, 12)):
        e2e_client.predict(text=text, description="A calm voice.", seed=seed, **FAST, api_name="/design")

    studio.tab("History")
    table = page.locator("#history-table")
    expect(table).to_contain_text(f"Unrelated take, {size}.")
    # Defect 3: the table filters as you type, no Enter.
    studio.fill("history-search", tag)
    expect(table).to_contain_text(newer)
    expect(table).to_contain_text(older)
    expect(rows_of(table)).to_have_count(2)
    expect(table).not_to_contain_text("Unrelated take")
    # Plain mode names and local time, not "voice_design" and a UTC stamp.
    expect(table).to_contain_text("Design")
    expect(table).not_to_contain_text("voice_design")

    # Defect 2: clicking the older row picks that take: picker, player and details follow.
    picker = studio.field("history-picker")
    expect(picker).to_have_value(re.compile(re.escape(newer[:30])))  # the newest is picked first
    table.locator("span.text:visible", has_text=older).first.click()
    expect(picker).to_have_value(re.compile(re.escape(older[:30])))
    details = page.locator("#history-details")
    expect(details).to_contain_text(older)
    expect(details).to_contain_text("Seed: 11")
    expect(details).to_contain_text("Design")
    studio.assert_has_audio("history-audio")

    # Defect 1: Regenerate works, on the picked (older) take, and nothing turns into an Error pill.
    regenerate = page.locator("#history-regenerate")
    expect(regenerate).to_be_enabled()
    studio.dismiss_toasts()
    regenerate.click()
    message = page.locator("#history-message")
    expect(message).to_contain_text("Regenerated as take", timeout=TAKE_TIMEOUT_S * 1000)
    expect(message).to_contain_text("with seed 11. ✓ Identical to the original.")
    assert not studio.error_toasts(), studio.error_toasts()
    assert not studio.error_pills(), studio.error_pills()
    newest = history.list()[0]
    assert newest.text == older and newest.seed == 11, (newest.text, newest.seed)
    expect(picker).to_have_value(re.compile(re.escape(older[:30])))
    expect(rows_of(table)).to_have_count(3)
    studio.shoot(
        "history-regenerate",
        {
            "search": studio.field("history-search"),
            "table": table,
            "picker": picker,
            "player": page.locator("#history-audio"),
            "regenerate": regenerate,
            "message": message,
            "details": details,
        },
    )

    # Nothing matches: nothing is picked, and Regenerate and Delete cannot be pressed.
    studio.fill("history-search", f"{tag}-nothing-matches")
    expect(rows_of(table)).to_have_count(1)
    expect(table).to_contain_text("No take matches this search.")
    expect(regenerate).to_be_disabled()
    expect(page.locator("#history-delete")).to_be_disabled()


def test_generate_while_a_take_runs_says_so(studio, size, e2e_server):
    """Defect 5: a second Generate during a take was refused silently (a 422 in the log). The
    button now says a take is being made, cannot be pressed again, and comes back after.
    The real demo model is held at its first chunk until the test has looked."""
    app = e2e_server["ctx"].app
    page = studio.page
    loaded = app.models.get(app.catalog.resolve("design", None))
    real = loaded.model.generate_voice_design
    go = threading.Event()

    def held(**kwargs):
        go.wait(TAKE_TIMEOUT_S)
        return real(**kwargs)

    loaded.model.generate_voice_design = held
    try:
        studio.fill("design-text", f"A take to click twice on, {size}.")
        studio.fill("design-description", "A calm voice.")
        studio.set_max_length(1)
        button = page.locator("#design-generate")
        label = button.inner_text()
        studio.recheck()
        button.click()
        expect(button).to_have_text(re.compile(r"Generating… \(this tab's take is being made\)"))
        expect(button).to_be_disabled()
        studio.shoot("generate-busy", {"generate": button, "take": page.locator("#design-audio")})
    finally:
        go.set()
        loaded.model.generate_voice_design = real
    expect(page.locator("#design-summary")).to_contain_text("seed", timeout=TAKE_TIMEOUT_S * 1000)
    expect(button).to_have_text(label)
    expect(button).to_be_enabled()
    assert not studio.error_toasts(), studio.error_toasts()


def test_phone_tab_strip_names_the_open_tab(studio, size):
    """Defect 6: on a phone the strip read "Voice Design" whichever tab was open, and the footer
    had a stray "· Settings"."""
    page = studio.page
    strip = page.locator(".tab-wrapper").first
    for name in ("History", "Voice Library", "Voice Clone"):
        studio.tab(name)
        if size == "phone":
            menu = page.locator(".overflow-menu > button").first
            expect(menu).to_have_attribute("data-open-tab", name)
            # What a person sees: the pseudo-element's text, drawn next to the "⋯".
            shown = menu.evaluate("e => getComputedStyle(e, '::before').content")
            assert shown.strip('"') == name, shown
        else:
            expect(strip.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")
    if size == "phone":
        dividers = page.locator("footer .divider").filter(visible=True)
        expect(dividers).to_have_count(0)
    studio.tab("Voice Library")
    table = page.locator("#library-table")
    studio.shoot("phone-tab-label", {"tab strip": strip, "library": table})
