"""Text going to the model: clean it, check it, cut it into speakable chunks.

Qwen3-TTS speaks ten languages, so nothing here may assume Latin script:
CJK text has no spaces, Arabic and Hebrew run right to left, and emoji are
built from several code points joined by U+200D.
"""

from __future__ import annotations

import math
import re
import unicodedata

from core.errors import InvalidInput
from core.types import FRAMES_PER_SECOND

__all__ = [
    "normalize_text",
    "validate_text",
    "split_sentences",
    "chunk_text",
    "estimate_max_new_tokens",
    "speech_seconds",
]

# --------------------------------------------------------------------------- normalising

# Invisible characters that carry nothing a voice can say. Kept on purpose:
# U+200C/U+200D (ZWNJ/ZWJ), which change how Persian and Indic words are
# spelled and glue emoji sequences together.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u00ad"  # soft hyphen
        "\u200b"  # zero-width space
        "\u2060"  # word joiner
        "\ufeff"  # byte-order mark / zero-width no-break space
        "\u200e\u200f\u061c"  # bidi marks: display-only, reading order is already logical
        "\u202a\u202b\u202c\u202d\u202e"  # bidi embeddings and overrides
        "\u2066\u2067\u2068\u2069",  # bidi isolates
    )
)
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
_BREAK_RUN = re.compile(r" ?\n[\n ]*")


def normalize_text(text: str) -> str:
    """Tidy ``text`` for speech without changing what it says.

    NFC composition; every kind of line break becomes ``\\n``; control and
    invisible formatting characters go; each run of spaces/tabs becomes one
    space and each run of blank lines one ``\\n``, so line and paragraph
    structure survive (lists and dialogue need it) while layout padding does
    not. Quotes, CJK, emoji and right-to-left text are left alone.
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = text.translate(_INVISIBLE)
    # Cc: control codes; Cs: lone surrogates from badly decoded input, which
    # would fail later when the text is encoded.
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))
    # Compose last: removing an invisible character can bring a letter and its
    # accent together.
    text = unicodedata.normalize("NFC", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = _BREAK_RUN.sub("\n", text)
    return text.strip()


def validate_text(text: str | None, *, max_chars: int) -> str:
    """Normalise ``text`` and refuse what cannot be spoken; returns the normalised text."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InvalidInput(f"Text must be a string, not {type(text).__name__}.")
    cleaned = normalize_text(text)
    if not cleaned:
        raise InvalidInput("Enter some text to speak.")
    if len(cleaned) > max_chars:
        raise InvalidInput(
            f"The text is {len(cleaned):,} characters; the limit is {max_chars:,}. Split it or raise --max-text-chars."
        )
    return cleaned


# --------------------------------------------------------------------------- sentences

# Ends a sentence only before whitespace (so "3.14", "example.com" and "?q=1"
# stay whole). Includes the Arabic question mark, Urdu full stop and Devanagari
# dandas, whose scripts put spaces between sentences.
_SPACED_TERMINATORS = ".!?…؟۔।॥"
# CJK sentence punctuation ends a sentence wherever it stands: CJK has no spaces.
_CJK_TERMINATORS = "。！？；．｡"
# Closing quotes/brackets belong to the sentence they end: 他说：“好。”
_CLOSERS = "\"'”’»)]}」』】）〉》〕"

# Words after which a period does not end the sentence because a name follows
# ("Mr. Smith", "Dr. Who", "e.g. Paris"). Lower-case, without the final period.
_NAME_ABBREVIATIONS = frozenset(
    """mr mrs ms mx dr prof sr jr st mt rev hon gen col capt lt sgt gov sen rep
    vs cf viz e.g i.e""".split()
)
# Words after which a period does not end the sentence when a number follows
# ("No. 5", "p. 12", "Fig. 3"), but may when a word does ("I said no. Then").
_NUMBER_ABBREVIATIONS = frozenset("no nos vol vols p pp fig figs ch sec art ref approx ca nr eq".split())
_WORD_BEFORE = re.compile(r"([\w.]+)$")
# "u.s", "a.m", "e.g", "ph.d": short letter groups joined by periods (not "3.14").
_DOTTED_ACRONYM = re.compile(r"[^\W\d_]{1,3}(?:\.[^\W\d_]{1,3})+")


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions B and later
    )


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence; whitespace between them is left out."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        line_start, line_end = line.span()
        start = line_start
        i = line_start
        while i < line_end:
            ch = text[i]
            if ch not in _SPACED_TERMINATORS and ch not in _CJK_TERMINATORS:
                i += 1
                continue
            j = i
            while j < line_end and (text[j] in _SPACED_TERMINATORS or text[j] in _CJK_TERMINATORS):
                j += 1
            run = text[i:j]
            while j < line_end and text[j] in _CLOSERS:
                j += 1
            cjk_context = any(c in _CJK_TERMINATORS for c in run) or (i > 0 and _is_cjk(text[i - 1]))
            at_space = j == line_end or text[j].isspace()
            if (
                cjk_context
                and not (run == "." and not at_space)
                or (at_space and not _continues(text, start, i, j, line_end, run))
            ):
                spans.append((start, j))
                start = j
            i = j
        spans.append((start, line_end))
    return [(s, e) for s, e in (_strip_span(text, s, e) for s, e in spans) if e > s]


def _continues(text: str, start: int, i: int, j: int, line_end: int, run: str) -> bool:
    """True when the terminator at ``text[i:j]`` does not end the sentence."""
    k = j
    while k < line_end and text[k].isspace():
        k += 1
    following = text[k] if k < line_end else ""
    # Sentences start with a capital in cased scripts; a lower-case word
    # after "e.g." or "…" or a quoted "?" continues the same sentence.
    if following.islower():
        return True
    if run != ".":
        return False
    match = _WORD_BEFORE.search(text, start, i)
    word = match.group(1).lower().lstrip(".") if match else ""
    if not word:
        return False
    if word in _NAME_ABBREVIATIONS:
        return True
    if word in _NUMBER_ABBREVIATIONS and following.isdigit():
        return True
    if len(word) == 1 and word.isalpha():  # an initial: "J. R. R. Tolkien"
        return True
    if _DOTTED_ACRONYM.fullmatch(word):  # "U.S.", "a.m.", "Ph.D."
        return True
    # A list number at the start of a line: "1. Preheat the oven."
    return match is not None and word.isdigit() and not text[start : match.start()].strip()


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_sentences(text: str) -> list[str]:
    """Split into sentences; each line break is also a sentence break.

    English-aware (abbreviations such as "Mr." and "e.g.", initials, decimals
    and list numbers do not split), and CJK-aware (。！？； split with no space
    after them). When unsure it does not split: the chunker copes with a long
    sentence, while a wrong split adds a pause mid-sentence.
    """
    return [text[s:e] for s, e in _sentence_spans(text)]


# --------------------------------------------------------------------------- chunking

# Where to cut a sentence that is too long, best first. Latin clause marks
# only count before a space, so "1,000" and "12:30" stay whole.
_CLAUSE_CUT = re.compile(r"[,;:](?=\s)|[、，；：]")
_SPACE_CUT = re.compile(r"\s+")


def chunk_text(text: str, max_chars: int = 300) -> list[str]:
    """Cut ``text`` into chunks of at most ``max_chars`` characters for synthesis.

    Whole sentences are packed greedily. A sentence longer than ``max_chars``
    is cut after clause punctuation, then at spaces, and a run with neither
    (5,000 Chinese characters, a long URL) is cut every ``max_chars``
    characters, never inside a combining sequence. Every chunk is an exact,
    stripped slice of ``text``, so concatenating them loses nothing but
    whitespace between chunks. Expects normalised text (see :func:`validate_text`).
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[tuple[int, int]] = []
    for start, end in _sentence_spans(text):
        pieces.extend(_fit(text, start, end, max_chars, level=0))
    return [text[s:e] for s, e in _pack(text, pieces, max_chars)]


def _fit(text: str, start: int, end: int, max_chars: int, level: int) -> list[tuple[int, int]]:
    """Spans covering ``text[start:end]``, each at most ``max_chars`` once stripped."""
    start, end = _strip_span(text, start, end)
    if end - start <= max_chars:
        return [(start, end)] if end > start else []
    cutters = (_CLAUSE_CUT, _SPACE_CUT)
    if level < len(cutters):
        cuts = [m.end() for m in cutters[level].finditer(text, start, end)]
        bounds = [start, *(c for c in cuts if start < c < end), end]
        if len(bounds) > 2:
            spans: list[tuple[int, int]] = []
            for a, b in zip(bounds, bounds[1:]):
                spans.extend(_fit(text, a, b, max_chars, level + 1))
            return _pack(text, spans, max_chars)
        return _fit(text, start, end, max_chars, level + 1)
    spans = []
    while end - start > max_chars:
        cut = _safe_cut(text, start, start + max_chars)
        spans.append((start, cut))
        start = cut
    spans.append((start, end))
    return spans


def _safe_cut(text: str, start: int, cut: int) -> int:
    """Move a hard cut back so it does not split a character from its accents,
    variation selectors or a ZWJ emoji sequence."""
    position = cut
    while position > start + 1 and (
        unicodedata.combining(text[position])
        or unicodedata.category(text[position]) in ("Mn", "Me")
        or text[position] in "\u200c\u200d"
        or text[position - 1] in "\u200c\u200d"
        or 0xFE00 <= ord(text[position]) <= 0xFE0F
        or 0x1F3FB <= ord(text[position]) <= 0x1F3FF  # skin-tone modifiers
    ):
        position -= 1
    return position if position > start + 1 else cut


def _pack(text: str, spans: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Merge neighbouring spans while the merged, stripped slice fits."""
    packed: list[tuple[int, int]] = []
    for start, end in spans:
        if packed and end - packed[-1][0] <= max_chars:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


# --------------------------------------------------------------------------- generation cap

# The cap on codec frames for one chunk. It exists so that a generation that
# never emits its stop token ends after seconds, not minutes; it must never cut
# off real speech, so every rate below is for slow, deliberate reading.
SLOW_SPACED_CHARS_PER_SECOND = 8.0
"""Latin/Cyrillic/Arabic... characters, spaces included. Ordinary English is
about 14 chars/s (150 words/min); 8 is slower than an audiobook read slowly."""
SLOW_DENSE_CHARS_PER_SECOND = 3.0
"""Han, kana, hangul, digits and symbols. Mandarin runs 4-5 syllables/s; a
digit or a symbol ("%", "€", emoji) is often a whole spoken word or more."""
LEAD_SECONDS = 1.0
"""Silence the model may put before and after the speech."""
HEADROOM = 1.5
"""Multiplier on the estimate for pauses, emphasis and styles like "slowly"."""


def estimate_max_new_tokens(
    text: str,
    *,
    frames_per_second: float = FRAMES_PER_SECOND,
    floor: int = 48,
    ceiling: int = 2048,
) -> int:
    """A generous upper bound on codec frames (``max_new_tokens``) to speak ``text``.

    ``seconds = HEADROOM * (LEAD_SECONDS + spaced / 8 + dense / 3)``, converted
    to frames at ``frames_per_second`` (Qwen3-TTS's 12 Hz tokenizer emits 12.5
    frames/s) and clamped to ``[floor, ceiling]``. The default ceiling, 2048
    frames, is about 164 s: enough for a 300-character CJK chunk read slowly.
    The count only ever grows as text is added.
    """
    if frames_per_second <= 0:
        raise ValueError("frames_per_second must be positive")
    if not 1 <= floor <= ceiling:
        raise ValueError("need 1 <= floor <= ceiling")
    spaced = dense = 0
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf") and not ch.isspace():
            continue  # invisible: ZWJ, bidi marks
        if _is_cjk(ch) or category in ("Nd", "So", "Sc", "Sm"):
            dense += 1
        else:
            spaced += 1
    seconds = HEADROOM * (LEAD_SECONDS + spaced / SLOW_SPACED_CHARS_PER_SECOND + dense / SLOW_DENSE_CHARS_PER_SECOND)
    frames = math.ceil(seconds * frames_per_second)
    return max(floor, min(ceiling, frames))


# --------------------------------------------------------------------------- speaking time

# Speaking rates for the estimate of how long a text takes to say (the plan shown before a
# take is made, the take QA's expected length; not the frame caps above, which are generous
# upper bounds): about 150 words a minute in spaced scripts (~15 characters a second,
# spaces and punctuation included) and 5 characters a second in Chinese, Japanese and Korean.
SPACED_CHARS_PER_SECOND = 15.0
DENSE_CHARS_PER_SECOND = 5.0


def speech_seconds(text: str) -> float:
    """About how many seconds ``text`` takes to say at an ordinary reading pace."""
    dense = sum(1 for ch in text if _is_cjk(ch))
    return (len(text) - dense) / SPACED_CHARS_PER_SECOND + dense / DENSE_CHARS_PER_SECOND
