"""The Transcribe buttons' wording and the language they fill (studio/ui/transcribe.py)."""

from __future__ import annotations

from core.engine.transcription import Transcript
from studio.ui.transcribe import DEMO_NOTE, _language_update, note_for


def transcript(language: str, code: str | None, *, demo: bool) -> Transcript:
    return Transcript("Hello there.", language, code, 2.5, demo, "whisper-small", 0.4)


def test_a_studio_language_fills_the_field():
    heard = transcript("chinese", "zh", demo=False)
    assert _language_update(heard, "English") == "Chinese"
    note = note_for(heard)
    assert note.startswith("✓ Transcribed: 2.5 s · heard Chinese · whisper-small in 0.4 s.")
    assert DEMO_NOTE not in note


def test_a_language_the_studio_does_not_speak_leaves_the_field_as_it_was():
    heard = transcript("auto", "nl", demo=False)
    assert _language_update(heard, "German") == "German"
    assert _language_update(heard, None) == "Auto"
    assert "heard 'nl' (not a studio language: the language field was left as it was)" in note_for(heard)


def test_demo_output_is_labelled():
    note = note_for(transcript("english", "en", demo=True), automatic=True)
    assert note.startswith("Filled in automatically: 2.5 s · heard English")
    assert "Demo output" in note and "noise" in note
