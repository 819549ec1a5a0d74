"""Cleaning a clone reference before the model hears it: a high-pass filter and noise reduction.

Both are options of the one reference pipeline (``core/audio/reference.py``), so the Clone tab's
preview, cloning and a saved library voice all get the same cleaned clip. A clone copies what it
hears, hum and hiss included, so a little clean-up helps a home recording; noise reduction can
also smear speech, which is why it is off by default.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from core.audio.clip import Audio
from core.errors import InvalidInput

__all__ = ["HIGHPASS_DEFAULT_HZ", "highpass", "reduce_noise"]

# Below the lowest male voice's fundamental (~85 Hz): removes rumble, handling noise and mains hum
# without thinning the voice.
HIGHPASS_DEFAULT_HZ = 80.0
HIGHPASS_MAX_HZ = 500.0  # above this a "high-pass" starts to eat the voice itself
_ORDER = 4


def highpass(audio: Audio, cutoff_hz: float = HIGHPASS_DEFAULT_HZ) -> Audio:
    """A zero-phase Butterworth high-pass (forward and backward, so speech is not smeared in time)."""
    if not 20.0 <= cutoff_hz <= HIGHPASS_MAX_HZ:
        raise InvalidInput(f"The high-pass cut-off must be between 20 and {HIGHPASS_MAX_HZ:.0f} Hz.")
    x = audio.samples
    sos = signal.butter(_ORDER, cutoff_hz, btype="highpass", fs=audio.sample_rate, output="sos")
    # sosfiltfilt needs a few times the filter length; a clip that short has nothing to filter.
    if len(x) <= 3 * (2 * len(sos) + 1):
        return audio
    return Audio(signal.sosfiltfilt(sos, x).astype(np.float32), audio.sample_rate)


def reduce_noise(audio: Audio) -> Audio:
    """Spectral gating with ``noisereduce`` (imported here: it pulls in torch when torch is
    installed, and the library listing must stay light). Stationary mode: the noise profile is
    estimated from the whole clip, which suits the steady hiss and hum of a home recording."""
    import noisereduce

    if len(audio) == 0:
        return audio
    cleaned = noisereduce.reduce_noise(
        y=audio.samples.astype(np.float32),
        sr=audio.sample_rate,
        stationary=True,
        prop_decrease=0.9,  # not 1.0: a little noise left sounds more natural than gating artefacts
        n_jobs=1,
    )
    return Audio(np.asarray(cleaned, dtype=np.float32), audio.sample_rate)
