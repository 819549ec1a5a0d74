"""Independent measurements of an exported file, for the mastering and export tests.

Nothing here uses core/projects/mastering.py: levels come from ffmpeg's ``astats`` and
``ebur128`` filters (read from its log), and from pyloudnorm / numpy on samples decoded by
libsndfile (soundfile), a different decoder from the ffmpeg one the studio uses.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
import soundfile as sf

from tests.conftest import need


def ffmpeg_levels(path: Path) -> dict[str, float]:
    """Whole-file RMS and peak (astats), integrated loudness and true peak (ebur128), and the
    quiet stretches at the head and tail (silencedetect at -50 dB, as ACX room tone)."""
    need("ffmpeg")
    chain = (
        "astats=measure_perchannel=none:measure_overall=RMS_level+Peak_level,"
        "ebur128=peak=true,silencedetect=n=-50dB:d=0.2"
    )
    log = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-af", chain, "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = log[log.rindex("Summary:") :]
    # (end, length) of each quiet stretch; ffmpeg closes one still open at the end of the file.
    quiet = [(float(e), float(d)) for e, d in re.findall(r"silence_end: ([\d.]+) \| silence_duration: ([\d.]+)", log)]
    duration = float(probe(path)["format"]["duration"])
    return {
        "rms": float(re.findall(r"RMS level dB: (-?[\d.]+|-inf)", log)[-1]),
        "peak": float(re.findall(r"Peak level dB: (-?[\d.]+|-inf)", log)[-1]),
        "lufs": float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),  # type: ignore[union-attr]
        "true_peak": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)),  # type: ignore[union-attr]
        "head": quiet[0][0] if quiet and quiet[0][0] - quiet[0][1] <= 0.01 else 0.0,
        "tail": quiet[-1][1] if quiet and quiet[-1][0] >= duration - 0.05 else 0.0,
    }


def soundfile_levels(path: Path) -> dict[str, float]:
    """pyloudnorm's loudness and numpy's RMS of the quietest whole 500 ms block (libsndfile decode)."""
    data, sr = sf.read(str(path), dtype="float64", always_2d=True)
    block = sr // 2
    blocks = data[: len(data) // block * block].reshape(-1, block, data.shape[1])
    quietest = float(np.sqrt(np.mean(np.square(blocks), axis=(1, 2))).min())
    loudness = pyloudnorm.Meter(sr).integrated_loudness(data if data.shape[1] > 1 else data[:, 0])
    return {
        "lufs": float(loudness),
        "noise_floor": 20 * np.log10(max(quietest, 1e-9)),
        "channels": data.shape[1],
        "rate": sr,
    }


def probe(path: Path) -> dict[str, Any]:
    need("ffprobe")
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)
