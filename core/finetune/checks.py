"""What a dataset's clips measure, and whether there is enough good speech to train on.

Each utterance gets its speech seconds (Silero VAD), peak and RMS level and clipped-sample
ratio (:func:`core.audio.analysis.analyze`, the reference check's own measures) and a noise
floor. The dataset's totals then give a go / no-go verdict with its reasons, each a sentence
for the review screen. The thresholds, and why:

- ``MIN_MINUTES`` (1 min) of transcribed, kept clips, or it is **no-go**: at the official
  recipe's batch 2 x gradient accumulation 4 over 3 epochs, a minute of 3-15 s clips is only
  a few optimizer steps, too few to move the voice.
- ``RECOMMENDED_MINUTES`` (10 min): below it the verdict is **weak** (trainable, with that
  reason first): 10-30 minutes of a speaker is what makes a fine-tuned voice better and
  steadier than a clone from a 10 s reference (issue 25).
- No kept clip with a transcript is **no-go**: the recipe trains on (text, audio) pairs.
  Kept clips without a transcript are left out of training, and said so.
- Clipping: more than 0.1 % of a clip's samples at full scale (analysis.py's
  ``CLIPPED_RATIO_WARN``, audible distortion); the model learns the distortion too.
- Noise: a floor above ``NOISY_FLOOR_DBFS`` (-50 dBFS). ACX asks -60 dBFS of audiobooks; the
  speech tokenizer reproduces room noise, so a trained voice would hiss. Measured in the
  clip's pauses: the median level of its 50 ms frames outside every voiced stretch.
- Transcripts the demo ASR model wrote (random weights) are noise: a **weak** verdict until
  they are edited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import librosa
import numpy as np

from core.audio.analysis import CLIPPED_RATIO_WARN, analyze
from core.audio.clip import DBFS_FLOOR, Audio, to_dbfs

__all__ = [
    "MIN_MINUTES",
    "NOISY_FLOOR_DBFS",
    "RECOMMENDED_MINUTES",
    "Totals",
    "UtteranceStats",
    "Verdict",
    "VerdictLevel",
    "judge",
    "measure",
    "noise_floor_dbfs",
]

MIN_MINUTES = 1.0
RECOMMENDED_MINUTES = 10.0
NOISY_FLOOR_DBFS = -50.0
NOISE_FRAME_S = 0.05


@dataclass(frozen=True)
class UtteranceStats:
    """What one clip measures."""

    seconds: float
    speech_s: float
    peak_dbfs: float
    rms_dbfs: float
    clipped_ratio: float  # share of samples at full scale
    noise_floor_dbfs: float

    @property
    def clipped(self) -> bool:
        return self.clipped_ratio > CLIPPED_RATIO_WARN

    @property
    def noisy(self) -> bool:
        return self.noise_floor_dbfs > NOISY_FLOOR_DBFS

    def as_dict(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 3),
            "speech_s": round(self.speech_s, 3),
            "peak_dbfs": round(self.peak_dbfs, 2),
            "rms_dbfs": round(self.rms_dbfs, 2),
            "clipped_ratio": round(self.clipped_ratio, 6),
            "noise_floor_dbfs": round(self.noise_floor_dbfs, 2),
        }

    @classmethod
    def from_dict(cls, data: Any) -> UtteranceStats:
        """Raises ValueError/TypeError/KeyError on a damaged record (the store words it)."""
        values = {name: float(data[name]) for name in cls.__dataclass_fields__}
        if not all(np.isfinite(v) for v in values.values()):
            raise ValueError("stats must be finite numbers")
        return cls(**values)


def measure(audio: Audio, voiced: Sequence[tuple[float, float]]) -> UtteranceStats:
    """The stats of one clip; ``voiced`` are its voiced stretches (seconds from its start), from
    the VAD run over its whole recording."""
    report = analyze(audio)
    return UtteranceStats(
        seconds=audio.duration,
        speech_s=min(audio.duration, sum(b - a for a, b in voiced)),
        peak_dbfs=report.peak_dbfs,
        rms_dbfs=report.rms_dbfs,
        clipped_ratio=report.clipped_ratio,
        noise_floor_dbfs=noise_floor_dbfs(audio, voiced),
    )


def noise_floor_dbfs(audio: Audio, voiced: Sequence[tuple[float, float]]) -> float:
    """The level of the room under the voice: the median level of the clip's 50 ms frames that
    lie wholly outside its voiced stretches (the pauses; the median shrugs off a breath). A clip
    with no such frame gets its quietest frame, which is the floor or above it."""
    frame = max(1, int(round(NOISE_FRAME_S * audio.sample_rate)))
    if len(audio) < frame:
        return DBFS_FLOOR
    levels = librosa.feature.rms(y=audio.samples, frame_length=frame, hop_length=frame, center=False)[0]
    starts = np.arange(len(levels)) * NOISE_FRAME_S
    quiet = np.ones(len(levels), dtype=bool)
    for a, b in voiced:  # a frame touching a voiced stretch is not a pause
        quiet &= (starts + NOISE_FRAME_S <= a) | (starts >= b)
    return to_dbfs(float(np.median(levels[quiet]) if quiet.any() else levels.min()))


class VerdictLevel(str, Enum):
    GO = "go"  # enough clean, transcribed speech
    WEAK = "weak"  # trainable, but the reasons say what would make it better
    NO_GO = "no_go"  # training would not work: too little speech, or no transcripts


@dataclass(frozen=True)
class Totals:
    """A dataset's counts. "Kept" clips are included and transcribed: what training reads."""

    utterances: int
    excluded: int
    kept: int
    kept_seconds: float
    kept_speech_s: float
    untranscribed: int  # included, but no transcript: left out of training
    clipped: tuple[str, ...] = ()  # ids of kept clips that clip
    noisy: tuple[str, ...] = ()  # ids of kept clips above the noise threshold
    demo_text: int = 0  # kept clips whose transcript is the demo ASR's noise, unedited

    @property
    def kept_minutes(self) -> float:
        return self.kept_seconds / 60.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "utterances": self.utterances,
            "excluded": self.excluded,
            "kept": self.kept,
            "kept_minutes": round(self.kept_minutes, 2),
            "kept_speech_s": round(self.kept_speech_s, 1),
            "untranscribed": self.untranscribed,
            "clipped": list(self.clipped),
            "noisy": list(self.noisy),
            "demo_text": self.demo_text,
        }


@dataclass(frozen=True)
class Verdict:
    level: VerdictLevel
    reasons: tuple[str, ...] = field(default_factory=tuple)  # most important first
    totals: Totals | None = None

    @property
    def go(self) -> bool:
        """Whether training may start (a weak dataset may; a no-go one may not)."""
        return self.level is not VerdictLevel.NO_GO

    @property
    def headline(self) -> str:
        return self.reasons[0] if self.reasons else "Ready to train."

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "go": self.go,
            "reasons": list(self.reasons),
            "totals": self.totals.as_dict() if self.totals else None,
        }


def judge(totals: Totals) -> Verdict:
    """The go / no-go verdict for ``totals``, with a sentence per reason (module docstring)."""
    blockers: list[str] = []
    advice: list[str] = []
    minutes = totals.kept_minutes
    kept = f"{minutes:.1f} min kept in {totals.kept} clip{'' if totals.kept == 1 else 's'}"
    if totals.kept == 0 and totals.untranscribed:
        blockers.append(
            f"No transcripts: none of the {totals.untranscribed} included clips has one. "
            "Transcribe them, or type what each clip says."
        )
    elif totals.kept == 0:
        blockers.append("No clips are kept: include some clips (every clip is excluded) or add recordings.")
    elif minutes < MIN_MINUTES:
        blockers.append(
            f"Too little speech: {kept}; at least {MIN_MINUTES:.0f} min is needed to train, "
            f"{RECOMMENDED_MINUTES:.0f} min or more recommended. Add recordings."
        )
    elif minutes < RECOMMENDED_MINUTES:
        advice.append(f"{kept}; {RECOMMENDED_MINUTES:.0f} min or more recommended for a steady voice.")
    if totals.untranscribed and totals.kept:
        advice.append(
            f"{_clips(totals.untranscribed)} {'has' if totals.untranscribed == 1 else 'have'} no transcript "
            "and will be left out of training; type the words or exclude them."
        )
    if totals.demo_text:
        advice.append(
            f"{_clips(totals.demo_text)} still {'has' if totals.demo_text == 1 else 'have'} the demo "
            "transcription model's text (random words); correct the transcripts before training."
        )
    if totals.clipped:
        advice.append(
            f"Clipping in {_clips(len(totals.clipped))} ({', '.join(totals.clipped[:8])}"
            f"{', ...' if len(totals.clipped) > 8 else ''}): the voice would learn the distortion; "
            "exclude them or record at a lower input level."
        )
    if totals.noisy:
        advice.append(
            f"{_clips(len(totals.noisy))} {'is' if len(totals.noisy) == 1 else 'are'} noisy "
            f"(noise floor above {NOISY_FLOOR_DBFS:.0f} dBFS): the voice would learn the hiss; "
            "exclude them or record in a quieter room."
        )
    if blockers:
        level = VerdictLevel.NO_GO
    elif advice:
        level = VerdictLevel.WEAK
    else:
        level = VerdictLevel.GO
        advice.append(f"Ready to train: {kept}.")
    return Verdict(level, tuple(blockers + advice), totals)


def _clips(count: int) -> str:
    return f"{count} clip{'' if count == 1 else 's'}"
