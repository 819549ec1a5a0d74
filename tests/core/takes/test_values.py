"""Loose widget / JSON values to the engine's typed options, and the sentences for bad ones."""

from __future__ import annotations

import math

import pytest

from core.audio.edit import PostProcessing
from core.errors import InvalidInput
from core.takes.values import (
    FRAMES_PER_SECOND,
    OUTPUT_FORMATS,
    language_value,
    optional_number,
    options_from_values,
    output_format,
    post_from_values,
    sampling_from_values,
)
from core.types import Sampling


def test_empty_values_mean_the_model_defaults():
    assert sampling_from_values() == Sampling()
    assert sampling_from_values("", " ", None, "", None, "") == Sampling()
    assert sampling_from_values(seed=-1, max_seconds=0) == Sampling()  # random seed, automatic length


def test_widget_values_become_typed_sampling():
    sampling = sampling_from_values(
        seed=7.0, temperature="0.8", top_k=50.0, top_p=0.9, repetition_penalty=1.05, max_seconds=2
    )
    assert sampling == Sampling(
        seed=7,
        temperature=0.8,
        top_k=50,
        top_p=0.9,
        repetition_penalty=1.05,
        max_new_tokens=math.ceil(2 * FRAMES_PER_SECOND),
    )
    assert isinstance(sampling.seed, int) and isinstance(sampling.top_k, int)
    assert sampling_from_values(max_seconds=0.01).max_new_tokens == 1  # never zero frames


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(seed="abc"), "Seed must be a number, not 'abc'."),
        (dict(seed=1.5), "Seed must be a whole number."),
        (dict(temperature=float("nan")), "Temperature must be a finite number."),
        (dict(temperature=float("inf")), "Temperature must be a finite number."),
        (dict(top_k=2.5), "Top-k must be a whole number."),
        (dict(max_seconds=-1), "Max length must be 0 (automatic) or a number of seconds."),
        (dict(temperature=7), "Temperature is 7.0; it must be between 0.05 and 2.0."),
        (dict(top_p=[1]), "Top-p must be a number, not [1]."),
    ],
)
def test_bad_sampling_values_are_sentences(kwargs, message):
    with pytest.raises(InvalidInput) as info:
        sampling_from_values(**kwargs)
    assert str(info.value) == message


def test_optional_number():
    assert optional_number(None, "X", float) is None
    assert optional_number("  ", "X", float) is None
    assert optional_number("3", "X", int) == 3
    assert optional_number(2.0, "X", float) == 2.0


def test_post_processing_values():
    assert post_from_values() == PostProcessing()
    assert post_from_values(None, None, "", 0, 0) == PostProcessing()
    post = post_from_values(" Peak ", "0.5", 1, "yes", 1)
    assert post == PostProcessing(normalize="peak", fade_in_s=0.5, fade_out_s=1.0, trim_silence=True, remove_dc=True)
    with pytest.raises(InvalidInput, match="Fade in must be a number"):
        post_from_values(fade_in_s="soon")
    with pytest.raises(InvalidInput, match="Normalisation 'loud' is not supported"):
        post_from_values("loud")


def test_output_format():
    assert OUTPUT_FORMATS[:2] == ["wav", "flac"]
    assert output_format(None) == output_format("") == "wav"
    assert output_format(" .FLAC ") == "flac"
    with pytest.raises(InvalidInput) as info:
        output_format("aiff")
    assert str(info.value) == f"Output format 'aiff' is not supported; choose {', '.join(OUTPUT_FORMATS)}."
    with pytest.raises(InvalidInput):
        output_format("pcm")  # the encoder has it, but a take is never stored raw


def test_language_value():
    assert language_value(None) == language_value("") == "auto"
    assert language_value(" English ") == "English"


def test_options_take_the_named_apis_advanced_parameters():
    options = options_from_values(
        seed=3, top_k=40, max_seconds=4, format="MP3", output_fade_in_s="0.5", output_trim_silence=True
    )
    assert options.fmt == "mp3"
    assert options.sampling == Sampling(seed=3, top_k=40, max_new_tokens=math.ceil(4 * FRAMES_PER_SECOND))
    assert options.post == PostProcessing(fade_in_s=0.5, trim_silence=True)


def test_max_new_tokens_caps_what_max_seconds_allows():
    assert options_from_values(max_new_tokens=30).sampling.max_new_tokens == 30
    assert options_from_values(max_seconds=1, max_new_tokens=300).sampling.max_new_tokens == math.ceil(
        FRAMES_PER_SECOND
    )
    assert options_from_values(max_seconds=10, max_new_tokens=30).sampling.max_new_tokens == 30
    for bad in (0, 2.5, -3):
        with pytest.raises(InvalidInput, match="^Max new tokens is"):
            options_from_values(max_new_tokens=bad)
    with pytest.raises(InvalidInput, match="^Max new tokens must be a number"):
        options_from_values(max_new_tokens="many")
