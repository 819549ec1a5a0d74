"""core.audio.reference: the clone reference pipeline, on real speech and real files.

``prepare_reference`` is what the Clone tab previews and what cloning uses, so
these tests pin down each step (load, cut, silence trim, loudness) and the
report that comes with the result.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from core.audio.analysis import analyze
from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.edit import normalize_loudness, trim_silence
from core.audio.io import load_audio
from core.audio.reference import (
    MAX_REFERENCE_UPLOAD_S,
    PreparedReference,
    ReferenceOptions,
    prepare_reference,
)
from core.audio.speech_check import measure_speech
from core.errors import AudioError, InvalidInput

AS_RECORDED = ReferenceOptions(trim_silence=False, normalize=False)


def _lufs(audio: Audio) -> float:
    return float(pyloudnorm.Meter(audio.sample_rate).integrated_loudness(audio.samples.astype(np.float64)))


def _padded_speech(speech_wav: Path, tmp_path: Path, pad_s: float = 1.5) -> Path:
    """The spoken clip with ``pad_s`` of digital silence before and after it."""
    data, sr = sf.read(speech_wav, dtype="float32")
    pad = np.zeros(int(pad_s * sr), dtype=np.float32)
    path = tmp_path / "padded.wav"
    sf.write(path, np.concatenate([pad, data, pad]), sr, subtype="PCM_16")
    return path


def test_default_options_trim_silence_and_normalise(speech_wav):
    prepared = prepare_reference(speech_wav)
    assert isinstance(prepared, PreparedReference)
    assert prepared.source_name == "speech.wav"
    assert prepared.audio.sample_rate == TARGET_SAMPLE_RATE
    assert prepared.audio.samples.dtype == np.float32
    assert _lufs(prepared.audio) == pytest.approx(-20.0, abs=0.5)
    assert np.max(np.abs(prepared.audio.samples)) <= 10 ** (-1 / 20) + 1e-6  # the -1 dBFS ceiling
    report = prepared.report
    assert report.duration_s == pytest.approx(prepared.audio.duration)
    assert report.warnings == []  # ~5 s of clean speech


def test_the_preview_is_exactly_what_cloning_gets(speech_wav):
    """Same steps in the same order as done by hand, and the same bytes every time."""
    first = prepare_reference(speech_wav)
    again = prepare_reference(str(speech_wav))
    by_hand = normalize_loudness(trim_silence(load_audio(speech_wav)))
    np.testing.assert_array_equal(first.audio.samples, again.audio.samples)
    np.testing.assert_array_equal(first.audio.samples, by_hand.samples)
    # The readout is the plain analysis plus the speech check's seconds of speech.
    assert first.report == replace(analyze(by_hand), speech_s=measure_speech(by_hand).speech_s)
    assert again.source_name == "speech.wav"  # a str path names its file too


def test_start_and_end_cut_the_clip(speech_wav):
    whole = load_audio(speech_wav)
    cut = prepare_reference(speech_wav, ReferenceOptions(start_s=1.0, end_s=2.5, trim_silence=False, normalize=False))
    assert cut.audio.duration == pytest.approx(1.5)
    np.testing.assert_array_equal(cut.audio.samples, whole.samples[24_000:60_000])
    only_start = prepare_reference(speech_wav, ReferenceOptions(start_s=2.0, trim_silence=False, normalize=False))
    np.testing.assert_array_equal(only_start.audio.samples, whole.samples[48_000:])
    only_end = prepare_reference(speech_wav, ReferenceOptions(end_s=1.0, trim_silence=False, normalize=False))
    np.testing.assert_array_equal(only_end.audio.samples, whole.samples[:24_000])


def test_zero_start_and_end_mean_the_whole_clip(speech_wav):
    # The Clone tab's number boxes send 0 when left empty.
    whole = load_audio(speech_wav)
    zeros = prepare_reference(speech_wav, ReferenceOptions(start_s=0.0, end_s=0.0, trim_silence=False, normalize=False))
    np.testing.assert_array_equal(zeros.audio.samples, whole.samples)


def test_impossible_cut_is_refused(speech_wav):
    with pytest.raises(InvalidInput, match="only"):
        prepare_reference(speech_wav, ReferenceOptions(start_s=60.0))
    with pytest.raises(InvalidInput, match="before its end"):
        prepare_reference(speech_wav, ReferenceOptions(start_s=3.0, end_s=2.0))


def test_silence_around_the_speech_is_trimmed(speech_wav, tmp_path):
    padded = _padded_speech(speech_wav, tmp_path)
    speech_s = sf.info(str(speech_wav)).duration
    kept = prepare_reference(padded, AS_RECORDED)
    assert kept.audio.duration == pytest.approx(speech_s + 3.0, abs=0.01)
    trimmed = prepare_reference(padded, ReferenceOptions(normalize=False))
    # At most a little air (50 ms a side, plus espeak's own quiet edges) is left.
    assert speech_s - 0.5 < trimmed.audio.duration < speech_s + 0.2
    assert trimmed.report.silence_ratio < kept.report.silence_ratio


def test_without_normalising_the_level_is_left_alone(speech_wav):
    as_recorded = prepare_reference(speech_wav, AS_RECORDED)
    np.testing.assert_array_equal(as_recorded.audio.samples, load_audio(speech_wav).samples)
    assert as_recorded.report == replace(
        analyze(as_recorded.audio), speech_s=measure_speech(as_recorded.audio).speech_s
    )


def test_quiet_recording_is_brought_up_to_speech_level(speech_wav, tmp_path):
    data, sr = sf.read(speech_wav, dtype="float32")
    path = tmp_path / "whisper.flac"
    sf.write(path, data * 0.02, sr, subtype="PCM_24")
    quiet = prepare_reference(path, ReferenceOptions(normalize=False))
    assert any("very quiet" in w for w in quiet.report.warnings)
    fixed = prepare_reference(path)
    assert _lufs(fixed.audio) == pytest.approx(-20.0, abs=0.5)
    assert not any("very quiet" in w for w in fixed.report.warnings)
    assert fixed.source_name == "whisper.flac"


def test_clipping_in_the_recording_is_still_reported_after_normalising(clipped_wav):
    raw = prepare_reference(clipped_wav, ReferenceOptions(normalize=False))
    assert raw.report.clipped_ratio > 0.1
    normalised = prepare_reference(clipped_wav)
    # Normalising lowers the level, so the output itself has no clipped samples...
    assert analyze(normalised.audio).clipped_ratio == 0.0
    # ...but the report keeps what the recording had, with its warning.
    assert normalised.report.clipped_ratio == pytest.approx(raw.report.clipped_ratio)
    assert any("clipped" in w for w in normalised.report.warnings)
    assert normalised.report.peak_dbfs < raw.report.peak_dbfs


def test_short_reference_is_prepared_with_a_warning(short_speech_wav):
    prepared = prepare_reference(short_speech_wav)
    assert prepared.audio.duration < 3.0
    assert any("3–30 s" in w for w in prepared.report.warnings)


def test_bytes_and_array_sources_have_no_file_name(speech_wav):
    from_bytes = prepare_reference(speech_wav.read_bytes(), AS_RECORDED)
    assert from_bytes.source_name is None
    np.testing.assert_allclose(from_bytes.audio.samples, load_audio(speech_wav).samples)
    data, sr = sf.read(speech_wav, dtype="int16")
    from_array = prepare_reference((sr, data))  # as Gradio's microphone gives it
    assert from_array.source_name is None
    assert from_array.audio.sample_rate == TARGET_SAMPLE_RATE
    assert _lufs(from_array.audio) == pytest.approx(-20.0, abs=0.5)


def test_an_over_long_upload_is_refused_before_decoding(eleven_minute_flac):
    assert MAX_REFERENCE_UPLOAD_S == 600.0
    with pytest.raises(AudioError, match=r"eleven_minutes\.flac' is 11:00 min .* the limit is 10:00 min"):
        prepare_reference(eleven_minute_flac)


def test_broken_files_are_refused(not_audio_wav, empty_wav):
    with pytest.raises(AudioError, match="not audio"):
        prepare_reference(not_audio_wav)
    with pytest.raises(AudioError, match="no audio"):
        prepare_reference(empty_wav)


def test_options_as_dict():
    options = ReferenceOptions(start_s=1.25, end_s=4.0, trim_silence=False, normalize=True)
    off = {"highpass_hz": None, "denoise": False}  # the clean-up options, off by default
    assert options.as_dict() == {"start_s": 1.25, "end_s": 4.0, "trim_silence": False, "normalize": True, **off}
    assert ReferenceOptions(**options.as_dict()) == options
    assert ReferenceOptions().as_dict() == {
        "start_s": None,
        "end_s": None,
        "trim_silence": True,
        "normalize": True,
        **off,
    }
