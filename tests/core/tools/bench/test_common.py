"""core.tools.bench.common: the helpers both bench suites measure with."""

from __future__ import annotations

import math

import pytest

from core.errors import InvalidInput
from core.tools.bench import common
from core.types import FRAMES_PER_SECOND


def positive(value: float | None) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_helpers():
    for frames in range(1, 4097):
        assert math.ceil(common.max_seconds_for(frames) * FRAMES_PER_SECOND) == frames
    text = common.bench_text(48, 50)
    assert len(text) <= 50
    with pytest.raises(InvalidInput, match="--frames"):
        common.bench_text(4000, 300)
    with pytest.raises(InvalidInput, match="--frames"):
        common.bench_text(0, 300)
    with pytest.raises(InvalidInput, match="--runs"):
        common.check_runs(0)
    rss, source = common.rss_bytes()
    assert positive(rss) and source != "unavailable"
    assert common.synthetic_reference().duration > 1


def test_peak_rss_sees_memory_used_inside_the_block_only():
    before, _ = common.rss_bytes()
    with common.peak_rss() as peak:
        block = bytearray(64 * 2**20)  # 64 MB, touched so it is resident
        block[::4096] = b"\x01" * len(block[::4096])
        del block
    assert positive(peak["peak"])
    assert peak["peak"] >= (before or 0) + 48 * 2**20
