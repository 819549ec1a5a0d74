"""Real audio for the core.audio tests: spoken clips, deliberately broken files, test signals.

Speech comes from espeak-ng and lossy files from ffmpeg, so the decoders are
exercised on what they meet in practice rather than on hand-built arrays.
Files are made once per session. ``tone`` and ``noise`` make generated clips
for the tests that need an exact signal.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.io import load_audio
from tests.conftest import need as _need


def tone_clip(seconds: float, sr: int = TARGET_SAMPLE_RATE, amp: float = 0.5, freq: float = 220.0) -> Audio:
    t = np.arange(int(round(seconds * sr))) / sr
    return Audio((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)


def noise_clip(seconds: float, seed: int, amp: float = 0.1, sr: int = TARGET_SAMPLE_RATE) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio((amp * rng.standard_normal(int(seconds * sr))).astype(np.float32), sr)


def _ffmpeg(src: Path, dst: Path, *args: str) -> Path:
    _need("ffmpeg")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)],
        check=True,
    )
    return dst


def _sine(seconds: float, sr: int, freq: float = 220.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def speech(speech_wav: Path) -> Audio:
    """The session's spoken clip, decoded to 24 kHz mono."""
    return load_audio(speech_wav)


@pytest.fixture(scope="session")
def short_speech_wav(audio_dir: Path) -> Path:
    """A single word, well under the 3 s a reference needs."""
    _need("espeak-ng")
    path = audio_dir / "short.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Hello."], check=True)
    return path


@pytest.fixture(scope="session")
def speech_mp3(audio_dir: Path, speech_wav: Path) -> Path:
    return _ffmpeg(speech_wav, audio_dir / "speech.mp3", "-c:a", "libmp3lame", "-b:a", "128k")


@pytest.fixture(scope="session")
def speech_m4a(audio_dir: Path, speech_wav: Path) -> Path:
    """AAC in MP4: libsndfile cannot read it, so it takes the ffmpeg path."""
    return _ffmpeg(speech_wav, audio_dir / "speech.m4a", "-c:a", "aac", "-b:a", "96k")


@pytest.fixture(scope="session")
def speech_ogg(audio_dir: Path, speech_wav: Path) -> Path:
    data, sr = sf.read(speech_wav, dtype="float32")
    path = audio_dir / "speech.ogg"
    sf.write(path, data, sr, format="OGG", subtype="VORBIS")
    return path


@pytest.fixture(scope="session")
def stereo_flac_44k(audio_dir: Path) -> Path:
    """2.0 s stereo at 44.1 kHz; left and right differ so the mixdown shows."""
    left = _sine(2.0, 44_100, 220.0, 0.6)
    right = _sine(2.0, 44_100, 330.0, 0.2)
    path = audio_dir / "stereo44k.flac"
    sf.write(path, np.stack([left, right], axis=1), 44_100, subtype="PCM_24")
    return path


@pytest.fixture(scope="session")
def eight_channel_192k_wav(audio_dir: Path) -> Path:
    """0.25 s, 8 channels at 192 kHz: unusual but valid, must be mixed down."""
    base = _sine(0.25, 192_000, 440.0, 0.4)
    path = audio_dir / "8ch192k.wav"
    sf.write(path, np.stack([base] * 8, axis=1), 192_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def thirty_three_channel_wav(audio_dir: Path) -> Path:
    path = audio_dir / "33ch.wav"
    sf.write(path, np.zeros((480, 33), dtype=np.float32), 48_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def low_rate_wav(audio_dir: Path) -> Path:
    path = audio_dir / "4khz.wav"
    sf.write(path, _sine(1.0, 4_000, 200.0), 4_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def not_audio_wav(audio_dir: Path) -> Path:
    """A text file that only claims to be a WAV."""
    path = audio_dir / "notes.wav"
    path.write_text("These are meeting notes, not a recording.\n" * 20, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def truncated_wav(audio_dir: Path, speech_wav: Path) -> Path:
    """The 44-byte header and a single byte of data: less than one sample survives."""
    path = audio_dir / "truncated.wav"
    path.write_bytes(speech_wav.read_bytes()[:45])
    return path


@pytest.fixture(scope="session")
def header_only_fragment_wav(audio_dir: Path, speech_wav: Path) -> Path:
    """Cut inside the header itself: there is no data chunk at all."""
    path = audio_dir / "fragment.wav"
    path.write_bytes(speech_wav.read_bytes()[:30])
    return path


@pytest.fixture(scope="session")
def half_wav(audio_dir: Path, speech_wav: Path) -> Path:
    """Cut in the middle of the samples (an interrupted download): the first half is still good."""
    raw = speech_wav.read_bytes()
    path = audio_dir / "half.wav"
    path.write_bytes(raw[: 44 + (len(raw) - 44) // 2])
    return path


@pytest.fixture(scope="session")
def empty_wav(audio_dir: Path) -> Path:
    path = audio_dir / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 24_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def nan_wav(audio_dir: Path) -> Path:
    data = _sine(1.0, 24_000)
    data[1000:1010] = np.nan
    path = audio_dir / "nan.wav"
    sf.write(path, data, 24_000, subtype="FLOAT")
    return path


@pytest.fixture(scope="session")
def silence_wav(audio_dir: Path) -> Path:
    path = audio_dir / "silence.wav"
    sf.write(path, np.zeros(24_000 * 4, dtype=np.float32), 24_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def clipped_wav(audio_dir: Path) -> Path:
    """A 4 s tone driven four times past full scale: flat-topped for most of each cycle."""
    data = np.clip(_sine(4.0, 24_000, 220.0, 4.0), -1.0, 1.0)
    path = audio_dir / "clipped.wav"
    sf.write(path, data, 24_000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def eleven_minute_flac(audio_dir: Path) -> Path:
    """11 minutes of silence, written block by block (tiny on disk, 21 MB decoded)."""
    path = audio_dir / "eleven_minutes.flac"
    sr = 8_000
    block = np.zeros(sr * 60, dtype=np.float32)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as out:
        for _ in range(11):
            out.write(block)
    return path
