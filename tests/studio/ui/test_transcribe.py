"""The Transcribe buttons' wording and the language they fill (studio/ui/transcribe.py)."""

from __future__ import annotations

from core.engine.transcription import Transcript
from studio.ui.transcribe import DEMO_NOTE, language_choice, note_for, use_heard_language


def transcript(language: str, code: str | None, *, demo: bool) -> Transcript:
    return Transcript("Hello there.", language, code, 2.5, demo, "whisper-small", 0.4)


def test_a_studio_language_fills_an_auto_field_and_only_offers_to_change_a_chosen_one():
    heard = transcript("chinese", "zh", demo=False)
    value, line, offer = language_choice(heard, "Auto")
    assert value == "Chinese" and "set to **Chinese** (it was Auto)" in line and offer["visible"] == "hidden"
    # Issue 23: a language the user chose stays; the note says what was heard, a button offers it.
    value, line, offer = language_choice(heard, "English")
    assert value == "English" and "sounds **Chinese**" in line and "your choice" in line
    assert offer["visible"] is True and offer["value"] == "Use Chinese"
    assert use_heard_language(offer["value"])[0] == "Chinese"
    assert language_choice(heard, "Chinese")[1] == ""  # the same: nothing to say
    note = note_for(heard)
    assert note.startswith("✓ Transcribed: 2.5 s · heard Chinese · whisper-small in 0.4 s.")
    assert DEMO_NOTE not in note


def test_a_language_the_studio_does_not_speak_leaves_the_field_as_it_was():
    heard = transcript("auto", "nl", demo=False)
    assert language_choice(heard, "German")[0] == "German"
    assert language_choice(heard, None)[0] == "Auto"
    assert "heard 'nl' (not a studio language: the language field was left as it was)" in note_for(heard)


def test_demo_output_is_labelled():
    note = note_for(transcript("english", "en", demo=True), automatic=True)
    assert note.startswith("Filled in automatically: 2.5 s · heard English")
    assert "Demo output" in note and "noise" in note
