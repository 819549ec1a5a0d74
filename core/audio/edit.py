"""Editing audio: cuts, levels, fades, joins and the finishing touches of a take.

Every function returns a new :class:`~core.audio.clip.Audio` and leaves its
input alone. Level measurement is left to librosa and pyloudnorm; this module
only decides what to do with it and says clearly what it refuses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import librosa
import numpy as np
import pyloudnorm

from core.audio.clip import Audio, from_dbfs, peak_level, rms_level, to_dbfs
from core.errors import InvalidInput

__all__ = [
    "POST_NORMALIZE_MODES",
    "PostProcessing",
    "concat",
    "fade",
    "normalize_loudness",
    "normalize_peak",
    "post_process",
    "remove_dc",
    "silence_bounds",
    "trim",
    "trim_silence",
]


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
        raise InvalidInput(f"The trim starts at {start:.2f} s but the audio is only {duration:.2f} s long.")
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
    start, end = silence_bounds(audio, top_db, pad_s=pad_s)
    if (start, end) == (0, len(audio)):
        return audio
    return Audio(audio.samples[start:end].copy(), audio.sample_rate)


def silence_bounds(audio: Audio, top_db: float = 40.0, *, pad_s: float = 0.05) -> tuple[int, int]:
    """The ``[start, end)`` samples :func:`trim_silence` keeps (all of it for silence), so a
    caller can tell where the parts of a joined take moved (core/audio/assembly.py)."""
    if top_db <= 0:
        raise InvalidInput("top_db must be positive.")
    if pad_s < 0:
        raise InvalidInput("pad_s cannot be negative.")
    if len(audio) == 0 or not np.any(audio.samples):
        return 0, len(audio)
    _, (start, end) = librosa.effects.trim(audio.samples, top_db=top_db)
    if end <= start:
        return 0, len(audio)
    pad = int(round(pad_s * audio.sample_rate))
    return max(0, int(start) - pad), min(len(audio), int(end) + pad)


def normalize_peak(audio: Audio, peak_dbfs: float = -1.0) -> Audio:
    """Scale so the loudest sample sits at ``peak_dbfs``. Silence is returned as is."""
    if not (math.isfinite(peak_dbfs) and peak_dbfs <= 0):
        raise InvalidInput("The peak level must be 0 dBFS or lower.")
    peak = peak_level(audio.samples)
    if peak == 0:
        return audio
    return Audio(audio.samples * np.float32(from_dbfs(peak_dbfs) / peak), audio.sample_rate)


def normalize_loudness(audio: Audio, lufs: float = -20.0, *, peak_ceiling_dbfs: float = -1.0) -> Audio:
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
    peak = peak_level(audio.samples)
    if peak == 0:
        return audio
    meter = pyloudnorm.Meter(audio.sample_rate)
    if len(audio) >= meter.block_size * audio.sample_rate:
        measured = meter.integrated_loudness(audio.samples.astype(np.float64))
    else:
        measured = to_dbfs(rms_level(audio.samples))
    if not math.isfinite(measured):
        return audio
    gain = min(from_dbfs(lufs - measured), from_dbfs(peak_ceiling_dbfs) / peak)
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

    def validated(self) -> PostProcessing:
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
        audio = fade(
            audio, in_s=min(options.fade_in_s, audio.duration / 2), out_s=min(options.fade_out_s, audio.duration / 2)
        )
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
