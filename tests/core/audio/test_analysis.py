"""core.audio.analysis: what a reference clip's report says about real recordings."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.analysis import analyze
from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.io import load_audio
from tests.core.audio.conftest import noise_clip


def test_analyze_clean_speech_has_no_warnings(speech):
    report = analyze(speech)
    assert report.warnings == []
    assert report.duration_s == pytest.approx(speech.duration)
    assert -20 < report.peak_dbfs <= 0
    assert report.rms_dbfs < report.peak_dbfs
    assert report.clipped_ratio == 0.0
    assert 0.0 <= report.silence_ratio < 0.6


def test_analyze_short_reference(short_speech_wav):
    report = analyze(load_audio(short_speech_wav))
    assert report.duration_s < 3
    assert any(w.startswith(f"Reference is {report.duration_s:.1f} s; 3–30 s") for w in report.warnings)


def test_analyze_long_reference():
    report = analyze(noise_clip(31.0, seed=5))
    assert any("Reference is 31.0 s" in w for w in report.warnings)


def test_analyze_clipping(clipped_wav):
    report = analyze(load_audio(clipped_wav))
    assert report.clipped_ratio > 0.1
    assert any("clipped" in w for w in report.warnings)


def test_analyze_silence_and_quiet(silence_wav, speech):
    report = analyze(load_audio(silence_wav))
    assert report.silence_ratio == 1.0
    assert report.peak_dbfs == -120.0
    assert any("silence" in w for w in report.warnings)
    assert any("very quiet" in w for w in report.warnings)
    whisper = analyze(Audio(speech.samples * 0.01, speech.sample_rate))
    assert any("very quiet" in w for w in whisper.warnings)
    assert not any("clipped" in w for w in whisper.warnings)


def test_analyze_empty_audio():
    report = analyze(Audio(np.zeros(0, dtype=np.float32), TARGET_SAMPLE_RATE))
    assert report.duration_s == 0.0 and report.warnings == ["The clip contains no audio."]
