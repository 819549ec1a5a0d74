"""Cutting a recording into training utterances at its pauses.

Silero VAD (:func:`core.audio.speech_check.measure_speech`, the detector every reference
clip already goes through) marks the voiced stretches of a recording; this module groups
them into utterances of ``min_s``-``max_s`` seconds:

1. every pause of ``break_pause_s`` or more ends an utterance (the pause after a sentence
   in read speech; commas and breaths are shorter);
2. a group longer than ``max_s`` is split at its longest pause, preferring a pause that
   leaves both halves at least ``min_s`` long, again and again until every part fits; a
   stretch with no pause at all is cut at its quietest 50 ms frame;
3. a group shorter than ``min_s`` is merged with the neighbour across the shorter pause,
   when that pause is at most ``merge_gap_s`` (a longer one would put a long silence inside
   the utterance) and the result still fits ``max_s``; one that cannot merge stays a
   *short* utterance, which the dataset keeps out of training until the user includes it;
4. each utterance keeps up to ``pad_s`` of the pause on either side (never more than half
   the pause, so neighbours never overlap): Silero's edges sit on the voiced frames and
   would clip soft onsets and the tail of the last word.

Everything here is pure arithmetic on seconds, apart from the quietest-frame cut, which
reads the samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.audio.clip import Audio
from core.errors import InvalidInput

__all__ = ["SegmentOptions", "Span", "plan_utterances"]

Segment = tuple[float, float]  # (start, end) seconds of one voiced stretch
QUIET_FRAME_S = 0.05  # the frame the quietest-point cut compares (analysis.py's silence frame)


@dataclass(frozen=True)
class SegmentOptions:
    """How a recording is cut (module docstring); the defaults suit read speech.

    3-15 s: shorter clips carry too little prosody for the model to learn a speaker's
    phrasing from, and the training step's memory grows with the longest clip in a batch
    (15 s is about 190 codec frames of 16 codes), so the recipe's batch of 2 fits a 16 GB
    machine.
    """

    min_s: float = 3.0
    max_s: float = 15.0
    break_pause_s: float = 0.5
    merge_gap_s: float = 2.0
    pad_s: float = 0.2

    def validated(self) -> SegmentOptions:
        values = (self.min_s, self.max_s, self.break_pause_s, self.merge_gap_s, self.pad_s)
        if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
            raise InvalidInput("The cutting settings must be numbers of seconds.")
        if not 1.0 <= self.min_s < self.max_s <= 30.0:
            raise InvalidInput(
                f"Utterances must be between 1 and 30 s, with the shortest ({self.min_s:g} s) under "
                f"the longest ({self.max_s:g} s)."
            )
        if not 0.1 <= self.break_pause_s <= 5.0:
            raise InvalidInput(f"The pause that ends an utterance must be 0.1-5 s, not {self.break_pause_s:g} s.")
        if not 0.0 <= self.merge_gap_s <= 10.0 or not 0.0 <= self.pad_s <= 1.0:
            raise InvalidInput("The merge pause must be 0-10 s and the padding 0-1 s.")
        if self.max_s - 2 * self.pad_s < self.min_s:
            raise InvalidInput("The padding leaves no room between the shortest and longest utterance.")
        return self


@dataclass(frozen=True)
class Span:
    """One planned utterance: where it starts and ends (padding included) and its speech."""

    start_s: float
    end_s: float
    speech_s: float  # voiced seconds inside, as the VAD measured them
    short: bool  # under min_s and could not be merged with a neighbour
    voiced: tuple[Segment, ...] = ()  # the voiced stretches inside, in seconds from the span's start

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


def plan_utterances(
    segments: list[Segment] | tuple[Segment, ...], audio: Audio, options: SegmentOptions | None = None
) -> list[Span]:
    """The utterances of ``audio``, given its voiced ``segments`` (in order, not overlapping)."""
    opts = (options or SegmentOptions()).validated()
    voiced = [(float(a), float(b)) for a, b in segments if b > a]
    if not voiced:
        return []
    # The speech span may use max_s less the padding, so a padded utterance never exceeds max_s.
    longest = opts.max_s - 2 * opts.pad_s
    groups = _split_at(voiced, lambda gap: gap >= opts.break_pause_s)
    fitted: list[list[Segment]] = []
    for group in groups:
        fitted.extend(_fit(group, longest, opts.min_s, audio))
    merged = _merge_short(fitted, opts.min_s, longest, opts.merge_gap_s)
    return _padded(merged, audio.duration, opts)


# --- internals ---------------------------------------------------------------


def _span(group: list[Segment]) -> float:
    return group[-1][1] - group[0][0]


def _split_at(voiced: list[Segment], cut: Callable[[float], bool]) -> list[list[Segment]]:
    groups: list[list[Segment]] = [[voiced[0]]]
    for previous, segment in zip(voiced, voiced[1:]):
        if cut(segment[0] - previous[1]):
            groups.append([segment])
        else:
            groups[-1].append(segment)
    return groups


def _fit(group: list[Segment], longest: float, shortest: float, audio: Audio) -> list[list[Segment]]:
    """``group`` split until every part spans at most ``longest`` seconds."""
    if _span(group) <= longest:
        return [group]
    if len(group) == 1:
        (start, end) = group[0]
        at = _quietest(audio, start, end, shortest)
        return _fit([(start, at)], longest, shortest, audio) + _fit([(at, end)], longest, shortest, audio)
    gaps = [(group[i + 1][0] - group[i][1], i) for i in range(len(group) - 1)]
    # The longest pause that leaves both sides a usable length; else the longest pause.
    balanced = [g for g in gaps if _span(group[: g[1] + 1]) >= shortest and _span(group[g[1] + 1 :]) >= shortest]
    _, i = max(balanced or gaps)
    return _fit(group[: i + 1], longest, shortest, audio) + _fit(group[i + 1 :], longest, shortest, audio)


def _quietest(audio: Audio, start: float, end: float, shortest: float) -> float:
    """The middle of the quietest frame of a pause-less stretch, away from its ends."""
    margin = min(shortest, (end - start) / 3)
    sr = audio.sample_rate
    frame = max(1, int(QUIET_FRAME_S * sr))
    first, last = int((start + margin) * sr), int((end - margin) * sr)
    x = audio.samples[first:last]
    count = len(x) // frame
    if count < 1:
        return (start + end) / 2
    energy = np.square(x[: count * frame].astype(np.float64)).reshape(count, frame).mean(axis=1)
    return (first + (int(np.argmin(energy)) + 0.5) * frame) / sr


def _merge_short(groups: list[list[Segment]], shortest: float, longest: float, max_gap: float) -> list[list[Segment]]:
    groups = [list(g) for g in groups]
    while True:
        candidates: list[tuple[float, float, int, int]] = []  # (span, gap, index, neighbour)
        for i, group in enumerate(groups):
            if _span(group) >= shortest:
                continue
            for j in (i - 1, i + 1):
                if not 0 <= j < len(groups):
                    continue
                first, second = (groups[j], group) if j < i else (group, groups[j])
                gap = second[0][0] - first[-1][1]
                if gap <= max_gap and second[-1][1] - first[0][0] <= longest:
                    candidates.append((_span(group), gap, i, j))
        if not candidates:
            return groups
        # The shortest group first, across its shorter pause.
        _, _, i, j = min(candidates)
        low, high = min(i, j), max(i, j)
        groups[low : high + 1] = [groups[low] + groups[high]]


def _padded(groups: list[list[Segment]], duration: float, opts: SegmentOptions) -> list[Span]:
    spans: list[Span] = []
    for k, group in enumerate(groups):
        start, end = group[0][0], group[-1][1]
        room_before = start if k == 0 else (start - groups[k - 1][-1][1]) / 2
        room_after = duration - end if k == len(groups) - 1 else (groups[k + 1][0][0] - end) / 2
        speech = sum(b - a for a, b in group)
        begin = round(max(0.0, start - min(opts.pad_s, room_before)), 3)
        spans.append(
            Span(
                start_s=begin,
                end_s=round(min(duration, end + min(opts.pad_s, room_after)), 3),
                speech_s=round(speech, 3),
                short=end - start < opts.min_s,
                voiced=tuple((round(a - begin, 3), round(b - begin, 3)) for a, b in group),
            )
        )
    return spans
