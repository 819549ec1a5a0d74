"""Issue 14: Resume a stopped take from History; subtitles and "Save as voice" next to the player.

At desktop (1440x900) and phone (390x844) size, against a real server on the demo models.
- history-resume: a take stopped part-way ("stopped at chunk k of n") picked in History gets an
  enabled Resume; it runs as a job and the complete take replaces the stopped one; a complete take
  leaves Resume disabled.
- player-extras: in Design, Custom Voice and Clone, the SRT and WebVTT buttons beside the take
  player are enabled once a take exists and download its subtitles; "Save as voice" keeps the take
  as a library voice (no speech check: the demo models' take is noise, and it is still saved).
Screenshots: <flow>-<size>.png in the session folder, /tmp/e2e-shots/ and /tmp/shots/result-extras/.
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

from tests.e2e.browser import TAKE_TIMEOUT_S

SHOTS = Path("/tmp/shots/result-extras")
LONG = " ".join(f"Sentence number {n} of a long take." for n in range(1, 8))


def shoot(studio, flow: str, must_see: dict) -> Path:
    path = studio.shoot(flow, must_see)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    return path


def stopped_take(ctx, words: str):
    """A Design take stopped after two or more of its chunks (through the job registry, as Stop does)."""
    import time

    from studio.ui.tabs.design import parse_design

    job = ctx.jobs.start_take(parse_design(f"{words} {LONG}", "English", "A calm narrator.", 5, max_seconds=1))
    deadline = time.monotonic() + TAKE_TIMEOUT_S
    while job.chunks_done < 2:
        assert time.monotonic() < deadline and not job.finished, "the take never got going"
        time.sleep(0.02)
    ctx.jobs.stop(job.id)
    assert job.wait(60) and job.state.value == "stopped", job.state
    return job.partial.take


def test_resume_a_stopped_take_from_history(studio, size, e2e_server, long_takes):
    page = studio.page
    history = e2e_server["ctx"].app.history
    words = f"Resumed from History {size} {uuid.uuid4().hex[:6]}."
    partial = stopped_take(e2e_server["ctx"], words)
    assert partial.stopped and partial.total_chunks == 8 and 2 <= partial.stopped_at < 8

    studio.tab("History")
    resume = page.locator("#history-resume")
    studio.fill("history-search", words)
    expect(studio.field("history-picker")).to_have_value(re.compile(re.escape(words[:20])))
    details = page.locator("#history-details")
    expect(details).to_contain_text(partial.status_label)  # "stopped at chunk k of 8"
    expect(resume).to_be_enabled()
    shoot(studio, "history-resume-stopped", {"resume": resume, "details": details})

    resume.click()
    message = page.locator("#history-message")
    expect(message).to_contain_text("Resumed: the complete take is", timeout=TAKE_TIMEOUT_S * 1000)
    whole = history.list(query=words)[0]
    assert whole.status == "complete" and whole.seed == partial.seed and len(whole.parts) == 8
    assert partial.id not in {t.id for t in history.list()}  # the complete take replaced it
    expect(message).to_contain_text(whole.id)
    expect(studio.field("history-picker")).to_have_value(re.compile(re.escape(words[:20])))
    expect(details).not_to_contain_text("stopped at chunk")
    expect(resume).to_be_disabled()  # a complete take has nothing to resume
    studio.idle("history-audio")
    studio.assert_has_audio("history-audio")
    assert not studio.error_toasts() and not studio.error_pills(), (studio.error_toasts(), studio.error_pills())
    shoot(studio, "history-resumed", {"resume": resume, "message": message, "take": page.locator("#history-audio")})


def download_text(studio, elem_id: str) -> str:
    button = studio.page.locator(f"#{elem_id}")
    expect(button).to_be_enabled()
    with studio.page.expect_download() as download:
        button.click()
    return Path(download.value.path()).read_text(encoding="utf-8")


def check_subtitles(studio, prefix: str, first_words: str) -> None:
    srt = download_text(studio, f"{prefix}-srt")
    assert re.match(r"1\n00:00:00,\d{3} --> 00:00:\d\d,\d{3}\n", srt), srt[:80]
    assert first_words in srt
    vtt = download_text(studio, f"{prefix}-vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.") and first_words in vtt, vtt[:80]


def save_as_voice(studio, prefix: str, title: str, name: str) -> None:
    studio.accordion(title)
    studio.fill(f"{prefix}-save-name", name)
    studio.page.locator(f"#{prefix}-save-button").click()
    expect(studio.page.locator(f"#{prefix}-save-status")).to_contain_text(f"Saved {name} to the Voice Library")


def test_subtitles_and_save_as_voice_next_to_the_player(studio, size, e2e_server):
    page = studio.page
    ctx = e2e_server["ctx"]
    library, history = ctx.app.library, ctx.app.history
    tag = uuid.uuid4().hex[:6]

    # Custom Voice: no take yet, so no subtitles.
    studio.tab("Custom Voice")
    for kind in ("srt", "vtt"):
        expect(page.locator(f"#custom-{kind}")).to_be_disabled()
    text = f"Custom subtitles {size}. A second sentence."
    studio.fill("custom-text", text)
    studio.set_max_length(1)
    studio.generate("custom")
    check_subtitles(studio, "custom", "Custom subtitles")
    custom_name = f"Ryan take {size} {tag}"
    save_as_voice(studio, "custom", "Save this voice to the library", custom_name)
    voice = library.get(custom_name)
    take = history.list(query=text)[0]
    assert voice.kind == "clone" and voice.transcript == take.text and voice.source_name == f"take {take.id}"
    shoot(
        studio,
        "custom-player-extras",
        {
            "srt": page.locator("#custom-srt"),
            "vtt": page.locator("#custom-vtt"),
            "saved": page.locator("#custom-save-status"),
        },
    )

    # Clone, with the voice just saved: its take gets subtitles and can be kept as a voice too.
    studio.tab("Voice Clone")
    studio.choose("clone-voice", custom_name)
    studio.fill("clone-text", f"Clone subtitles {size}.")
    studio.set_max_length(1)
    studio.generate("clone")
    check_subtitles(studio, "clone", "Clone subtitles")
    clone_name = f"Clone take {size} {tag}"
    save_as_voice(studio, "clone-take", "Save this take as a voice", clone_name)
    assert library.get(clone_name).transcript == f"Clone subtitles {size}."
    shoot(
        studio,
        "clone-player-extras",
        {"srt": page.locator("#clone-srt"), "saved": page.locator("#clone-take-save-status")},
    )

    # Design: the same panel; a designed take stays a "design" voice with its description.
    studio.tab("Voice Design")
    studio.fill("design-text", f"Design subtitles {size}.")
    studio.fill("design-description", "A bright young voice.")
    studio.set_max_length(1)
    studio.generate("design")
    check_subtitles(studio, "design", "Design subtitles")
    design_name = f"Designed {size} {tag}"
    save_as_voice(studio, "design", "Save this voice to the library", design_name)
    designed = library.get(design_name)
    assert designed.kind == "design" and designed.description == "A bright young voice."
    # A name already taken is said under the button, and nothing is overwritten.
    page.locator("#design-save-button").click()
    expect(page.locator("#design-save-status")).to_contain_text("already")
    assert not studio.error_toasts() and not studio.error_pills(), (studio.error_toasts(), studio.error_pills())
    shoot(
        studio,
        "design-player-extras",
        {"vtt": page.locator("#design-vtt"), "saved": page.locator("#design-save-status")},
    )
