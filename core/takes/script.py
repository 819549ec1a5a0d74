"""Script mode: a dialogue written as ``Name: line`` rendered with a cast of voices.

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

Everything — the script, the casting, every voice, language and size — is
checked before the first model loads. Line k (counting from 0) is generated
with seed ``seed + 1000·k``, so a script renders identically with the same
seed and any line can be redone on its own. With fewer resident model slots
than the script needs checkpoints, lines are generated grouped by checkpoint
(each model loads once) and assembled in script order.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
import secrets
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Union

from core import text as textlib
from core.audio import Audio, PostProcessing, post_process
from core.engine.catalog import Checkpoint
from core.errors import GenerationError, InvalidInput, StudioError
from core.storage.library import Voice, VoiceLibrary
from core.engine.model_store import ProgressCallback
from core.takes.recipes import RECIPE_VERSION, clone_request_for_voice
from core.engine.speakers import Speaker, find_speaker, speakers
from core.engine.synthesis import (
    DEMO_WARNING,
    LANGUAGES,
    MAX_SEED,
    CloneRequest,
    CustomVoiceRequest,
    Sampling,
    SynthesisResult,
    SynthesisService,
    join_chunks,
    normalize_language,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PAUSE_S",
    "LINE_SEED_STRIDE",
    "MAX_LINES",
    "MAX_PAUSE_S",
    "CastVoice",
    "Casting",
    "RenderedLine",
    "ScriptLine",
    "ScriptPlan",
    "ScriptResult",
    "VoiceSpec",
    "casting_from",
    "draft_casting",
    "line_seed",
    "parse_casting",
    "parse_script",
    "plan_script",
    "render_script",
    "script_recipe",
    "script_voice_summary",
    "stream_script",
]

MAX_LINES = 500
DEFAULT_PAUSE_S = 0.4
MAX_PAUSE_S = 10.0
EDGE_S = 0.01  # fades at every cut, so joins never click
LINE_SEED_STRIDE = 1000  # line k uses seed + 1000·k; its chunks use + 0, 1, 2, …
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


@dataclass(frozen=True)
class CastVoice:
    """A part whose voice has been checked: what will generate its lines."""

    name: str  # as first written in the script
    spec: VoiceSpec
    checkpoint: Checkpoint
    language: str
    speaker: Speaker | None = None
    voice: Voice | None = None

    @property
    def label(self) -> str:
        if self.speaker is not None:
            return self.speaker.name + (f" ({self.spec.instruct})" if self.spec.instruct else "")
        return f"{self.voice.name} (library)"  # type: ignore[union-attr]

    def summary(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "model": self.checkpoint.key, "language": self.language}
        if self.speaker is not None:
            row |= {"speaker": self.speaker.name, "instruct": self.spec.instruct}
        else:
            row |= {"voice": self.voice.name, "voice_id": self.voice.id}  # type: ignore[union-attr]
        return row


@dataclass
class ScriptPlan:
    """A validated script, ready to render (nothing has been generated yet)."""

    lines: list[ScriptLine]
    cast: dict[str, CastVoice]  # name_key → voice
    casting: Casting
    seed: int
    sampling: Sampling
    pause_s: float
    language: str
    size: str | None
    order: list[int]  # line indices in generation order
    post: PostProcessing = field(default_factory=PostProcessing)

    @property
    def line_post(self) -> PostProcessing:
        """What each line gets: DC removal and silence trim (so the pauses are what was asked)."""
        return PostProcessing(remove_dc=self.post.remove_dc, trim_silence=self.post.trim_silence)

    @property
    def scene_post(self) -> PostProcessing:
        """What the joined scene gets: level and fades (a gain and the edges: line starts stay put)."""
        return PostProcessing(normalize=self.post.normalize, fade_in_s=self.post.fade_in_s,
                              fade_out_s=self.post.fade_out_s)

    def voice_of(self, line: ScriptLine) -> CastVoice:
        return self.cast[name_key(line.speaker)]

    @property
    def grouped(self) -> bool:
        return self.order != sorted(self.order)

    @property
    def text(self) -> str:
        return script_text(self.lines)


@dataclass
class RenderedLine:
    """One line's audio, yielded by :func:`stream_script` as soon as it exists."""

    index: int  # position in the script (from 0)
    total: int
    line: ScriptLine
    audio: Audio
    voice: str  # label of the voice that spoke it
    seed: int
    model: str
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def speaker(self) -> str:
        return self.line.speaker

    @property
    def text(self) -> str:
        return self.line.text

    @property
    def duration(self) -> float:
        return self.audio.duration


@dataclass
class ScriptResult:
    audio: Audio  # every line joined, in script order
    lines: list[RenderedLine]  # script order
    starts: list[float]  # where each line begins in ``audio``, seconds
    seed: int
    pause_s: float
    demo: bool
    models: list[str]
    language: str
    cast: list[dict[str, Any]]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.audio.duration

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def text(self) -> str:
        return script_text([r.line for r in self.lines])

    def info(self) -> dict[str, Any]:
        """The JSON-friendly summary returned to the UI and scripts."""
        return {
            "mode": "script",
            "models": list(self.models),
            "demo": self.demo,
            "seed": self.seed,
            "duration_s": round(self.duration, 3),
            "sample_rate": self.sample_rate,
            "pause_s": self.pause_s,
            "language": self.language,
            "cast": self.cast,
            "lines": [
                {"number": r.line.number, "speaker": r.speaker, "voice": r.voice, "text": r.text,
                 "start_s": round(start, 3), "duration_s": round(r.duration, 3), "seed": r.seed,
                 "model": r.model}
                for r, start in zip(self.lines, self.starts)
            ],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
        }

    def to_synthesis_result(self) -> SynthesisResult:
        """The merged take in the form the history stores."""
        return SynthesisResult(
            audio=self.audio, mode="script", model=", ".join(self.models), seed=self.seed, demo=self.demo,
            text=self.text, chunks=[r.text for r in self.lines], timings=dict(self.timings),
            warnings=list(self.warnings),
        )


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
    rest = line[cut + 1:].strip()
    if (not name or len(name) > MAX_NAME_CHARS or len(name.split()) > MAX_NAME_WORDS
            or not _NAME_CHARS.fullmatch(name) or not _HAS_LETTER.search(name) or rest.startswith("//")):
        return None
    return name, rest


def _preview(text: str, limit: int = 50) -> str:
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
                    f"Line {number}: '{_preview(line)}' has no speaker. Start the script with a name and a "
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
                f"{where}: {what} is not a language ({', '.join(l.capitalize() for l in LANGUAGES)}) "
                "or a model size (0.6B, 1.7B); write options like [English, 0.6B]."
            )
        if option in options:
            raise InvalidInput(f"{where}: the {option} is given twice in [{text}].")
        options[option] = value
    return options


def _strip_group(text: str, close: str) -> tuple[str, str | None]:
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
                return text[:i].rstrip(), text[i + 1:-1].strip()
    return text, None


def parse_voice(text: str, where: str) -> VoiceSpec:
    """One VOICE of the casting grammar: ``Ryan (calm) [0.6B]`` / ``voice: My Voice [English]``."""
    rest = " ".join(str(text).split())
    options: dict[str, str] = {}
    style: str | None = None
    while True:  # the (style) and [options] groups may come in either order
        rest, group = _strip_group(rest, "]")
        if group is not None:
            if options:
                raise InvalidInput(f"{where}: give the [options] once.")
            options = _parse_options(group, where)
            if not options:
                raise InvalidInput(f"{where}: the [options] are empty; write e.g. [English, 0.6B] or leave them out.")
            continue
        before, group = _strip_group(rest, ")")
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
            raise InvalidInput(f"The casting looks like JSON but is not valid (line {exc.lineno}: {exc.msg}).") from None
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
                f"{where}: '{_preview(line)}' has no '='. Write NAME = VOICE, e.g. 'Narrator = Ryan' "
                "or 'Anna = voice: My Voice'."
            )
        name = " ".join(line[:cut].split())
        if not name:
            raise InvalidInput(f"{where}: no name before '{line[cut]}'. Write NAME = VOICE, e.g. 'Narrator = Ryan'.")
        key = name_key(name)
        if key in lines_of:
            raise InvalidInput(f"{where}: '{name}' is already cast on line {lines_of[key]}; keep one.")
        spec = parse_voice(line[cut + 1:], where)
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
            values = {}
            for key in _SPEC_KEYS:
                item = raw_spec.get(key)
                if item is not None and not isinstance(item, str):
                    raise InvalidInput(f"{where}: '{key}' must be text.")
                values[key] = (item or "").strip() or None
            spec = VoiceSpec(**values)
        else:
            raise InvalidInput(
                f"{where}: give a voice like {{\"speaker\": \"Ryan\"}} or {{\"voice\": \"My Voice\"}}."
            )
        if any(name_key(name) == name_key(n) for n in roles):
            raise InvalidInput(f"The casting names '{name}' twice; keep one.")
        roles[name] = _checked_spec(spec, where)
    return Casting(roles)


def draft_casting(script: str | None, casting: str | None = "") -> str:
    """``casting`` plus a ``NAME = SPEAKER`` line for every name of the script it
    leaves uncast, giving each a built-in speaker not used yet (to edit)."""
    try:
        names = list(dict.fromkeys(line.speaker for line in parse_script(script, max_lines=10**6, max_chars=10**9)))
    except InvalidInput:
        return casting or ""
    current = parse_casting(casting)
    used = {name_key(s.speaker) for s in current.roles.values() if s.speaker}
    free = [s.name for s in speakers() if name_key(s.name) not in used and name_key(s.id) not in used]
    seen: set[str] = set()
    new = []
    for name in names:
        if name in current or name_key(name) in seen:
            continue
        seen.add(name_key(name))
        choice = free.pop(0) if free else speakers()[len(new) % len(speakers())].name
        new.append(f"{name} = {choice}")
    return "\n".join(part for part in ((casting or "").rstrip(), *new) if part)


# --------------------------------------------------------------------------- planning


def line_seed(seed: int, index: int) -> int:
    return (seed + LINE_SEED_STRIDE * index) % (MAX_SEED + 1)


def _uncast_message(missing: dict[str, list[int]]) -> str:
    def where(numbers: list[int]) -> str:
        shown = ", ".join(map(str, numbers[:5])) + (", …" if len(numbers) > 5 else "")
        return f"line {shown}" if len(numbers) == 1 else f"lines {shown}"

    listed = ", ".join(f"{name} ({where(numbers)})" for name, numbers in missing.items())
    example = next(iter(missing))
    noun = "this name" if len(missing) == 1 else f"these {len(missing)} names"
    return (f"No voice is cast for {noun}: {listed}. Add a casting line for each, e.g. "
            f"'{example} = Ryan' or '{example} = voice: My Voice'.")


def _check_pause(pause_s: Any) -> float:
    if pause_s is None:
        return DEFAULT_PAUSE_S
    if isinstance(pause_s, bool) or not isinstance(pause_s, (int, float)) or not math.isfinite(pause_s):
        raise InvalidInput("The pause between lines must be a number of seconds.")
    if not 0 <= pause_s <= MAX_PAUSE_S:
        raise InvalidInput(f"The pause between lines is {pause_s} s; it must be 0 to {MAX_PAUSE_S:g} seconds.")
    return float(pause_s)


def plan_script(
    synthesis: SynthesisService,
    library: VoiceLibrary,
    script: str | Sequence[ScriptLine],
    casting: Casting | Mapping[str, Any] | str | None,
    *,
    language: str = "auto",
    size: str | None = None,
    sampling: Sampling = Sampling(),
    pause_s: float = DEFAULT_PAUSE_S,
    post: PostProcessing = PostProcessing(),
    max_lines: int = MAX_LINES,
) -> ScriptPlan:
    """Checks everything a render needs — no model is loaded and nothing is generated."""
    if isinstance(script, str) or script is None:
        lines = parse_script(script, max_lines=max_lines, max_chars=synthesis.max_text_chars)
    else:
        lines = list(script)
        if not lines:
            raise InvalidInput("The script is empty.")
    cast_text = casting_from(casting)
    language = normalize_language(language)
    sampling = sampling.validated()
    post = post.validated()
    pause_s = _check_pause(pause_s)

    missing: dict[str, list[int]] = {}
    for line in lines:
        if line.speaker not in cast_text:
            key = next((n for n in missing if name_key(n) == name_key(line.speaker)), line.speaker)
            missing.setdefault(key, []).append(line.number)
    if missing:
        raise InvalidInput(_uncast_message(missing))

    cast: dict[str, CastVoice] = {}
    problems: list[str] = []
    checked: set[str] = set()
    for line in lines:
        key = name_key(line.speaker)
        if key in checked:
            continue
        checked.add(key)
        spec = cast_text.get(line.speaker)
        try:
            cast[key] = _cast_voice(synthesis, library, line.speaker, spec, language, size)  # type: ignore[arg-type]
        except StudioError as exc:
            problems.append(f"{line.speaker}: {exc}")
    if problems:
        raise InvalidInput(problems[0] if len(problems) == 1 else
                           "Some voices are not available:\n" + "\n".join(f"• {p}" for p in problems))

    seed = sampling.seed if sampling.seed is not None else secrets.randbelow(2**31)
    order = _generation_order(synthesis, lines, cast)
    return ScriptPlan(lines=lines, cast=cast, casting=cast_text, seed=seed, sampling=sampling, pause_s=pause_s,
                      language=language, size=size, order=order, post=post)


def _cast_voice(synthesis: SynthesisService, library: VoiceLibrary, name: str, spec: VoiceSpec,
                language: str, size: str | None) -> CastVoice:
    voice_language = normalize_language(spec.language or language)
    voice_size = spec.size or size or None
    if spec.speaker:
        speaker = find_speaker(spec.speaker)
        checkpoint = synthesis.checkpoint_for("custom_voice", voice_size)
        return CastVoice(name, spec, checkpoint, voice_language, speaker=speaker)
    try:
        entry = library.get(spec.voice or "")
    except StudioError as exc:
        bare, style = _strip_group(spec.voice or "", ")")
        if style and bare:
            try:
                library.get(bare)
            except StudioError:
                pass
            else:
                raise InvalidInput(
                    f"'{bare}' is a library voice, and a style instruction ({style}) only works with "
                    "built-in speakers; library voices are cloned as recorded. Remove the (…)."
                ) from None
        if spec.guessed:
            names = {s.name.casefold(): s.name for s in speakers()}
            close = difflib.get_close_matches((spec.voice or "").casefold(), list(names), n=1, cutoff=0.6)
            hint = f" Did you mean the speaker '{names[close[0]]}'?" if close else ""
            if not close and "Did you mean" in str(exc):
                hint = " " + str(exc)[str(exc).index("Did you mean"):]
            raise InvalidInput(
                f"'{spec.voice}' is neither a built-in speaker nor a voice in the library.{hint} "
                f"Speakers: {', '.join(names.values())}."
            ) from None
        raise
    checkpoint = synthesis.checkpoint_for("base", voice_size)
    return CastVoice(name, spec, checkpoint, voice_language, voice=entry)


def _generation_order(synthesis: SynthesisService, lines: list[ScriptLine], cast: dict[str, CastVoice]) -> list[int]:
    """Script order, unless the script needs more models than may stay loaded at once:
    then grouped by checkpoint (the one already loaded first), so each loads once."""
    keys = list(dict.fromkeys(cast[name_key(line.speaker)].checkpoint.key for line in lines))
    manager = synthesis.manager
    if len(keys) <= max(1, int(getattr(manager, "max_resident", 1))):
        return list(range(len(lines)))
    resident = set(manager.resident_keys())
    ranked = sorted(keys, key=lambda k: (k not in resident, keys.index(k)))
    rank = {k: i for i, k in enumerate(ranked)}
    return sorted(range(len(lines)), key=lambda i: (rank[cast[name_key(lines[i].speaker)].checkpoint.key], i))


# --------------------------------------------------------------------------- rendering

ScriptRequest = Union[CustomVoiceRequest, CloneRequest]


def stream_script(
    synthesis: SynthesisService,
    library: VoiceLibrary,
    script: str | Sequence[ScriptLine] | ScriptPlan,
    casting: Casting | Mapping[str, Any] | str | None = None,
    *,
    language: str = "auto",
    size: str | None = None,
    sampling: Sampling = Sampling(),
    pause_s: float = DEFAULT_PAUSE_S,
    post: PostProcessing = PostProcessing(),
    progress: ProgressCallback | None = None,
) -> Iterator[RenderedLine | ScriptResult]:
    """Yields each line's audio as it is produced (:class:`RenderedLine`, in generation
    order: see ``RenderedLine.index``), then the :class:`ScriptResult`.

    Everything is validated here, before the first model load, so bad input
    raises at the call, not during iteration.
    """
    plan = script if isinstance(script, ScriptPlan) else plan_script(
        synthesis, library, script, casting, language=language, size=size, sampling=sampling, pause_s=pause_s,
        post=post)
    return _render(synthesis, library, plan, progress)


def render_script(*args: Any, **kwargs: Any) -> ScriptResult:
    """The whole script at once; same arguments as :func:`stream_script`."""
    for item in stream_script(*args, **kwargs):
        if isinstance(item, ScriptResult):
            return item
    raise AssertionError("stream_script always ends with a result")  # pragma: no cover


def _render(synthesis: SynthesisService, library: VoiceLibrary, plan: ScriptPlan,
            progress: ProgressCallback | None) -> Iterator[RenderedLine | ScriptResult]:
    total = len(plan.lines)
    started = time.perf_counter()
    templates: dict[str, CloneRequest] = {}
    cached_prompts: dict[str, bool] = {}
    templates_time: dict[str, float] = {}
    rendered: dict[int, RenderedLine] = {}
    first_audio_s: float | None = None

    for position, index in enumerate(plan.order):
        line = plan.lines[index]
        voice = plan.voice_of(line)
        label = f"Line {index + 1} of {total} ({line.speaker})"
        if progress:
            progress(position / total, label)
        line_progress = _line_progress(progress, label, position, total)
        sampling = replace(plan.sampling, seed=line_seed(plan.seed, index))
        try:
            request = _line_request(synthesis, library, voice, line, sampling, plan.line_post, templates,
                                    cached_prompts, templates_time, line_progress)
            result = synthesis.synthesize(request, line_progress)
        except StudioError as exc:
            raise _about_line(exc, line) from exc
        if first_audio_s is None:
            first_audio_s = time.perf_counter() - started
        item = RenderedLine(
            index=index, total=total, line=line, audio=result.audio, voice=voice.label, seed=result.seed,
            model=result.model, timings=dict(result.timings),
            warnings=[w for w in result.warnings if w != DEMO_WARNING],
        )
        rendered[index] = item
        yield item

    lines = [rendered[i] for i in range(total)]
    audio = post_process(join_chunks([r.audio for r in lines], plan.pause_s, edge_s=EDGE_S), plan.scene_post)
    starts = _starts(lines, plan.pause_s, audio.sample_rate)
    demo = any(v.checkpoint.demo for v in plan.cast.values())
    warnings: list[str] = [DEMO_WARNING] if demo else []
    for r in lines:
        for w in r.warnings:
            tagged = f"{r.speaker}: {w}"
            if tagged not in warnings:
                warnings.append(tagged)
    models = list(dict.fromkeys(plan.voice_of(line).checkpoint.key for line in plan.lines))
    generate_s = sum(r.timings.get("generate_s", 0.0) for r in lines)
    total_s = time.perf_counter() - started
    timings = {
        "load_s": sum(r.timings.get("load_s", 0.0) for r in lines),
        "generate_s": generate_s,
        "prompt_s": sum(templates_time.values()),
        "first_audio_s": first_audio_s or total_s,
        "total_s": total_s,
        "rtf": generate_s / max(audio.duration, 1e-6),
    }
    cast = []
    for key in dict.fromkeys(name_key(line.speaker) for line in plan.lines):
        row = plan.cast[key].summary()
        if key in cached_prompts:
            row["prompt_cached"] = cached_prompts[key]
        cast.append(row)
    log.info("event=script lines=%d voices=%d models=%s audio_s=%.2f wall_s=%.2f grouped=%s",
             total, len(plan.cast), ",".join(models), audio.duration, total_s, plan.grouped)
    if progress:
        progress(1.0, f"Done: {total} lines, {audio.duration:.1f} s of audio")
    yield ScriptResult(audio=audio, lines=lines, starts=starts, seed=plan.seed, pause_s=plan.pause_s, demo=demo,
                       models=models, language=plan.language, cast=cast, timings=timings, warnings=warnings)


def _line_request(synthesis: SynthesisService, library: VoiceLibrary, voice: CastVoice, line: ScriptLine,
                  sampling: Sampling, post: PostProcessing, templates: dict[str, CloneRequest],
                  cached_prompts: dict[str, bool], prompt_times: dict[str, float],
                  progress: ProgressCallback | None) -> ScriptRequest:
    if voice.speaker is not None:
        return CustomVoiceRequest(text=line.text, speaker=voice.speaker.id, language=voice.language,
                                  instruct=voice.spec.instruct, size=voice.checkpoint.size, sampling=sampling,
                                  post=post)
    key = name_key(line.speaker)
    if key not in templates:
        # The voice's clone prompt: from its cache, or encoded once for the whole script.
        if progress:
            progress(0.0, f"preparing the voice '{voice.voice.name}'")  # type: ignore[union-attr]
        start = time.perf_counter()
        templates[key], cached_prompts[key] = clone_request_for_voice(
            library, synthesis, voice.voice.id, text=line.text,  # type: ignore[union-attr]
            language=voice.language, size=voice.checkpoint.size, sampling=sampling,
        )
        prompt_times[key] = time.perf_counter() - start
    return replace(templates[key], text=line.text, sampling=sampling, post=post)


def _about_line(exc: StudioError, line: ScriptLine) -> StudioError:
    """The same error, saying which line it happened on."""
    message = f"Line {line.number} ({line.speaker}): {exc}"
    try:
        return type(exc)(message)
    except TypeError:  # errors with extra required fields (ChunkFailed)
        return GenerationError(message)


def _line_progress(progress: ProgressCallback | None, label: str, position: int, total: int) -> ProgressCallback | None:
    if progress is None:
        return None

    done = 0.0

    def report(fraction: float, message: str) -> None:
        nonlocal done
        # The engine's own "chunk 1 of 1" / "Done" add nothing to "Line k of n (Name)".
        quiet = message.startswith(("Generating chunk 1 of 1", "Done"))
        # Loading and generating each count from 0 to 1; the bar only moves forward.
        done = max(done, min(max(float(fraction), 0.0), 0.99))
        progress((position + done) / total, label if quiet else f"{label}: {message}")

    return report


def _starts(lines: Sequence[RenderedLine], pause_s: float, sample_rate: int) -> list[float]:
    """Where each line begins in the joined audio (mirrors :func:`join_chunks`)."""
    starts: list[float] = []
    cursor = 0
    gap = int(round(pause_s * sample_rate))
    overlap = int(round(EDGE_S * sample_rate))
    for i, r in enumerate(lines):
        if i and pause_s <= 0:
            cursor -= min(overlap, cursor, len(r.audio))
        starts.append(cursor / sample_rate)
        cursor += len(r.audio) + (gap if pause_s > 0 else 0)
    return starts


def script_recipe(plan: ScriptPlan, result: ScriptResult, *, fmt: str | None = None) -> dict[str, Any]:
    """The plain-data record of a render, kept with the take in the history."""
    recipe = {
        "recipe": RECIPE_VERSION,
        "kind": "script",
        "script": plan.text,
        "casting": plan.casting.as_dict(),
        "language": plan.language,
        "size": plan.size,
        "pause_s": plan.pause_s,
        "sampling": asdict(plan.sampling) | {"seed": result.seed},
        "post": asdict(plan.post),
    }
    if fmt:
        recipe["format"] = fmt
    return recipe


def script_voice_summary(result: ScriptResult) -> dict[str, Any]:
    """Who speaks in a script take, for the history list."""
    names = ", ".join(f"{row['name']} ({row.get('speaker') or row.get('voice')})" for row in result.cast)
    return {"kind": "script", "voices": result.cast, "voice": _preview(names, 80)}
