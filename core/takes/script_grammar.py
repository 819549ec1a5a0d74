"""The script and casting languages of Script mode: plain text in, checked values out.

A script::

    # Comments start with '#'; blank lines are skipped.
    Narrator: It was a dark night.
    Anna: Who's there?
    Narrator: Nobody answered.
      A line without a name continues the previous speaker's line.

A name is the text before the first colon (``:`` or the full-width ``：``),
trimmed: any script, spaces allowed, at most 40 characters and 4 words, with
at least one letter and none of ``, ; ! ?`` — so prose such as "He said, softly:
go" stays text. A line that starts with a backslash is always text (the
backslash is dropped): ``\\Note: this is not a speaker``. Names match the
casting case-insensitively.

The casting gives each name a voice, one line per name::

    # NAME = VOICE [(STYLE)] [[OPTIONS]]
    Narrator = Ryan (calm, slow)        built-in speaker + style instruction
    Anna     = voice: My Voice          a Voice Library voice (name or id)
    Bob      = speaker: Aiden [0.6B]    explicitly a built-in speaker, 0.6B model
    Eve      = Grandma [English]        a built-in speaker if one is called that,
                                        otherwise a library voice

``(STYLE)`` is a style instruction and only works with built-in speakers
(library voices are cloned as recorded). ``[OPTIONS]`` is a comma-separated
list of a language (``English``, ``language=english``) and/or a model size
(``0.6B``, ``size=1.7B``) for that voice alone; otherwise the script's own
language and size apply. ``:`` may stand for ``=``. The casting may also be a
mapping (or JSON text of one): ``{"Narrator": {"speaker": "Ryan", "instruct":
"calm"}, "Anna": {"voice": "My Voice", "language": "english", "size": "0.6B"}}``;
a string value uses the VOICE grammar above (``{"Narrator": "Ryan (calm)"}``).

Parsing needs no model and no torch: the Script tab drafts and checks a
casting as the user types, and :mod:`core.takes.script_render` turns the
parsed lines and casting into audio.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core import text as textlib
from core.engine.speakers import find_speaker, speakers
from core.errors import InvalidInput
from core.types import LANGUAGES, normalize_language

__all__ = [
    "MAX_LINES",
    "Casting",
    "ScriptLine",
    "VoiceSpec",
    "casting_from",
    "draft_casting",
    "name_gender",
    "name_key",
    "parse_casting",
    "parse_script",
    "parse_voice",
    "preview",
    "script_language",
    "script_text",
    "split_speaker",
    "strip_group",
]

MAX_LINES = 500
MAX_NAME_CHARS = 40
MAX_NAME_WORDS = 4
MAX_INSTRUCT_CHARS = 1000

_COLONS = (":", "：")
_NAME_CHARS = re.compile(r"[\w .'’\-·()]+")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*b", re.IGNORECASE)
_SPEC_KEYS = ("speaker", "voice", "instruct", "language", "size")


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class ScriptLine:
    """One thing one speaker says; ``number`` is the script line it starts on (from 1)."""

    number: int
    speaker: str
    text: str


@dataclass(frozen=True)
class VoiceSpec:
    """Who plays a part: a built-in ``speaker`` (with an optional style ``instruct``)
    or a library ``voice``, optionally with its own ``language`` and model ``size``."""

    speaker: str | None = None
    voice: str | None = None
    instruct: str | None = None
    language: str | None = None
    size: str | None = None
    # True when the casting named neither ``speaker:`` nor ``voice:`` and the
    # name matched no built-in speaker; only changes error wording.
    guessed: bool = field(default=False, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return "speaker" if self.speaker else "voice"

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k in _SPEC_KEYS and v}

    def as_text(self) -> str:
        """This voice in the casting grammar."""
        text = self.speaker if self.speaker else f"voice: {self.voice}"
        if self.instruct:
            text += f" ({self.instruct})"
        options = [o for o in (self.language and self.language.capitalize(), self.size) if o]
        if options:
            text += f" [{', '.join(options)}]"
        return text


@dataclass(frozen=True)
class Casting:
    """Script names → voices. Names match case-insensitively (and ignoring extra spaces)."""

    roles: Mapping[str, VoiceSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name in self.roles:
            key = name_key(name)
            if key in seen:
                raise InvalidInput(f"The casting names '{seen[key]}' twice (also as '{name}'); keep one.")
            seen[key] = name
        object.__setattr__(self, "_by_key", {name_key(n): s for n, s in self.roles.items()})

    def get(self, name: str) -> VoiceSpec | None:
        return self._by_key.get(name_key(name))  # type: ignore[attr-defined]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return len(self.roles)

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {name: spec.as_dict() for name, spec in self.roles.items()}

    def as_text(self) -> str:
        return "\n".join(f"{name} = {spec.as_text()}" for name, spec in self.roles.items())


# --------------------------------------------------------------------------- parsing


def name_key(name: str) -> str:
    """How names are compared: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def script_text(lines: Sequence[ScriptLine]) -> str:
    return "\n".join(f"{line.speaker}: {line.text}" for line in lines)


def _split_name(line: str) -> tuple[str, str] | None:
    """(name, rest) when ``line`` starts with a speaker prefix, else None."""
    cuts = [i for i in (line.find(c) for c in _COLONS) if i >= 0]
    if not cuts:
        return None
    cut = min(cuts)
    name = " ".join(line[:cut].split())
    rest = line[cut + 1 :].strip()
    if (
        not name
        or len(name) > MAX_NAME_CHARS
        or len(name.split()) > MAX_NAME_WORDS
        or not _NAME_CHARS.fullmatch(name)
        or not _HAS_LETTER.search(name)
        or rest.startswith("//")
    ):
        return None
    return name, rest


def split_speaker(line: str) -> tuple[str, str] | None:
    """(name, rest) when ``line`` is a script line with a speaker, by the rule above (a line
    starting with a backslash is always text); Projects reuses it for ``Name: line`` dialogue."""
    return None if line.startswith("\\") else _split_name(line)


def preview(text: str, limit: int = 50) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, for messages and lists."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_script(script: str | None, *, max_lines: int = MAX_LINES, max_chars: int = 50_000) -> list[ScriptLine]:
    """The script's lines; errors name the script line they are about."""
    if script is None:
        script = ""
    if not isinstance(script, str):
        raise InvalidInput(f"The script must be text, not {type(script).__name__}.")
    lines: list[dict[str, Any]] = []
    for number, raw in enumerate(script.splitlines(), start=1):
        line = textlib.normalize_text(raw)
        if not line or line.startswith("#"):
            continue
        split = None if line.startswith("\\") else _split_name(line)
        if split is None:
            body = line[1:].strip() if line.startswith("\\") else line
            if not lines:
                raise InvalidInput(
                    f"Line {number}: '{preview(line)}' has no speaker. Start the script with a name and a "
                    "colon, e.g. 'Narrator: It was a dark night.'"
                )
            if body:
                previous = lines[-1]
                previous["text"] = f"{previous['text']} {body}".strip()
            continue
        name, rest = split
        if not rest:
            raise InvalidInput(f"Line {number}: '{name}:' has no text to speak.")
        lines.append({"number": number, "speaker": name, "text": rest})
        if len(lines) > max_lines:
            raise InvalidInput(
                f"The script has more than {max_lines:,} lines to speak (line {number} is the "
                f"{len(lines):,}th); split it into parts of at most {max_lines:,}."
            )
    if not lines:
        raise InvalidInput("The script is empty. Write one line per speech, e.g. 'Narrator: It was a dark night.'")
    total = sum(len(line["text"]) for line in lines)
    if total > max_chars:
        raise InvalidInput(
            f"The script has {total:,} characters to speak; the limit is {max_chars:,}. "
            "Split it into parts or raise --max-text-chars."
        )
    return [ScriptLine(**line) for line in lines]


def _where(line: int | None, name: str | None = None) -> str:
    if line is not None:
        return f"Casting line {line}"
    return f"Casting for '{name}'"


def _parse_options(text: str, where: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = (key.strip().lower(), value.strip()) if sep else ("", item)
        if key in ("lang", "language") or (not key and value.lower() in LANGUAGES):
            option, value = "language", value.lower()
        elif key == "size" or (not key and _SIZE_RE.fullmatch(value)):
            option = "size"
        else:
            what = f"'{key}'" if key else f"'{value}'"
            raise InvalidInput(
                f"{where}: {what} is not a language ({', '.join(lang.capitalize() for lang in LANGUAGES)}) "
                "or a model size (0.6B, 1.7B); write options like [English, 0.6B]."
            )
        if option in options:
            raise InvalidInput(f"{where}: the {option} is given twice in [{text}].")
        options[option] = value
    return options


def strip_group(text: str, close: str) -> tuple[str, str | None]:
    """Splits a trailing ``(...)`` or ``[...]`` group (nesting allowed) off ``text``."""
    text = text.rstrip()
    if not text.endswith(close):
        return text, None
    opener = "(" if close == ")" else "["
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        if text[i] == close:
            depth += 1
        elif text[i] == opener:
            depth -= 1
            if depth == 0:
                return text[:i].rstrip(), text[i + 1 : -1].strip()
    return text, None


def parse_voice(text: str, where: str) -> VoiceSpec:
    """One VOICE of the casting grammar: ``Ryan (calm) [0.6B]`` / ``voice: My Voice [English]``."""
    rest = " ".join(str(text).split())
    options: dict[str, Any] = {}
    style: str | None = None
    while True:  # the (style) and [options] groups may come in either order
        rest, group = strip_group(rest, "]")
        if group is not None:
            if options:
                raise InvalidInput(f"{where}: give the [options] once.")
            options = _parse_options(group, where)
            if not options:
                raise InvalidInput(f"{where}: the [options] are empty; write e.g. [English, 0.6B] or leave them out.")
            continue
        before, group = strip_group(rest, ")")
        if group is not None and style is None and before:
            # '(…)' is tentatively a style; for library voices it is put back below.
            style, rest = group, before
            continue
        break
    prefix, sep, target = rest.partition(":") if ":" in rest else rest.partition("：")
    kind = prefix.strip().lower() if sep else ""
    if kind in ("voice", "library", "speaker"):
        rest = target.strip()
    else:
        kind = ""
    if kind in ("voice", "library"):
        if style is not None:
            # Library voices take no style; a name may itself end in parentheses.
            rest, style = f"{rest} ({style})", None
        if not rest:
            raise InvalidInput(f"{where}: name the library voice after 'voice:', e.g. 'voice: My Voice'.")
        return VoiceSpec(voice=rest, **options)
    if not rest:
        raise InvalidInput(
            f"{where}: no voice given. Write a built-in speaker ('Ryan') or a library voice ('voice: My Voice')."
        )
    style = style or None
    if kind == "speaker":
        return VoiceSpec(speaker=rest, instruct=style, **options)
    try:
        find_speaker(rest)
    except InvalidInput:
        # Not a built-in speaker: a library voice (whose name may end in parentheses).
        name = f"{rest} ({style})" if style else rest
        return VoiceSpec(voice=name, guessed=True, **options)
    return VoiceSpec(speaker=rest, instruct=style, **options)


def parse_casting(text: str | None) -> Casting:
    """The casting text (``NAME = VOICE`` per line, or JSON); errors name the line."""
    if text is None:
        return Casting({})
    if not isinstance(text, str):
        raise InvalidInput(f"The casting must be text or a mapping, not {type(text).__name__}.")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"The casting looks like JSON but is not valid (line {exc.lineno}: {exc.msg})."
            ) from None
        return casting_from(data)
    roles: dict[str, VoiceSpec] = {}
    lines_of: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = textlib.normalize_text(raw)
        if not line or line.startswith("#"):
            continue
        cuts = [i for i in (line.find(c) for c in ("=", *_COLONS)) if i >= 0]
        cut = min(cuts) if cuts else -1  # the first '=' or colon ends the name
        where = f"Casting line {number}"
        if cut < 0:
            raise InvalidInput(
                f"{where}: '{preview(line)}' has no '='. Write NAME = VOICE, e.g. 'Narrator = Ryan' "
                "or 'Anna = voice: My Voice'."
            )
        name = " ".join(line[:cut].split())
        if not name:
            raise InvalidInput(f"{where}: no name before '{line[cut]}'. Write NAME = VOICE, e.g. 'Narrator = Ryan'.")
        key = name_key(name)
        if key in lines_of:
            raise InvalidInput(f"{where}: '{name}' is already cast on line {lines_of[key]}; keep one.")
        spec = parse_voice(line[cut + 1 :], where)
        roles[name] = _checked_spec(spec, where)
        lines_of[key] = number
    return Casting(roles)


def _checked_spec(spec: VoiceSpec, where: str) -> VoiceSpec:
    if bool(spec.speaker) == bool(spec.voice):
        raise InvalidInput(f"{where}: give either a built-in speaker or a library voice (not both, not neither).")
    if spec.instruct and spec.voice:
        raise InvalidInput(
            f"{where}: a style instruction only works with built-in speakers; library voices are "
            "cloned as recorded. Remove the (…) or cast a built-in speaker."
        )
    if spec.instruct and len(spec.instruct) > MAX_INSTRUCT_CHARS:
        raise InvalidInput(f"{where}: the style instruction is over {MAX_INSTRUCT_CHARS:,} characters; keep it short.")
    if spec.language:
        try:
            normalize_language(spec.language)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
    if spec.size is not None:
        match = _SIZE_RE.fullmatch(spec.size.strip())
        if not match:
            raise InvalidInput(f"{where}: '{spec.size}' is not a model size; use 0.6B or 1.7B.")
        spec = replace(spec, size=f"{match.group(1)}B")
    return spec


def casting_from(value: Casting | Mapping[str, Any] | str | None) -> Casting:
    """A Casting from a Casting, a mapping (name → spec dict, VOICE text or VoiceSpec) or casting text."""
    if isinstance(value, Casting):
        return value
    if value is None or isinstance(value, str):
        return parse_casting(value)
    if not isinstance(value, Mapping):
        raise InvalidInput(f"The casting must be text or a mapping, not {type(value).__name__}.")
    roles: dict[str, VoiceSpec] = {}
    for raw_name, raw_spec in value.items():
        if not isinstance(raw_name, str) or not raw_name.strip():
            raise InvalidInput("Every cast name must be non-empty text.")
        name = " ".join(raw_name.split())
        where = _where(None, name)
        if isinstance(raw_spec, VoiceSpec):
            spec = raw_spec
        elif isinstance(raw_spec, str):
            spec = parse_voice(raw_spec, where)
        elif isinstance(raw_spec, Mapping):
            unknown = sorted(str(k) for k in raw_spec if k not in _SPEC_KEYS)
            if unknown:
                raise InvalidInput(
                    f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                    f"use {', '.join(_SPEC_KEYS)}."
                )
            values: dict[str, Any] = {}
            for key in _SPEC_KEYS:
                item = raw_spec.get(key)
                if item is not None and not isinstance(item, str):
                    raise InvalidInput(f"{where}: '{key}' must be text.")
                values[key] = (item or "").strip() or None
            spec = VoiceSpec(**values)
        else:
            raise InvalidInput(f'{where}: give a voice like {{"speaker": "Ryan"}} or {{"voice": "My Voice"}}.')
        if any(name_key(name) == name_key(n) for n in roles):
            raise InvalidInput(f"The casting names '{name}' twice; keep one.")
        roles[name] = _checked_spec(spec, where)
    return Casting(roles)


def draft_casting(script: str | None, casting: str | None = "", language: str | None = "auto") -> str:
    """``casting`` plus a ``NAME = SPEAKER`` line for every name of the script it
    leaves uncast, each a different built-in speaker not used yet (to edit).

    Speakers whose native language is the script's come first (``language``, or
    for "auto" the one its writing system shows; Latin script counts as English,
    the only Latin-script language with native speakers). Of the nine speakers only
    Ryan and Aiden are native English (both male), so a third English name gets a
    non-native speaker, chosen to balance the voices' genders, marked ``[English]``
    so it speaks the script's language even when the Language setting is Auto.
    """
    try:
        lines = parse_script(script, max_lines=10**6, max_chars=10**9)
    except InvalidInput:
        return casting or ""
    names = list(dict.fromkeys(line.speaker for line in lines))
    chosen = normalize_language(language) if language and str(language).strip() else "auto"
    wanted = chosen if chosen != "auto" else script_language(" ".join(line.text for line in lines))
    current = parse_casting(casting)
    used = {name_key(s.speaker) for s in current.roles.values() if s.speaker}
    free = [s for s in speakers() if name_key(s.name) not in used and name_key(s.id) not in used]
    genders: dict[str, int] = {}
    for spec in current.roles.values():
        if spec.speaker:
            try:
                gender = find_speaker(spec.speaker).gender
            except InvalidInput:
                continue
            genders[gender] = genders.get(gender, 0) + 1
    seen: set[str] = set()
    new: list[str] = []
    for name in names:
        if name in current or name_key(name) in seen:
            continue
        seen.add(name_key(name))
        if not free:  # more names than speakers: they repeat, in order
            new.append(f"{name} = {speakers()[len(new) % len(speakers())].name}")
            continue
        native = [s for s in free if _speaks(s.native_language, wanted)]
        # A first name that tells a gender (Maya, Tom) gets a speaker of it: a native one if there
        # is one, else any free one (told to speak the language). A name that tells none (Narrator,
        # 小明) gets the natives first and, among them, the gender heard least so far (file order).
        told = name_gender(name)
        matching = [s for s in native if s.gender == told] or [s for s in free if s.gender == told]
        pool = matching or sorted(native or free, key=lambda s: genders.get(s.gender, 0))
        native = [s for s in pool if s in native]
        pick = pool[0]
        free.remove(pick)
        genders[pick.gender] = genders.get(pick.gender, 0) + 1
        tag = f" [{wanted.capitalize()}]" if not native and chosen == "auto" else ""
        new.append(f"{name} = {pick.name}{tag}")
    return "\n".join(part for part in ((casting or "").rstrip(), *new) if part)


@functools.cache
def _gender_detector() -> Any:
    """gender-guesser's first-name list (about 40,000 names across countries), loaded once."""
    import gender_guesser.detector as detector  # loading its list takes a moment: only when casting

    return detector.Detector(case_sensitive=False)


def name_gender(name: str) -> str | None:
    """ "female" or "male" when a script name is a first name that mostly says so (Maya, Tom),
    else None (Narrator, Alex, Kim, 小明): the caller then balances the voices instead."""
    first = name.strip().split()[0] if name.strip() else ""
    if not first.isalpha():
        return None
    guess = _gender_detector().get_gender(first)
    return {"female": "female", "mostly_female": "female", "male": "male", "mostly_male": "male"}.get(guess)


def _speaks(native_language: str, language: str) -> bool:
    """A native language of "Chinese (Beijing dialect)" speaks chinese."""
    return native_language.strip().lower().split(" ")[0] == language


def script_language(text: str) -> str:
    """The language a script's writing system shows: Hangul → Korean, kana → Japanese,
    Han → Chinese, Cyrillic → Russian, anything else (Latin) → English."""
    counts = {"korean": 0, "japanese": 0, "chinese": 0, "russian": 0}
    for ch in text:
        code = ord(ch)
        if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
            counts["korean"] += 1
        elif 0x3040 <= code <= 0x30FF:
            counts["japanese"] += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
            counts["chinese"] += 1
        elif 0x0400 <= code <= 0x04FF:
            counts["russian"] += 1
    if counts["japanese"]:  # Japanese mixes kana with Han
        return "japanese"
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "english"
