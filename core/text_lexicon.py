r"""The pronunciation lexicon: the creator's own "say it like this" replacements.

An entry maps a word (matched whole and case-insensitively) or a regular
expression to the spoken form the model should read instead, e.g. "Qwen" →
"Chwen", optionally only for one language. A regular expression's spoken form
may use its groups (``\1``, ``\g<name>``): "Ep\.? ?(\d+)" → "episode \1". The lexicon is applied once, in
``SynthesisService._prepare`` (before chunking), so every mode, tab, API
route and the CLI speak the same way.

Reproducibility: every saved lexicon is also kept, immutably, under its
version (a hash of its entries) in ``<data>/lexicon/versions/``. A take's
recipe records the version it was spoken with, and "Regenerate" applies that
same version, even after the lexicon was edited, so it sounds the same.
Writes go through ``write_atomic`` so a crash leaves the old or the new
lexicon, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.storage.durable import write_atomic
from core.types import normalize_language

__all__ = ["Lexicon", "LexiconEntry", "LexiconStore", "EMPTY_VERSION"]

MAX_ENTRIES = 500
MAX_PATTERN_CHARS = 200
MAX_SPOKEN_CHARS = 500
FORMAT = "qwen-tts-studio-lexicon/1"


@dataclass(frozen=True)
class LexiconEntry:
    pattern: str  # a word or phrase (whole-word, any case) or, with regex, a Python regular expression
    spoken: str  # what the model reads instead
    regex: bool = False
    language: str = "auto"  # "auto" applies in every language

    def compiled(self) -> re.Pattern[str]:
        if self.regex:
            return re.compile(self.pattern)
        # (?<!\w) / (?!\w) rather than \b so a pattern may start or end with punctuation.
        return re.compile(r"(?<!\w)" + re.escape(self.pattern) + r"(?!\w)", re.IGNORECASE)

    @classmethod
    def from_value(cls, value: Any, number: int) -> LexiconEntry:
        """A validated entry from a dict (API, UI table, stored file); errors name the entry."""
        where = f"Lexicon entry {number}"
        if isinstance(value, LexiconEntry):
            value = asdict(value)
        if not isinstance(value, dict):
            raise InvalidInput(f"{where} must be an object with 'pattern' and 'spoken'.")
        pattern = str(value.get("pattern") or "").strip()
        spoken = str(value.get("spoken") or "").strip()
        regex = bool(value.get("regex", False))
        if not pattern:
            raise InvalidInput(f"{where} has no word or pattern to replace.")
        if not spoken:
            raise InvalidInput(f"{where} ('{pattern}') has no spoken form; write how it should be said.")
        if len(pattern) > MAX_PATTERN_CHARS or len(spoken) > MAX_SPOKEN_CHARS:
            raise InvalidInput(
                f"{where} is too long (at most {MAX_PATTERN_CHARS} characters to match and {MAX_SPOKEN_CHARS} spoken)."
            )
        language = normalize_language(str(value.get("language") or "auto"))
        entry = cls(pattern=pattern, spoken=spoken, regex=regex, language=language)
        try:
            compiled = entry.compiled()
        except re.error as exc:
            raise InvalidInput(f"{where}: '{pattern}' is not a valid regular expression ({exc}).") from None
        if compiled.search("") is not None:
            raise InvalidInput(f"{where}: '{pattern}' matches empty text; make it match at least one character.")
        if regex:
            try:  # \1 or \g<name> must name a group of the pattern
                compiled.sub(spoken, "")
            except (re.error, IndexError) as exc:
                raise InvalidInput(
                    f"{where}: the spoken form '{spoken}' refers to a group the pattern does not have ({exc})."
                ) from None
        return entry

    def replacement(self) -> str | Callable[[re.Match[str]], str]:
        r"""What ``sub`` puts in: a regular expression's template (\1, \g<name> are its groups),
        a word's spoken form as it is (a backslash there is just a character)."""
        return self.spoken if self.regex else _literal(self.spoken)


@dataclass(frozen=True)
class Lexicon:
    entries: tuple[LexiconEntry, ...] = ()

    @property
    def version(self) -> str:
        """A short hash of the entries: equal lexicons share a version."""
        canonical = json.dumps([asdict(e) for e in self.entries], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def apply(self, text: str, language: str = "auto") -> str:
        """``text`` with every entry for ``language`` (or for all languages) replaced, in order."""
        lang = (language or "auto").strip().lower()
        for entry in self.entries:
            if entry.language != "auto" and lang not in ("auto", entry.language):
                continue
            text = entry.compiled().sub(entry.replacement(), text)
        return text

    def as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.entries]

    @classmethod
    def from_values(cls, values: Any) -> Lexicon:
        if not isinstance(values, (list, tuple)):
            raise InvalidInput("The lexicon must be a list of entries (pattern, spoken, regex, language).")
        if len(values) > MAX_ENTRIES:
            raise InvalidInput(f"The lexicon has {len(values)} entries; it holds at most {MAX_ENTRIES}.")
        return cls(tuple(LexiconEntry.from_value(v, i) for i, v in enumerate(values, start=1)))


EMPTY_VERSION = Lexicon().version


def _literal(spoken: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: spoken


class LexiconStore:
    """The lexicon in ``folder``: ``current.json`` plus every saved version."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._cache: dict[str, Lexicon] = {EMPTY_VERSION: Lexicon()}

    @property
    def current_path(self) -> Path:
        return self.folder / "current.json"

    def current(self) -> Lexicon:
        if not self.current_path.is_file():
            return Lexicon()
        return self._read(self.current_path)

    def version(self, version: str | None) -> Lexicon:
        """The lexicon saved as ``version`` (None: the current one)."""
        if version is None:
            return self.current()
        with self._lock:
            cached = self._cache.get(version)
        if cached is not None:
            return cached
        if not re.fullmatch(r"[0-9a-f]{16}", version):
            raise InvalidInput(f"'{version}' is not a lexicon version.")
        path = self.folder / "versions" / f"{version}.json"
        if not path.is_file():
            raise InvalidInput(
                f"This take was spoken with pronunciation lexicon version {version}, which is no longer in "
                f"{self.folder}; it cannot be regenerated exactly."
            )
        lexicon = self._read(path)
        with self._lock:
            self._cache[version] = lexicon
        return lexicon

    def save(self, values: Any) -> Lexicon:
        """Validates and stores ``values`` as the current lexicon (and as its version)."""
        lexicon = Lexicon.from_values(values)
        data = json.dumps(
            {"format": FORMAT, "version": lexicon.version, "entries": lexicon.as_dicts()},
            indent=2,
            ensure_ascii=False,
        ).encode()
        with self._lock:
            (self.folder / "versions").mkdir(parents=True, exist_ok=True)
            # The version first: current.json never names a version that is not on disk.
            write_atomic(self.folder / "versions" / f"{lexicon.version}.json", data)
            write_atomic(self.current_path, data)
            self._cache[lexicon.version] = lexicon
        return lexicon

    def apply(self, text: str, language: str, version: str | None = None) -> tuple[str, str]:
        """(spoken text, the version applied)."""
        lexicon = self.version(version)
        return lexicon.apply(text, language), lexicon.version

    def _read(self, path: Path) -> Lexicon:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Lexicon.from_values(data["entries"])
        except (OSError, ValueError, KeyError, TypeError, InvalidInput) as exc:
            raise InvalidInput(
                f"The pronunciation lexicon {path} cannot be read ({exc}); fix or delete the file."
            ) from None
