"""core.audio.io on real files: decoding, refusals, encoding and writing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.io import SUPPORTED_OUTPUT_FORMATS, encode, load_audio, write_audio
from core.errors import AudioError, InvalidInput
from tests.core.audio.conftest import tone_clip

REPO_ROOT = Path(__file__).resolve().parents[3]


def _assert_24k_mono(audio: Audio, expected_s: float, rel: float = 0.01) -> None:
    assert audio.sample_rate == TARGET_SAMPLE_RATE
    assert audio.samples.dtype == np.float32
    assert audio.samples.ndim == 1
    assert audio.duration == pytest.approx(expected_s, rel=rel)
    assert np.isfinite(audio.samples).all()
    assert np.max(np.abs(audio.samples)) <= 1.01


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    "fixture", ["speech_wav", "speech_mp3", "speech_m4a", "speech_ogg"], ids=["wav", "mp3", "m4a", "ogg"]
)
def test_load_speech_formats_give_24k_mono_of_the_right_length(request, fixture, speech_wav):
    expected = sf.info(str(speech_wav)).duration
    audio = load_audio(request.getfixturevalue(fixture))
    _assert_24k_mono(audio, expected)
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01  # real speech came through, not zeros


def test_load_stereo_flac_mixes_both_channels(stereo_flac_44k):
    audio = load_audio(stereo_flac_44k)
    _assert_24k_mono(audio, 2.0)
    # The mean of a 0.6 and a 0.2 sine peaks at no more than 0.4; reading only
    # the left channel would peak at 0.6, only the right at 0.2.
    peak = float(np.max(np.abs(audio.samples)))
    assert 0.3 < peak < 0.45


def test_load_eight_channels_at_192k(eight_channel_192k_wav):
    audio = load_audio(eight_channel_192k_wav)
    _assert_24k_mono(audio, 0.25)
    assert np.max(np.abs(audio.samples)) == pytest.approx(0.4, abs=0.02)


def test_load_keeps_a_different_target_rate(speech_wav):
    audio = load_audio(speech_wav, target_sr=16_000)
    assert audio.sample_rate == 16_000
    assert audio.duration == pytest.approx(sf.info(str(speech_wav)).duration, rel=0.01)


def test_load_from_bytes_wav_and_m4a(speech_wav, speech_m4a):
    from_wav = load_audio(speech_wav.read_bytes())
    from_m4a = load_audio(speech_m4a.read_bytes())
    expected = sf.info(str(speech_wav)).duration
    _assert_24k_mono(from_wav, expected)
    _assert_24k_mono(from_m4a, expected)
    np.testing.assert_allclose(from_wav.samples, load_audio(speech_wav).samples)


def test_load_gradio_int16_stereo_pair():
    # Gradio's numpy audio: (sample_rate, int16 array shaped (n, channels)).
    data = np.zeros((48_000, 2), dtype=np.int16)
    data[:, 0] = 16_384  # +0.5
    data[:, 1] = -8_192  # -0.25
    audio = load_audio((48_000, data))
    _assert_24k_mono(audio, 1.0)
    assert np.median(audio.samples) == pytest.approx(0.125, abs=1e-4)


def test_load_array_pair_in_either_order_and_channels_first():
    tone = tone_clip(1.0, 16_000).samples
    a = load_audio((tone, 16_000))
    b = load_audio((16_000, tone))
    c = load_audio((16_000, np.stack([tone, tone])))  # (channels, n) as torch gives it
    np.testing.assert_allclose(a.samples, b.samples)
    np.testing.assert_allclose(a.samples, c.samples, atol=1e-6)
    _assert_24k_mono(a, 1.0)


def test_load_unsigned_8_bit_array_is_centred():
    data = np.full(8_000, 128, dtype=np.uint8)
    data[::2] = 192  # +0.5
    audio = load_audio((8_000, data), target_sr=8_000)
    assert set(np.round(np.unique(audio.samples), 4)) == {0.0, 0.5}


def test_load_repairable_truncation_keeps_what_is_there(half_wav, speech_wav):
    audio = load_audio(half_wav)
    assert audio.duration == pytest.approx(sf.info(str(speech_wav)).duration / 2, rel=0.02)


@pytest.mark.parametrize(
    ("fixture", "words"),
    [
        ("not_audio_wav", ["notes.wav", "not audio that can be read", "WAV/MP3/FLAC/OGG/M4A"]),
        ("header_only_fragment_wav", ["fragment.wav", "not audio that can be read"]),
        ("truncated_wav", ["truncated.wav", "contains no audio"]),
        ("empty_wav", ["empty.wav", "contains no audio"]),
        ("nan_wav", ["nan.wav", "NaN"]),
        ("thirty_three_channel_wav", ["33 channels", "at most 32"]),
        ("low_rate_wav", ["4,000 Hz", "8,000"]),
    ],
)
def test_broken_files_are_refused_with_a_readable_reason(request, fixture, words):
    with pytest.raises(AudioError) as caught:
        load_audio(request.getfixturevalue(fixture))
    message = str(caught.value)
    for word in words:
        assert word in message
    assert "Traceback" not in message and "\n" not in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioError, match=r"'nope\.wav' does not exist"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)


def test_bad_arrays_and_bad_sources():
    with pytest.raises(AudioError, match="NaN"):
        load_audio((24_000, np.array([0.1, np.inf, 0.2], dtype=np.float32)))
    with pytest.raises(AudioError, match="no audio"):
        load_audio((24_000, np.zeros(0, dtype=np.float32)))
    with pytest.raises(AudioError, match="1,000,000 Hz"):
        load_audio((1_000_000, np.zeros(100, dtype=np.float32)))
    with pytest.raises(AudioError, match="empty"):
        load_audio(b"")
    with pytest.raises(AudioError, match="not audio"):
        load_audio(b"GIF89a" + bytes(200))
    with pytest.raises(InvalidInput, match="file path"):
        load_audio(12345)  # type: ignore[arg-type]


def test_over_long_file_is_refused_from_its_header(eleven_minute_flac):
    tracemalloc.start()
    try:
        with pytest.raises(AudioError) as caught:
            load_audio(eleven_minute_flac, max_seconds=600)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "11:00 min" in str(caught.value) and "10:00 min" in str(caught.value)
    # Decoding it would take 21 MB of float32 samples; reading the header takes next to nothing.
    assert peak_bytes < 2_000_000


def test_over_long_compressed_file_and_array_are_refused(speech_m4a, speech_mp3):
    with pytest.raises(AudioError, match=r"speech\.m4a' is \d\.\d s long; the limit is 2\.0 s"):
        load_audio(speech_m4a, max_seconds=2.0)
    with pytest.raises(AudioError, match="limit is 1.0 s"):
        load_audio(speech_mp3, max_seconds=1.0)
    with pytest.raises(AudioError, match="limit"):
        load_audio((8_000, np.zeros(8_000 * 5, dtype=np.float32)), max_seconds=4.0)


def test_without_ffmpeg_mp3_and_m4a_fail_with_install_advice(speech_m4a, tmp_path):
    # A real ffmpeg-less environment: a child Python whose PATH has no ffmpeg.
    script = textwrap.dedent(
        f"""
        import warnings; warnings.simplefilter("ignore")
        import numpy as np
        from core.audio.clip import Audio
        from core.audio.io import encode, load_audio
        from core.errors import AudioError
        for action in (lambda: encode(Audio(np.zeros(2400, np.float32), 24000), "mp3"),
                       lambda: load_audio({str(speech_m4a)!r})):
            try:
                action()
            except AudioError as exc:
                print(exc)
        """
    )
    env = {**os.environ, "PATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("MP3 needs ffmpeg; install it (brew install ffmpeg / apt install ffmpeg)")
    assert "WAV/FLAC" in lines[0]
    assert "needs ffmpeg" in lines[1] and "speech.m4a" in lines[1]


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_encode_round_trips_to_the_same_length(speech, fmt):
    data = encode(speech, fmt)
    decoded, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert len(decoded) / sr == pytest.approx(speech.duration, abs=0.05)
    assert np.sqrt(np.mean(decoded**2)) > 0.01


def test_encode_formats_are_what_they_claim(speech):
    assert sf.info(io.BytesIO(encode(speech, "wav"))).subtype == "PCM_16"
    assert sf.info(io.BytesIO(encode(speech, "flac"))).format == "FLAC"
    ogg = sf.info(io.BytesIO(encode(speech, "ogg")))
    assert (ogg.format, ogg.subtype) == ("OGG", "OPUS")
    assert encode(speech, "mp3")[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xe3")


def test_encode_ogg_resamples_rates_opus_lacks():
    decoded, sr = sf.read(io.BytesIO(encode(tone_clip(1.0, sr=44_100), "ogg")))
    assert sr == 48_000 and len(decoded) / sr == pytest.approx(1.0, abs=0.05)


def test_encode_pcm_is_raw_little_endian_int16():
    audio = Audio(np.array([0.0, 0.5, -0.5, 1.0, -1.0], dtype=np.float32), TARGET_SAMPLE_RATE)
    data = encode(audio, "pcm")
    assert len(data) == 10
    values = np.frombuffer(data, dtype="<i2")
    assert values[0] == 0 and values[3] == 32767 and values[4] <= -32767
    assert abs(values[1] - 16384) <= 1 and abs(values[2] + 16384) <= 1


def test_encode_clips_instead_of_wrapping():
    hot = Audio(np.array([1.5, -1.5, 0.25] * 1000, dtype=np.float32), TARGET_SAMPLE_RATE)
    decoded, _ = sf.read(io.BytesIO(encode(hot, "wav")), dtype="float32")
    assert decoded[0] > 0.99 and decoded[1] < -0.99  # sign kept: no int16 wrap-around


def test_encode_refusals(speech):
    with pytest.raises(InvalidInput) as caught:
        encode(speech, "aiff")
    assert all(fmt in str(caught.value) for fmt in SUPPORTED_OUTPUT_FORMATS)
    with pytest.raises(AudioError, match="no audio"):
        encode(Audio(np.zeros(0, dtype=np.float32), TARGET_SAMPLE_RATE), "wav")


@pytest.mark.parametrize("name", ["out.wav", "out.flac", "out.ogg", "out.opus", "out.mp3", "nested/dir/out.WAV"])
def test_write_audio_infers_the_format_from_the_suffix(speech, tmp_path, name):
    written = write_audio(speech, tmp_path / name)
    assert written == tmp_path / name and written.is_file()
    info = sf.info(str(written))
    assert info.duration == pytest.approx(speech.duration, abs=0.05)
    assert not list(written.parent.glob("*.part"))  # no temp file left behind


def test_write_audio_pcm_and_explicit_format(speech, tmp_path):
    raw = write_audio(speech, tmp_path / "out.pcm")
    assert raw.stat().st_size == 2 * len(speech)
    flac = write_audio(speech, tmp_path / "out.bin", fmt="flac")
    assert sf.info(str(flac)).format == "FLAC"
    with pytest.raises(InvalidInput, match=r"\.wav"):
        write_audio(speech, tmp_path / "out.xyz")
