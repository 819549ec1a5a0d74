"""Issue 7: the studio end to end in a real browser, clicked through the way a creator uses it.

Every flow runs twice, at desktop (1440x900) and phone (390x844) size, against a real server on the
demo models, and leaves a checked full-page screenshot (<flow>-<size>.png) in pytest's temporary
folder (e2e/screenshots) and a copy in /tmp/e2e-shots/ for people to look at:

- design-take, custom-voice-take, clone-take: a take in each generation tab;
- voice-trim-save, voice-library-search, voice-reuse-take: trim an upload, save it as a voice, find
  it in the Voice Library, "Use in Voice Clone" and generate with it;
- error-empty-text: a refusal shows its sentence in the page;
- chunk-failed: a chunk that fails mid-take is named, and "Retry failed chunk" finishes the take;
- history: the History tab lists the takes just made and plays one.

Demo models never stop early, so every take is capped at a couple of seconds.
Skipped when chromium (/usr/bin/chromium) or Playwright is missing.
"""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest

from tests.conftest import SPEECH_TEXT
from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")
pytest.importorskip("PIL", reason="Pillow is not installed (it comes with gradio)")

import soundfile as sf
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.browser import (
    MAX_SECONDS,
    SHOTS,
    SIZES,
    TAKE_TIMEOUT_S,
    Studio,
    blank_reason,
)

ONE_VOICE = re.compile(r"Showing 1 of \d+ voices|^\s*1 voice in the library")


def made_text(kind: str, size: str) -> str:
    """Each take's text names its flow and screen size, so History can find this run's takes."""
    return f"{kind} take, {size} run."


# --- 1. a take in each generation tab -------------------------------------------


def test_design_take(studio, size):
    page = studio.page
    studio.fill("design-text", made_text("Designed voice", size))
    studio.fill("design-description", "A calm, low voice, speaking slowly.")
    studio.set_max_length()
    summary = studio.generate("design")
    assert re.search(r"seed \d+", summary) and "VoiceDesign" in summary, summary
    studio.assert_has_audio("design-audio")
    expect(page.locator("#design-retry")).to_be_hidden()  # offered only after a failed chunk
    studio.shoot(
        "design-take",
        {
            "text": studio.field("design-text"),
            "description": studio.field("design-description"),
            "generate": page.locator("#design-generate"),
            "take": page.locator("#design-audio"),
            "summary": page.locator("#design-summary"),
        },
    )


def test_custom_voice_take(studio, size):
    page = studio.page
    studio.tab("Custom Voice")
    studio.fill("custom-text", made_text("Custom voice", size))
    studio.choose("custom-speaker", "Aiden")
    expect(page.locator("#custom-speaker-card")).to_contain_text("Aiden")
    studio.fill("custom-instruct", "Speak brightly, with a smile.")
    studio.set_max_length()
    summary = studio.generate("custom")
    assert re.search(r"seed \d+", summary) and "CustomVoice" in summary, summary
    wav = studio.assert_has_audio("custom-audio")  # through the one Download button: the player has none
    # "Download as" converts in one step: pick MP3, the same button saves an MP3 of the same take.
    studio.choose("custom-download-format", "mp3")
    for _ in range(40):  # the button takes the new format within a moment of the choice
        with page.expect_download() as saved:
            page.locator("#custom-download").click()
        if saved.value.suggested_filename.endswith(".mp3"):
            break
        page.wait_for_timeout(250)
    assert saved.value.suggested_filename.endswith(".mp3"), saved.value.suggested_filename
    mp3 = Path(saved.value.path()).read_bytes()
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF, mp3[:4]
    assert abs(sf.info(io.BytesIO(mp3)).duration - sf.info(io.BytesIO(wav)).duration) < 0.2
    studio.shoot(
        "custom-voice-take",
        {
            "text": studio.field("custom-text"),
            "speaker": studio.field("custom-speaker"),
            "speaker card": page.locator("#custom-speaker-card"),
            "instruction": studio.field("custom-instruct"),
            "generate": page.locator("#custom-generate"),
            "take": page.locator("#custom-audio"),
            "download as": studio.field("custom-download-format"),
            "download": page.locator("#custom-download"),
            "summary": page.locator("#custom-summary"),
        },
    )


def test_clone_take_from_an_upload(studio, size, speech_wav):
    page = studio.page
    studio.tab("Voice Clone")
    studio.upload("clone-reference", speech_wav)
    expect(page.locator("#clone-readout")).to_contain_text("Looks good for cloning")
    studio.fill("clone-transcript", SPEECH_TEXT)
    studio.fill("clone-text", made_text("Cloned voice", size))
    studio.set_max_length()
    summary = studio.generate("clone")
    assert re.search(r"seed \d+", summary) and "Base" in summary, summary
    studio.assert_has_audio("clone-audio")
    studio.shoot(
        "clone-take",
        {
            "reference": page.locator("#clone-reference"),
            "readout": page.locator("#clone-readout"),
            "transcript": studio.field("clone-transcript"),
            "text": studio.field("clone-text"),
            "generate": page.locator("#clone-generate"),
            "take": page.locator("#clone-audio"),
            "summary": page.locator("#clone-summary"),
        },
    )


# --- 2. trim, save, find in the library, reuse ----------------------------------


def test_trim_save_find_and_reuse_a_voice(studio, size, speech_wav, browser, e2e_server, shots_dir):
    page = studio.page
    name = f"E2E {size} {uuid.uuid4().hex[:6]}"
    studio.tab("Voice Clone")
    studio.upload("clone-reference", speech_wav)
    readout = page.locator("#clone-readout")
    expect(readout).to_contain_text("Looks good for cloning")  # the whole ~5 s clip

    studio.number("clone-start", 0.5)
    studio.number("clone-end", 3.0)
    expect(readout).to_contain_text(re.compile(r"\b2\.[3-6] s · peak"))  # 0.5 → 3.0 s, edges trimmed
    expect(readout).to_contain_text("3–30 s of clear speech clones best")  # the short-clip warning
    studio.assert_has_audio("clone-preview")

    studio.accordion("Save the reference to the library")
    studio.fill("clone-save-name", name)
    studio.recheck()
    page.locator("#clone-save-button").click()
    # 0.5–3.0 s holds about 2.4 s of speech: under 3 s, so saving asks first (issue 18).
    expect(page.locator("#clone-save-status")).to_contain_text(re.compile(r"only 2\.\d s of speech"))
    page.locator("#clone-save-anyway").click()
    status = page.locator("#clone-save-status")
    expect(status).to_contain_text(re.compile(rf"Saved {re.escape(name)} \(2\.[0-6] s\)"), timeout=30_000)
    # ...and offered in the picker, its length as in the readout (not rounded to "2 s"); not picked
    # by itself, which would hide the clip just trimmed (a library voice replaces the manual controls).
    studio.field("clone-voice").click()
    option = page.locator("ul.options li[role=option]").filter(visible=True).filter(has_text=name)
    expect(option).to_have_text(re.compile(rf"{re.escape(name)} \(clone, 2\.[0-6] s\)"))
    page.keyboard.press("Escape")
    studio.shoot(
        "voice-trim-save",
        {
            "start": studio.field("clone-start"),
            "end": studio.field("clone-end"),
            "preview": page.locator("#clone-preview"),
            "readout": readout,
            "name": studio.field("clone-save-name"),
            "save": page.locator("#clone-save-button"),
            "status": status,
        },
    )

    # Coming back later: a fresh page, find the voice in the library and clone with it.
    later = Studio.open(browser, e2e_server["url"], size, shots_dir)
    try:
        lpage = later.page
        later.tab("Voice Library")
        later.fill("library-search", name)
        expect(lpage.locator("#library-count")).to_contain_text(ONE_VOICE)
        row = lpage.locator("#library-table span.text:visible", has_text=name).first
        row.click()
        details = lpage.locator("#library-details")
        expect(details).to_contain_text(name)
        expect(details).to_contain_text("speech.wav")  # the source file
        later.assert_has_audio("library-player")
        later.shoot(
            "voice-library-search",
            {
                "search": later.field("library-search"),
                "count": lpage.locator("#library-count"),
                "row": row,
                "details": details,
                "player": lpage.locator("#library-player"),
                "use": lpage.locator("#library-use"),
            },
        )

        lpage.locator("#library-use").click()
        expect(lpage.locator("#clone-generate")).to_be_visible()
        expect(later.field("clone-voice")).to_have_value(re.compile(re.escape(name)))
        text = made_text("Library voice", size)
        later.fill("clone-text", text)
        later.set_max_length()
        summary = later.generate("clone")
        assert re.search(r"seed \d+", summary), summary
        later.assert_has_audio("clone-audio")
        newest = e2e_server["ctx"].app.history.list()[0]
        assert newest.text == text and newest.voice.get("voice") == name, (newest.text, newest.voice)
        later.shoot(
            "voice-reuse-take",
            {
                "voice": later.field("clone-voice"),
                "text": later.field("clone-text"),
                "generate": lpage.locator("#clone-generate"),
                "take": lpage.locator("#clone-audio"),
                "summary": lpage.locator("#clone-summary"),
            },
        )
    finally:
        later.page.close()


# --- 3. an error shows its message ------------------------------------------------


def test_generate_without_text_shows_why(studio):
    page = studio.page
    studio.fill("design-description", "A calm, low voice.")
    page.locator("#design-generate").click()
    # Said inline, under the button (issue 14, defect 7), not in a toast with Error pills.
    message = page.locator("#design-status")
    expect(message).to_have_text("⚠️ Enter some text to speak.")
    assert not studio.error_pills(), studio.error_pills()
    expect(page.locator("#design-summary")).not_to_contain_text("seed")
    expect(page.locator("#design-retry")).to_be_hidden()  # a refusal is not a failed chunk
    studio.shoot(
        "error-empty-text",
        {
            "message": message,
            "text": studio.field("design-text"),
            "generate": page.locator("#design-generate"),
        },
    )


@pytest.mark.logs_a_real_error  # the injected engine failure is a real error: its traceback is logged
def test_a_failed_chunk_is_offered_for_retry_and_finishes_the_take(studio, e2e_server):
    """Fault injection around the real demo model: the second of three chunks fails once. The page
    names the failed sentence, offers 'Retry failed chunk', and the retry regenerates only from it."""
    app = e2e_server["ctx"].app
    page = studio.page
    text = "First sentence is here. Second sentence is here. Third sentence is here."
    loaded = app.models.get(app.catalog.resolve("design", None))
    real = loaded.model.generate_voice_design
    calls: list[str] = []

    def flaky(**kwargs):
        calls.append(kwargs["text"])
        if len(calls) == 2:
            raise RuntimeError("CUDA error: device-side assert (injected by the test)")
        return real(**kwargs)

    chunk_chars, app.synthesis.chunk_chars = app.synthesis.chunk_chars, 30
    loaded.model.generate_voice_design = flaky
    try:
        studio.fill("design-text", text)
        studio.fill("design-description", "A bright narrator.")
        studio.set_max_length(1)
        retry = page.locator("#design-retry")
        expect(retry).to_be_hidden()
        page.locator("#design-generate").click()
        toast = page.locator("#design-status")  # said inline under the button (issue 14, defect 7)
        expect(toast).to_contain_text("Retry failed chunk", timeout=TAKE_TIMEOUT_S * 1000)
        expect(toast).to_contain_text(
            re.compile(
                # Chunks 2-3 go through the model together (batched), so the batch is named.
                r'chunks 2-3 of 3 \("Second sentence is here\."\): .*injected by the test\)\. '
                r"The 1 chunk\(s\) before it are kept"
            )
        )
        assert not studio.error_pills(), studio.error_pills()
        expect(retry).to_be_visible()
        studio.shoot("chunk-failed", {"message": toast, "retry": retry, "text": studio.field("design-text")})

        summary = studio.generate("design", button="retry")
        assert "3 chunks" in summary, summary
        studio.assert_has_audio("design-audio")
        expect(retry).to_be_hidden()
        rest = ["Second sentence is here.", "Third sentence is here."]
        assert calls == ["First sentence is here.", rest, rest], calls  # the first chunk was not made again
    finally:
        loaded.model.generate_voice_design = real
        app.synthesis.chunk_chars = chunk_chars


# --- 4. History ------------------------------------------------------------------


def test_history_lists_the_takes_and_plays_one(studio, size, e2e_server, e2e_client):
    page = studio.page
    run = f"{size} run"
    history = e2e_server["ctx"].app.history
    texts = [t.text for t in history.list(query=run)]
    if not texts:  # run on its own: make a take the way a script would
        texts = [made_text("Scripted", size)]
        e2e_client.predict(text=texts[0], description="A calm voice.", max_seconds=MAX_SECONDS, api_name="/design")

    studio.tab("History")
    search = page.get_by_label("Search").filter(visible=True)
    studio.fill(search, run).press("Enter")
    table = page.locator("#history-table")
    for text in texts:
        expect(table).to_contain_text(text[:40])  # the table shortens long texts
    expect(table).not_to_contain_text("desktop run" if size == "phone" else "phone run")

    picker = studio.field("history-picker")
    expect(picker).to_have_value(re.compile(re.escape(texts[0][:30])))  # the newest take is picked
    studio.assert_has_audio("history-audio")
    studio.play("history-audio")
    studio.shoot(
        "history",
        {
            "search": search,
            "table": table,
            "picker": picker,
            "player": page.locator("#history-audio"),
            "regenerate": page.locator("#history-regenerate"),
        },
    )


# --- the screenshots ----------------------------------------------------------------


def test_every_screenshot_shows_the_studio():
    if not SHOTS:
        pytest.skip("no flow ran in this session")
    for shot in SHOTS:
        assert shot.path.is_file(), shot.path
        assert blank_reason(shot.path) is None, f"{shot.path.name}: {blank_reason(shot.path)}"
        width, height = SIZES[shot.size]
        with Image.open(shot.path) as image:
            assert image.width == width and image.height >= height, (shot.path.name, image.size)


def test_the_blank_check_tells_blank_from_busy(tmp_path: Path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (390, 844), "white").save(flat)
    assert blank_reason(flat) is not None
    two_tone = tmp_path / "two-tone.png"
    image = Image.new("RGB", (390, 844), "white")
    image.paste((240, 240, 245), (0, 0, 390, 400))
    image.save(two_tone)
    assert blank_reason(two_tone) is not None
    busy = tmp_path / "busy.png"
    Image.effect_noise((390, 844), 60).convert("RGB").save(busy)
    assert blank_reason(busy) is None
