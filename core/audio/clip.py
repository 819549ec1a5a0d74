"""The one in-memory audio type, and the level arithmetic every audio module shares.

Qwen3-TTS listens to and speaks 24 kHz mono, so everything the engine handles
is an :class:`Audio` at that rate. Every function of the ``core.audio``
modules is pure: it never changes the :class:`Audio` it is given and returns
a new one.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DBFS_FLOOR",
    "TARGET_SAMPLE_RATE",
    "Audio",
    "from_dbfs",
    "peak_level",
    "rms_level",
    "to_dbfs",
]

TARGET_SAMPLE_RATE = 24_000
"""Qwen3-TTS's speech tokenizer works at 24 kHz mono."""

DBFS_FLOOR = -120.0  # reported instead of -inf so reports stay printable/JSON-safe


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


def peak_level(samples: np.ndarray) -> float:
    """The largest absolute sample (0 for no samples)."""
    return float(np.max(np.abs(samples))) if samples.size else 0.0


def rms_level(samples: np.ndarray) -> float:
    """Root mean square, summed in float64 so long clips do not lose precision."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def to_dbfs(amplitude: float) -> float:
    """An amplitude in dBFS, never below :data:`DBFS_FLOOR`."""
    if amplitude <= 0:
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 20.0 * math.log10(amplitude))


def from_dbfs(db: float) -> float:
    """A dBFS level as an amplitude."""
    return 10.0 ** (db / 20.0)
