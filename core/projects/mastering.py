"""Mastering a chapter to a delivery preset, and checking an exported file against it.

The presets and their rules (docs/PROJECTS.md, "Mastering and export", lists them with sources):

- **ACX** (Audible's ACX Audio Submission Requirements): each file between -23 and -18 dBFS RMS,
  peaks at or below -3 dBFS, a noise floor at or below -60 dBFS RMS, 0.5-1 s of room tone at the
  head and 1-5 s at the tail, MP3 at 192 kbit/s or more, constant bit rate, 44.1 kHz, and no file
  over 120 minutes. Exported mono.
- **Podcast** (Apple Podcasts' audio guidance; AES TD1004.1.15-10): -16 LUFS integrated for a
  stereo file, -19 LUFS for a mono one (the same programme: a mono signal copied to both channels
  measures 3 LU louder), each within 1 LU, true peak at or below -1 dBTP. Exported stereo.
- **Broadcast** (EBU R 128): -23 LUFS integrated within 0.5 LU, true peak at or below -1 dBTP.
  Exported mono at 48 kHz.

How things are measured (the same code masters and checks, on samples decoded from the file):

- RMS and peak: over every sample of every channel, 0 dBFS = a full-scale sample (as ACX's
  Audacity "ACX Check" reports them).
- Loudness: ITU-R BS.1770 integrated loudness by ``pyloudnorm`` (gated, K-weighted).
- True peak: the signal oversampled 4x (``scipy.signal.resample_poly``), then its peak, as
  BS.1770-4 Annex 2 describes.
- Noise floor: the RMS of the quietest 500 ms window, the windows stepping by 50 ms (what the
  ACX Check plugin reports as the noise floor).
- Room tone at the head / tail: how long the file stays quiet before the first, and after the
  last, 50 ms frame louder than -50 dBFS RMS (10 dB above the loudest noise floor ACX allows:
  anything louder is voice, or noise ACX would reject anyway).

How a chapter is mastered (:func:`master`): resampled to the preset's rate (scipy's polyphase
resampler), then a gain sets the level (RMS for ACX, loudness for the others) and ffmpeg's
``alimiter`` (a look-ahead peak limiter, auto-level off, its delay compensated) keeps peaks
under a ceiling set a little inside the limit, so the MP3 encoder's small overshoots still pass.
Limiting lowers the level slightly, so the gain is corrected and the pass repeated (at most six
times). For ACX the chapter's leading and trailing silence is cut and replaced by room tone:
the chapter's own quietest 500 ms when it holds real room noise, or else (a model's pauses are
near digital silence, which ACX rejects) white noise at -70 dBFS RMS, laid under the whole
chapter too so every pause sounds like the same room. Nothing else changes the voice: no
compression, no gate, no EQ.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

from core.audio.clip import DBFS_FLOOR, Audio, from_dbfs, to_dbfs
from core.errors import AudioError, DependencyError, InvalidInput
from core.projects.model import MasteringPreset

__all__ = [
    "PRESETS",
    "ComplianceReport",
    "Mastered",
    "PresetSpec",
    "RuleResult",
    "compliance",
    "decode_file",
    "level_error_db",
    "master",
    "master_timed",
    "noise_floor_dbfs",
    "preset_from_user",
    "probe",
    "quiet_edges",
    "resampled",
    "run_ffmpeg",
    "true_peak_dbtp",
]

ACX_SOURCE = "ACX Audio Submission Requirements"
APPLE_SOURCE = "Apple Podcasts audio requirements; AES TD1004.1.15-10"
R128_SOURCE = "EBU R 128 (loudness normalisation and permitted maximum level)"

NOISE_WINDOW_S = 0.5  # ACX's noise floor: the quietest half second
NOISE_HOP_S = 0.05
EDGE_FRAME_S = 0.05
VOICE_DBFS = -50.0  # a 50 ms frame above this is voice (room tone measurement)
ROOM_TONE_DBFS = -70.0  # generated room tone: well under ACX's -60 floor, far from digital silence
REAL_TONE_DBFS = (-90.0, -62.0)  # a chapter's own quietest stretch is used as room tone in this range
MAX_PASSES = 6


@dataclass(frozen=True)
class PresetSpec:
    """A delivery preset: how the file is made and the rules it must meet."""

    label: str
    sample_rate: int | None  # None: as rendered
    channels: int  # in the exported file (mastering is mono; stereo copies it to both channels)
    bitrate_kbps: int  # MP3, constant bit rate
    rms_range: tuple[float, float] | None = None  # dBFS, ACX
    peak_max: float | None = None  # dBFS, sample peak (ACX)
    lufs_mono: float | None = None  # integrated loudness target of a mono file
    lufs_tolerance: float = 1.0
    true_peak_max: float | None = None  # dBTP
    noise_floor_max: float | None = None  # dBFS RMS
    head_tone_s: tuple[float, float] | None = None
    tail_tone_s: tuple[float, float] | None = None
    max_minutes: float | None = None
    source: str = ""

    def lufs_target(self, channels: int) -> float | None:
        """The loudness a file of ``channels`` should measure (a copied mono channel adds 3 LU)."""
        if self.lufs_mono is None:
            return None
        return self.lufs_mono + (3.0 if channels >= 2 else 0.0)


PRESETS: dict[MasteringPreset, PresetSpec] = {
    MasteringPreset.ACX: PresetSpec(
        label="ACX audiobook",
        sample_rate=44_100,
        channels=1,
        bitrate_kbps=192,
        rms_range=(-23.0, -18.0),
        peak_max=-3.0,
        noise_floor_max=-60.0,
        head_tone_s=(0.5, 1.0),
        tail_tone_s=(1.0, 5.0),
        max_minutes=120.0,
        source=ACX_SOURCE,
    ),
    MasteringPreset.PODCAST: PresetSpec(
        label="Podcast",
        sample_rate=44_100,
        channels=2,
        bitrate_kbps=192,
        lufs_mono=-19.0,
        lufs_tolerance=1.0,
        true_peak_max=-1.0,
        source=APPLE_SOURCE,
    ),
    MasteringPreset.BROADCAST: PresetSpec(
        label="Broadcast (EBU R 128)",
        sample_rate=48_000,
        channels=1,
        bitrate_kbps=192,
        lufs_mono=-23.0,
        lufs_tolerance=0.5,
        true_peak_max=-1.0,
        source=R128_SOURCE,
    ),
    MasteringPreset.NONE: PresetSpec(label="As rendered", sample_rate=None, channels=1, bitrate_kbps=192),
}

# Where mastering aims, a little inside each limit: the MP3 encoder moves peaks and levels a bit.
_ACX_RMS_TARGET = -20.5  # the middle of -23..-18
_PEAK_MARGIN_DB = 1.0
_HEAD_TONE_S = 0.75
_TAIL_TONE_S = 2.5


def preset_from_user(value: MasteringPreset | str | None) -> MasteringPreset:
    """A preset from a widget, flag or JSON value ("acx", "ACX", None = ACX)."""
    if isinstance(value, MasteringPreset):
        return value
    key = str(value or "acx").strip().lower()
    try:
        return MasteringPreset(key)
    except ValueError:
        choices = ", ".join(p.value for p in MasteringPreset)
        raise InvalidInput(f"Unknown mastering preset '{value}'; choose one of {choices}.") from None


@dataclass(frozen=True)
class RuleResult:
    rule: str  # "RMS level"
    measured: float  # in the unit the limit states
    limit: str  # "-23 to -18 dBFS"
    passed: bool
    source: str
    aim: float | None = None  # where mastering aims, for a level rule (export corrects towards it)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ComplianceReport:
    preset: MasteringPreset
    rules: tuple[RuleResult, ...]
    passed: bool

    @property
    def summary(self) -> str:
        """One line for a person: "ACX audiobook: pass" or which rules failed, with values."""
        label = PRESETS[self.preset].label
        if self.passed:
            return f"{label}: pass"
        failed = "; ".join(f"{r.rule} {r.measured:g} (needs {r.limit})" for r in self.rules if not r.passed)
        return f"{label}: fail — {failed}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset.value,
            "passed": self.passed,
            "summary": self.summary,
            "rules": [r.as_dict() for r in self.rules],
        }


@dataclass(frozen=True)
class Mastered:
    """A mastered chapter and how far its content moved: a time ``t`` in the input is at
    ``t + offset_s`` in ``audio`` (leading silence cut, room tone added)."""

    audio: Audio
    offset_s: float


# --------------------------------------------------------------------------- mastering


def master(audio: Audio, preset: MasteringPreset | str) -> Audio:
    """``audio`` (mono) mastered to ``preset`` (mono; stereo is made when it is encoded)."""
    return master_timed(audio, preset).audio


def master_timed(audio: Audio, preset: MasteringPreset | str) -> Mastered:
    """:func:`master`, also saying where the content moved (subtitle times follow it)."""
    preset = preset_from_user(preset)
    spec = PRESETS[preset]
    if len(audio) == 0 or not np.any(audio.samples):
        raise AudioError("This chapter has no sound to master; render it first.")
    if preset is MasteringPreset.NONE:
        return Mastered(audio, 0.0)
    assert spec.sample_rate is not None
    samples = _resample(audio.samples, audio.sample_rate, spec.sample_rate)
    sr = spec.sample_rate
    if preset is MasteringPreset.ACX:
        return _master_acx(samples, sr, audio.sample_rate)
    assert spec.lufs_mono is not None and spec.true_peak_max is not None
    out = _level_and_limit(
        samples,
        sr,
        level=lambda x: _loudness(x, sr),
        target=spec.lufs_mono,
        peak=lambda x: true_peak_dbtp(x, sr),
        ceiling=spec.true_peak_max - _PEAK_MARGIN_DB,
    )
    return Mastered(Audio(out, sr), 0.0)


def _master_acx(samples: np.ndarray, sr: int, source_sr: int) -> Mastered:
    spec = PRESETS[MasteringPreset.ACX]
    assert spec.peak_max is not None
    first, last = _voiced_span(samples, sr)
    voice = samples[first:last]
    # Room tone is chosen after the gain (the chapter's own noise rises with it), so the level
    # loop measures the whole file as ACX will: head tone + chapter + tail tone.
    gain_db = _ACX_RMS_TARGET - to_dbfs(_rms(voice))
    tone = _room_tone(samples * np.float32(from_dbfs(gain_db)), sr)
    bed = tone.generated

    def assemble(x: np.ndarray) -> np.ndarray:
        if bed:
            x = x + tone.take(len(x), offset=int(_HEAD_TONE_S * sr))
        head = tone.take(int(_HEAD_TONE_S * sr))
        tail = tone.take(int(_TAIL_TONE_S * sr), offset=int(_HEAD_TONE_S * sr) + len(x))
        return np.concatenate([head, x, tail]).astype(np.float32)

    out = _level_and_limit(
        voice,
        sr,
        level=lambda x: to_dbfs(_rms(assemble(x))),
        target=_ACX_RMS_TARGET,
        peak=lambda x: to_dbfs(float(np.max(np.abs(x)))) if x.size else DBFS_FLOOR,
        ceiling=spec.peak_max - _PEAK_MARGIN_DB,
        first_gain_db=gain_db,
    )
    offset = _HEAD_TONE_S - first / sr
    return Mastered(Audio(assemble(out), sr), offset)


def _level_and_limit(
    samples: np.ndarray,
    sr: int,
    *,
    level: Any,
    target: float,
    peak: Any,
    ceiling: float,
    first_gain_db: float | None = None,
) -> np.ndarray:
    """Gain to ``target`` (as ``level`` measures) with peaks (as ``peak`` measures) under
    ``ceiling``: gain, limit, measure, correct; the best pass is kept."""
    gain_db = target - level(samples) if first_gain_db is None else first_gain_db
    limit_db = ceiling
    best: tuple[float, np.ndarray] | None = None
    last: tuple[float, float] | None = None  # (gain, level) of the pass before
    for _ in range(MAX_PASSES):
        out = _limit(samples * np.float32(from_dbfs(gain_db)), sr, limit_db)
        got, top = level(out), peak(out)
        miss = abs(got - target) + max(0.0, top - ceiling) * 4
        if best is None or miss < best[0]:
            best = (miss, out)
        if abs(got - target) < 0.05 and top <= ceiling:
            break
        # Secant step: under limiting a dB more gain gives well under a dB more level.
        slope = 1.0
        if last is not None and gain_db != last[0]:
            slope = min(1.0, max(0.1, (got - last[1]) / (gain_db - last[0])))
        last = (gain_db, got)
        gain_db += (target - got) / slope
        if top > ceiling:  # inter-sample overs the sample-peak limiter cannot see
            limit_db -= top - ceiling + 0.1
    assert best is not None
    return best[1]


def _limit(samples: np.ndarray, sr: int, ceiling_dbfs: float) -> np.ndarray:
    """ffmpeg's ``alimiter``: a look-ahead limiter (5 ms attack, 50 ms release); ``level=0``
    stops it normalising the output, ``latency=1`` removes its delay."""
    limit = min(1.0, max(0.0625, from_dbfs(ceiling_dbfs)))
    if float(np.max(np.abs(samples))) <= limit:
        return samples.astype(np.float32)
    # Samples over full scale are sent scaled down into [-1, 1] and restored by level_in inside
    # the filter, so nothing is clipped on the way in whatever the gain.
    pre = max(1.0, float(np.max(np.abs(samples))))
    raw = run_ffmpeg(
        ["-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0"],
        ["-af", f"alimiter=level_in={min(64.0, pre):.6f}:limit={limit:.6f}:attack=5:release=50:level=0:latency=1"],
        ["-f", "f32le", "-ac", "1", "pipe:1"],
        stdin=(samples / np.float32(pre)).astype("<f4").tobytes(),
    )
    out = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if len(out) >= len(samples):
        return out[: len(samples)]
    return np.concatenate([out, np.zeros(len(samples) - len(out), np.float32)])


@dataclass(frozen=True)
class _Tone:
    loop: np.ndarray  # a stretch of room tone repeated to fill any length
    generated: bool

    def take(self, n: int, offset: int = 0) -> np.ndarray:
        if n <= 0:
            return np.zeros(0, np.float32)
        idx = (np.arange(n) + offset) % len(self.loop)
        return self.loop[idx]


def _room_tone(samples: np.ndarray, sr: int) -> _Tone:
    window = int(NOISE_WINDOW_S * sr)
    if len(samples) > window:
        start, rms = _quietest_window(samples, sr)
        if REAL_TONE_DBFS[0] < to_dbfs(rms) <= REAL_TONE_DBFS[1]:
            return _Tone(samples[start : start + window].astype(np.float32), generated=False)
    # Fixed seed: the same chapter masters to the same file.
    noise = np.random.default_rng(24).standard_normal(sr * 2).astype(np.float32)
    noise *= np.float32(from_dbfs(ROOM_TONE_DBFS) / _rms(noise))
    return _Tone(noise, generated=True)


# --------------------------------------------------------------------------- measuring


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def _loudness(samples: np.ndarray, sr: int) -> float:
    meter = pyloudnorm.Meter(sr)
    if samples.shape[0] < int(meter.block_size * sr):
        raise AudioError("This audio is shorter than 0.4 s, too short to measure its loudness.")
    value = float(meter.integrated_loudness(samples.astype(np.float64)))
    return value if math.isfinite(value) else DBFS_FLOOR


def true_peak_dbtp(samples: np.ndarray, sr: int) -> float:
    """True peak (BS.1770-4 Annex 2): the peak of the signal oversampled 4x; ``samples`` is
    ``(n,)`` or ``(n, channels)``."""
    del sr  # 4x whatever the rate; the resampler's filter is relative to it
    if samples.size == 0:
        return DBFS_FLOOR
    up = resample_poly(samples.astype(np.float64), 4, 1, axis=0)
    return to_dbfs(float(np.max(np.abs(up))))


def _window_rms(power: np.ndarray, sr: int) -> tuple[np.ndarray, int, int]:
    window, hop = int(NOISE_WINDOW_S * sr), max(1, int(NOISE_HOP_S * sr))
    cums = np.concatenate([[0.0], np.cumsum(power, dtype=np.float64)])
    starts = np.arange(0, len(power) - window + 1, hop)
    return np.sqrt(np.maximum(0.0, (cums[starts + window] - cums[starts]) / window)), window, hop


def _quietest_window(samples: np.ndarray, sr: int) -> tuple[int, float]:
    power = np.square(samples, dtype=np.float64)
    if power.ndim == 2:
        power = power.mean(axis=1)
    rms, _, hop = _window_rms(power, sr)
    if rms.size == 0:
        return 0, _rms(samples)
    i = int(np.argmin(rms))
    return i * hop, float(rms[i])


def noise_floor_dbfs(samples: np.ndarray, sr: int) -> float:
    """The RMS of the quietest 500 ms window (windows every 50 ms), in dBFS."""
    return to_dbfs(_quietest_window(samples, sr)[1])


def _frame_levels(samples: np.ndarray, sr: int) -> np.ndarray:
    power = np.square(samples, dtype=np.float64)
    if power.ndim == 2:
        power = power.mean(axis=1)
    frame = max(1, int(EDGE_FRAME_S * sr))
    n = len(power) // frame
    if n == 0:
        return np.zeros(0)
    rms = np.sqrt(power[: n * frame].reshape(n, frame).mean(axis=1))
    return np.array([to_dbfs(v) for v in rms])


def quiet_edges(samples: np.ndarray, sr: int) -> tuple[float, float]:
    """Seconds of quiet (no 50 ms frame over -50 dBFS RMS) at the head and at the tail."""
    levels = _frame_levels(samples, sr)
    loud = np.flatnonzero(levels > VOICE_DBFS)
    duration = samples.shape[0] / sr
    if loud.size == 0:
        return duration, duration
    return float(loud[0] * EDGE_FRAME_S), float(duration - (loud[-1] + 1) * EDGE_FRAME_S)


def _voiced_span(samples: np.ndarray, sr: int) -> tuple[int, int]:
    """Where the voice starts and ends, judged 40 dB under the loudest frame (so a quiet,
    unmastered chapter is cut as well as a loud one), with 50 ms of air kept each side."""
    frame = max(1, int(EDGE_FRAME_S * sr))
    levels = _frame_levels(samples, sr)
    if levels.size == 0:
        return 0, len(samples)
    loud = np.flatnonzero(levels > levels.max() - 40.0)
    first = max(0, (int(loud[0]) - 1) * frame)
    last = min(len(samples), (int(loud[-1]) + 2) * frame)
    return first, last


# --------------------------------------------------------------------------- the file


def compliance(
    path: Path | str, preset: MasteringPreset | str, *, start_s: float = 0.0, end_s: float | None = None
) -> ComplianceReport:
    """``path`` (an exported chapter; or ``start_s``..``end_s`` of a whole book) checked against
    ``preset``'s rules, measured on the samples decoded from the file."""
    preset = preset_from_user(preset)
    spec = PRESETS[preset]
    path = Path(path)
    info = probe(path)
    samples, sr = decode_file(path, start_s=start_s, end_s=end_s, info=info)
    channels = samples.shape[1]
    flat = samples.reshape(-1)
    rules: list[RuleResult] = []

    def rule(name: str, measured: float, limit: str, passed: bool, aim: float | None = None) -> None:
        rules.append(RuleResult(name, round(float(measured), 2), limit, bool(passed), spec.source, aim))

    if spec.rms_range is not None:
        low, high = spec.rms_range
        rms = to_dbfs(_rms(flat))
        rule("RMS level (dBFS)", rms, f"{low:g} to {high:g} dBFS", low <= rms <= high, _ACX_RMS_TARGET)
    if spec.peak_max is not None:
        peak = to_dbfs(float(np.max(np.abs(flat))))
        rule("Peak level (dBFS)", peak, f"at most {spec.peak_max:g} dBFS", peak <= spec.peak_max)
    if spec.noise_floor_max is not None:
        floor = noise_floor_dbfs(samples, sr)
        limit = f"at most {spec.noise_floor_max:g} dBFS RMS (quietest 500 ms)"
        rule("Noise floor (dBFS)", floor, limit, floor <= spec.noise_floor_max)
    if spec.head_tone_s is not None and spec.tail_tone_s is not None:
        head, tail = quiet_edges(samples, sr)
        low, high = spec.head_tone_s
        rule("Room tone at the head (s)", head, f"{low:g} to {high:g} s", low <= head <= high)
        low, high = spec.tail_tone_s
        rule("Room tone at the tail (s)", tail, f"{low:g} to {high:g} s", low <= tail <= high)
    target = spec.lufs_target(channels)
    if target is not None:
        lufs = _loudness(samples if channels > 1 else flat, sr)
        tol = spec.lufs_tolerance
        kind = "stereo" if channels > 1 else "mono"
        rule(
            "Integrated loudness (LUFS)",
            lufs,
            f"{target:g} LUFS ± {tol:g} LU ({kind})",
            abs(lufs - target) <= tol,
            target,
        )
    if spec.true_peak_max is not None:
        tp = true_peak_dbtp(samples, sr)
        rule("True peak (dBTP)", tp, f"at most {spec.true_peak_max:g} dBTP", tp <= spec.true_peak_max)
    if preset is MasteringPreset.ACX:
        assert spec.sample_rate is not None and spec.max_minutes is not None
        rule("Sample rate (Hz)", sr, f"{spec.sample_rate} Hz", sr == spec.sample_rate)
        kbps = info["bit_rate_kbps"]
        # ACX takes one MP3 per chapter; an M4B (AAC) is for listeners, not for the ACX upload,
        # so its bit rate is not held to the MP3 rule (its levels still are).
        if info["codec"] != "aac":
            is_mp3 = info["codec"] == "mp3"
            rule("MP3 bit rate (kbit/s)", kbps, f"MP3, at least {spec.bitrate_kbps} kbit/s CBR", is_mp3 and kbps >= 192)
        minutes = samples.shape[0] / sr / 60
        rule("Length (minutes)", minutes, f"at most {spec.max_minutes:g} minutes", minutes <= spec.max_minutes)
    return ComplianceReport(preset, tuple(rules), all(r.passed for r in rules))


def level_error_db(report: ComplianceReport) -> float:
    """How far the file's level (RMS for ACX, loudness otherwise) is from where mastering aims,
    in dB (positive: too loud). The encoder shifts levels a little (MP3 drops a few tenths of a
    dB); export corrects by this once. 0 when the preset has no level rule."""
    return next((r.measured - r.aim for r in report.rules if r.aim is not None), 0.0)


def _need_ffmpeg(tool: str = "ffmpeg") -> str:
    found = shutil.which(tool)
    if found is None:
        raise DependencyError(
            f"Mastering and export need {tool}; install ffmpeg (brew install ffmpeg / apt install ffmpeg)."
        )
    return found


def run_ffmpeg(*parts: list[str], stdin: bytes | None = None) -> bytes:
    """Runs ffmpeg with ``parts`` joined; its stdout, or an :class:`AudioError` with its message."""
    args = [_need_ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-y"]
    for part in parts:
        args.extend(part)
    done = subprocess.run(args, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(f"ffmpeg failed: {message[-1] if message else 'no message'}")
    return done.stdout


def probe(path: Path) -> dict[str, Any]:
    """The first audio stream of ``path``: codec, sample rate, channels, bit rate (kbit/s)."""
    done = subprocess.run(
        [
            _need_ffmpeg("ffprobe"),
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=False,
    )
    data = json.loads(done.stdout or b"{}") if done.returncode == 0 else {}
    streams = data.get("streams") or []
    if not streams:
        raise AudioError(f"The file '{path.name}' holds no audio that ffmpeg can read.")
    stream = streams[0]
    bit_rate = stream.get("bit_rate") or data.get("format", {}).get("bit_rate") or 0
    return {
        "codec": stream.get("codec_name", ""),
        "sample_rate": int(stream.get("sample_rate", 0)),
        "channels": int(stream.get("channels", 0)),
        "bit_rate_kbps": int(bit_rate) / 1000,
    }


def decode_file(
    path: Path, *, start_s: float = 0.0, end_s: float | None = None, info: dict[str, Any] | None = None
) -> tuple[np.ndarray, int]:
    """``path`` decoded by ffmpeg at its own rate and channels: ``(samples (n, channels), rate)``;
    ``info``: what :func:`probe` said of it, when the caller has asked already."""
    info = info or probe(path)
    sr, channels = info["sample_rate"], max(1, info["channels"])
    span: list[str] = []
    if start_s > 0:
        span += ["-ss", f"{start_s:.3f}"]
    if end_s is not None:
        span += ["-to", f"{end_s:.3f}"]
    raw = run_ffmpeg(span, ["-i", str(path), "-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"])
    samples = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    samples = samples[: len(samples) // channels * channels].reshape(-1, channels)
    if samples.shape[0] == 0:
        raise AudioError(f"The file '{path.name}' decodes to no audio.")
    return samples, sr


def resampled(audio: Audio, rate: int) -> Audio:
    """``audio`` at ``rate`` (scipy's polyphase resampler); itself when already there."""
    if audio.sample_rate == rate:
        return audio
    return Audio(_resample(audio.samples, audio.sample_rate, rate), rate)


def _resample(samples: np.ndarray, sr: int, target: int) -> np.ndarray:
    if sr == target:
        return samples.astype(np.float32)
    ratio = Fraction(target, sr)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)
