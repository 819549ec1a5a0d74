"""The shared request and result types: modes that read as plain strings, and the reference rules."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from core.audio.clip import Audio
from core.errors import AudioError, InvalidInput
from core.types import (
    MAX_REFERENCE_SECONDS,
    MIN_REFERENCE_SECONDS,
    MODES,
    Mode,
    check_reference,
    normalize_language,
)


def clip(seconds: float, value: float = 0.1, sr: int = 24_000) -> Audio:
    return Audio(np.full(int(seconds * sr), value, np.float32), sr)


def test_modes_are_the_stored_strings_in_order():
    assert MODES == ("voice_design", "custom_voice", "base")
    assert [m.label for m in MODES] == ["Design", "Custom", "Clone"]


@pytest.mark.parametrize(
    "word, mode",
    [
        ("design", Mode.VOICE_DESIGN),
        ("Custom", Mode.CUSTOM_VOICE),
        (" clone ", Mode.BASE),
        ("voice_design", Mode.VOICE_DESIGN),
        ("custom_voice", Mode.CUSTOM_VOICE),
        ("BASE", Mode.BASE),
    ],
)
def test_from_user_takes_the_cli_words_and_the_stored_names(word, mode):
    assert Mode.from_user(word) is mode


@pytest.mark.parametrize("word", ["sing", "", "  ", "voice design", None, 3])
def test_from_user_refuses_anything_else_in_one_sentence(word):
    with pytest.raises(InvalidInput, match=r"Unknown mode .*Choose design, custom or clone\."):
        Mode.from_user(word)


@pytest.mark.parametrize("mode", list(Mode))
def test_a_mode_reads_exactly_as_its_string(mode):
    value = mode.value
    assert mode == value and Mode(value) is mode
    assert str(mode) == f"{mode}" == value
    # Log lines format their arguments with %s.
    assert logging.makeLogRecord({"msg": "mode=%s", "args": (mode,)}).getMessage() == f"mode={value}"
    assert {value: 1}[mode] == 1 and hash(mode) == hash(value)
    assert json.dumps({mode: mode}) == json.dumps({value: value})


def test_languages_are_normalised_or_refused():
    assert normalize_language(" English ") == "english"
    assert normalize_language(None) == "auto"
    with pytest.raises(InvalidInput, match="Klingon"):
        normalize_language("Klingon")


@pytest.mark.parametrize(
    ("audio", "cloning", "saving"),
    [
        (
            clip(0.2),
            r"only 0\.20 s long; cloning needs at least 0\.5 s",
            r"only 0\.20 s long; a voice needs at least 0\.5 s",
        ),
        (
            clip(61.0),
            r"61\.0 s long; cloning uses at most 60 s\. Set the start and end",
            r"61\.0 s long; the library keeps at most 60 s\. Trim it",
        ),
        (clip(1.0, 0.0), "completely silent", "completely silent"),
    ],
)
def test_one_reference_check_worded_for_cloning_or_for_the_library(audio, cloning, saving):
    with pytest.raises(InvalidInput, match=cloning) as caught:
        check_reference(audio)
    assert type(caught.value) is InvalidInput
    with pytest.raises(AudioError, match=saving):
        check_reference(audio, saving=True)


def test_saving_also_demands_decoded_finite_24khz_audio():
    with pytest.raises(AudioError, match="decoded audio"):
        check_reference(np.zeros(24_000), saving=True)
    with pytest.raises(AudioError, match="resample it to 24 kHz"):
        check_reference(clip(1.0, sr=16_000), saving=True)
    with pytest.raises(AudioError, match="NaN"):
        check_reference(clip(1.0, float("nan")), saving=True)


def test_a_good_reference_passes_both_ways():
    for seconds in (MIN_REFERENCE_SECONDS, 5.0, MAX_REFERENCE_SECONDS):
        audio = clip(seconds)
        assert check_reference(audio) is audio and check_reference(audio, saving=True) is audio
