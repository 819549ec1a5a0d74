"""Issue 13: "Generate N takes" in a real browser -- the Takes control, the gallery, picking a take.

Runs at desktop (1440x900) and phone (390x844) size against the demo-model server and leaves
variants-<size>.png in the screenshot folder (and /tmp/e2e-shots/).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect


def test_design_variants_side_by_side_and_pick_one(studio, size):
    page = studio.page
    studio.fill("design-text", f"Three takes to choose from, {size} run.")
    studio.fill("design-description", "A bright, quick voice.")
    studio.set_max_length()
    label = "Takes"
    box = page.get_by_label(f"number input for {label}").filter(visible=True)
    box.fill("3")
    box.press("Enter")
    expect(page.get_by_label(f"range slider for {label}").filter(visible=True)).to_have_value("3")

    summary = studio.generate("design")
    gallery = page.locator("#design-takes")
    expect(gallery).to_be_visible()
    seeds = []
    for number in (1, 2, 3):
        player = page.locator(f"#design-take-{number}")
        expect(player).to_be_visible()
        studio.assert_has_audio(f"design-take-{number}")
        heading = player.inner_text()
        found = re.search(rf"Take {number} · seed (\d+)", heading)
        assert found, heading
        seeds.append(int(found.group(1)))
    assert seeds[1] == seeds[0] + 1 and seeds[2] == seeds[0] + 2
    expect(page.locator("#design-take-4")).to_be_hidden()
    assert str(seeds[0]) in summary  # the first take is the take until another is picked

    page.locator("#design-audio").scroll_into_view_if_needed()
    studio.assert_has_audio("design-audio")  # the first take is the take until another is picked
    page.locator("#design-pick-2").click()
    expect(page.locator("#design-summary")).to_contain_text(str(seeds[1]))
    page.locator("#design-audio").scroll_into_view_if_needed()
    studio.assert_has_audio("design-audio")
    studio.shoot(
        "variants",
        {
            "gallery": gallery,
            "take 1": page.locator("#design-take-1"),
            "take 3": page.locator("#design-take-3"),
            "pick 2": page.locator("#design-pick-2"),
            "summary": page.locator("#design-summary"),
        },
    )

    # Back to one take: the gallery goes away.
    box.fill("1")
    box.press("Enter")
    studio.generate("design")
    expect(gallery).to_be_hidden()
