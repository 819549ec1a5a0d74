"""A saved voice's record: the ``voice.json`` schema, and the rules on every field.

Everything that reaches a record goes through the ``clean_*`` functions here,
whether it comes from the studio, a script or an imported archive, and
everything read back from disk is type-checked field by field by
:func:`voice_from_record`, so a hand-edited or damaged ``voice.json`` is
skipped with a reason instead of breaking a listing.
"""

from __future__ import annotations

import difflib
import io
import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import soundfile as sf

from core.audio.clip import Audio
from core.audio.io import load_audio
from core.audio.reference import ReferenceOptions
from core.errors import AudioError, InvalidInput, LibraryError
from core.storage.folder_store import fold
from core.types import MAX_REFERENCE_SECONDS, normalize_language

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KINDS = ("clone", "design")

VOICE_FILE = "voice.json"
REFERENCE_FILE = "reference.wav"

MAX_NAME_CHARS = 100
MAX_ID_CHARS = 48
MAX_TAGS = 32
MAX_TAG_CHARS = 40
MAX_TRANSCRIPT_CHARS = 5_000
MAX_DESCRIPTION_CHARS = 2_000  # the synthesis service's own limit for design text
MAX_NOTES_CHARS = 10_000
MAX_CONSENT_CHARS = 2_000
MAX_SOURCE_NAME_CHARS = 255
# Far above any record the library writes; a bigger voice.json is not one of ours.
MAX_RECORD_BYTES = 1 << 20

# Ids are ASCII slugs chosen by the library, never by the user: no separators
# and no dots, so ``root / <id>`` is always a direct child of the root.
ID_RE = re.compile(rf"[a-z0-9](?:[a-z0-9-]{{0,{MAX_ID_CHARS - 2}}}[a-z0-9])?")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
# Device names Windows refuses as file names, whatever the extension.
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_TRIM_KEYS = ("start_s", "end_s", "trim_silence", "normalize", "highpass_hz", "denoise")
_REQUIRED = object()


@dataclass(frozen=True)
class Voice:
    """One saved voice, as recorded in its ``voice.json``."""

    id: str
    name: str
    kind: str  # "clone" (from a recording) or "design" (from a Voice Design result)
    language: str
    transcript: str | None  # what the reference says; None means x-vector-only cloning
    description: str | None  # the design text for designed voices
    tags: tuple[str, ...]
    notes: str
    source_name: str | None  # file name the reference came from, if any
    consent: str  # the creator's consent / licence note for this voice
    trim: ReferenceOptions | None  # how the reference was cut from its source
    reference_sha256: str
    reference_seconds: float
    created_at: str  # ISO 8601, UTC
    updated_at: str
    root: Path = field(repr=False, compare=False)
    # The reference is audio the studio made (a take saved as a voice), so it skipped the
    # speech check on save and skips it on import too. None: a record from before this was
    # kept (the export decides; see archive.studio_made).
    model_output: bool | None = None

    @property
    def folder(self) -> Path:
        return self.root / self.id

    @property
    def reference_path(self) -> Path:
        return self.folder / REFERENCE_FILE

    def as_dict(self) -> dict[str, Any]:
        """The ``voice.json`` record (JSON-friendly)."""
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "language": self.language,
            "transcript": self.transcript,
            "description": self.description,
            "tags": list(self.tags),
            "notes": self.notes,
            "source_name": self.source_name,
            "consent": self.consent,
            "trim": None if self.trim is None else self.trim.as_dict(),
            "reference_sha256": self.reference_sha256,
            "reference_seconds": self.reference_seconds,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "model_output": self.model_output,
        }


class Unusable(Exception):
    """A folder or archive entry that is not a usable voice; the message says why."""


# --- cleaning what a caller gives --------------------------------------------


def clean_name(value: Any) -> str:
    if not isinstance(value, str):
        raise LibraryError("The voice name must be text.")
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise LibraryError("Give the voice a name.")
    if "\x00" in name:
        raise LibraryError("The voice name contains a NUL character, which is not allowed; use plain text.")
    if bad_char(name, multiline=False):
        raise LibraryError("The voice name contains a control character (such as a line break or tab); use plain text.")
    if len(name) > MAX_NAME_CHARS:
        raise LibraryError(f"The voice name is {len(name):,} characters long; keep it to {MAX_NAME_CHARS} or fewer.")
    return name


def clean_text(value: Any, what: str, max_chars: int, *, multiline: bool, optional: bool = False) -> Any:
    """Stripped NFC text; for ``optional`` fields an empty value becomes None."""
    if value is None:
        return None if optional else ""
    if not isinstance(value, str):
        raise LibraryError(f"{what} must be text.")
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
    if bad_char(text, multiline=multiline):
        raise LibraryError(f"{what} contains a control character (such as NUL); remove it.")
    if len(text) > max_chars:
        raise LibraryError(f"{what} is {len(text):,} characters long; keep it to {max_chars:,} or fewer.")
    if optional and not text:
        return None
    return text


def bad_char(text: str, *, multiline: bool) -> bool:
    # Cc: control characters (NUL, line breaks, DEL, C1); Zl/Zp: line and
    # paragraph separators; Cs: lone surrogates that cannot be written as UTF-8.
    # Format characters (Cf) stay allowed: emoji sequences rely on the ZWJ.
    allowed = "\n\t" if multiline else ""
    return any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") and c not in allowed for c in text)


def clean_kind(value: Any) -> str:
    kind = str(value).strip().lower() if isinstance(value, str) else None
    if kind not in KINDS:
        raise LibraryError(f"The voice kind must be 'clone' or 'design', not {value!r}.")
    return kind


def clean_language(value: Any) -> str:
    if not isinstance(value, str):
        raise LibraryError("The language must be text, such as 'auto' or 'English'.")
    try:
        return normalize_language(value)
    except InvalidInput as exc:
        raise LibraryError(str(exc)) from None


def clean_tags(value: Iterable[str] | str) -> tuple[str, ...]:
    # A single string is what a text box gives: "warm, narrator, en".
    if not isinstance(value, (str, list, tuple, set, frozenset)):
        raise LibraryError("Tags must be text (comma separated) or a list of text.")
    items = value.split(",") if isinstance(value, str) else list(value)
    tags: list[str] = []
    seen: set[str] = set()
    for item in items:
        tag = clean_text(item, "A tag", MAX_TAG_CHARS, multiline=False)
        tag = " ".join(tag.split())
        if tag and fold(tag) not in seen:
            seen.add(fold(tag))
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise LibraryError(f"A voice can have at most {MAX_TAGS} tags; this one has {len(tags)}.")
    return tuple(tags)


def clean_trim(value: Any) -> ReferenceOptions | None:
    if value is None or isinstance(value, ReferenceOptions):
        return value
    if not isinstance(value, Mapping) or set(value) - set(_TRIM_KEYS):
        raise LibraryError(
            "The trim settings must be ReferenceOptions or a mapping of start_s, end_s, trim_silence, normalize, "
            "highpass_hz and denoise."
        )
    start, end = value.get("start_s"), value.get("end_s")
    for seconds in (start, end):
        if seconds is not None and not (is_number(seconds) and 0 <= seconds < 1e6):
            raise LibraryError("The trim start and end must be numbers of seconds (or empty).")
    # A voice saved before the clean-up options existed has neither key: no high-pass, no denoise.
    flags = (value.get("trim_silence", True), value.get("normalize", True), value.get("denoise", False))
    if not all(isinstance(flag, bool) for flag in flags):
        raise LibraryError("The trim settings' trim_silence, normalize and denoise must be true or false.")
    highpass_hz = value.get("highpass_hz")
    if highpass_hz is not None and not (is_number(highpass_hz) and 0 < highpass_hz < 1e5):
        raise LibraryError("The trim settings' highpass_hz must be a frequency in Hz (or empty).")
    return ReferenceOptions(
        start_s=None if start is None else float(start),
        end_s=None if end is None else float(end),
        trim_silence=flags[0],
        normalize=flags[1],
        highpass_hz=None if highpass_hz is None else float(highpass_hz),
        denoise=flags[2],
    )


def clean_record_fields(
    *,
    kind: Any,
    language: Any,
    transcript: Any,
    description: Any,
    tags: Any,
    notes: Any,
    source_name: Any,
    consent: Any,
    trim: Any,
) -> dict[str, Any]:
    """Everything but name, reference and dates, validated as ``save`` requires."""
    cleaned_trim = clean_trim(trim)
    return {
        "kind": clean_kind(kind),
        "language": clean_language(language),
        "transcript": clean_text(transcript, "The transcript", MAX_TRANSCRIPT_CHARS, multiline=True, optional=True),
        "description": clean_text(description, "The description", MAX_DESCRIPTION_CHARS, multiline=True, optional=True),
        "tags": list(clean_tags(tags)),
        "notes": clean_text(notes, "The notes", MAX_NOTES_CHARS, multiline=True),
        "source_name": clean_text(
            source_name, "The source file name", MAX_SOURCE_NAME_CHARS, multiline=False, optional=True
        ),
        "consent": clean_text(consent, "The consent note", MAX_CONSENT_CHARS, multiline=True),
        "trim": None if cleaned_trim is None else cleaned_trim.as_dict(),
    }


# --- reading records back -----------------------------------------------------


def read_voice(folder: Path, root: Path) -> Voice:
    try:
        raw = (folder / VOICE_FILE).read_bytes()
    except OSError as exc:
        raise Unusable(f"its {VOICE_FILE} cannot be read ({exc.strerror})") from exc
    if len(raw) > MAX_RECORD_BYTES:
        raise Unusable(f"its {VOICE_FILE} is too large to be a voice record")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Unusable(f"its {VOICE_FILE} is damaged (not valid JSON; it may have been cut short)") from None
    return voice_from_record(data, root, folder.name)


def voice_from_record(data: Any, root: Path, folder_name: str) -> Voice:
    """Type-checks a ``voice.json`` record; raises :class:`Unusable` with the reason."""
    if not isinstance(data, dict):
        raise Unusable(f"its {VOICE_FILE} does not hold a voice record")
    schema = data.get("schema")
    if type(schema) is not int:
        raise Unusable(f"its {VOICE_FILE} has no valid schema version")
    if schema > SCHEMA_VERSION:
        raise Unusable(
            f"it was made by a newer version of Qwen TTS Studio (voice format {schema}); update the studio to use it"
        )
    if schema != SCHEMA_VERSION:
        raise Unusable(f"its {VOICE_FILE} has an unknown schema version ({schema})")

    def get(key: str, check: Callable[[Any], bool], what: str, default: Any = _REQUIRED) -> Any:
        if key not in data:
            if default is _REQUIRED:
                raise Unusable(f"its {VOICE_FILE} has no '{key}'")
            return default
        value = data[key]
        if not check(value):
            raise Unusable(f"its {VOICE_FILE} has an invalid '{key}' (expected {what})")
        return value

    def text(value: Any) -> bool:
        return isinstance(value, str)

    def text_or_none(value: Any) -> bool:
        return value is None or isinstance(value, str)

    voice_id = get("id", text, "text")
    if voice_id != folder_name:
        raise Unusable(f"its {VOICE_FILE} names the id '{voice_id}' but the folder is '{folder_name}'")
    trim = get("trim", lambda v: v is None or isinstance(v, dict), "an object or null", None)
    try:
        trim_options = clean_trim(trim)
    except LibraryError:
        raise Unusable(f"its {VOICE_FILE} has invalid trim settings") from None
    seconds = get("reference_seconds", lambda v: is_number(v) and v > 0, "a positive number")
    return Voice(
        id=voice_id,
        name=get("name", lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty name"),
        kind=get("kind", lambda v: v in KINDS, "'clone' or 'design'"),
        language=get("language", text, "text", "auto"),
        transcript=get("transcript", text_or_none, "text or null", None),
        description=get("description", text_or_none, "text or null", None),
        tags=tuple(
            get("tags", lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v), "a list of text", [])
        ),
        notes=get("notes", text, "text", ""),
        source_name=get("source_name", text_or_none, "text or null", None),
        consent=get("consent", text, "text", ""),
        trim=trim_options,
        reference_sha256=get(
            "reference_sha256", lambda v: isinstance(v, str) and bool(_SHA_RE.fullmatch(v)), "a SHA-256 hex digest"
        ),
        reference_seconds=float(seconds),
        created_at=get("created_at", _is_timestamp, "an ISO 8601 time"),
        updated_at=get("updated_at", _is_timestamp, "an ISO 8601 time"),
        root=root,
        model_output=get("model_output", lambda v: v is None or isinstance(v, bool), "true, false or null", None),
    )


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the voice's files --------------------------------------------------------


def voice_folder(root: Path, voice_id: str) -> Path:
    """The folder of ``voice_id``: always a direct child of ``root``, never a link."""
    # Ids are slugs (no separators, no dots), so this is always a direct
    # child of the root; the checks below guard against future mistakes.
    if not ID_RE.fullmatch(voice_id):
        raise LibraryError(f"'{voice_id}' is not a valid voice id.")
    folder = root / voice_id
    if folder.parent != root or folder.is_symlink():
        raise LibraryError(f"The voice folder '{voice_id}' is not inside the voice library.")
    return folder


def wav_seconds(wav: bytes) -> float:
    info = sf.info(io.BytesIO(wav))
    return round(info.frames / info.samplerate, 6)


def read_reference(voice: Voice) -> bytes:
    try:
        return voice.reference_path.read_bytes()
    except OSError as exc:
        raise LibraryError(
            f"The reference clip of voice '{voice.name}' is missing or unreadable ({voice.reference_path}); "
            "delete the voice and save it again from the original recording."
        ) from exc


def decode_reference(voice: Voice, data: bytes) -> Audio:
    try:
        return load_audio(data, max_seconds=MAX_REFERENCE_SECONDS + 1.0)
    except AudioError as exc:
        log.warning("reference of voice %s does not decode: %s", voice.id, exc)
        raise LibraryError(
            f"The reference clip of voice '{voice.name}' is damaged ({voice.reference_path}); "
            "delete the voice and save it again from the original recording."
        ) from exc


# --- names, ids and search -------------------------------------------------------


def haystack(voice: Voice) -> str:
    parts = [voice.name, *voice.tags, voice.notes, voice.description or "", voice.transcript or ""]
    return fold("\n".join(parts))


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:MAX_ID_CHARS].rstrip("-")
    if not slug:
        return "voice"
    if slug in _WINDOWS_RESERVED:
        return f"{slug}-voice"
    return slug


def unique_name(name: str, word: str, taken: set[str]) -> str:
    for number in range(1, 10_000):
        suffix = f" ({word})" if number == 1 else f" ({word} {number})"
        candidate = name[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix
        if fold(candidate) not in taken:
            return candidate
    raise LibraryError(name_taken_message(name))


def name_taken_message(name: str) -> str:
    return f"A voice named '{name}' already exists; choose another name or rename it first."


def not_found_message(wanted: str, voices: list[Voice]) -> str:
    if not voices:
        return f"No voice named '{wanted}': the voice library is empty."
    by_fold = {fold(v.name): v.name for v in voices}
    close = difflib.get_close_matches(fold(wanted), list(by_fold), n=3, cutoff=0.6)
    if not close:
        return f"No voice named '{wanted}' in the library."
    names = [f"'{by_fold[c]}'" for c in close]
    options = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"No voice named '{wanted}' in the library. Did you mean {options}?"
