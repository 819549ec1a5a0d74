"""The Clone tab's reference clean-up and trim bookkeeping, through the real named API and as plain
functions: high-pass and noise reduction reach the model and the recipe, the library keeps them,
undo walks back, and the stale-transcript warning and the save question say what they should."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file

from core.audio.clip import Audio
from core.audio.io import load_audio
from core.audio.reference import ReferenceOptions, prepare_reference
from studio.ui.tabs import clone_trim as trims
from studio.ui.tabs.clone import make_parse_clone, reference_options
from studio.ui.trim_wave import peaks, wave_value
from tests.conftest import SPEECH_TEXT


def test_cleanup_options_reach_the_take_and_its_recipe(client, studio_server, speech_wav):
    _, info = client.predict(
        reference=handle_file(str(speech_wav)),
        transcript=SPEECH_TEXT,
        text="Cleaned up.",
        size="0.6B",
        seed=3,
        max_seconds=0.5,
        highpass=True,
        denoise=True,
        api_name="/clone",
    )
    take = studio_server["ctx"].app.history.get(info["take_id"])
    options = take.request["reference_options"]
    assert options["highpass_hz"] == 80.0 and options["denoise"] is True and options["trim_silence"] is True


def test_the_model_hears_exactly_the_cleaned_preview(studio_server, speech_wav):
    parse = make_parse_clone(studio_server["ctx"])
    job = parse(reference=str(speech_wav), transcript=SPEECH_TEXT, text="Hi.", highpass=120, denoise=True)
    preview = prepare_reference(str(speech_wav), ReferenceOptions(highpass_hz=120.0, denoise=True))
    np.testing.assert_array_equal(job.request.reference.samples, preview.audio.samples)
    plain = parse(reference=str(speech_wav), transcript=SPEECH_TEXT, text="Hi.")
    assert not np.array_equal(plain.request.reference.samples, preview.audio.samples)


def test_a_saved_voice_keeps_its_cleanup_options(client, studio_server, speech_wav):
    saved = client.predict(
        reference=handle_file(str(speech_wav)),
        transcript=SPEECH_TEXT,
        name="Cleaned Carla",
        highpass=True,
        denoise=False,
        api_name="/voice_save",
    )
    voice = studio_server["ctx"].app.library.get(saved["id"])
    assert voice.trim == ReferenceOptions(highpass_hz=80.0)


def test_bad_highpass_values_are_refused_in_words():
    from core.errors import InvalidInput

    assert reference_options(None, None, True, True, True, False).highpass_hz == 80.0
    assert reference_options(None, None, True, True, False, False).highpass_hz is None
    with pytest.raises(InvalidInput, match="cut-off in Hz"):
        reference_options(None, None, True, True, "loud", False)


def test_undo_walks_back_through_the_trims():
    state = trims.new_state()
    state = trims.commit(state, 0.5, 3.0)
    state = trims.commit(state, 0.5, 3.0)  # a blur without an edit: nothing new to undo
    state = trims.commit(state, "1.0", None)
    assert state["stack"] == [[None, None], [0.5, 3.0]]
    state, start, end = trims.undo(state)
    assert (start, end) == (0.5, 3.0)
    state, start, end = trims.undo(state)
    assert (start, end) == (None, None) and state["stack"] == []
    state, start, end = trims.undo(state)  # nothing left: stays on the whole clip
    assert (start, end) == (None, None)


def test_the_transcript_warning_follows_the_trim():
    state = trims.transcript_written(trims.new_state(), SPEECH_TEXT)
    assert trims.transcript_warning(state, SPEECH_TEXT, 5.28) == ""
    trimmed = trims.commit(state, None, 2.5)
    warning = trims.transcript_warning(trimmed, SPEECH_TEXT, 5.28)
    assert "written for 0.00–5.28 s" in warning and "now trimmed to 0.00–2.50 s" in warning
    assert trims.transcript_warning(trimmed, "", 5.28) == ""  # no transcript, nothing to mismatch
    rewritten = trims.transcript_written(trimmed, "The quick brown fox.")
    assert trims.transcript_warning(rewritten, "The quick brown fox.", 5.28) == ""


def test_the_length_line_and_the_save_question():
    assert trims.length_line(5.28, None, None).startswith("Clip **5.28 s** · using all of it")
    assert trims.length_line(5.28, 0.5, 3) == "Clip **5.28 s** · using **0.50–3.00 s** (2.50 s)"
    assert trims.save_question(3.2) == "" and trims.save_question(None) == ""
    assert "only **2.4 s of speech**" in trims.save_question(2.4)


def test_the_waveform_value_carries_peaks_length_and_trim(speech_wav):
    speech = load_audio(speech_wav)
    value = wave_value(speech, 0.5, None)
    assert value is not None and value["duration"] == pytest.approx(speech.duration, abs=1e-3)
    assert (value["start"], value["end"]) == (0.5, None)
    assert len(value["peaks"]) == 480 and max(value["peaks"]) == 1.0 and min(value["peaks"]) >= 0.0
    assert peaks(Audio(np.zeros(0, dtype=np.float32), 24_000)) == []
    assert wave_value(None, None, None) is None
