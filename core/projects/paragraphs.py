"""Paragraphs and dialogue lines: what every manuscript format shares (manuscript.py reads
the formats, epub.py the EPUB one; both cut their text into paragraphs here)."""

from __future__ import annotations

from core import text as textlib
from core.errors import InvalidInput
from core.takes.script_grammar import split_speaker


class ManuscriptError(InvalidInput):
    """A manuscript that cannot be imported: DRM, broken, empty, too large or not a manuscript."""


def dialogue_speaker(paragraph: str) -> tuple[str, str] | None:
    """``("Maya", "line")`` for ``"Maya: line"``, else None.

    The Script tab's name rule (:func:`core.takes.script_grammar.split_speaker`), plus two
    guards for prose, where colons are common: each word of the name starts with a capital
    (or is in a script without case, or a particle such as "de"), so "The rule was clear:
    nobody leaves." stays narration; and "At 10:30" is a time, not a speaker.
    """
    split = split_speaker(paragraph.strip())
    if split is None or not split[1]:
        return None
    name, rest = split
    if name[-1].isdigit() and rest[0].isdigit():
        return None
    for word in name.split():
        first = word.lstrip("'’(.-·")[:1]
        if first and first.islower() and word.lower() not in _NAME_PARTICLES:
            return None
    return name, rest


_NAME_PARTICLES = frozenset("de da di du del della der den van von la le of the bin ibn al el y".split())


def paragraphs(raw: str) -> list[str]:
    """The paragraphs in one blank-line-separated block of text: its lines joined, except that
    ``Name: line`` dialogue on consecutive lines gives one paragraph per line (a line without a
    name continues the one before, as in the Script tab). Whitespace is normalised."""
    lines = [line.strip() for line in textlib.normalize_text(raw).split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return []
    spoken = [dialogue_speaker(line) is not None for line in lines]
    # One speaker line in wrapped prose is likely a colon mid-sentence; a block that opens with
    # one, or has two, is dialogue.
    if not (spoken[0] or sum(spoken) >= 2):
        return [" ".join(lines)]
    out: list[list[str]] = []
    for line, is_line in zip(lines, spoken):
        if is_line or not out:
            out.append([line])
        else:
            out[-1].append(line)
    return [" ".join(group) for group in out]
