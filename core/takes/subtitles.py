"""Subtitles for a take: SubRip (.srt) and WebVTT (.vtt), timed from its parts.

A take's parts (core/storage/take_parts.py) say where each chunk or script
line sits in the finished audio, after the pauses between them and any
silence trim, so each part's words are shown while that part plays.

How cues are cut and timed:

- A part whose text is longer than :data:`MAX_CUE_CHARS` (two lines of 42
  characters, the usual broadcast limit) is split into readable cues with the
  studio's own sentence-aware cutter (``core.text.chunk_text``: whole sentences
  first, then after commas and other clause marks, then at spaces; it knows CJK
  punctuation too). The part's time is shared among its cues in proportion to
  their characters: the model does not report word timings, and characters are
  a fair stand-in for speaking time within one part.
- Each cue's text is wrapped onto at most two lines of about 42 characters.
- Script lines carry their speaker: ``Anna: text`` in SRT, a WebVTT voice span
  ``<v Anna>text`` in VTT.
- A part that lies wholly in trimmed silence (no time left) gets no cue. Times
  are whole milliseconds, never decrease, and never pass the take's end.
- A take saved before parts were kept gets its text spread over the whole take
  the same way, as one part.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from core import text as textlib
from core.errors import InvalidInput
from core.storage.durable import write_file
from core.storage.history import Take

__all__ = [
    "MAX_CUE_CHARS",
    "Cue",
    "Span",
    "SubtitleFormat",
    "cues_for",
    "cues_from_spans",
    "format_cues",
    "subtitle_text",
    "take_file_stem",
    "write_subtitles",
]

MAX_CUE_CHARS = 84
LINE_CHARS = 42


class SubtitleFormat(str, Enum):
    SRT = "srt"
    VTT = "vtt"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_user(cls, word: object) -> SubtitleFormat:
        if isinstance(word, cls):
            return word
        key = str(word or "").strip().lower().lstrip(".")
        if key in ("webvtt", "vtt"):
            return cls.VTT
        if key in ("srt", "subrip"):
            return cls.SRT
        raise InvalidInput(f"Unknown subtitle format '{word}'; choose srt or vtt (WebVTT).")


@dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Span:
    """A stretch of audio and the text said in it, before it is cut into cues
    (a take's part here; a block of a chapter in core/projects/export.py)."""

    start_s: float
    end_s: float
    text: str
    speaker: str | None


def cues_for(take: Take) -> list[Cue]:
    """The take's subtitle cues, in order."""
    if take.parts:
        spans = [Span(p.start_s, p.end_s, p.text, p.speaker) for p in take.parts]
    else:
        spans = [Span(0.0, take.duration_s, take.text, None)]
    return cues_from_spans(spans, take.duration_s)


def cues_from_spans(spans: Sequence[Span], duration_s: float) -> list[Cue]:
    """Cues for timed spans of text, cut and timed as the module's docstring says."""
    cues: list[Cue] = []
    floor = 0
    end_ms = int(duration_s * 1000)
    for span in spans:
        text = " ".join(span.text.split())
        start, end = _ms(span.start_s), min(_ms(span.end_s), end_ms)
        start = max(start, floor)
        if not text or end <= start:
            continue
        pieces = textlib.chunk_text(text, max_chars=MAX_CUE_CHARS) or [text]
        weights = [max(len(p), 1) for p in pieces]
        total = sum(weights)
        cursor, done = start, 0
        for piece, weight in zip(pieces, weights, strict=True):
            done += weight
            stop = start + round((end - start) * done / total)
            if stop > cursor:
                cues.append(Cue(cursor / 1000, stop / 1000, piece, span.speaker))
                cursor = stop
        floor = cursor
    return cues


def subtitle_text(take: Take, fmt: SubtitleFormat | str) -> str:
    """The take's subtitles in ``fmt`` (srt or vtt), as text."""
    return format_cues(cues_for(take), fmt)


def format_cues(cues: Sequence[Cue], fmt: SubtitleFormat | str) -> str:
    """Cues as SRT or WebVTT text: numbered (SRT), whole-millisecond stamps, each cue's
    text wrapped onto at most two lines; speakers as ``Name:`` (SRT) or ``<v Name>`` (VTT)."""
    fmt = SubtitleFormat.from_user(fmt)
    if fmt == SubtitleFormat.SRT:
        blocks = [
            f"{n}\n{_stamp(c.start_s, ',')} --> {_stamp(c.end_s, ',')}\n{_srt_text(c)}"
            for n, c in enumerate(cues, start=1)
        ]
        return "\n\n".join(blocks) + "\n" if blocks else ""
    blocks = [f"{_stamp(c.start_s, '.')} --> {_stamp(c.end_s, '.')}\n{_vtt_text(c)}" for c in cues]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + ("\n" if blocks else "")


def take_file_stem(take: Take, words: int = 5) -> str:
    """A file name people can read, for a take's downloads: who speaks and its first words, then
    the take's id so two takes never share a name ("vivian-hello-there-how-are-you-<id>")."""
    voice = take.voice or {}
    who = voice.get("voice") or voice.get("speaker") or ("design" if voice.get("kind") == "design" else take.mode)
    start = " ".join(take.text.split()[:words])
    slug = "-".join(re.findall(r"\w+", f"{who} {start}".lower()))[:60].strip("-_") or "take"
    return f"{slug}-{take.id}"


def write_subtitles(take: Take, folder: Path | str, fmt: SubtitleFormat | str, *, readable: bool = False) -> Path:
    """Writes ``<take id>.<srt|vtt>`` into ``folder`` (atomically) and returns its path;
    ``readable``: named as the take's audio download is, ``<voice>-<first words>-<take id>``
    (:func:`take_file_stem`)."""
    fmt = SubtitleFormat.from_user(fmt)
    stem = take_file_stem(take) if readable else take.id
    target = Path(folder) / f"{stem}.{fmt.value}"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_file(target, subtitle_text(take, fmt).encode("utf-8"))
    return target


# --- internals ---------------------------------------------------------------


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))


def _stamp(seconds: float, mark: str) -> str:
    ms = int(round(seconds * 1000))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{mark}{millis:03d}"


def _wrapped(text: str) -> str:
    # CJK has no spaces: textwrap then cuts at the width, which is fine for a line break.
    lines = textwrap.wrap(text, width=LINE_CHARS, break_long_words=True, break_on_hyphens=False)
    if len(lines) > 2:  # a cue is at most MAX_CUE_CHARS; balance it onto two lines
        half = (len(text) + 1) // 2
        cut = text.rfind(" ", 0, half + 10)
        cut = cut if cut > 0 else half
        lines = [text[:cut].strip(), text[cut:].strip()]
    return "\n".join(line for line in lines if line)


def _srt_text(cue: Cue) -> str:
    body = _wrapped(f"{cue.speaker}: {cue.text}" if cue.speaker else cue.text)
    return body.replace("-->", "->")


def _vtt_text(cue: Cue) -> str:
    body = _wrapped(cue.text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if cue.speaker:
        name = cue.speaker.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<v {name}>{body}"
    return body
