"""The cutting rules on given voiced stretches: breaks at long pauses, merges of short runs,
splits of long ones at their longest pause (or, without any pause, at the quietest frame),
and padding that never overlaps a neighbour."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.clip import Audio
from core.errors import InvalidInput
from core.finetune.segment import SegmentOptions, plan_utterances

SR = 24_000


def room(seconds: float, dips: tuple[float, ...] = ()) -> Audio:
    """A steady tone standing in for continuous speech, silent for 50 ms at each of ``dips``."""
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 200 * t)
    for at in dips:
        x[int(at * SR) : int((at + 0.05) * SR)] = 0.0
    return Audio(x.astype(np.float32), SR)


def bounds(spans) -> list[tuple[float, float]]:
    return [(s.start_s, s.end_s) for s in spans]


def test_every_long_pause_ends_an_utterance_and_short_ones_do_not():
    voiced = [(1.0, 3.0), (3.2, 5.0), (6.0, 10.0), (10.4, 14.0)]  # pauses: 0.2, 1.0, 0.4 s
    spans = plan_utterances(voiced, room(16.0))
    assert bounds(spans) == [(0.8, 5.2), (5.8, 14.2)]
    assert [s.speech_s for s in spans] == [3.8, 7.6]
    assert spans[0].voiced == ((0.2, 2.2), (2.4, 4.2))  # from the clip's own start


def test_a_short_run_merges_across_its_shorter_pause():
    voiced = [(1.0, 5.0), (6.0, 7.0), (7.8, 11.0), (13.0, 17.0)]  # 1 s run: 1.0 s before, 0.8 s after
    spans = plan_utterances(voiced, room(18.0))
    assert bounds(spans) == [(0.8, 5.2), (5.8, 11.2), (12.8, 17.2)]
    assert not any(s.short for s in spans)


def test_a_short_run_that_cannot_merge_stays_short():
    # 3 s of silence either side: merging would put a long silence inside a clip.
    voiced = [(1.0, 5.0), (8.0, 9.5), (12.5, 16.0)]
    spans = plan_utterances(voiced, room(17.0))
    assert [s.short for s in spans] == [False, True, False]
    assert bounds(spans)[1] == (7.8, 9.7)


def test_a_merge_never_makes_a_clip_longer_than_the_limit():
    voiced = [(0.5, 13.5), (14.0, 15.5)]  # 13 s + 0.5 s pause + 1.5 s would be 15 s of speech
    spans = plan_utterances(voiced, room(16.0))
    assert len(spans) == 2 and spans[1].short
    assert all(s.seconds <= 15.0 for s in spans)


def test_a_long_run_is_split_at_its_longest_pause():
    # Pauses under 0.5 s everywhere, 17 s in all: split at the 0.45 s pause, not the 0.3 s ones.
    voiced = [(0.5, 4.0), (4.3, 8.0), (8.45, 13.0), (13.3, 17.5)]
    spans = plan_utterances(voiced, room(18.0))
    assert bounds(spans) == [(0.3, 8.2), (8.25, 17.7)]
    assert all(s.seconds <= 15.0 for s in spans)


def test_the_longest_pause_that_leaves_both_sides_usable_wins():
    # The longest pause (0.45 s) would leave a 1 s stub; the 0.4 s one leaves two usable halves.
    voiced = [(0.5, 1.5), (1.95, 9.0), (9.4, 16.5)]
    spans = plan_utterances(voiced, room(17.0))
    assert bounds(spans) == [(0.3, 9.2), (9.2, 16.7)]


def test_a_run_without_any_pause_is_cut_at_its_quietest_frame():
    spans = plan_utterances([(0.5, 24.5)], room(25.0, dips=(11.0,)))
    assert len(spans) == 2
    assert spans[0].end_s == pytest.approx(11.025, abs=0.03)  # the middle of the silent frame
    assert all(3.0 <= s.seconds <= 15.0 for s in spans)


def test_padding_stays_inside_the_recording_and_half_the_pause():
    voiced = [(0.05, 4.0), (4.6, 9.0)]
    spans = plan_utterances(voiced, room(9.1))
    assert bounds(spans) == [(0.0, 4.2), (4.4, 9.1)]


def test_no_voice_gives_no_utterances():
    assert plan_utterances([], room(5.0)) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SegmentOptions(min_s=5, max_s=4), "between 1 and 30 s"),
        (SegmentOptions(break_pause_s=0), "must be 0.1-5 s"),
        (SegmentOptions(pad_s=2), "padding 0-1 s"),
        (SegmentOptions(min_s=3, max_s=3.2, pad_s=0.2), "no room"),
        (SegmentOptions(min_s=float("nan")), "numbers of seconds"),
    ],
)
def test_bad_cutting_settings_are_refused(options, message):
    with pytest.raises(InvalidInput, match=message):
        plan_utterances([(0.5, 4.0)], room(5.0), options)
