"""Manuscripts in: pasted text, ``.txt``, Markdown and EPUB become chapters of paragraphs.

Every format is first read into one flat list of *parts*, headings (level 1-6) and
paragraphs in reading order; :func:`_chapters` then cuts that list into chapters the same
way for all of them, so a ``# Title`` leads a pasted text exactly as it leads a ``.md``.

- Text: paragraphs are separated by blank lines; chapters start at Markdown-style ``#``
  headings or, in a text without them, at lines such as ``Chapter 1`` / ``CHAPTER ONE``.
- Markdown: parsed by markdown-it-py (CommonMark); inline markup is dropped, code and
  raw HTML keep their words.
- EPUB: read by ebooklib (:mod:`core.projects.epub`): the table of contents becomes the
  chapters.

A paragraph is kept whole however long it is (rendering cuts it into chunks). Dialogue
written ``Name: line`` on consecutive lines becomes one paragraph per line, so each can be
read by the voice the project's casting gives that name (:func:`dialogue_speaker`).
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from core import text as textlib
from core.errors import InvalidInput
from core.projects.model import Manuscript, ManuscriptChapter
from core.takes.script_grammar import split_speaker

__all__ = [
    "MAX_CHARS",
    "MAX_FILE_BYTES",
    "SUFFIXES",
    "ManuscriptError",
    "ManuscriptFormat",
    "dialogue_speaker",
    "paragraphs",
    "read_manuscript",
]

# About 90 hours of narration at ~15 characters a second: any one book, not a library.
MAX_CHARS = 5_000_000
# An EPUB's images count too; a novel with a cover is a few MB.
MAX_FILE_BYTES = 100 * 1024 * 1024
PASTED = "The pasted text"


class ManuscriptError(InvalidInput):
    """A manuscript that cannot be imported: DRM, broken, empty, too large or not a manuscript."""


class ManuscriptFormat(str, Enum):
    TEXT = "text"
    MARKDOWN = "markdown"
    EPUB = "epub"

    def __str__(self) -> str:
        return self.value


SUFFIXES: dict[str, ManuscriptFormat] = {
    ".txt": ManuscriptFormat.TEXT,
    ".text": ManuscriptFormat.TEXT,
    ".md": ManuscriptFormat.MARKDOWN,
    ".markdown": ManuscriptFormat.MARKDOWN,
    ".epub": ManuscriptFormat.EPUB,
}
SUPPORTED = ".txt, .md (or .markdown) and .epub files, or pasted text"

# A part of a manuscript in reading order: (level, text); level 0 is a paragraph, 1-6 a heading.
Part = tuple[int, str]


# --------------------------------------------------------------------------- the entry point


def read_manuscript(
    source: Path | str | bytes, *, name: str = "", fmt: ManuscriptFormat | str | None = None
) -> Manuscript:
    """A manuscript's title, author, chapters (and an EPUB's cover).

    ``source``: a ``Path`` (its suffix names the format), a file's ``bytes`` (``name``'s suffix
    does), or a ``str``: the path of an existing file, otherwise pasted text. ``fmt`` overrides
    the suffix. Raises :class:`ManuscriptError` with a sentence for the user.
    """
    data, label, suffix = _load(source, name)
    if not data.strip():
        raise ManuscriptError(f"{label} is empty: there is nothing to read aloud.")
    kind = _format(fmt, suffix, label, data)
    if kind is ManuscriptFormat.EPUB:
        if isinstance(data, str):
            raise ManuscriptError("An EPUB is a file: import the .epub file itself rather than pasting its text.")
        # Imported here: core.projects.epub builds on this module (its errors and paragraphs).
        from core.projects.epub import read_epub

        manuscript = read_epub(data, label)
    else:
        text = data if isinstance(data, str) else _decode(data, label)
        if len(text) > MAX_CHARS:
            raise ManuscriptError(_too_long(label, len(text)))
        meta, body = _front_matter(text)
        parts = _markdown_parts(body) if kind is ManuscriptFormat.MARKDOWN else _text_parts(body)
        # "Chapter 1" lines in plain text never name the book; a leading "# Title" may.
        lead_title = kind is ManuscriptFormat.MARKDOWN or _has_atx(body)
        title, chapters = _chapters(parts, lead_title=lead_title)
        manuscript = Manuscript(
            title=meta.get("title") or title, author=meta.get("author", ""), chapters=tuple(chapters)
        )
    _check(manuscript, label)
    return manuscript


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


# --------------------------------------------------------------------------- sources


def _load(source: Path | str | bytes, name: str) -> tuple[str | bytes, str, str]:
    """(content, label for messages, suffix)"""
    if isinstance(source, str) and _is_file(source):
        source = Path(source)
    if isinstance(source, Path):
        if not source.is_file():
            raise ManuscriptError(f"There is no manuscript file at {source}.")
        label = name or source.name
        size = source.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ManuscriptError(_too_big(label, size))
        return source.read_bytes(), label, Path(name or source.name).suffix.lower()
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "The uploaded file"
        if len(data) > MAX_FILE_BYTES:
            raise ManuscriptError(_too_big(label, len(data)))
        return data, label, Path(name).suffix.lower() if name else ""
    if isinstance(source, str):
        return source, PASTED, ""
    raise ManuscriptError(f"A manuscript is a file or text, not {type(source).__name__}.")


def _is_file(text: str) -> bool:
    """Whether a string names an existing file (pasted text almost never does)."""
    if not text or "\n" in text or len(text) > 1024:
        return False
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):  # a name too long for the system, a NUL byte
        return False


def _format(fmt: ManuscriptFormat | str | None, suffix: str, label: str, data: str | bytes) -> ManuscriptFormat:
    if fmt:
        try:
            return ManuscriptFormat(str(fmt).strip().lower())
        except ValueError:
            known = ", ".join(f.value for f in ManuscriptFormat)
            raise ManuscriptError(f"'{fmt}' is not a manuscript format; use one of: {known}.") from None
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix:
        raise ManuscriptError(f"{label} is not a manuscript the studio can read: it reads {SUPPORTED}.")
    # No suffix to go by: an EPUB is a zip archive, anything else is read as text.
    if isinstance(data, bytes) and data.startswith(b"PK\x03\x04"):
        return ManuscriptFormat.EPUB
    return ManuscriptFormat.TEXT


def _decode(data: bytes, label: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" in data[:8192]:
        raise ManuscriptError(f"{label} looks like a binary file, not text; the studio reads {SUPPORTED}.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ManuscriptError(
            f"{label} is not UTF-8 text (byte {error.start:,} cannot be read); save it as UTF-8 and import it again."
        ) from None


def _check(manuscript: Manuscript, label: str) -> None:
    if not manuscript.chapters:
        raise ManuscriptError(f"{label} has nothing to read aloud: it holds only headings, images or blank lines.")
    total = sum(len(p) for c in manuscript.chapters for p in c.paragraphs)
    if total > MAX_CHARS:
        raise ManuscriptError(_too_long(label, total))


def _too_long(label: str, chars: int) -> str:
    return (
        f"{label} has {chars:,} characters; a manuscript can have at most {MAX_CHARS:,} "
        "(about 90 hours of speech). Split it into several projects."
    )


def _too_big(label: str, size: int) -> str:
    return f"{label} is {size / 1e6:,.1f} MB; a manuscript file can be at most {MAX_FILE_BYTES / 1e6:,.0f} MB."


# --------------------------------------------------------------------------- paragraphs


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


_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_NUMBER_WORD = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred"
)
# "Chapter 1", "CHAPTER ONE", "Chapter Twenty-One: The Storm", "Chapter IV.", "Prologue".
_CHAPTER_LINE = re.compile(
    rf"^(?:(?:chapter|chap\.)\s+(?:\d+|[ivxlcdm]+|(?:{_NUMBER_WORD})(?:[\s-](?:{_NUMBER_WORD}))*)|prologue|epilogue)"
    r"(?:\s*[.:\-–—]\s*(?:\S.*)?)?$",
    re.IGNORECASE,
)
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:[ \t]*(.*)$")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """YAML-style front matter's simple ``key: value`` lines, and the text after it. Front
    matter that is not that simple is left alone (it is read as text)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key = _FRONT_KEY.match(line)
        if not key:
            if line[:1] in (" ", "\t", "-"):  # a nested value or a list item: not ours to read
                continue
            return {}, text
        value = key.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        meta[key.group(1).lower()] = " ".join(value.split())
    return {k: v for k, v in meta.items() if k in ("title", "author") and v}, text[match.end() :]


def _text_parts(text: str) -> list[Part]:
    """Plain text: Markdown-style ``#`` headings when it has any, else ``Chapter 1`` lines."""
    blocks = _BLANK_LINE.split(text)
    atx = _has_atx(text)
    parts: list[Part] = []
    for block in blocks:
        pending: list[str] = []
        for line in block.split("\n"):
            heading = _heading_line(line, atx)
            if heading is None:
                pending.append(line)
                continue
            parts.extend((0, p) for p in paragraphs("\n".join(pending)))
            pending = []
            parts.append(heading)
        parts.extend((0, p) for p in paragraphs("\n".join(pending)))
    return parts


def _has_atx(text: str) -> bool:
    return any((match := _ATX.match(line)) and match.group(2).strip() for line in text.split("\n"))


def _heading_line(line: str, atx: bool) -> Part | None:
    if atx:
        match = _ATX.match(line)
        return (len(match.group(1)), match.group(2)) if match and match.group(2).strip() else None
    stripped = " ".join(line.split())
    if len(stripped) <= 100 and _CHAPTER_LINE.match(stripped):
        return 1, stripped
    return None


# --------------------------------------------------------------------------- Markdown


def _markdown_parts(text: str) -> list[Part]:
    """Markdown through markdown-it-py: headings, and paragraphs (list items, quotes and table
    rows included) as plain text; code blocks and raw HTML keep their words."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    parts: list[Part] = []
    level = 0  # inside a heading: its level
    row: list[str] | None = None  # inside a table row: its cells
    for token in md.parse(text):
        if token.type == "heading_open":
            level = int(token.tag[1:])
        elif token.type == "heading_close":
            level = 0
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            parts.extend((0, p) for p in paragraphs(", ".join(cell for cell in row if cell)))
            row = None
        elif token.type == "inline":
            words = _inline_text(token)
            if level:
                if words.strip():
                    parts.append((level, " ".join(words.split())))
            elif row is not None:
                row.append(" ".join(words.split()))
            else:
                parts.extend((0, p) for p in paragraphs(words))
        elif token.type in ("fence", "code_block"):
            parts.extend((0, p) for block in _BLANK_LINE.split(token.content) for p in paragraphs(block))
        elif token.type == "html_block":
            parts.extend((0, p) for p in paragraphs(_html_text(token.content)))
    return parts


def _inline_text(token: Token) -> str:
    """An inline token's words: emphasis, links and code marks dropped, images and inline HTML
    left out, line breaks kept (dialogue lines split on them)."""
    out: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append("\n")
    return "".join(out)


def _html_text(html: str) -> str:
    """The words of a raw HTML block in a Markdown file (comments and scripts have none)."""
    import lxml.html  # ebooklib's own dependency

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # lxml's errors for what is not HTML at all: keep nothing rather than markup
        return ""
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    return str(root.text_content())


# --------------------------------------------------------------------------- chapters


def _chapters(parts: list[Part], *, lead_title: bool = True) -> tuple[str, list[ManuscriptChapter]]:
    """(the book's title, its chapters) from headings and paragraphs in reading order.

    The top heading level used starts chapters; a lone leading top heading with deeper headings
    after it is the book's title instead, and the next level starts chapters. Deeper headings are
    read as paragraphs. Text before the first chapter heading is a chapter of its own.
    """
    headings = [(i, level) for i, (level, _) in enumerate(parts) if level]
    title = ""
    if not headings:
        chapter_level = 0
    else:
        top = min(level for _, level in headings)
        tops = [i for i, level in headings if level == top]
        deeper = [level for _, level in headings if level > top]
        first_is_lead = tops == [headings[0][0]] and not any(level == 0 for level, _ in parts[: tops[0]])
        if lead_title and len(tops) == 1 and first_is_lead:
            title = parts[tops[0]][1]
        chapter_level = min(deeper) if (title and deeper) else top
    chapters: list[tuple[str, list[str]]] = []
    for level, words in parts:
        if level and level < chapter_level:
            continue  # the book's title
        if level and level == chapter_level:
            chapters.append((words, []))
            continue
        if not chapters:
            chapters.append((title or ("Opening" if chapter_level else "Chapter 1"), []))
        chapters[-1][1].append(words)
    return title, [ManuscriptChapter(t, tuple(ps)) for t, ps in chapters if ps]
