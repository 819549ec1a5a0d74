"""Driving the studio in a real browser the way a creator does, with waits that hold on a busy machine.

`Studio` wraps one Playwright page: open a tab (the phone's overflow menu included), fill a field,
open an accordion, generate a take and wait for it, check a player really has audio, and take a
checked screenshot. Every wait is for a visible outcome (a summary line, a hidden status tracker,
a toast), never a fixed sleep; the only pauses are short settles before re-reading a value.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import soundfile as sf
from PIL import Image, ImageStat
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
TIMEOUT_MS = 30_000  # one UI step; a busy 2-core CI machine can be slow to settle
# Every `expect` waits as long as a step may take. Set here, on import, so a file run alone
# waits as long as the whole suite does (two flow modules used to set it for everyone).
expect.set_options(timeout=TIMEOUT_MS)
TAKE_TIMEOUT_S = 180  # one demo take, model load included, on a busy machine
# An element each tab shows, to know the tab is open.
TAB_MARKERS = {
    "Voice Design": "design-generate",
    "Custom Voice": "custom-generate",
    "Voice Clone": "clone-generate",
    "Voice Library": "library-count",
    "Train a voice": "train-ds-build",
    "History": "history-table",
    "Models": "models-device",
    "Script": "script-render",
    "Projects": "projects-render",
}
HUMAN_SHOTS = Path("/tmp/e2e-shots")  # a copy of every screenshot, for people to look at

# Long enough for a take to have a waveform, short enough to keep demo takes quick:
# demo models never stop early, so every take runs to its length cap.
MAX_SECONDS = 2
# No status tracker outside a component is showing: the app-level loader is gone.
APP_READY_JS = """() => ![...document.querySelectorAll('[data-testid=status-tracker]')]
    .some(e => !e.classList.contains('hide') && !e.closest('.block'))"""
NOT_ZERO_TIME = re.compile(r"^\s*(?!0:00\s*$)\d+:\d\d\s*$")  # a player's time readout past 0:00

# Appends to window.__shown[id] each change of the element between shown and hidden.
WATCH_SHOWN_JS = """id => {
  window.__shown = window.__shown || {};
  const state = () => { const el = document.getElementById(id); return !!el && el.checkVisibility(); };
  const seen = [state()];
  window.__shown[id] = seen;
  new MutationObserver(() => { const now = state(); if (now !== seen[seen.length - 1]) seen.push(now); })
    .observe(document.body, {attributes: true, childList: true, subtree: true});
}"""


@dataclass
class Shot:
    path: Path
    flow: str
    size: str


SHOTS: list[Shot] = []  # every screenshot this session took, for the final check


def blank_reason(path: Path) -> str | None:
    """Why a screenshot looks blank (one flat colour, or next to no detail), or None if it has content."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 16)
        count = len(colours) if colours is not None else 1 << 16
        spread = ImageStat.Stat(rgb.convert("L")).stddev[0]
    if count < 64:
        return f"only {count} distinct colours"
    if spread < 5:
        return f"almost no contrast (grey-level spread {spread:.1f})"
    return None


@dataclass
class Studio:
    page: Page
    size: str
    shots_dir: Path
    filled: list[tuple[Locator, str]] = dc_field(default_factory=list)  # re-checked before an action

    # --- navigation ------------------------------------------------------

    @classmethod
    def open(cls, browser, url: str, size: str, shots_dir: Path) -> Studio:
        width, height = SIZES[size]
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_role("tab").first.wait_for()
        # The app's own loader (a translucent cover over the whole page) stays until every
        # component's code is in; the tab bar can show before that, and a click then lands on the
        # cover (a CI run lost a test to it). Typing into fields works through it, so wait here.
        page.wait_for_function(APP_READY_JS, timeout=2 * TIMEOUT_MS)
        studio = cls(page, size, shots_dir)
        studio.settle()
        return studio

    def settle(self) -> None:
        """Two animation frames and an idle moment: lets pending renders and handlers run."""
        self.page.evaluate("""() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
            () => (window.requestIdleCallback || setTimeout)(() => done(), {timeout: 2000}))))""")

    def tab(self, name: str) -> None:
        """Opens a tab from the tab bar, or from the list of the other tabs on a narrow window.

        Retried until the tab's content shows: right after a load or a resize the bar may still be
        laying out (a tab shown in the bar moves into the overflow menu, and the click misses).
        """
        page = self.page
        marker = page.locator(f"#{TAB_MARKERS[name]}")
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not marker.is_visible():
            assert time.monotonic() < deadline, f"could not open the {name} tab"
            try:
                tab = page.get_by_role("tab", name=name)
                listed = page.locator(".overflow-dropdown button", has_text=name)  # on a phone: always shown
                if tab.count() and tab.first.is_visible():
                    tab.first.click(timeout=5_000)
                elif listed.count() and listed.first.is_visible():
                    listed.first.click(timeout=5_000)
                else:
                    page.locator(".overflow-menu > button").click(timeout=5_000)
                    page.locator(".overflow-dropdown button", has_text=name).click(timeout=5_000)
                marker.wait_for(state="visible", timeout=5_000)
            except PlaywrightError:
                continue
        self.settle()

    def accordion(self, label: str) -> None:
        """Opens the visible accordion called `label` (no-op when it is open)."""
        button = (
            self.page.locator("button.label-wrap")
            .filter(visible=True)
            .filter(has=self.page.locator("span", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
            .first
        )
        if "open" not in (button.get_attribute("class") or "").split():
            # Mid-window first: at the bottom edge the sticky action bar lies over it, as it would
            # for a person, who scrolls a little before clicking.
            button.evaluate("e => e.scrollIntoView({block: 'center'})")
            button.click()
        expect(button).to_have_class(re.compile(r"\bopen\b"))

    # --- input -----------------------------------------------------------

    def field(self, target: str | Locator) -> Locator:
        """The text/number box of the component with this elem_id (a locator is taken as the box)."""
        if isinstance(target, str):
            return self.page.locator(f"#{target}").locator("textarea, input").first
        return target

    def fill(self, target: str | Locator, value: str) -> Locator:
        """Types into a textbox and makes sure the value stuck.

        In Gradio 6.17 a page with a streaming gr.Audio can re-apply the initial values of its
        inputs about a second after the tabs appear, wiping what was typed that early; the value is
        re-typed if that happened, and re-checked again before every action (`recheck`).
        """
        box = self.field(target)
        for _ in range(6):
            box.fill(value)
            self.page.wait_for_timeout(300)  # tiny settle before reading the value back
            if box.input_value() != value:
                continue
            # On a loaded machine the re-apply can come well after the first read:
            # the value must survive a second look before it counts as typed.
            self.page.wait_for_timeout(700)
            if box.input_value() == value:
                break
        expect(box).to_have_value(value)
        self.filled.append((box, value))
        return box

    def number(self, elem_id: str, value: float) -> None:
        """Types a number and leaves the field (the studio reacts on blur)."""
        box = self.fill(elem_id, f"{value:g}")
        box.press("Tab")

    def recheck(self) -> None:
        """Re-types any visible filled field that lost its value (see `fill`)."""
        for box, value in self.filled:
            if box.is_visible() and box.input_value() != value:
                box.fill(value)
                expect(box).to_have_value(value)

    def choose(self, elem_id: str, option: str) -> None:
        """Picks `option` (its visible label, or the start of it) from a dropdown."""
        self.field(elem_id).click()
        self.page.locator("ul.options li[role=option]").filter(visible=True).filter(has_text=option).first.click()
        expect(self.field(elem_id)).to_have_value(re.compile(re.escape(option)))

    def set_max_length(self, seconds: int = MAX_SECONDS) -> None:
        """Sets "Max length per chunk (s)" in this tab's Advanced accordion."""
        self.accordion("Advanced")
        label = "Max length per chunk (s)"
        box = self.page.get_by_label(f"number input for {label}").filter(visible=True)
        box.fill(str(seconds))
        box.press("Enter")
        expect(self.page.get_by_label(f"range slider for {label}").filter(visible=True)).to_have_value(str(seconds))

    def upload(self, elem_id: str, path: Path) -> None:
        self.page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))

    # --- outcomes --------------------------------------------------------

    def error_toasts(self) -> list[str]:
        toasts = self.page.locator("[data-testid=toast-body].error [data-testid=toast-text]").filter(visible=True)
        return [t.inner_text() for t in toasts.all()]

    def error_pills(self) -> list[str]:
        """Components whose progress tracker shows Gradio's red "Error" pill (a failed event's outputs)."""
        trackers = self.page.locator("[data-testid=status-tracker]").filter(visible=True)
        pills = trackers.filter(has_text=re.compile(r"^\s*Error\b"))
        return [p.evaluate("e => e.closest('[id]')?.id || e.parentElement?.className || '?'") for p in pills.all()]

    def toast(self, text: str) -> Locator:
        return self.page.locator("[data-testid=toast-body]").filter(has_text=text).first

    def dismiss_toasts(self) -> None:
        for close in self.page.locator("[data-testid=toast-close]").filter(visible=True).all():
            try:
                close.click(timeout=2_000)
            except PlaywrightError:
                pass  # it went by itself
        expect(self.page.locator("[data-testid=toast-body]").filter(visible=True)).to_have_count(0)

    def generate(self, prefix: str, button: str = "generate") -> str:
        """Presses this tab's Generate (or `button`, e.g. "retry") and waits for the finished take;
        returns its summary line. Fails at once with the message of an error toast."""
        page = self.page
        summary = page.locator(f"#{prefix}-summary")
        before = summary.inner_text()
        self.recheck()
        self.dismiss_toasts()
        page.locator(f"#{prefix}-{button}").click()
        deadline = time.monotonic() + TAKE_TIMEOUT_S
        while True:
            text = summary.inner_text()
            if "seed" in text and text != before:
                break
            errors = self.error_toasts()
            assert not errors, f"Generate in {prefix} failed: {errors}"
            assert time.monotonic() < deadline, f"no take in {prefix} after {TAKE_TIMEOUT_S} s"
            page.wait_for_timeout(250)
        self.idle(f"{prefix}-audio")
        return text

    def idle(self, elem_id: str) -> None:
        """Waits until the component's progress tracker is gone."""
        expect(self.page.locator(f"#{elem_id} [data-testid=status-tracker]").first).to_have_class(
            re.compile(r"\bhide\b"), timeout=TAKE_TIMEOUT_S * 1000
        )

    def assert_has_audio(self, elem_id: str) -> bytes:
        """The player shows a clip with a length, and its file downloads as real audio."""
        player = self.page.locator(f"#{elem_id}")
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            body = self._take_file(elem_id)
            assert body[:4] == b"RIFF" and body[8:12] == b"WAVE", f"{elem_id}: the take is not a WAV file"
            assert len(body) > 8_000, f"{elem_id}: the take is only {len(body)} bytes"
            # The readout shows the file's own length (a take under a second reads 0:00, as it should:
            # a random-weight model may end a take early, and a CI run failed on a fixed "not 0:00").
            seconds = sf.info(io.BytesIO(body)).duration
            shown = {f"{s // 60}:{s % 60:02d}" for s in (math.floor(seconds), math.ceil(seconds))}
            readout = player.locator("#duration").inner_text().strip()
            if readout in shown:
                return body
            # A tab's Download button follows its player within a moment of a new take.
            assert time.monotonic() < deadline, f"{elem_id}: the player reads {readout}, its file lasts {shown}"
            time.sleep(0.25)

    def _take_file(self, elem_id: str) -> bytes:
        """The player's audio as the user saves it: a tab's take through its one Download button
        (the player itself has none), any other player through its own download link."""
        button = self.page.locator(f"#{elem_id.removesuffix('-audio')}-download")
        if elem_id.endswith("-audio") and button.count():
            expect(self.page.locator(f"#{elem_id} [data-testid=download-link]")).to_have_count(0)
            expect(button).to_be_enabled()
            with self.page.expect_download() as saved:
                button.click()
            return Path(saved.value.path()).read_bytes()
        link = self.page.locator(f"#{elem_id} [data-testid=download-link]")
        expect(link).to_have_attribute("href", re.compile(r"\.(wav|flac|mp3|ogg)$"))
        response = self.page.request.get(link.get_attribute("href"))
        assert response.ok, f"{elem_id}: downloading the take answered {response.status}"
        return response.body()

    def play(self, elem_id: str) -> None:
        """Presses Play and waits for the playhead to move."""
        player = self.page.locator(f"#{elem_id}")
        play = player.locator("button.play-pause-button[aria-label=Play]")
        play.click()
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        # A click that lands while the player re-renders its newly loaded clip is lost (seen on a
        # busy CI machine): pressed again while it still offers Play, until the step's time is up.
        while time.monotonic() < deadline:
            try:
                expect(player.locator("#time")).to_have_text(NOT_ZERO_TIME, timeout=5_000)
                return
            except AssertionError:
                if play.count():
                    play.click()
        expect(player.locator("#time")).to_have_text(NOT_ZERO_TIME, timeout=1_000)

    def watch_shown(self, elem_id: str) -> None:
        """Records, from now on, each time #elem_id turns shown or hidden (absent counts as hidden)."""
        self.page.evaluate(WATCH_SHOWN_JS, elem_id)

    def shown_history(self, elem_id: str) -> list[bool]:
        """What watch_shown saw: the state when it began, then each change."""
        return self.page.evaluate("id => window.__shown[id]", elem_id)

    def assert_stays_shown(self, elem_id: str, settle_ms: int = 1_000) -> None:
        """#elem_id, once shown, was never hidden again: a control that flickers back to hidden
        (Gradio 6.17's lazy mount, see STARTS_HIDDEN in studio/ui/widgets.py) fails here."""
        self.page.wait_for_timeout(settle_ms)
        history = self.shown_history(elem_id)
        shown_at = history.index(True) if True in history else None
        assert shown_at is not None and False not in history[shown_at:], f"#{elem_id} shown, then hidden: {history}"

    # --- screenshots -----------------------------------------------------

    def shoot(self, flow: str, must_see: dict[str, Locator]) -> Path:
        """Checks the flow's key controls are visible, then saves a full-page screenshot and checks it.

        Saved as <flow>-<size>.png in the session's screenshot folder and copied to /tmp/e2e-shots/.
        """
        page = self.page
        hidden = [name for name, locator in must_see.items() if not locator.is_visible()]
        assert not hidden, f"{flow} ({self.size}): not visible: {hidden}"
        width = SIZES[self.size][0]
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{flow} ({self.size}): the page scrolls sideways ({scroll_width}px)"
        path = self.shots_dir / f"{flow}-{self.size}.png"
        page.screenshot(path=str(path), full_page=True)
        try:
            HUMAN_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, HUMAN_SHOTS / path.name)
        except OSError:
            pass  # the human copy is a convenience
        reason = blank_reason(path)
        assert reason is None, f"{path.name} looks blank: {reason}"
        SHOTS.append(Shot(path, flow, self.size))
        return path
