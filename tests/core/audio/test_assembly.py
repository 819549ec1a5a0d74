"""Joining a take's parts: each part's span in the finished take, through pauses, crossfades and trims."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.assembly import EDGE_S, assemble, join_parts, part_spans
from core.audio.clip import Audio
from core.audio.edit import PostProcessing

RATE = 24_000


def tone(seconds: float, level: float, lead_silence_s: float = 0.0) -> Audio:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    body = (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    lead = np.zeros(int(lead_silence_s * RATE), dtype=np.float32)
    return Audio(np.concatenate([lead, body]), RATE)


@pytest.mark.parametrize("pause_s", [0.3, 0.0])
def test_spans_mirror_the_join_exactly(pause_s):
    pieces = [tone(0.5, 0.2), tone(0.25, 0.4), tone(0.75, 0.6)]
    joined = join_parts(pieces, pause_s)
    spans = part_spans([len(p) for p in pieces], pause_s, RATE)
    assert spans[-1][1] == len(joined)  # the last part ends the take
    edge = int(EDGE_S * RATE)
    for (start, end), piece in zip(spans, pieces, strict=True):
        assert end - start == len(piece)
        # Away from the faded edges, the take holds exactly this part's samples.
        np.testing.assert_array_equal(joined.samples[start + edge : end - edge], piece.samples[edge:-edge])
    if pause_s:
        gap = int(pause_s * RATE)
        assert spans[1][0] - spans[0][1] == gap
        assert not np.any(joined.samples[spans[0][1] : spans[1][0]])  # the pause is silence
    else:
        assert spans[1][0] == spans[0][1] - edge  # the crossfade overlaps by the edge


def test_trim_silence_moves_every_part_back_by_what_was_cut():
    pieces = [tone(0.5, 0.5, lead_silence_s=1.0), tone(0.5, 0.5)]
    plain = assemble(pieces, 0.3, PostProcessing())
    trimmed = assemble(pieces, 0.3, PostProcessing(trim_silence=True, normalize="peak", fade_in_s=0.05))
    cut = plain.audio.duration - trimmed.audio.duration
    assert 0.9 < cut < 1.0  # about a second of leading silence (50 ms of air is kept)
    assert trimmed.spans[0][0] == 0.0  # the first part's silent start fell in the trimmed lead
    for (a0, a1), (b0, b1) in zip(plain.spans[1:], trimmed.spans[1:], strict=True):
        assert b0 == pytest.approx(a0 - cut, abs=1e-6)
        assert b1 == pytest.approx(a1 - cut, abs=1e-6)
    assert trimmed.spans[-1][1] <= trimmed.audio.duration
    # The second part starts at its first sound: the samples before it are the pause.
    start = int(round(trimmed.spans[1][0] * RATE))
    assert not np.any(trimmed.audio.samples[start - 100 : start])


def test_parts_carry_texts_seeds_and_speakers():
    pieces = [tone(0.2, 0.3), tone(0.2, 0.3)]
    made = assemble(pieces, 0.1, PostProcessing())
    parts = made.parts(pieces, ["a", "b"], [7, 8], speakers=["Anna", "Tom"], voices=["Ryan", "Aiden"])
    assert [(p.index, p.text, p.seed, p.speaker, p.voice) for p in parts] == [
        (0, "a", 7, "Anna", "Ryan"),
        (1, "b", 8, "Tom", "Aiden"),
    ]
    assert parts[0].audio is pieces[0]
    assert parts[1].start_s == pytest.approx(0.3)
