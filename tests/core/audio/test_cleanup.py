"""core.audio.cleanup: the high-pass filter and noise reduction on real espeak-ng speech.

The clean speech is known, so what each step removes is measured against it: hum under the voice
for the high-pass, white noise for the noise reduction (signal-to-noise ratio before and after).
Both run inside ``prepare_reference``, so the preview is what the model hears.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from core.audio.cleanup import HIGHPASS_DEFAULT_HZ, highpass, reduce_noise
from core.audio.clip import Audio
from core.audio.edit import normalize_loudness, trim_silence
from core.audio.io import load_audio
from core.audio.reference import ReferenceOptions, prepare_reference
from core.errors import InvalidInput

AS_RECORDED = ReferenceOptions(trim_silence=False, normalize=False)


def _band_power(audio: Audio, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio.samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio.samples), 1 / audio.sample_rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def _frame_power(samples: np.ndarray, frame: int) -> np.ndarray:
    count = len(samples) // frame
    return (samples[: count * frame].astype(np.float64).reshape(count, frame) ** 2).mean(axis=1)


def _snr_db(clean: Audio, heard: np.ndarray) -> tuple[float, float]:
    """(SNR in dB, speech level kept in dB): the power of ``heard`` in the frames where the clean
    speech talks over its power in the pauses between words, which hold only noise."""
    frame = int(0.02 * clean.sample_rate)
    reference = _frame_power(clean.samples, frame)
    talking = reference > reference.max() * 1e-3
    pauses = reference < reference.max() * 1e-5
    assert talking.sum() > 100 and pauses.sum() > 20  # espeak-ng's speech has both
    power = _frame_power(heard, frame)
    return (
        float(10 * np.log10(power[talking].mean() / power[pauses].mean())),
        float(10 * np.log10(power[talking].mean() / reference[talking].mean())),
    )


@pytest.fixture
def speech_clean(speech) -> Audio:
    return speech


def test_highpass_removes_hum_and_keeps_the_voice(speech_clean):
    t = np.arange(len(speech_clean)) / speech_clean.sample_rate
    hum = (0.2 * np.sin(2 * np.pi * 40.0 * t)).astype(np.float32)  # mains-like rumble under the voice
    hummed = Audio(speech_clean.samples + hum, speech_clean.sample_rate)
    filtered = highpass(hummed)
    # 40 Hz: at least 20 dB lower; the voice band (300-3,400 Hz) within 0.5 dB.
    assert _band_power(filtered, 35, 45) < _band_power(hummed, 35, 45) / 100
    voice_ratio = _band_power(filtered, 300, 3400) / _band_power(speech_clean, 300, 3400)
    assert 10 ** (-0.05) < voice_ratio < 10**0.05, voice_ratio
    assert len(filtered) == len(hummed) and filtered.samples.dtype == np.float32


def test_highpass_refuses_a_cutoff_that_would_eat_the_voice(speech_clean):
    with pytest.raises(InvalidInput, match="between 20 and 500 Hz"):
        highpass(speech_clean, 2_000)


def test_noise_reduction_improves_the_signal_to_noise_ratio(speech_clean):
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(len(speech_clean)).astype(np.float32)
    rms = float(np.sqrt(np.mean(speech_clean.samples**2)))
    noise *= rms / float(np.sqrt(np.mean(noise**2))) / 10 ** (10 / 20)  # 10 dB SNR: an audible hiss
    noisy = Audio(speech_clean.samples + noise, speech_clean.sample_rate)
    before, _ = _snr_db(speech_clean, noisy.samples)
    after, speech_kept = _snr_db(speech_clean, reduce_noise(noisy).samples)
    assert before == pytest.approx(11.2, abs=1.0)  # the hiss fills the pauses
    assert after > before + 6.0, (before, after)  # measured: 11.2 dB -> 23.4 dB
    # The words lose some level with the hiss under them (measured: -5.9 dB); normalising, the
    # next step of the pipeline, brings the level back.
    assert speech_kept > -8.0, speech_kept


def test_cleanup_runs_in_the_reference_pipeline_so_the_preview_is_what_the_model_hears(speech_wav, tmp_path):
    data, sr = sf.read(speech_wav, dtype="float32")
    rng = np.random.default_rng(3)
    t = np.arange(len(data)) / sr
    noisy = data + 0.02 * rng.standard_normal(len(data)).astype(np.float32) + 0.1 * np.sin(2 * np.pi * 30 * t)
    path = tmp_path / "noisy.wav"
    sf.write(path, noisy.astype(np.float32), sr, subtype="FLOAT")
    options = ReferenceOptions(highpass_hz=HIGHPASS_DEFAULT_HZ, denoise=True)
    first = prepare_reference(path, options)
    again = prepare_reference(str(path), options)
    by_hand = normalize_loudness(trim_silence(reduce_noise(highpass(load_audio(path), HIGHPASS_DEFAULT_HZ))))
    np.testing.assert_array_equal(first.audio.samples, again.audio.samples)
    np.testing.assert_array_equal(first.audio.samples, by_hand.samples)
    plain = prepare_reference(path, ReferenceOptions())
    assert not np.array_equal(plain.audio.samples, first.audio.samples)  # the options really did something
    # Off by default: the options record what was done.
    assert ReferenceOptions().as_dict() | {"highpass_hz": 80.0, "denoise": True} == options.as_dict()


def test_cleanup_off_leaves_the_clip_alone(speech_wav):
    as_recorded = prepare_reference(speech_wav, AS_RECORDED)
    np.testing.assert_array_equal(as_recorded.audio.samples, load_audio(speech_wav).samples)
