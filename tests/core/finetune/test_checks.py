"""The go / no-go verdict at its thresholds, and the clip measures on real levels."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.clip import Audio
from core.finetune.checks import Totals, VerdictLevel, judge, measure, noise_floor_dbfs

SR = 24_000


def totals(minutes: float, kept: int = 100, **extra) -> Totals:
    values = dict(
        utterances=kept, excluded=0, kept=kept, kept_seconds=minutes * 60, kept_speech_s=minutes * 50, untranscribed=0
    )
    return Totals(**{**values, **extra})


def test_ten_clean_minutes_are_a_go():
    verdict = judge(totals(10.0))
    assert verdict.level is VerdictLevel.GO and verdict.go
    assert verdict.reasons == ("Ready to train: 10.0 min kept in 100 clips.",)


def test_under_ten_minutes_is_weak_and_under_one_is_a_no_go():
    weak = judge(totals(8.0, kept=60))
    assert weak.level is VerdictLevel.WEAK and weak.go
    assert weak.headline == "8.0 min kept in 60 clips; 10 min or more recommended for a steady voice."
    no_go = judge(totals(0.9, kept=9))
    assert no_go.level is VerdictLevel.NO_GO and not no_go.go
    assert no_go.headline.startswith("Too little speech: 0.9 min kept in 9 clips; at least 1 min is needed")


def test_no_transcripts_and_nothing_kept_are_no_goes():
    untranscribed = judge(totals(0.0, kept=0, utterances=40, untranscribed=40))
    assert untranscribed.level is VerdictLevel.NO_GO
    assert untranscribed.headline.startswith("No transcripts: none of the 40 included clips has one.")
    excluded = judge(totals(0.0, kept=0, utterances=5, excluded=5))
    assert excluded.headline.startswith("No clips are kept")


def test_each_problem_is_a_reason_of_a_weak_verdict():
    verdict = judge(totals(12.0, untranscribed=3, clipped=("u0002", "u0009"), noisy=("u0004",), demo_text=1))
    assert verdict.level is VerdictLevel.WEAK
    assert verdict.reasons == (
        "3 clips have no transcript and will be left out of training; type the words or exclude them.",
        "1 clip still has the demo transcription model's text (random words); correct the transcripts before training.",
        "Clipping in 2 clips (u0002, u0009): the voice would learn the distortion; exclude them or record at a lower "
        "input level.",
        "1 clip is noisy (noise floor above -50 dBFS): the voice would learn the hiss; exclude them or record in a "
        "quieter room.",
    )
    assert verdict.as_dict()["level"] == "weak"


def test_the_noise_floor_is_the_level_of_the_pauses():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 10 ** (-45 / 20), 4 * SR)  # -45 dBFS of hiss: a noisy room
    x[SR : 3 * SR] += 0.3 * np.sin(2 * np.pi * 150 * np.arange(2 * SR) / SR)  # a loud voice from 1 s to 3 s
    clip = Audio(x.astype(np.float32), SR)
    assert noise_floor_dbfs(clip, [(1.0, 3.0)]) == pytest.approx(-45, abs=1.0)
    stats = measure(clip, [(1.0, 3.0)])
    assert stats.noisy and not stats.clipped and stats.speech_s == 2.0
    # With no pause marked, the quietest frame stands in (here one of hiss alone).
    assert noise_floor_dbfs(clip, [(0.0, 4.0)]) == pytest.approx(-45, abs=2.0)
