"""core.audio.clip: the Audio type."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.clip import Audio


def test_audio_coerces_dtype_and_rejects_stereo():
    audio = Audio(np.zeros(10, dtype=np.float64), 24_000)
    assert audio.samples.dtype == np.float32
    assert len(audio) == 10 and audio.duration == pytest.approx(10 / 24_000)
    with pytest.raises(ValueError):
        Audio(np.zeros((10, 2), dtype=np.float32), 24_000)
    with pytest.raises(ValueError):
        Audio(np.zeros(10, dtype=np.float32), 0)
