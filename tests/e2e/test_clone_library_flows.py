"""Issues 14 and 18 in a real browser: safe trimming of a clone reference, the library voice in
Clone, playing a library row, the pronunciation lexicon editor and the one seed control.

Each flow runs at desktop (1440x900) and phone (390x844) size where it has a layout to check, and
leaves a checked screenshot; a copy of each goes to /tmp/shots/clone-library/ for people to look
at. Flows that make takes run at desktop size only (the layout is the same as the flows above).
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import SPEECH_TEXT
from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import Locator, expect

from tests.e2e.browser import Studio

AREA_SHOTS = Path("/tmp/shots/clone-library")
TRIM_LABEL = re.compile(r"(\d+\.\d\d)–(\d+\.\d\d) s \(")


def shoot(studio: Studio, flow: str, must_see: dict[str, Locator]) -> None:
    path = studio.shoot(flow, must_see)
    AREA_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, AREA_SHOTS / path.name)


def field_value(studio: Studio, elem_id: str) -> float | None:
    value = studio.field(elem_id).input_value()
    return float(value) if value.strip() else None


def region_label(studio: Studio) -> tuple[float, float]:
    text = studio.page.locator("#clone-trim-wave .tw-label").inner_text()
    match = TRIM_LABEL.search(text)
    assert match, text
    return float(match[1]), float(match[2])


def drag(studio: Studio, start: float, end: float) -> None:
    """Drags across the trim waveform from `start` to `end` (fractions of its width)."""
    wave = studio.page.locator("#clone-trim-wave .tw")
    wave.scroll_into_view_if_needed()
    box = wave.bounding_box()
    assert box, "the trim waveform is not on the page"
    y = box["y"] + box["height"] / 2
    studio.page.mouse.move(box["x"] + box["width"] * start, y)
    studio.page.mouse.down()
    studio.page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    studio.page.mouse.up()


def upload_reference(studio: Studio, wav: Path) -> None:
    studio.tab("Voice Clone")
    studio.upload("clone-reference", wav)
    expect(studio.page.locator("#clone-readout")).to_contain_text("Looks good for cloning")
    expect(studio.page.locator("#clone-clip-length")).to_contain_text(re.compile(r"Clip 5\.\d\d s"))


# --- trimming ---------------------------------------------------------------------------------


def test_trim_region_and_fields_stay_in_sync_with_undo(studio, size, speech_wav):
    page = studio.page
    upload_reference(studio, speech_wav)
    length = page.locator("#clone-clip-length")
    expect(length).to_contain_text("using all of it")
    undo = page.locator("#clone-undo")
    expect(undo).to_be_disabled()

    # Region → fields: drag over 20–60 % of the ~5.3 s clip.
    drag(studio, 0.2, 0.6)
    expect(studio.field("clone-start")).not_to_have_value("")
    start, end = field_value(studio, "clone-start"), field_value(studio, "clone-end")
    assert start is not None and end is not None and 0.8 < start < 1.4 and 2.8 < end < 3.5, (start, end)
    expect(length).to_contain_text(f"{start:.2f}–{end:.2f} s")
    expect(length).to_contain_text(re.compile(r"Clip 5\.\d\d s"))  # the real clip length stays on show
    assert region_label(studio) == (start, end)
    expect(undo).to_be_enabled()

    # Fields → region: type a new start; the region follows.
    studio.number("clone-start", 0.5)
    expect(page.locator("#clone-trim-wave .tw-label")).to_contain_text(f"0.50–{end:.2f} s")
    expect(length).to_contain_text(f"0.50–{end:.2f} s")
    expect(page.locator("#clone-readout")).to_contain_text("speech")

    # Undo walks back: the dragged trim, then the whole clip.
    undo.click()
    expect(studio.field("clone-start")).to_have_value(f"{start:g}")
    expect(page.locator("#clone-trim-wave .tw-label")).to_contain_text(f"{start:.2f}–{end:.2f} s")
    undo.click()
    expect(studio.field("clone-start")).to_have_value("")
    expect(studio.field("clone-end")).to_have_value("")
    expect(length).to_contain_text("using all of it")
    expect(undo).to_be_disabled()
    # The uploaded clip itself was never cut.
    expect(page.locator("#clone-reference #duration")).to_have_text(re.compile(r"^\s*0:0[4-6]\s*$"))

    drag(studio, 0.1, 0.7)
    expect(studio.field("clone-start")).not_to_have_value("")
    shoot(
        studio,
        "clone-trim-region",
        {
            "waveform": page.locator("#clone-trim-wave"),
            "length": length,
            "start": studio.field("clone-start"),
            "end": studio.field("clone-end"),
            "undo": undo,
            "preview": page.locator("#clone-preview"),
        },
    )


def test_trimming_after_the_transcript_warns_and_offers_to_retranscribe(studio, size, speech_wav):
    page = studio.page
    upload_reference(studio, speech_wav)
    studio.fill("clone-transcript", SPEECH_TEXT)
    warning = page.locator("#clone-transcript-warning")
    retranscribe = page.locator("#clone-retranscribe")
    expect(retranscribe).to_be_hidden()
    studio.number("clone-end", 2.5)
    expect(warning).to_contain_text("The transcript was written for 0.00–5.")
    expect(warning).to_contain_text("now trimmed to 0.00–2.50 s")
    expect(retranscribe).to_be_visible()
    shoot(
        studio,
        "clone-transcript-warning",
        {"transcript": studio.field("clone-transcript"), "warning": warning, "retranscribe": retranscribe},
    )
    # Rewriting the transcript for the trimmed clip clears the warning.
    studio.fill("clone-transcript", "The quick brown fox jumps.")
    expect(warning).to_have_text("")
    expect(retranscribe).to_be_hidden()


@pytest.mark.parametrize("size", ["desktop"])
def test_retranscribe_fills_the_transcript_for_the_trimmed_clip(studio, size, speech_wav):
    page = studio.page
    upload_reference(studio, speech_wav)
    studio.fill("clone-transcript", SPEECH_TEXT)
    studio.number("clone-end", 2.5)
    retranscribe = page.locator("#clone-retranscribe")
    expect(retranscribe).to_be_visible()
    retranscribe.click()
    # The demo transcription model's words are noise, labelled as such; the warning is gone.
    expect(page.locator("#clone-transcribe-note")).to_contain_text("Demo output", timeout=180_000)
    expect(page.locator("#clone-transcript-warning")).to_have_text("")
    expect(retranscribe).to_be_hidden()
    expect(studio.field("clone-transcript")).not_to_have_value(SPEECH_TEXT)


def test_saving_under_three_seconds_of_speech_asks_first(studio, size, speech_wav, e2e_server):
    page = studio.page
    name = f"Short {size} {uuid.uuid4().hex[:6]}"
    upload_reference(studio, speech_wav)
    studio.number("clone-start", 0.5)
    studio.number("clone-end", 2.5)
    expect(page.locator("#clone-readout")).to_contain_text(re.compile(r"speech [12]\.\d s"))
    studio.accordion("Save the reference to the library")
    studio.fill("clone-save-name", name)
    studio.recheck()
    page.locator("#clone-save-button").click()
    status = page.locator("#clone-save-status")
    expect(status).to_contain_text(re.compile(r"only [12]\.\d s of speech"))
    anyway = page.locator("#clone-save-anyway")
    expect(anyway).to_be_visible()
    library = e2e_server["ctx"].app.library
    assert all(v.name != name for v in library.list())  # nothing saved before the answer
    shoot(studio, "clone-save-confirm", {"status": status, "save anyway": anyway})
    anyway.click()
    expect(status).to_contain_text(f"Saved {name}")
    expect(anyway).to_be_hidden()
    assert library.get(name).reference_seconds < 2.2


# --- a library voice in Clone, and playing a library row ----------------------------------------


def test_a_library_voice_shows_its_clip_and_transcript_in_clone(studio, size, speech_wav, e2e_client):
    from gradio_client import handle_file

    page = studio.page
    name = f"Shown {size} {uuid.uuid4().hex[:6]}"
    e2e_client.predict(
        reference=handle_file(str(speech_wav)), transcript=SPEECH_TEXT, name=name, api_name="/voice_save"
    )
    studio.tab("Voice Clone")
    expect(page.locator("#clone-reference")).to_be_visible()
    studio.choose("clone-voice", name)
    card = page.locator("#clone-voice-card")
    expect(card).to_contain_text(name)
    expect(card).to_contain_text(SPEECH_TEXT)
    studio.assert_has_audio("clone-voice-player")
    # The manual reference controls are out of the way while a voice is chosen.
    for hidden in ("clone-reference", "clone-trim-wave", "clone-start", "clone-transcript", "clone-save"):
        expect(page.locator(f"#{hidden}")).to_be_hidden()
    shoot(
        studio,
        "clone-library-voice",
        {"voice": studio.field("clone-voice"), "clip": page.locator("#clone-voice-player"), "card": card},
    )
    studio.choose("clone-voice", "(none")
    expect(page.locator("#clone-reference")).to_be_visible()
    expect(page.locator("#clone-voice-player")).to_be_hidden()


def test_a_library_row_plays_its_voice(studio, size, speech_wav, e2e_client):
    from gradio_client import handle_file

    page = studio.page
    name = f"Played {size} {uuid.uuid4().hex[:6]}"
    e2e_client.predict(
        reference=handle_file(str(speech_wav)), transcript=SPEECH_TEXT, name=name, api_name="/voice_save"
    )
    studio.tab("Voice Library")
    studio.fill("library-search", name)
    expect(page.locator("#library-count")).to_contain_text("Showing 1 of")
    play = page.locator("#library-table span.text:visible", has_text="▶").first
    play.click()
    expect(page.locator("#library-details")).to_contain_text(name)
    player = page.locator("#library-player")
    expect(player.locator("#time")).to_have_text(re.compile(r"^\s*0:0[1-9]\s*$"), timeout=15_000)  # it plays
    created = page.locator("#library-table span.text:visible", has_text=re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    expect(created.first).to_be_visible()  # local time, no "T…+00:00"
    shoot(
        studio,
        "library-row-play",
        {"play": play, "name": page.locator("#library-table span.text:visible", has_text=name).first, "player": player},
    )


# --- the pronunciation lexicon --------------------------------------------------------------------


def test_lexicon_editor_add_edit_delete_and_a_bad_regex(studio, size, e2e_server):
    page = studio.page
    store = e2e_server["ctx"].app.synthesis.lexicon
    word = f"Qw{uuid.uuid4().hex[:5]}"
    studio.tab("Voice Library")
    studio.accordion("Pronunciation lexicon")
    status = page.locator("#lexicon-status")
    table = page.locator("#lexicon-table")

    studio.fill("lexicon-pattern", word)
    studio.fill("lexicon-spoken", "Chwen")
    page.locator("#lexicon-add").click()
    expect(status).to_contain_text(f"Added {word} → Chwen")
    expect(table.locator("span.text:visible", has_text=word).first).to_be_visible()
    assert any(e.pattern == word and e.spoken == "Chwen" for e in store.current().entries)

    # A bad regular expression is refused under the form, and nothing is stored.
    before = store.current().version
    studio.fill("lexicon-pattern", "(unclosed")
    page.locator("#lexicon-regex input").check()
    page.locator("#lexicon-add").click()
    expect(status).to_contain_text("'(unclosed' is not a valid regular expression")
    assert store.current().version == before
    shoot(
        studio,
        "lexicon-bad-regex",
        {"table": table, "pattern": studio.field("lexicon-pattern"), "status": status},
    )

    # Edit: pick the row, change the spoken form, update.
    table.locator("span.text:visible", has_text=word).first.click()
    expect(studio.field("lexicon-pattern")).to_have_value(word)
    expect(page.locator("#lexicon-regex input")).not_to_be_checked()
    studio.fill("lexicon-spoken", "Chwenn")
    page.locator("#lexicon-update").click()
    expect(status).to_contain_text("Updated entry")
    assert any(e.pattern == word and e.spoken == "Chwenn" for e in store.current().entries)

    studio.fill("lexicon-try", f"{word} speaks clearly.")
    page.locator("#lexicon-try-button").click()
    expect(page.locator("#lexicon-try-result")).to_contain_text("Chwenn speaks clearly.")

    # Delete it.
    table.locator("span.text:visible", has_text=word).first.click()
    page.locator("#lexicon-delete").click()
    expect(status).to_contain_text(f"Deleted {word}")
    assert all(e.pattern != word for e in store.current().entries)
    expect(table.locator("span.text:visible", has_text=word)).to_have_count(0)


@pytest.mark.parametrize("size", ["desktop"])
def test_a_lexicon_edit_applies_to_the_next_take(studio, size, e2e_server):
    page = studio.page
    ctx = e2e_server["ctx"]
    word = f"Zq{uuid.uuid4().hex[:5]}"
    studio.tab("Voice Library")
    studio.accordion("Pronunciation lexicon")
    studio.fill("lexicon-pattern", word)
    studio.fill("lexicon-spoken", "Chwen")
    page.locator("#lexicon-add").click()
    expect(page.locator("#lexicon-status")).to_contain_text("the next take uses it")
    version = ctx.app.synthesis.lexicon.current().version

    studio.tab("Custom Voice")
    studio.fill("custom-text", f"{word} says hello.")
    studio.set_max_length(1)
    studio.generate("custom")
    take = ctx.app.history.list()[0]
    assert take.text == "Chwen says hello.", take.text  # what the model was given to read
    assert take.request["lexicon_version"] == version  # and a regenerate reads it the same way


# --- the seed control ------------------------------------------------------------------------------


def test_the_seed_control_is_one_field(studio, size):
    page = studio.page
    studio.tab("Custom Voice")
    studio.accordion("Advanced")
    box = page.locator(".seed-control input").filter(visible=True)
    expect(box).to_have_count(1)
    expect(box).to_have_value("")  # empty = random
    expect(box).to_have_attribute("placeholder", "random")
    expect(page.get_by_label("Random seed")).to_have_count(0)
    shoot(studio, "custom-seed-control", {"seed": box, "generate": page.locator("#custom-generate")})


@pytest.mark.parametrize("size", ["desktop"])
def test_same_seed_gives_the_same_take_and_empty_a_new_one(studio, size, e2e_server):
    page = studio.page
    history = e2e_server["ctx"].app.history
    studio.tab("Custom Voice")
    studio.fill("custom-text", f"Seeded take {uuid.uuid4().hex[:6]}.")
    studio.set_max_length(1)
    box = page.locator(".seed-control input").filter(visible=True)
    box.fill("7")
    box.press("Tab")
    studio.generate("custom")
    first = history.list()[0]
    studio.generate("custom")
    second = history.list()[0]
    assert first.id != second.id and first.seed == second.seed == 7
    assert first.audio_path.read_bytes() == second.audio_path.read_bytes()
    box.fill("")
    box.press("Tab")
    studio.generate("custom")
    third = history.list()[0]
    studio.generate("custom")
    fourth = history.list()[0]
    assert third.seed != fourth.seed, (third.seed, fourth.seed)  # empty: a new random seed each take
