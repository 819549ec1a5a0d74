"""Audio in, audio out: decoding, cleanup, analysis and encoding.

Qwen3-TTS listens to and speaks 24 kHz mono, so everything that enters the
engine is turned into an :class:`Audio` at that rate by :func:`load_audio`, and
everything that leaves it goes through :func:`encode` / :func:`write_audio`.

Every public function is pure: it never changes the :class:`Audio` it is given
and returns a new one. Decoding and resampling are left to soundfile
(libsndfile), pydub (ffmpeg), librosa and pyloudnorm; this module only decides
what to accept and says clearly what it refuses.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import librosa
import numpy as np
import pyloudnorm
import soundfile as sf

with warnings.catch_warnings():
    # pydub warns at import when ffmpeg is missing; this module says so itself,
    # with advice, only when a format that needs ffmpeg is actually used.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError, CouldntEncodeError
    from pydub.utils import mediainfo_json, which

from core.errors import AudioError, InvalidInput

__all__ = [
    "TARGET_SAMPLE_RATE",
    "SUPPORTED_OUTPUT_FORMATS",
    "OUTPUT_MIME_TYPES",
    "Audio",
    "AudioReport",
    "AudioSource",
    "load_audio",
    "trim",
    "trim_silence",
    "normalize_peak",
    "normalize_loudness",
    "remove_dc",
    "fade",
    "concat",
    "analyze",
    "encode",
    "write_audio",
]

TARGET_SAMPLE_RATE = 24_000
"""Qwen3-TTS's speech tokenizer works at 24 kHz mono."""

# Input limits. Telephone audio (8 kHz) is the lowest rate worth cloning from;
# 384 kHz is the highest any real recorder writes. More than 32 channels is
# not a voice recording, and mixing it down would mostly spend memory.
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
DEFAULT_MAX_SECONDS = 600.0

# analyze() thresholds.
REFERENCE_MIN_SECONDS = 3.0
REFERENCE_MAX_SECONDS = 30.0
CLIP_LEVEL = 0.999  # |x| at or above this counts as a clipped sample
CLIPPED_RATIO_WARN = 0.001  # more than 0.1 % clipped samples is audible
SILENCE_FRAME_SECONDS = 0.05
SILENCE_DBFS = -50.0  # a 50 ms frame whose RMS is below this is silence
SILENCE_RATIO_WARN = 0.60
QUIET_PEAK_DBFS = -30.0
DBFS_FLOOR = -120.0  # reported instead of -inf so reports stay printable/JSON-safe

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

AudioSource = Union[str, os.PathLike, bytes, tuple]


@dataclass(frozen=True, eq=False)  # eq=False: == on arrays is ambiguous
class Audio:
    """Mono float32 samples in [-1, 1] and their sample rate."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        samples = np.ascontiguousarray(self.samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"Audio samples must be 1-D (mono), got shape {samples.shape}")
        if not isinstance(self.sample_rate, numbers.Integral) or self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[0] / self.sample_rate

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    def __repr__(self) -> str:
        return f"Audio({self.duration:.3f} s @ {self.sample_rate} Hz)"


@dataclass(frozen=True)
class AudioReport:
    """What :func:`analyze` found, with human warnings for the studio."""

    duration_s: float
    peak_dbfs: float
    rms_dbfs: float
    clipped_ratio: float
    silence_ratio: float
    warnings: list[str] = field(default_factory=list)


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
            blocks = [
                block.mean(axis=1)
                for block in handle.blocks(blocksize=1 << 16, dtype="float32", always_2d=True)
            ]
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{name} is damaged and could not be decoded ({exc}).") from exc
    if not blocks:
        return np.zeros(0, dtype=np.float32), sr
    return np.concatenate(blocks).astype(np.float32, copy=False), sr


def _read_with_ffmpeg(path: Path, name: str, max_seconds: float) -> tuple[np.ndarray, int]:
    not_audio = (
        f"{name} is not audio that can be read (is it really a WAV/MP3/FLAC/OGG/M4A file?)"
    )
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
            f"{name} has a sample rate of {sr:,} Hz; only {MIN_SAMPLE_RATE:,} to "
            f"{MAX_SAMPLE_RATE:,} Hz is supported."
        )
    if channels < 1:
        raise AudioError(f"{name} has no audio channels.")
    if channels > MAX_CHANNELS:
        raise AudioError(
            f"{name} has {channels} channels; at most {MAX_CHANNELS} are supported. "
            "Export a mono or stereo mix."
        )


def _check_length(name: str, seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise AudioError(
            f"{name} is {_format_seconds(seconds)} long; the limit is "
            f"{_format_seconds(max_seconds)}. Trim it first."
        )


def _format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d} min ({seconds:,.0f} s)"


# --------------------------------------------------------------------------- editing


def trim(audio: Audio, start_s: float | None = None, end_s: float | None = None) -> Audio:
    """Keep ``[start_s, end_s)``; an end past the audio is clamped to its end."""
    duration = audio.duration
    start = 0.0 if start_s is None else float(start_s)
    end = duration if end_s is None else float(end_s)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InvalidInput("Trim times must be numbers of seconds.")
    if start < 0 or end < 0:
        raise InvalidInput("Trim times cannot be negative.")
    if start >= duration:
        raise InvalidInput(
            f"The trim starts at {start:.2f} s but the audio is only {duration:.2f} s long."
        )
    end = min(end, duration)
    if start >= end:
        raise InvalidInput(f"The trim start ({start:.2f} s) must be before its end ({end:.2f} s).")
    first = int(round(start * audio.sample_rate))
    last = int(round(end * audio.sample_rate))
    if last <= first:  # both rounded onto the same sample
        last = first + 1
    return Audio(audio.samples[first:last].copy(), audio.sample_rate)


def trim_silence(audio: Audio, top_db: float = 40.0, *, pad_s: float = 0.05) -> Audio:
    """Cut leading and trailing silence, keeping ``pad_s`` of air on each side.

    Silence is judged relative to the loudest part (librosa's ``top_db``).
    Audio that is all silence comes back unchanged rather than empty;
    :func:`analyze` is what flags it.
    """
    if top_db <= 0:
        raise InvalidInput("top_db must be positive.")
    if pad_s < 0:
        raise InvalidInput("pad_s cannot be negative.")
    if len(audio) == 0 or not np.any(audio.samples):
        return audio
    _, (start, end) = librosa.effects.trim(audio.samples, top_db=top_db)
    if end <= start:
        return audio
    pad = int(round(pad_s * audio.sample_rate))
    start, end = max(0, start - pad), min(len(audio), end + pad)
    return Audio(audio.samples[start:end].copy(), audio.sample_rate)


def normalize_peak(audio: Audio, peak_dbfs: float = -1.0) -> Audio:
    """Scale so the loudest sample sits at ``peak_dbfs``. Silence is returned as is."""
    if not (math.isfinite(peak_dbfs) and peak_dbfs <= 0):
        raise InvalidInput("The peak level must be 0 dBFS or lower.")
    peak = _peak(audio.samples)
    if peak == 0:
        return audio
    return Audio(audio.samples * np.float32(_from_db(peak_dbfs) / peak), audio.sample_rate)


def normalize_loudness(
    audio: Audio, lufs: float = -20.0, *, peak_ceiling_dbfs: float = -1.0
) -> Audio:
    """Set integrated loudness (ITU-R BS.1770, via pyloudnorm) to ``lufs``.

    The gain is then limited so the peak stays at or below
    ``peak_ceiling_dbfs``: this never clips, at the cost of ending up quieter
    than ``lufs`` for very peaky audio.

    BS.1770 needs at least one 400 ms block. Shorter clips (a one-word chunk
    of a long text) get the gain that puts their RMS level at ``lufs``, which
    for speech lands within a few dB of the true loudness, so such a chunk
    matches its neighbours far better than peak normalisation would. Audio
    that is silent, or gated out entirely by BS.1770 (below -70 LUFS), is
    returned unchanged rather than having its noise floor amplified.
    """
    if not (math.isfinite(lufs) and lufs < 0):
        raise InvalidInput("The loudness target must be below 0 LUFS.")
    if not (math.isfinite(peak_ceiling_dbfs) and peak_ceiling_dbfs <= 0):
        raise InvalidInput("The peak ceiling must be 0 dBFS or lower.")
    peak = _peak(audio.samples)
    if peak == 0:
        return audio
    meter = pyloudnorm.Meter(audio.sample_rate)
    if len(audio) >= meter.block_size * audio.sample_rate:
        measured = meter.integrated_loudness(audio.samples.astype(np.float64))
    else:
        measured = _to_db(_rms(audio.samples))
    if not math.isfinite(measured):
        return audio
    gain = min(_from_db(lufs - measured), _from_db(peak_ceiling_dbfs) / peak)
    return Audio(audio.samples * np.float32(gain), audio.sample_rate)


def remove_dc(audio: Audio) -> Audio:
    """Subtract the mean: a DC offset wastes headroom and clicks at cuts.

    A clip is short enough that its mean is the offset; no high-pass needed.
    """
    if len(audio) == 0:
        return audio
    return Audio(audio.samples - audio.samples.mean(dtype=np.float64), audio.sample_rate)


def fade(audio: Audio, in_s: float = 0.0, out_s: float = 0.0) -> Audio:
    """Linear fade in over ``in_s`` and out over ``out_s`` seconds.

    Fades longer than the audio are shortened to fit (proportionally when
    both together would overlap) so a short clip still fades.
    """
    if in_s < 0 or out_s < 0 or not (math.isfinite(in_s) and math.isfinite(out_s)):
        raise InvalidInput("Fade lengths must be zero or more seconds.")
    n = len(audio)
    n_in = int(round(in_s * audio.sample_rate))
    n_out = int(round(out_s * audio.sample_rate))
    if n_in + n_out > n:
        scale = n / (n_in + n_out)
        n_in, n_out = int(n_in * scale), int(n_out * scale)
    samples = audio.samples.copy()
    if n_in:
        samples[:n_in] *= np.linspace(0.0, 1.0, n_in, dtype=np.float32)
    if n_out:
        samples[n - n_out :] *= np.linspace(1.0, 0.0, n_out, dtype=np.float32)
    return Audio(samples, audio.sample_rate)


@dataclass(frozen=True)
class PostProcessing:
    """Finishing touches applied to a whole take, in a fixed order."""

    normalize: str = "none"  # none | peak | loudness
    fade_in_s: float = 0.0
    fade_out_s: float = 0.0
    trim_silence: bool = False
    remove_dc: bool = False

    def validated(self) -> "PostProcessing":
        if self.normalize not in POST_NORMALIZE_MODES:
            raise InvalidInput(
                f"Normalisation '{self.normalize}' is not supported; choose {', '.join(POST_NORMALIZE_MODES)}."
            )
        for name, value in (("Fade in", self.fade_in_s), ("Fade out", self.fade_out_s)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 10:
                raise InvalidInput(f"{name} must be between 0 and 10 seconds.")
        return self


POST_NORMALIZE_MODES = ("none", "peak", "loudness")


def post_process(audio: Audio, options: PostProcessing) -> Audio:
    """DC first (it skews peaks), then silence trim, level, and fades last so
    they shape the final level."""
    options = options.validated()
    if options.remove_dc:
        audio = remove_dc(audio)
    if options.trim_silence:
        audio = trim_silence(audio)
    if options.normalize == "peak":
        audio = normalize_peak(audio)
    elif options.normalize == "loudness":
        audio = normalize_loudness(audio)
    if options.fade_in_s or options.fade_out_s:
        audio = fade(audio, in_s=min(options.fade_in_s, audio.duration / 2),
                     out_s=min(options.fade_out_s, audio.duration / 2))
    return audio


def concat(clips: Sequence[Audio], pause_s: float = 0.0, crossfade_s: float = 0.0) -> Audio:
    """Join clips in order, with ``pause_s`` of silence or a ``crossfade_s`` overlap between them.

    The crossfade uses equal-power (sine/cosine) ramps: consecutive TTS chunks
    are uncorrelated signals, for which equal power keeps the level steady
    where a linear ramp would dip by 3 dB. A crossfade is shortened to fit a
    clip shorter than it. Pause and crossfade cannot both be set.
    """
    if not clips:
        raise InvalidInput("There is no audio to join.")
    if pause_s < 0 or crossfade_s < 0 or not (math.isfinite(pause_s) and math.isfinite(crossfade_s)):
        raise InvalidInput("Pause and crossfade must be zero or more seconds.")
    if pause_s > 0 and crossfade_s > 0:
        raise InvalidInput("Choose either a pause or a crossfade between clips, not both.")
    sr = clips[0].sample_rate
    if any(clip.sample_rate != sr for clip in clips):
        rates = sorted({clip.sample_rate for clip in clips})
        raise InvalidInput(f"Cannot join audio with different sample rates ({rates}); resample first.")

    if pause_s > 0:
        gap = np.zeros(int(round(pause_s * sr)), dtype=np.float32)
        parts: list[np.ndarray] = []
        for i, clip in enumerate(clips):
            if i:
                parts.append(gap)
            parts.append(clip.samples)
        return Audio(np.concatenate(parts), sr)

    n_fade = int(round(crossfade_s * sr))
    out = clips[0].samples.copy()
    for clip in clips[1:]:
        overlap = min(n_fade, len(out), len(clip))
        if overlap == 0:
            out = np.concatenate([out, clip.samples])
            continue
        t = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
        mixed = out[-overlap:] * np.cos(t * np.pi / 2) + clip.samples[:overlap] * np.sin(t * np.pi / 2)
        out = np.concatenate([out[:-overlap], mixed, clip.samples[overlap:]])
    return Audio(out, sr)


# --------------------------------------------------------------------------- analysis


def analyze(audio: Audio) -> AudioReport:
    """Measure a reference clip and word what would hurt a voice clone."""
    n = len(audio)
    duration = audio.duration
    if n == 0:
        return AudioReport(0.0, DBFS_FLOOR, DBFS_FLOOR, 0.0, 1.0, ["The clip contains no audio."])
    x = audio.samples
    peak_dbfs = _to_db(_peak(x))
    rms_dbfs = _to_db(_rms(x))
    clipped_ratio = float(np.count_nonzero(np.abs(x) >= CLIP_LEVEL)) / n

    frame = max(1, min(n, int(round(SILENCE_FRAME_SECONDS * audio.sample_rate))))
    frame_rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=frame, center=False)[0]
    silence_ratio = float(np.mean(frame_rms < _from_db(SILENCE_DBFS)))

    warnings: list[str] = []
    if duration < REFERENCE_MIN_SECONDS:
        warnings.append(f"Reference is {duration:.1f} s; 3–30 s of clear speech clones best.")
    elif duration > REFERENCE_MAX_SECONDS:
        warnings.append(
            f"Reference is {duration:.1f} s; 3–30 s of clear speech clones best. Trim it to the cleanest part."
        )
    if clipped_ratio > CLIPPED_RATIO_WARN:
        warnings.append(
            f"{clipped_ratio:.1%} of the samples are clipped, so the clone may sound distorted. "
            "Use a recording made at a lower input level."
        )
    if silence_ratio > SILENCE_RATIO_WARN:
        warnings.append(
            f"{silence_ratio:.0%} of the clip is silence; trim it or choose a clip with more speech."
        )
    if peak_dbfs < QUIET_PEAK_DBFS:
        warnings.append(
            f"The clip is very quiet (peak {peak_dbfs:.0f} dBFS); normalise it or record closer to the microphone."
        )
    return AudioReport(
        duration_s=duration,
        peak_dbfs=peak_dbfs,
        rms_dbfs=rms_dbfs,
        clipped_ratio=clipped_ratio,
        silence_ratio=silence_ratio,
        warnings=warnings,
    )


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
        raise InvalidInput(
            f"Unknown audio format '{fmt}'; choose one of {', '.join(SUPPORTED_OUTPUT_FORMATS)}."
        )
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


# --------------------------------------------------------------------------- helpers


def _resample(samples: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    return librosa.resample(samples, orig_sr=sr, target_sr=target_sr).astype(np.float32, copy=False)


def _peak(samples: np.ndarray) -> float:
    return float(np.max(np.abs(samples))) if samples.size else 0.0


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def _to_db(amplitude: float) -> float:
    if amplitude <= 0:
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 20.0 * math.log10(amplitude))


def _from_db(db: float) -> float:
    return 10.0 ** (db / 20.0)
