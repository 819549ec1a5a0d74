"""Joining a take's parts into the take, and knowing where each part landed.

A take is made of parts: the chunks of a long text, or the lines of a script.
They are joined with a pause (short fades at every cut, so no click) or, with
no pause, a short equal-power crossfade; then the take's finishing
(:func:`core.audio.edit.post_process`) runs on the whole. :func:`assemble` does
both and says where each part sits in the finished audio, which is what
subtitles and the History's part list are timed from.

How the times follow the audio:

- the join: part k starts after parts 0..k-1 and a pause after each (a
  crossfade instead overlaps the previous part by up to ``edge_s``);
- the finishing: DC removal, levels and fades never change the length, but
  "trim silence" cuts the take's leading and trailing silence, so every time
  moves back by what was cut at the start, and is clamped into the take (a part
  that lay wholly in trimmed silence ends up with start == end).

Each part's audio is kept as it went into the join, so joining the same parts
with the same pause and finishing again gives the same take, bit for bit; that
is how a take with one part redone is re-assembled (core/takes/part_edit.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.audio.clip import Audio
from core.audio.edit import PostProcessing, concat, fade, post_process, remove_dc, silence_bounds
from core.types import PartAudio

__all__ = ["EDGE_S", "Assembled", "assemble", "join_parts", "part_spans"]

EDGE_S = 0.01  # the fade at each cut, or the crossfade when there is no pause


def join_parts(pieces: Sequence[Audio], pause_s: float, edge_s: float = EDGE_S) -> Audio:
    """Parts joined by a pause with short fades at the cut edges (no clicks),
    or, with no pause, by a short crossfade."""
    if len(pieces) == 1:
        return pieces[0]
    if pause_s <= 0:
        return concat(pieces, crossfade_s=edge_s)
    faded = [
        fade(p, in_s=edge_s if i else 0.0, out_s=edge_s if i < len(pieces) - 1 else 0.0) for i, p in enumerate(pieces)
    ]
    return concat(faded, pause_s=pause_s)


def part_spans(
    lengths: Sequence[int], pause_s: float, sample_rate: int, edge_s: float = EDGE_S
) -> list[tuple[int, int]]:
    """``[start, end)`` in samples of each part in :func:`join_parts`'s output (mirrors it exactly)."""
    spans: list[tuple[int, int]] = []
    gap = int(round(pause_s * sample_rate)) if pause_s > 0 else 0
    n_fade = int(round(edge_s * sample_rate))
    cursor = 0  # the joined length so far
    for i, length in enumerate(lengths):
        start = cursor
        if i and pause_s > 0:
            start += gap
        elif i and len(lengths) > 1:
            start -= min(n_fade, cursor, length)  # concat's crossfade overlap
        spans.append((start, start + length))
        cursor = start + length
    return spans


@dataclass(frozen=True)
class Assembled:
    """A finished take and where each of its parts sits in it (seconds)."""

    audio: Audio
    spans: list[tuple[float, float]]

    def parts(
        self,
        pieces: Sequence[Audio],
        texts: Sequence[str],
        seeds: Sequence[int],
        *,
        speakers: Sequence[str | None] | None = None,
        voices: Sequence[str | None] | None = None,
    ) -> list[PartAudio]:
        """The :class:`~core.types.PartAudio` records of this take, one per piece."""
        count = len(pieces)
        speakers = list(speakers) if speakers is not None else [None] * count
        voices = list(voices) if voices is not None else [None] * count
        return [
            PartAudio(
                index=i,
                text=texts[i],
                seed=int(seeds[i]),
                audio=pieces[i],
                start_s=self.spans[i][0],
                end_s=self.spans[i][1],
                speaker=speakers[i],
                voice=voices[i],
            )
            for i in range(count)
        ]


def assemble(pieces: Sequence[Audio], pause_s: float, post: PostProcessing, edge_s: float = EDGE_S) -> Assembled:
    """The parts joined and finished, with each part's span in the finished take."""
    if not pieces:
        return Assembled(post_process(join_parts(pieces, pause_s, edge_s), post), [])  # concat's own message
    joined = join_parts(pieces, pause_s, edge_s)
    spans = part_spans([len(p) for p in pieces], pause_s, joined.sample_rate, edge_s)
    finished = post_process(joined, post)
    lead = 0
    if post.trim_silence:
        # post_process trims after DC removal, so the bounds are measured on the same samples.
        lead = silence_bounds(remove_dc(joined) if post.remove_dc else joined)[0]
    total = len(finished)
    rate = joined.sample_rate

    def moved(sample: int) -> float:
        return min(max(sample - lead, 0), total) / rate

    return Assembled(finished, [(moved(start), moved(end)) for start, end in spans])
