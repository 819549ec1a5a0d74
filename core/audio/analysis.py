"""Measuring a reference clip and wording what would hurt a voice clone."""

from __future__ import annotations

from dataclasses import dataclass, field

import librosa
import numpy as np

from core.audio.clip import DBFS_FLOOR, Audio, from_dbfs, peak_level, rms_level, to_dbfs

__all__ = ["AudioReport", "analyze"]

# analyze() thresholds.
REFERENCE_MIN_SECONDS = 3.0
REFERENCE_MAX_SECONDS = 30.0
CLIP_LEVEL = 0.999  # |x| at or above this counts as a clipped sample
CLIPPED_RATIO_WARN = 0.001  # more than 0.1 % clipped samples is audible
SILENCE_FRAME_SECONDS = 0.05
SILENCE_DBFS = -50.0  # a 50 ms frame whose RMS is below this is silence
SILENCE_RATIO_WARN = 0.60
QUIET_PEAK_DBFS = -30.0


@dataclass(frozen=True)
class AudioReport:
    """What :func:`analyze` found, with human warnings for the studio."""

    duration_s: float
    peak_dbfs: float
    rms_dbfs: float
    clipped_ratio: float
    silence_ratio: float
    warnings: list[str] = field(default_factory=list)
    # Seconds of voiced audio (core/audio/speech_check.py); None where not measured.
    speech_s: float | None = None


def analyze(audio: Audio) -> AudioReport:
    """Measure a reference clip and word what would hurt a voice clone."""
    n = len(audio)
    duration = audio.duration
    if n == 0:
        return AudioReport(0.0, DBFS_FLOOR, DBFS_FLOOR, 0.0, 1.0, ["The clip contains no audio."])
    x = audio.samples
    peak_dbfs = to_dbfs(peak_level(x))
    rms_dbfs = to_dbfs(rms_level(x))
    clipped_ratio = float(np.count_nonzero(np.abs(x) >= CLIP_LEVEL)) / n

    frame = max(1, min(n, int(round(SILENCE_FRAME_SECONDS * audio.sample_rate))))
    frame_rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=frame, center=False)[0]
    silence_ratio = float(np.mean(frame_rms < from_dbfs(SILENCE_DBFS)))

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
        warnings.append(f"{silence_ratio:.0%} of the clip is silence; trim it or choose a clip with more speech.")
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
