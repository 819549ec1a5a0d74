"""Turning an uploaded or recorded clip into the exact reference used for cloning.

The Clone tab's preview, the clone endpoint and the voice library all call
`prepare_reference`, so what a creator hears in the preview is byte for byte
what the model is given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.audio.analysis import AudioReport, analyze
from core.audio.cleanup import highpass, reduce_noise
from core.audio.clip import Audio
from core.audio.edit import normalize_loudness, trim, trim_silence
from core.audio.io import load_audio
from core.audio.speech_check import measure_speech, speech_readout

# A reference longer than this is almost certainly a mistake (a whole podcast);
# refusing early keeps memory and encoder time sane.
MAX_REFERENCE_UPLOAD_S = 600.0


@dataclass(frozen=True)
class ReferenceOptions:
    start_s: float | None = None
    end_s: float | None = None
    trim_silence: bool = True
    normalize: bool = True
    # Clean-up (core/audio/cleanup.py): a high-pass cut-off in Hz (None: off) and noise reduction.
    highpass_hz: float | None = None
    denoise: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "trim_silence": self.trim_silence,
            "normalize": self.normalize,
            "highpass_hz": self.highpass_hz,
            "denoise": self.denoise,
        }


@dataclass(frozen=True)
class PreparedReference:
    audio: Audio
    report: AudioReport
    source_name: str | None


def prepare_reference(source: Any, options: ReferenceOptions = ReferenceOptions()) -> PreparedReference:
    """Load → mono 24 kHz → trim to start/end → high-pass → reduce noise → trim silence →
    normalise → analyse. Clean-up comes before the silence trim so hiss no longer counts as sound."""
    audio = load_audio(source, max_seconds=MAX_REFERENCE_UPLOAD_S)
    start = options.start_s if options.start_s else None
    end = options.end_s if options.end_s else None
    if start is not None or end is not None:
        audio = trim(audio, start, end)
    if options.highpass_hz:
        audio = highpass(audio, options.highpass_hz)
    if options.denoise:
        audio = reduce_noise(audio)
    if options.trim_silence:
        audio = trim_silence(audio)
    before = analyze(audio) if options.normalize else None
    if options.normalize:
        audio = normalize_loudness(audio)
    report = analyze(audio)
    if before is not None and before.clipped_ratio > report.clipped_ratio:
        # Normalising lowers the level, which would hide that the recording itself clipped.
        clipping = [w for w in before.warnings if "clipped" in w]
        report = replace(report, clipped_ratio=before.clipped_ratio, warnings=[*report.warnings, *clipping])
    # The readout shows the seconds of speech, and says so before generate
    # refuses a clip (require_speech) that has too little.
    speech = measure_speech(audio)
    report = replace(report, speech_s=speech.speech_s)
    if not speech.enough:
        report = replace(report, warnings=[*report.warnings, speech_readout(speech).capitalize() + "."])
    name = Path(source).name if isinstance(source, (str, Path)) else None
    return PreparedReference(audio=audio, report=report, source_name=name)
