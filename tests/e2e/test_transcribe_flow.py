"""Issue 18: Transcribe fills the transcript and the language, in Voice Clone and in the Library's edit form.

Runs at desktop (1440x900) and phone (390x844) size against a real server on the demo models (the tiny
random-weight Whisper included) and leaves checked screenshots (transcribe-clone-<size>.png,
transcribe-library-<size>.png), copied to /tmp/e2e-shots/ and /tmp/shots/asr/.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port, make_demo_settings, spoken
from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect

from tests.e2e.browser import TAKE_TIMEOUT_S

ASR_SHOTS = Path("/tmp/shots/asr")


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory, demo_checkpoints, demo_asr):
    """This module's studio: the shared one's settings plus the session's demo Whisper."""
    from studio.server import serve

    settings = make_demo_settings(
        tmp_path_factory.mktemp("e2e-asr"), demo_checkpoints, port=free_port(), checkpoint_asr=demo_asr
    )
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx, "settings": settings}
    finally:
        app.close()


def keep_for_people(path: Path) -> None:
    try:
        ASR_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ASR_SHOTS / path.name)
    except OSError:
        pass  # the copy is a convenience


def test_transcribe_in_voice_clone(studio, e2e_server, speech_wav):
    page = studio.page
    expected = e2e_server["ctx"].app.transcriber.transcribe(str(speech_wav))  # greedy: the UI must show the same
    studio.tab("Voice Clone")
    studio.upload("clone-reference", speech_wav)
    expect(page.locator("#clone-readout")).to_contain_text("speech", timeout=TAKE_TIMEOUT_S * 1000)
    transcript = studio.field("clone-transcript")
    expect(transcript).to_have_value("")
    page.locator("#clone-transcribe").click()
    expect(transcript).to_have_value(expected.text, timeout=TAKE_TIMEOUT_S * 1000)
    expect(studio.field("clone-language")).to_have_value(expected.language_label)
    note = page.locator("#clone-transcribe-note")
    expect(note).to_contain_text("Demo output")
    expect(note).to_contain_text(f"heard {expected.language_label}")
    assert not studio.error_toasts()
    shot = studio.shoot(
        "transcribe-clone",
        {"transcribe": page.locator("#clone-transcribe"), "transcript": transcript, "note": note},
    )
    keep_for_people(shot)

    # Start/End pick what is transcribed: an empty stretch is refused with the sentence, nothing changes.
    studio.number("clone-start", 4.9)
    studio.number("clone-end", 5.0)
    page.locator("#clone-transcribe").click()
    expect(studio.toast("no speech to transcribe")).to_be_visible(timeout=TAKE_TIMEOUT_S * 1000)
    expect(transcript).to_have_value(expected.text)


def test_transcribe_in_the_library_edit_form(studio, e2e_server, size):
    page = studio.page
    app = e2e_server["ctx"].app
    name = f"Untranscribed {size} {uuid.uuid4().hex[:4]}"
    voice = app.library.save(name=name, kind="clone", reference=spoken(4.0, seed=1), transcript=None, consent="test")
    expected = app.transcriber.transcribe(app.library.reference_audio(voice.id))
    studio.tab("Voice Library")
    studio.choose("library-voice", name)
    transcript = studio.field("library-transcript")
    expect(transcript).to_have_value("")
    page.locator("#library-transcribe").click()
    expect(transcript).to_have_value(expected.text, timeout=TAKE_TIMEOUT_S * 1000)
    expect(studio.field("library-edit-language")).to_have_value(expected.language_label)
    note = page.locator("#library-transcribe-note")
    expect(note).to_contain_text("Demo output")
    shot = studio.shoot(
        "transcribe-library",
        {"transcribe": page.locator("#library-transcribe"), "transcript": transcript, "note": note},
    )
    keep_for_people(shot)
    # Saving keeps what was filled in.
    page.locator("#library-save").click()
    expect(page.locator("#library-status")).to_contain_text(re.compile("Saved the changes"))
    saved = app.library.get(voice.id)
    assert saved.transcript == expected.text
    assert saved.language == expected.language


def test_generate_without_a_transcript_offers_transcribe(studio, size, speech_wav):
    page = studio.page
    studio.tab("Voice Clone")
    studio.upload("clone-reference", speech_wav)
    expect(page.locator("#clone-readout")).to_contain_text("speech", timeout=TAKE_TIMEOUT_S * 1000)
    studio.fill("clone-text", "Hello there.")
    studio.set_max_length(1)
    studio.generate("clone")
    note = page.locator("#clone-transcribe-note")
    expect(note).to_contain_text("No transcript")
    expect(note).to_contain_text("Press Transcribe")
    keep_for_people(studio.shoot("transcribe-offer", {"note": note, "transcribe": page.locator("#clone-transcribe")}))


@pytest.fixture(scope="module")
def auto_server(tmp_path_factory, demo_checkpoints, demo_asr):
    """A studio started with --auto-transcribe."""
    from studio.server import serve

    settings = make_demo_settings(
        tmp_path_factory.mktemp("e2e-auto"),
        demo_checkpoints,
        port=free_port(),
        checkpoint_asr=demo_asr,
        auto_transcribe=True,
    )
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx}
    finally:
        app.close()


def test_auto_transcribe_fills_the_transcript_when_a_clip_is_loaded(browser, auto_server, shots_dir, speech_wav):
    from tests.e2e.browser import Studio

    expected = auto_server["ctx"].app.transcriber.transcribe(str(speech_wav))
    studio = Studio.open(browser, auto_server["url"], "desktop", shots_dir)
    try:
        studio.tab("Voice Clone")
        studio.upload("clone-reference", speech_wav)
        expect(studio.field("clone-transcript")).to_have_value(expected.text, timeout=TAKE_TIMEOUT_S * 1000)
        expect(studio.field("clone-language")).to_have_value(expected.language_label)
        note = studio.page.locator("#clone-transcribe-note")
        expect(note).to_contain_text("Filled in automatically")
        expect(note).to_contain_text("Demo output")
    finally:
        studio.page.close()
