"""Issue 14: Stop then Resume on the Script tab, in a real browser on the demo models.

Stop during a render keeps the lines made in History as a partial take ("stopped at line k of n")
and offers Resume next to Stop; Resume renders only the missing lines and the complete scene
replaces the partial take. Screenshots: script-stopped-<size>.png and script-resumed-<size>.png
(full page, checked) and viewport shots of the action bar in /tmp/shots/script-resume/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect

from tests.e2e.browser import TAKE_TIMEOUT_S

# Run after the rest, in one process (scripts/test.sh): a Stop lands part-way through a render, and
# the partial scene reaches its player once the live stream has played.
pytestmark = pytest.mark.serial

SHOTS = Path("/tmp/shots/script-resume")
CASTING = "Maya = Ryan\nTom = Aiden"


@pytest.fixture
def line_by_line(e2e_server):
    """Lines made one by one, so a render lasts a few seconds and can be stopped part-way."""
    synthesis = e2e_server["ctx"].app.synthesis
    saved = synthesis.batching
    synthesis.batching = False
    yield
    synthesis.batching = saved


def shots(studio, flow: str, must_see: dict) -> None:
    """studio.shoot (checked, full page) and a viewport shot around the action bar, both kept for people."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = studio.shoot(flow, must_see)
    shutil.copy(path, SHOTS / path.name)
    studio.page.locator("#script-progress").scroll_into_view_if_needed()
    studio.page.screenshot(path=str(SHOTS / f"{flow}-viewport-{studio.size}.png"))


def test_stop_a_script_then_resume_it(studio, size, e2e_server, line_by_line):
    page = studio.page
    history = e2e_server["ctx"].app.history
    studio.tab("Script")
    script = "\n".join(f"{'Maya' if n % 2 else 'Tom'}: Line {n} of the {size} scene, said slowly." for n in range(1, 9))
    studio.fill("script-text", script)
    studio.fill("script-casting", CASTING)
    studio.set_max_length(2)
    page.locator("#script-render").click()
    stop, resume = page.locator("#script-stop"), page.locator("#script-resume")
    progress = page.locator("#script-progress")
    expect(stop).to_be_visible()
    expect(progress).to_contain_text(
        re.compile(r"[2-6] of 8 lines made · making line \d of 8 .* · \d+ s elapsed"), timeout=TAKE_TIMEOUT_S * 1000
    )
    stop.click()
    expect(progress).to_contain_text(re.compile(r"Stopped with \d of 8 lines made"), timeout=60_000)
    expect(progress).to_contain_text(re.compile(r"in History \(take \S+, \d lines? to go\)"))
    expect(resume).to_be_visible(timeout=60_000)
    expect(stop).to_be_hidden()
    partial = history.list()[0]
    assert partial.mode == "script" and partial.status == "stopped" and partial.total_chunks == 8
    assert 2 <= partial.stopped_at < 8 and len(partial.parts) == partial.stopped_at
    assert partial.id in progress.inner_text()
    studio.assert_has_audio("script-audio")  # the partial scene, playable
    shots(studio, "script-stopped", {"resume": resume, "progress": progress, "take": page.locator("#script-audio")})

    resume.click()
    expect(page.locator("#script-summary")).to_contain_text("8 lines", timeout=TAKE_TIMEOUT_S * 1000)
    expect(progress).to_contain_text("Done in")
    expect(resume).to_be_hidden()
    expect(page.locator("#script-lines")).to_contain_text("8 lines")
    studio.assert_has_audio("script-audio")
    whole = history.list()[0]
    assert whole.mode == "script" and whole.status == "complete" and len(whole.parts) == 8
    assert whole.seed == partial.seed
    assert [p.seed for p in whole.parts[: partial.stopped_at]] == [p.seed for p in partial.parts]
    assert partial.id not in {t.id for t in history.list()}  # the complete scene replaced it
    expect(page.locator("#script-files")).to_contain_text(".zip")
    assert not studio.error_toasts(), studio.error_toasts()
    shots(studio, "script-resumed", {"summary": page.locator("#script-summary"), "take": page.locator("#script-audio")})
