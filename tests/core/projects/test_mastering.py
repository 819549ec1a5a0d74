"""Mastering to each preset, on real espeak-ng speech, checked on the encoded file by measurements
that are not the module's own (tests/core/projects/loudness_meter.py: ffmpeg's astats / ebur128 /
silencedetect, and pyloudnorm on a libsndfile decode)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.audio.clip import Audio, from_dbfs, rms_level, to_dbfs
from core.errors import AudioError, InvalidInput
from core.projects.mastering import (
    PRESETS,
    compliance,
    master,
    master_timed,
    noise_floor_dbfs,
    preset_from_user,
    run_ffmpeg,
    true_peak_dbtp,
)
from core.projects.model import MasteringPreset
from tests.conftest import need, spoken
from tests.core.projects.loudness_meter import ffmpeg_levels, probe, soundfile_levels


def quiet_speech(seconds: float = 3.0, seed: int = 1, rms_dbfs: float = -38.0) -> Audio:
    """Real speech well under every preset's level, so mastering has work to do."""
    clip = spoken(seconds, seed=seed)
    gain = from_dbfs(rms_dbfs) / rms_level(clip.samples)
    return Audio(clip.samples * np.float32(gain), clip.sample_rate)


def encode_mp3(audio: Audio, path: Path, *, channels: int = 1, kbps: int = 192) -> Path:
    """The file a chapter becomes (as export does it: libmp3lame CBR; stereo a copy of the mono)."""
    need("ffmpeg")
    pan = ["-af", "pan=stereo|c0=c0|c1=c0"] if channels == 2 else []
    run_ffmpeg(
        ["-f", "f32le", "-ar", str(audio.sample_rate), "-ac", "1", "-i", "pipe:0"],
        pan,
        ["-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-f", "mp3", str(path)],
        stdin=audio.samples.astype("<f4").tobytes(),
    )
    return path


def test_acx_master_meets_every_rule_on_the_mp3(tmp_path):
    mastered = master_timed(quiet_speech(), MasteringPreset.ACX)
    assert mastered.audio.sample_rate == 44_100
    path = encode_mp3(mastered.audio, tmp_path / "acx.mp3")

    report = compliance(path, MasteringPreset.ACX)
    assert report.passed, report.summary
    assert {r.rule for r in report.rules} >= {
        "RMS level (dBFS)",
        "Peak level (dBFS)",
        "Noise floor (dBFS)",
        "Room tone at the head (s)",
        "Room tone at the tail (s)",
        "Sample rate (Hz)",
        "MP3 bit rate (kbit/s)",
    }
    assert all(r.source.startswith("ACX") for r in report.rules)

    # Independently: ffmpeg's astats and silencedetect, numpy on libsndfile's decode.
    heard = ffmpeg_levels(path)
    assert -23.0 <= heard["rms"] <= -18.0
    assert heard["peak"] <= -3.0
    assert 0.5 <= heard["head"] <= 1.0
    assert 1.0 <= heard["tail"] <= 5.0
    other = soundfile_levels(path)
    assert other["noise_floor"] <= -60.0
    assert other["noise_floor"] > -90.0, "room tone, not digital silence (ACX rejects that)"
    assert other["rate"] == 44_100 and other["channels"] == 1
    stream = probe(path)["streams"][0]
    assert stream["codec_name"] == "mp3" and int(stream["bit_rate"]) == 192_000
    # The module's own figures agree with the independent ones.
    measured = {r.rule: r.measured for r in report.rules}
    assert measured["RMS level (dBFS)"] == pytest.approx(heard["rms"], abs=0.3)
    assert measured["Peak level (dBFS)"] == pytest.approx(heard["peak"], abs=0.3)
    # The head moved by the room tone added minus the leading silence cut.
    assert 0.0 < mastered.offset_s <= 0.75


@pytest.mark.parametrize(
    ("preset", "channels", "lufs", "tolerance"),
    [(MasteringPreset.PODCAST, 2, -16.0, 1.0), (MasteringPreset.BROADCAST, 1, -23.0, 0.5)],
)
def test_loudness_presets_meet_their_target_and_true_peak(tmp_path, preset, channels, lufs, tolerance):
    audio = master(quiet_speech(seed=2), preset)
    assert PRESETS[preset].channels == channels
    path = encode_mp3(audio, tmp_path / f"{preset.value}.mp3", channels=channels)

    report = compliance(path, preset)
    assert report.passed, report.summary
    loudness = next(r for r in report.rules if r.rule.startswith("Integrated loudness"))
    assert loudness.limit.startswith(f"{lufs:g} LUFS")

    heard = ffmpeg_levels(path)
    assert heard["lufs"] == pytest.approx(lufs, abs=tolerance)
    assert heard["true_peak"] <= -1.0
    other = soundfile_levels(path)
    assert other["channels"] == channels
    assert other["lufs"] == pytest.approx(lufs, abs=tolerance)
    assert loudness.measured == pytest.approx(heard["lufs"], abs=0.2)


def test_podcast_mono_file_is_held_to_minus_19(tmp_path):
    """Apple's and AES's mono target: the same master encoded mono measures -19 LUFS."""
    audio = master(quiet_speech(seed=3), MasteringPreset.PODCAST)
    path = encode_mp3(audio, tmp_path / "mono.mp3", channels=1)
    report = compliance(path, "podcast")
    loudness = next(r for r in report.rules if r.rule.startswith("Integrated loudness"))
    assert "-19 LUFS" in loudness.limit and "mono" in loudness.limit
    assert report.passed, report.summary
    assert ffmpeg_levels(path)["lufs"] == pytest.approx(-19.0, abs=1.0)


def test_a_too_quiet_unmastered_file_fails_acx_with_its_reading(tmp_path):
    quiet = quiet_speech(rms_dbfs=-40.0)
    path = encode_mp3(master(quiet, MasteringPreset.NONE), tmp_path / "quiet.mp3")
    report = compliance(path, MasteringPreset.ACX)
    assert not report.passed
    rms = next(r for r in report.rules if r.rule == "RMS level (dBFS)")
    assert not rms.passed
    assert rms.measured == pytest.approx(ffmpeg_levels(path)["rms"], abs=0.3)
    assert rms.measured < -23.0
    data = report.as_dict()
    assert data["passed"] is False and data["preset"] == "acx"
    assert "RMS level" in data["summary"] and "fail" in data["summary"]
    # A 24 kHz MP3 is not what ACX takes either, and the report says so.
    assert not next(r for r in report.rules if r.rule == "Sample rate (Hz)").passed


def test_true_peak_sees_the_overs_between_samples():
    """A sine at a quarter of the rate, sampled 45 degrees off its crest: every sample reads
    -3 dBFS, the wave itself reaches 0 dBTP (BS.1770's example of why true peak exists)."""
    sr = 48_000
    t = np.arange(sr) / sr
    wave = np.sin(2 * np.pi * (sr / 4) * t + np.pi / 4).astype(np.float32)
    assert to_dbfs(float(np.max(np.abs(wave)))) == pytest.approx(-3.01, abs=0.05)
    assert true_peak_dbtp(wave, sr) == pytest.approx(0.0, abs=0.2)


def test_noise_floor_is_the_quietest_half_second():
    sr = 24_000
    rng = np.random.default_rng(0)
    loud = 0.1 * rng.standard_normal(sr * 2)
    hush = from_dbfs(-65.0) * rng.standard_normal(sr)
    floor = noise_floor_dbfs(np.concatenate([loud, hush, loud]).astype(np.float32), sr)
    assert floor == pytest.approx(-65.0, abs=0.5)


def test_acx_room_tone_is_the_chapters_own_when_it_has_some():
    """A recording with real room noise keeps it: the head and tail are that noise, not a new one."""
    clip = quiet_speech(rms_dbfs=-20.0)
    voice = np.concatenate([clip.samples, np.zeros(clip.sample_rate, np.float32)])  # and a pause
    rng = np.random.default_rng(5)
    room = (from_dbfs(-65.0) * rng.standard_normal(len(voice))).astype(np.float32)
    mastered = master(Audio(voice + room, clip.sample_rate), "acx")
    head = to_dbfs(rms_level(mastered.samples[: int(0.5 * mastered.sample_rate)]))
    # Generated room tone sits at -70 dBFS; this is the recording's own, moved by the gain.
    assert -67.5 < head < -61.5


def test_bad_input_is_refused_with_a_sentence():
    with pytest.raises(InvalidInput, match="Unknown mastering preset 'loud'"):
        preset_from_user("loud")
    with pytest.raises(AudioError, match="no sound"):
        master(Audio(np.zeros(24_000, np.float32), 24_000), "acx")
    assert master(spoken(1.0), "none").duration == pytest.approx(1.0)
