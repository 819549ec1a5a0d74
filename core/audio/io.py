"""Audio in and audio out: decoding files and arrays, encoding and writing takes.

Everything that enters the engine is turned into an
:class:`~core.audio.clip.Audio` at 24 kHz by :func:`load_audio`, and
everything that leaves it goes through :func:`encode` / :func:`write_audio`.
Decoding and resampling are left to soundfile (libsndfile), pydub (ffmpeg)
and librosa; this module only decides what to accept and says clearly what it
refuses.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import tempfile
import warnings
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

with warnings.catch_warnings():
    # pydub warns at import when ffmpeg is missing; this module says so itself,
    # with advice, only when a format that needs ffmpeg is actually used.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError, CouldntEncodeError
    from pydub.utils import mediainfo_json, which

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.errors import AudioError, InvalidInput

__all__ = [
    "OUTPUT_MIME_TYPES",
    "SUPPORTED_OUTPUT_FORMATS",
    "AudioSource",
    "encode",
    "load_audio",
    "write_audio",
]

# Input limits. Telephone audio (8 kHz) is the lowest rate worth cloning from;
# 384 kHz is the highest any real recorder writes. More than 32 channels is
# not a voice recording, and mixing it down would mostly spend memory.
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
DEFAULT_MAX_SECONDS = 600.0

# Output formats. "ogg" is Ogg Opus when libsndfile can write Opus (it can
# since 1.1; the soundfile wheels ship 1.2), else Ogg Vorbis.
SUPPORTED_OUTPUT_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3", "pcm")
OUTPUT_MIME_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "pcm": "audio/L16",
}
_SUFFIX_FORMATS = {
    ".wav": "wav",
    ".wave": "wav",
    ".flac": "flac",
    ".ogg": "ogg",
    ".oga": "ogg",
    ".opus": "ogg",
    ".mp3": "mp3",
    ".pcm": "pcm",
    ".raw": "pcm",
}
_OPUS_SAMPLE_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)
_MP3_SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
# 192 kbit/s only exists for MPEG-1 rates (>= 32 kHz); at 24 kHz MP3 is MPEG-2
# whose ceiling is 160 kbit/s, so ask for that rather than let lame clamp it.
_MP3_BITRATE_MPEG1 = "192k"
_MP3_BITRATE_MPEG2 = "160k"
_FFMPEG_HINT = "install it (brew install ffmpeg / apt install ffmpeg)"

AudioSource = str | os.PathLike | bytes | tuple


# --------------------------------------------------------------------------- loading


def load_audio(
    source: AudioSource,
    *,
    target_sr: int = TARGET_SAMPLE_RATE,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Audio:
    """Decode ``source`` into mono float32 audio at ``target_sr``.

    ``source`` is a path, raw file ``bytes``, or a numpy pair as Gradio gives
    it: ``(sample_rate, array)`` (Gradio's order) or ``(array, sample_rate)``;
    the array may be int or float, shaped ``(n,)`` or ``(n, channels)``.

    WAV/FLAC/OGG/MP3 are read by libsndfile, which reports the length before
    decoding, so an over-long file is refused without being read. Anything else
    (M4A, AAC, WebM, WMA...) goes through ffmpeg via pydub, whose decode is
    capped at ``max_seconds`` so a huge file cannot fill memory either.

    Raises :class:`AudioError` with a sentence for the user on any problem.
    """
    if not (isinstance(target_sr, numbers.Integral) and MIN_SAMPLE_RATE <= target_sr <= MAX_SAMPLE_RATE):
        raise InvalidInput(f"target_sr must be between {MIN_SAMPLE_RATE} and {MAX_SAMPLE_RATE} Hz.")
    if not (isinstance(max_seconds, numbers.Real) and max_seconds > 0):
        raise InvalidInput("max_seconds must be a positive number.")

    if isinstance(source, tuple):
        samples, sr = _from_array_pair(source, max_seconds)
        name = "The recording"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        samples, sr = _from_bytes(bytes(source), max_seconds)
        name = "The uploaded audio"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        samples, sr = _from_path(path, f"The file '{path.name}'", max_seconds)
        name = f"The file '{path.name}'"
    else:
        raise InvalidInput(
            f"Cannot read audio from a {type(source).__name__}; "
            "pass a file path, file bytes or a (sample_rate, numpy array) pair."
        )

    if samples.size == 0:
        raise AudioError(f"{name} contains no audio (it is empty or was cut short).")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name} contains invalid samples (NaN or infinity); re-export it from your editor.")
    if sr != target_sr:
        samples = librosa.resample(samples, orig_sr=sr, target_sr=int(target_sr))
    return Audio(samples, int(target_sr))


def _from_path(path: Path, name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    if not path.exists():
        raise AudioError(f"{name} does not exist.")
    if not path.is_file():
        raise AudioError(f"{name} is a folder, not an audio file.")
    try:
        return _read_with_soundfile(path, name, max_seconds)
    except _NotForSoundfile:
        pass
    return _read_with_ffmpeg(path, name, max_seconds)


def _from_bytes(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    if not data:
        raise AudioError("The uploaded audio is empty.")
    # A real file lets libsndfile read the header first and lets ffmpeg seek;
    # both matter for the max_seconds check.
    with tempfile.TemporaryDirectory(prefix="qwen-tts-audio-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        return _from_path(path, "The uploaded audio", max_seconds)


class _NotForSoundfile(Exception):
    """libsndfile does not know this container; try ffmpeg instead."""


def _read_with_soundfile(path: Path, name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _NotForSoundfile from exc
    with handle:
        sr, channels, frames = handle.samplerate, handle.channels, handle.frames
        _check_format(name, sr, channels)
        _check_length(name, frames / sr, max_seconds)
        try:
            # Mix down block by block so a many-channel file never sits in
            # memory at full width.
            blocks = [block.mean(axis=1) for block in handle.blocks(blocksize=1 << 16, dtype="float32", always_2d=True)]
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{name} is damaged and could not be decoded ({exc}).") from exc
    if not blocks:
        return np.zeros(0, dtype=np.float32), sr
    return np.concatenate(blocks).astype(np.float32, copy=False), sr


def _read_with_ffmpeg(path: Path, name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    not_audio = f"{name} is not audio that can be read (is it really a WAV/MP3/FLAC/OGG/M4A file?)"
    if which(AudioSegment.converter) is None or which("ffprobe") is None:
        raise AudioError(
            f"{name} is not WAV, FLAC, OGG or MP3, and reading other formats needs ffmpeg; "
            f"{_FFMPEG_HINT} or convert the file to WAV."
        )
    try:
        info = mediainfo_json(str(path))
    except (OSError, ValueError) as exc:  # ValueError: ffprobe printed no JSON
        raise AudioError(not_audio) from exc
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioError(not_audio)
    try:
        known = float(info.get("format", {}).get("duration", "nan"))
    except (TypeError, ValueError):
        known = math.nan
    if math.isfinite(known):
        _check_length(name, known, max_seconds)
    try:
        # The 1 s margin lets an over-long file with a lying header be caught
        # below while still bounding how much ffmpeg decodes.
        segment = AudioSegment.from_file(str(path), duration=max_seconds + 1.0)
    except (CouldntDecodeError, IndexError, KeyError, ValueError, OSError) as exc:
        raise AudioError(not_audio) from exc
    _check_format(name, segment.frame_rate, segment.channels)
    samples = np.array(segment.get_array_of_samples(), dtype=np.float32)
    samples /= float(1 << (8 * segment.sample_width - 1))
    samples = samples.reshape(-1, segment.channels).mean(axis=1)
    _check_length(name, samples.size / segment.frame_rate, max_seconds)
    return samples, segment.frame_rate


def _from_array_pair(pair: tuple, max_seconds: float) -> tuple[np.ndarray, int]:
    name = "The recording"
    if len(pair) != 2:
        raise InvalidInput("Audio arrays must come as a (sample_rate, samples) pair.")
    first, second = pair
    # Gradio gives (sr, array); accept (array, sr) too since both are common.
    if isinstance(first, np.ndarray) and not isinstance(second, np.ndarray):
        data, sr = first, second
    elif isinstance(second, np.ndarray) and not isinstance(first, np.ndarray):
        sr, data = first, second
    else:
        raise InvalidInput("Audio arrays must come as a (sample_rate, numpy array) pair.")
    if not isinstance(sr, numbers.Integral) or isinstance(sr, bool):
        raise AudioError(f"{name} has a sample rate of {sr!r}, which is not a whole number of Hz.")
    if data.ndim == 1:
        data = data[:, np.newaxis]
    elif data.ndim == 2:
        # (channels, n) arrays from torch/librosa: the short axis is channels.
        if data.shape[1] > MAX_CHANNELS >= data.shape[0]:
            data = data.T
    else:
        raise AudioError(f"{name} has shape {data.shape}; expected (samples,) or (samples, channels).")
    _check_format(name, int(sr), data.shape[1])
    _check_length(name, data.shape[0] / int(sr), max_seconds)
    return _to_float(data, name).mean(axis=1, dtype=np.float32), int(sr)


def _to_float(data: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1]; floats are only cast."""
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32, copy=False)
    if np.issubdtype(data.dtype, np.signedinteger):
        return data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    if data.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        return (data.astype(np.float32) - 128.0) / 128.0
    raise AudioError(f"{name} has samples of type {data.dtype}, which is not audio.")


def _check_format(name: str, sr: int, channels: int) -> None:
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name} has a sample rate of {sr:,} Hz; only {MIN_SAMPLE_RATE:,} to {MAX_SAMPLE_RATE:,} Hz is supported."
        )
    if channels < 1:
        raise AudioError(f"{name} has no audio channels.")
    if channels > MAX_CHANNELS:
        raise AudioError(
            f"{name} has {channels} channels; at most {MAX_CHANNELS} are supported. Export a mono or stereo mix."
        )


def _check_length(name: str, seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise AudioError(
            f"{name} is {_format_seconds(seconds)} long; the limit is {_format_seconds(max_seconds)}. Trim it first."
        )


def _format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d} min ({seconds:,.0f} s)"


# --------------------------------------------------------------------------- encoding


def encode(audio: Audio, fmt: str) -> bytes:
    """Encode to a file format's bytes.

    - ``wav``: 16-bit PCM WAV (libsndfile).
    - ``flac``: 16-bit FLAC (libsndfile).
    - ``ogg``: Ogg Opus via libsndfile when it can write Opus (resampled to
      48 kHz if the rate is not one Opus has), otherwise Ogg Vorbis.
    - ``mp3``: via pydub + ffmpeg (libmp3lame), 192 kbit/s at MPEG-1 rates and
      160 kbit/s (the MPEG-2 maximum) at 24 kHz.
    - ``pcm``: raw 16-bit little-endian mono samples, no header.

    Samples are clipped to [-1, 1] first so integer formats cannot wrap.
    """
    fmt = _output_format(fmt)
    if len(audio) == 0:
        raise AudioError("There is no audio to save.")
    samples = np.clip(audio.samples, -1.0, 1.0)
    sr = audio.sample_rate
    try:
        if fmt == "wav":
            return _sf_bytes(samples, sr, format="WAV", subtype="PCM_16")
        if fmt == "flac":
            return _sf_bytes(samples, sr, format="FLAC", subtype="PCM_16")
        if fmt == "pcm":
            return _sf_bytes(samples, sr, format="RAW", subtype="PCM_16", endian="LITTLE")
        if fmt == "ogg":
            if "OPUS" in sf.available_subtypes("OGG"):
                if sr not in _OPUS_SAMPLE_RATES:
                    samples, sr = _resample(samples, sr, 48_000), 48_000
                return _sf_bytes(samples, sr, format="OGG", subtype="OPUS")
            return _sf_bytes(samples, sr, format="OGG", subtype="VORBIS")
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"Could not encode {fmt.upper()} audio at {sr} Hz ({exc}).") from exc
    return _encode_mp3(samples, sr)


def write_audio(audio: Audio, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Encode and write ``audio`` to ``path``; the format comes from the suffix unless given.

    The file is written next to its destination and renamed into place, so a
    reader never sees half a file. Missing parent folders are created.
    """
    path = Path(path)
    if fmt is None:
        fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise InvalidInput(
                f"Cannot tell the audio format from '{path.name}'; use a "
                f"{', '.join('.' + f for f in SUPPORTED_OUTPUT_FORMATS)} file name or pass fmt."
            )
    data = encode(audio, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _output_format(fmt: str) -> str:
    name = str(fmt).lower().lstrip(".")
    if name == "opus":
        name = "ogg"
    if name not in SUPPORTED_OUTPUT_FORMATS:
        raise InvalidInput(f"Unknown audio format '{fmt}'; choose one of {', '.join(SUPPORTED_OUTPUT_FORMATS)}.")
    return name


def _sf_bytes(samples: np.ndarray, sr: int, **kwargs: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, **kwargs)
    return buffer.getvalue()


def _encode_mp3(samples: np.ndarray, sr: int) -> bytes:
    if which(AudioSegment.converter) is None:
        raise AudioError(f"MP3 needs ffmpeg; {_FFMPEG_HINT} or choose WAV/FLAC.")
    if sr not in _MP3_SAMPLE_RATES:
        samples, sr = _resample(samples, sr, 48_000), 48_000
    pcm = _sf_bytes(samples, sr, format="RAW", subtype="PCM_16", endian="LITTLE")
    segment = AudioSegment(data=pcm, sample_width=2, frame_rate=sr, channels=1)
    bitrate = _MP3_BITRATE_MPEG1 if sr >= 32_000 else _MP3_BITRATE_MPEG2
    buffer = io.BytesIO()
    try:
        segment.export(buffer, format="mp3", bitrate=bitrate)
    except (CouldntEncodeError, OSError) as exc:
        raise AudioError(f"ffmpeg could not encode MP3 ({exc}); choose WAV/FLAC instead.") from exc
    data = buffer.getvalue()
    if not data:
        raise AudioError("ffmpeg produced no MP3 data; check that it was built with libmp3lame, or choose WAV/FLAC.")
    return data


def _resample(samples: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    return librosa.resample(samples, orig_sr=sr, target_sr=target_sr).astype(np.float32, copy=False)
