"""core.audio.edit on real speech and generated signals: cuts, levels, fades, joins."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.edit import (
    concat,
    fade,
    normalize_loudness,
    normalize_peak,
    remove_dc,
    trim,
    trim_silence,
)
from core.audio.io import load_audio
from core.errors import InvalidInput
from tests.core.audio.conftest import noise_clip, tone_clip


def test_trim_cuts_the_range_and_leaves_the_input_alone(speech):
    before = speech.samples.copy()
    cut = trim(speech, 1.0, 2.5)
    assert cut.duration == pytest.approx(1.5, abs=1 / TARGET_SAMPLE_RATE)
    np.testing.assert_array_equal(cut.samples, speech.samples[24_000:60_000])
    np.testing.assert_array_equal(speech.samples, before)
    assert trim(speech, start_s=1.0).duration == pytest.approx(speech.duration - 1.0, abs=1e-4)
    assert trim(speech, 1.0, 10_000).duration == pytest.approx(speech.duration - 1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [(-1.0, 2.0, "negative"), (2.0, 1.0, "before its end"), (1.0, 1.0, "before its end"), (100.0, None, "only")],
)
def test_trim_refuses_impossible_ranges(speech, start, end, words):
    with pytest.raises(InvalidInput, match=words):
        trim(speech, start, end)


def test_trim_silence_removes_padding_but_keeps_a_little_air(speech):
    pad = np.zeros(TARGET_SAMPLE_RATE, dtype=np.float32)  # 1 s each side
    padded = Audio(np.concatenate([pad, speech.samples, pad]), TARGET_SAMPLE_RATE)
    trimmed = trim_silence(padded)
    assert speech.duration - 0.5 < trimmed.duration < speech.duration + 0.2
    assert trimmed.duration < padded.duration - 1.8
    # Trimmed audio starts with a quiet lead-in, not mid-word.
    assert np.max(np.abs(trimmed.samples[:240])) < 0.05


def test_trim_silence_leaves_pure_silence_alone(silence_wav):
    silence = load_audio(silence_wav)
    assert trim_silence(silence) is silence


def test_normalize_peak(speech):
    loud = normalize_peak(speech, -1.0)
    assert 20 * np.log10(np.max(np.abs(loud.samples))) == pytest.approx(-1.0, abs=0.01)
    quiet = Audio(np.zeros(100, dtype=np.float32), TARGET_SAMPLE_RATE)
    assert normalize_peak(quiet) is quiet
    with pytest.raises(InvalidInput, match="0 dBFS"):
        normalize_peak(speech, 3.0)


def test_normalize_loudness_hits_the_target(speech):
    quiet = Audio(speech.samples * 0.05, speech.sample_rate)
    out = normalize_loudness(quiet, -20.0)
    measured = pyloudnorm.Meter(out.sample_rate).integrated_loudness(out.samples.astype(np.float64))
    assert measured == pytest.approx(-20.0, abs=0.5)
    assert np.max(np.abs(out.samples)) <= 10 ** (-1 / 20) + 1e-6


def test_normalize_loudness_never_pushes_peaks_past_the_ceiling():
    # Mostly quiet with a few full-scale clicks: loudness gain alone would clip.
    x = noise_clip(2.0, seed=1, amp=0.003).samples.copy()
    x[::4_800] = 0.9
    out = normalize_loudness(Audio(x, TARGET_SAMPLE_RATE), -14.0)
    assert 20 * np.log10(np.max(np.abs(out.samples))) == pytest.approx(-1.0, abs=0.01)


def test_normalize_loudness_short_clip_and_silence():
    short = noise_clip(0.2, seed=2, amp=0.01)  # below BS.1770's 400 ms block
    out = normalize_loudness(short, -20.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(out.samples.astype(np.float64) ** 2)))
    assert rms_db == pytest.approx(-20.0, abs=0.1)
    silence = Audio(np.zeros(24_000, dtype=np.float32), TARGET_SAMPLE_RATE)
    assert normalize_loudness(silence) is silence


def test_remove_dc():
    shifted = Audio(tone_clip(1.0).samples + 0.2, TARGET_SAMPLE_RATE)
    out = remove_dc(shifted)
    assert abs(float(np.mean(out.samples))) < 1e-4
    assert float(np.mean(shifted.samples)) == pytest.approx(0.2, abs=1e-3)


def test_fade_ramps_both_ends():
    ones = Audio(np.ones(24_000, dtype=np.float32), TARGET_SAMPLE_RATE)
    out = fade(ones, 0.1, 0.2)
    assert out.samples[0] == 0.0 and out.samples[-1] == 0.0
    assert out.samples[1_200] == pytest.approx(0.5, abs=0.01)  # half way through the fade-in
    np.testing.assert_array_equal(out.samples[2_400:19_200], 1.0)
    assert np.all(np.diff(out.samples[:2_400]) >= 0)
    short = fade(Audio(np.ones(100, dtype=np.float32), TARGET_SAMPLE_RATE), 1.0, 1.0)
    assert len(short) == 100 and short.samples[0] == 0.0 and short.samples[-1] == 0.0


def test_concat_with_pause_and_crossfade():
    a, b = noise_clip(1.0, seed=3), noise_clip(0.5, seed=4)
    paused = concat([a, b], pause_s=0.25)
    assert len(paused) == len(a) + len(b) + 6_000
    np.testing.assert_array_equal(paused.samples[24_000:30_000], 0.0)
    crossed = concat([a, b], crossfade_s=0.1)
    assert len(crossed) == len(a) + len(b) - 2_400
    # Equal-power ramps keep uncorrelated signals at a steady level through the overlap.
    overlap = crossed.samples[24_000 - 2_400 : 24_000]
    level = 20 * np.log10(np.sqrt(np.mean(overlap**2)) / 0.1)
    assert abs(level) < 1.0
    assert len(concat([a])) == len(a)


def test_concat_refusals():
    with pytest.raises(InvalidInput, match="no audio"):
        concat([])
    with pytest.raises(InvalidInput, match="sample rates"):
        concat([tone_clip(0.1), tone_clip(0.1, sr=16_000)])
    with pytest.raises(InvalidInput, match="not both"):
        concat([tone_clip(0.1), tone_clip(0.1)], pause_s=0.1, crossfade_s=0.1)
