"""The take history: every generated take, kept on disk with what made it.

Layout under the history root (``<data_dir>/history/``), one folder per take::

    .lock                  cross-process lock file (filelock)
    <id>/take.json         the take's record (schema 1, UTF-8 JSON)
    <id>/take.<fmt>        the audio, encoded once when the take was made
    <id>/parts/NNN.wav     each chunk or script line as it was joined (core/storage/take_parts.py)
    .tmp-<uuid>/           a take being written (ignored when listing)
    .trash-<uuid>/         a take being deleted (ignored when listing)

Why it is built this way:

- Ids are ``YYYYMMDD-HHMMSS-xxxxxx`` (UTC time of saving, then 6 random hex
  digits), chosen here and never by a caller, so they sort by time and are
  plain ASCII. Every id given to :meth:`History.get` / :meth:`History.delete`
  must match that pattern exactly before any path is built from it, so no id
  can name anything but a direct child of the root.
- A take appears in one ``os.rename`` of a fully written, fsynced folder and
  disappears in one rename to ``.trash-*``, so a crash never leaves half a
  take that lists (:mod:`core.storage.folder_store`, shared with the voice
  library, does the staging, the lock and the clean-up of leftovers).
- Reading never needs the lock and never fails on one bad entry: a damaged
  ``take.json``, a missing audio file or one whose size differs from the
  record is skipped and described in :attr:`History.warnings`.
- The record holds what regenerates the take: the caller's ``request`` dict
  (stored as given, round-tripped through JSON) and the seed the engine
  actually used, which differs from the request's when that asked for a
  random one.
- Retention removes the oldest takes until both limits hold, but never the
  newest one, so the take just made is always there even if it alone exceeds
  ``max_bytes``. Damaged entries are neither counted nor removed: they may be
  worth rescuing by hand, and :meth:`History.delete` removes them on request.
- Texts are the user's own data in their own data dir, so they are stored;
  nothing logged here ever contains a text, description or request.
"""

from __future__ import annotations

import builtins  # the list() method shadows list[...] in the class's own annotations
import json
import logging
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.audio.io import SUPPORTED_OUTPUT_FORMATS, write_audio
from core.errors import InvalidInput, StudioError
from core.storage.durable import fsync_file, write_file
from core.storage.folder_store import (
    LOCK_TIMEOUT_S,
    FileIdentity,
    FolderStore,
    file_identity,
    fold,
    record_bytes,
)
from core.storage.take_parts import BadParts, TakePart, parts_from_record, write_parts
from core.types import SynthesisResult, normalize_language

log = logging.getLogger(__name__)

__all__ = ["SCHEMA_VERSION", "STORABLE_FORMATS", "History", "HistoryError", "KeptTake", "Take", "TakePart"]

SCHEMA_VERSION = 1
# Raw PCM has no header: a stored .pcm take could not be played or decoded
# back without knowing its rate, so the history keeps self-describing files only.
STORABLE_FORMATS: tuple[str, ...] = tuple(f for f in SUPPORTED_OUTPUT_FORMATS if f != "pcm")
DEFAULT_MAX_TAKES = 500
DEFAULT_MAX_BYTES = 2_000_000_000

TAKE_FILE = "take.json"
TAKE_COMPLETE, TAKE_STOPPED = "complete", "stopped"
AUDIO_STEM = "take"
# A record holds the text twice (take and request) and texts are capped at
# 50,000 characters, so anything this big is not a record we wrote.
MAX_RECORD_BYTES = 8 << 20

# [0-9], not \d: \d also matches non-ASCII digits such as "٢".
_ID_RE = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}")
_ID_EXAMPLE = "20261122-083512-3f9a1c"


class HistoryError(StudioError):
    """The history folder cannot be read or written (disk full, permissions, busy)."""


@dataclass(frozen=True)
class Take:
    """One stored take, as recorded in its ``take.json``."""

    id: str
    created_at: str  # ISO 8601, UTC, microseconds
    mode: str  # one of core.types.MODES, or "script" for a whole script
    model: str  # checkpoint key
    seed: int  # the seed actually used
    demo: bool
    text: str
    voice: dict  # speaker name / library voice / design description, as the caller described it
    language: str
    sampling: dict
    request: dict  # everything needed to regenerate, as the caller passed it
    timings: dict
    warnings: list[str]
    duration_s: float
    sample_rate: int
    format: str
    audio_path: Path
    size_bytes: int  # of the audio file
    engine: str = "torch"  # what made it (core/engine/interface.py); records older than the field were torch
    # "stopped": the user pressed Stop; the audio holds the chunks finished before it (a partial
    # take, which Resume finishes). Records older than the field were complete.
    status: str = TAKE_COMPLETE
    stopped_at: int | None = None  # stopped takes: the chunks kept (= the 0-based chunk that was stopped)
    total_chunks: int | None = None  # stopped takes: the chunks the whole take has
    # Its chunks or script lines, each with its own audio (core/storage/take_parts.py); none in older records.
    parts: list[TakePart] = field(default_factory=list)
    parts_pause_s: float | None = None  # the pause the join put between parts

    @property
    def parts_bytes(self) -> int:
        return sum(part.size_bytes for part in self.parts)

    @property
    def stopped(self) -> bool:
        return self.status == TAKE_STOPPED

    @property
    def status_label(self) -> str:
        """The label of a partial take, "stopped at chunk k of n"; "" for a complete one."""
        if not self.stopped:
            return ""
        unit = "line" if self.mode == "script" else "chunk"  # a script stops between its lines
        return f"stopped at {unit} {(self.stopped_at or 0) + 1} of {self.total_chunks or '?'}"

    def as_dict(self) -> dict[str, Any]:
        """The ``take.json`` record (JSON-friendly; the audio is named relative to the take folder)."""
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "created_at": self.created_at,
            "mode": self.mode,
            "model": self.model,
            "seed": self.seed,
            "demo": self.demo,
            "text": self.text,
            "voice": self.voice,
            "language": self.language,
            "sampling": self.sampling,
            "request": self.request,
            "timings": self.timings,
            "warnings": self.warnings,
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "format": self.format,
            "audio": self.audio_path.name,
            "size_bytes": self.size_bytes,
            "engine": self.engine,
            "status": self.status,
            "stopped_at": self.stopped_at,
            "total_chunks": self.total_chunks,
            "parts": [part.as_dict() for part in self.parts],
            "parts_pause_s": self.parts_pause_s,
        }


@dataclass(frozen=True)
class KeptTake:
    """A take now in the history, with the details dict the UI and the API return."""

    take: Take
    details: dict[str, Any]

    @property
    def path(self) -> str:
        return str(self.take.audio_path)


class _Unusable(Exception):
    """A take folder that cannot be used; the message says why, without its contents."""


class History:
    """The takes under one root folder. Safe to share between threads and processes."""

    def __init__(
        self,
        root: Path | str,
        *,
        max_takes: int = DEFAULT_MAX_TAKES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        lock_timeout: float = LOCK_TIMEOUT_S,
    ):
        for name, value in (("max_takes", max_takes), ("max_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"The history's {name} must be a whole number of at least 1, not {value}.")
        self._store = FolderStore(
            root,
            name="history",
            error=HistoryError,
            busy="The history is busy (another window or process is saving to it); try again in a moment.",
            lock_timeout=lock_timeout,
            logger=log,
        )
        self.root = self._store.root
        self.max_takes = max_takes
        self.max_bytes = max_bytes
        # Human messages about entries skipped by the last listing.
        self.warnings: list[str] = []
        # folder name -> (take.json identity, Take, take.json size). Takes never
        # change once written, so this only saves re-parsing on every listing.
        self._cache: dict[str, tuple[FileIdentity, Take, int]] = {}

    # --- reading ---------------------------------------------------------

    def list(self, query: str | None = None, mode: str | None = None, limit: int | None = None) -> list[Take]:
        """Takes newest first; every filter given must match.

        ``query`` is split into words and each must appear (case-insensitively)
        in the text, the voice description, the model, the mode or the id.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidInput("The number of takes to list must be a whole number, 0 or more.")
        takes = [take for take, _ in self._scan()]
        if mode and mode.strip():
            wanted = mode.strip().lower()
            takes = [t for t in takes if t.mode == wanted]
        if query and query.strip():
            terms = fold(query).split()
            takes = [t for t in takes if all(term in _haystack(t) for term in terms)]
        return takes if limit is None else takes[:limit]

    def get(self, take_id: str) -> Take:
        """One take by id; :class:`InvalidInput` if the id is malformed, unknown or damaged."""
        folder = self._folder(take_id)
        if not _is_take_folder(folder):
            raise InvalidInput(_not_found_message(take_id))
        try:
            take, _ = self._read(folder)
        except FileNotFoundError:
            raise InvalidInput(_not_found_message(take_id)) from None
        except _Unusable as exc:
            raise InvalidInput(f"The take {take_id} is damaged: {exc}. Delete it from the history.") from None
        return take

    # --- writing ---------------------------------------------------------

    def add(
        self,
        result: SynthesisResult,
        *,
        fmt: str = "wav",
        request: Mapping[str, Any],
        voice: Mapping[str, Any] | None = None,
        language: str = "auto",
        sampling: Mapping[str, Any] | None = None,
        stopped_at: int | None = None,
        total_chunks: int | None = None,
    ) -> Take:
        """Stores ``result`` encoded as ``fmt`` with its parameters, then prunes.

        ``request`` is whatever the caller needs to regenerate the take (plain
        JSON data). ``sampling`` defaults to ``request["sampling"]`` when that
        is a dict. With ``stopped_at`` (chunks kept) and ``total_chunks``, the take is a partial
        one the user stopped (status "stopped"). Returns the take exactly as :meth:`get` will read it back.
        """
        if not isinstance(result, SynthesisResult):
            raise TypeError(f"result must be a SynthesisResult, not {type(result).__name__}")
        fmt = _storable_format(fmt)
        language = normalize_language(language)
        request = _json_dict(request, "request")
        voice = _json_dict(voice if voice is not None else {}, "voice description")
        if sampling is None:
            sampling = request.get("sampling") if isinstance(request.get("sampling"), dict) else {}
        sampling = _json_dict(sampling, "sampling options")
        audio_name = f"{AUDIO_STEM}.{fmt}"

        removed: list[tuple[str, Path]] = []
        with self._store.disk_errors("save the take"), self._store.staging() as staged:
            # Encoding (ffmpeg for MP3) is the slow part; it happens before the
            # lock is taken so concurrent saves only queue for the rename.
            audio_path = write_audio(result.audio, staged / audio_name, fmt)
            fsync_file(audio_path)
            size_bytes = audio_path.stat().st_size
            # Each part's own audio, lossless, in the same staged folder: it appears with the take.
            parts = write_parts(staged, result.parts)
            with self._store.locked():
                now = datetime.now(timezone.utc)
                take_id = self._new_id(now)
                record = {
                    "schema": SCHEMA_VERSION,
                    "id": take_id,
                    "created_at": now.isoformat(timespec="microseconds"),
                    "mode": str(result.mode),
                    "model": str(result.model),
                    "seed": int(result.seed),
                    "demo": bool(result.demo),
                    "text": str(result.text),
                    "voice": voice,
                    "language": language,
                    "sampling": sampling,
                    "request": request,
                    "timings": {str(k): float(v) for k, v in result.timings.items() if math.isfinite(v)},
                    "warnings": [str(w) for w in result.warnings],
                    "duration_s": float(result.audio.duration),
                    "sample_rate": int(result.audio.sample_rate),
                    "format": fmt,
                    "audio": audio_name,
                    "size_bytes": size_bytes,
                    "engine": str(result.engine),
                    "status": TAKE_COMPLETE if stopped_at is None else TAKE_STOPPED,
                    "stopped_at": None if stopped_at is None else int(stopped_at),
                    "total_chunks": None if total_chunks is None else int(total_chunks),
                    "parts": parts,
                    "parts_pause_s": float(result.pause_s) if parts and result.pause_s is not None else None,
                }
                data = record_bytes(record)
                # Built from the bytes on their way to disk, so add() returns
                # exactly what get() and list() will read back.
                take = _take_from_record(json.loads(data), self.root / take_id)
                write_file(staged / TAKE_FILE, data)
                self._store.publish(staged, take_id)
                log.info(
                    "event=take_saved id=%s mode=%s model=%s format=%s bytes=%d duration_s=%.2f",
                    take.id,
                    take.mode,
                    take.model,
                    take.format,
                    take.size_bytes,
                    take.duration_s,
                )
                try:
                    removed = self._prune_locked()
                except (OSError, HistoryError) as exc:
                    # The take is safely stored; a failed clean-up must not
                    # report the save as failed. The next save tries again.
                    log.warning("Could not prune the history (%s); it will be tried again.", exc)
        _empty_trash(removed)
        return take

    def delete(self, take_id: str) -> None:
        """Removes a take (damaged ones too). It stops listing the moment its folder is renamed away."""
        folder = self._folder(take_id)
        with self._store.disk_errors("delete the take"):
            with self._store.locked():
                if not _is_take_folder(folder):
                    raise InvalidInput(_not_found_message(take_id))
                trash = self._store.to_trash(folder)
            self._cache.pop(take_id, None)
            log.info("event=take_deleted id=%s", take_id)
            _empty_trash([(take_id, trash)])

    def prune(self) -> builtins.list[str]:
        """Removes the oldest takes until both limits hold; returns their ids, oldest first."""
        with self._store.disk_errors("prune the history"):
            with self._store.locked():
                removed = self._prune_locked()
            _empty_trash(removed)
        return [take_id for take_id, _ in removed]

    # --- internals -------------------------------------------------------

    def _new_id(self, now: datetime) -> str:
        while True:
            take_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
            if not os.path.lexists(self.root / take_id):
                return take_id

    def _folder(self, take_id: str) -> Path:
        if not isinstance(take_id, str) or not _ID_RE.fullmatch(take_id):
            raise InvalidInput(_bad_id_message(take_id))
        return self.root / take_id

    def _prune_locked(self) -> builtins.list[tuple[str, Path]]:
        """Renames the takes over the limits to trash, oldest first: (id, trash folder) pairs
        for the caller to empty once the lock is released."""
        entries = self._scan()  # newest first
        count = len(entries)
        total = sum(footprint for _, footprint in entries)
        removed: list[tuple[str, Path]] = []
        for take, footprint in reversed(entries[1:]):  # never the newest
            if count <= self.max_takes and total <= self.max_bytes:
                break
            removed.append((take.id, self._store.to_trash(self.root / take.id)))
            self._cache.pop(take.id, None)
            count -= 1
            total -= footprint
        if removed:
            log.info("event=history_pruned removed=%d kept=%d bytes=%d", len(removed), count, total)
        return removed

    def _read(self, folder: Path) -> tuple[Take, int]:
        """The take in ``folder`` and its size on disk. FileNotFoundError if the record is gone."""
        info = os.stat(folder / TAKE_FILE)
        key = file_identity(info)
        cached = self._cache.get(folder.name)
        if cached is not None and cached[0] == key:
            take = cached[1]
        else:
            if info.st_size > MAX_RECORD_BYTES:
                raise _Unusable(f"its {TAKE_FILE} is {info.st_size:,} bytes, far too large to be a take record")
            try:
                record = json.loads((folder / TAKE_FILE).read_bytes())
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise _Unusable(f"its {TAKE_FILE} is not valid JSON (it may have been cut short)") from None
            take = _take_from_record(record, folder)
            self._cache[folder.name] = (key, take, info.st_size)
        try:
            audio_size = os.stat(take.audio_path).st_size
        except FileNotFoundError:
            raise _Unusable(f"its audio file {take.audio_path.name} is missing") from None
        if audio_size != take.size_bytes:
            raise _Unusable(
                f"its audio file is {audio_size:,} bytes but the record says {take.size_bytes:,} "
                "(it was cut short or replaced)"
            )
        return take, info.st_size + audio_size + take.parts_bytes

    def _scan(self) -> builtins.list[tuple[Take, int]]:
        """Every usable take with its size on disk, newest first; sets :attr:`warnings`."""
        found: list[tuple[Take, int]] = []
        warnings: list[str] = []
        for entry in self._store.entries():
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            if not _ID_RE.fullmatch(name):
                warnings.append(f"Skipped the folder '{name}' in the history: it is not a take folder.")
                continue
            folder = Path(entry.path)
            try:
                found.append(self._read(folder))
            except FileNotFoundError:
                if folder.exists():  # else deleted or pruned while we looked: not a problem
                    warnings.append(
                        f"Skipped the take {name}: its {TAKE_FILE} is missing "
                        "(it may be left over from an interrupted save)."
                    )
            except _Unusable as exc:
                warnings.append(f"Skipped the take {name}: {exc}.")
            except OSError as exc:
                warnings.append(f"Skipped the take {name}: it cannot be read ({exc.strerror or exc}).")
        live = {take.id for take, _ in found}
        # dict() copies in one step, so a get() in another thread cannot change
        # the cache while this filters it.
        self._cache = {k: v for k, v in dict(self._cache).items() if k in live}
        self.warnings = warnings
        self._store.log_once(warnings)
        # Ids only resolve to the second; created_at orders takes within one.
        found.sort(key=lambda item: (_when(item[0]), item[0].id), reverse=True)
        return found


# --- records -------------------------------------------------------------


def _take_from_record(record: Any, folder: Path) -> Take:
    """Checks a parsed ``take.json`` field by field; raises :class:`_Unusable` naming the first bad one."""
    if not isinstance(record, dict):
        raise _Unusable(f"its {TAKE_FILE} is not a take record")
    schema = record.get("schema")
    if schema != SCHEMA_VERSION:
        if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
            raise _Unusable(f"it was saved by a newer version of the studio (record schema {schema})")
        raise _Unusable(f"its {TAKE_FILE} has no known schema version")

    def value_of(name: str, kind: type | tuple[type, ...]) -> Any:
        value = record.get(name)
        # bool is an int to Python but never a valid number or count here.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise _Unusable(f"its {TAKE_FILE} has a missing or invalid '{name}'")
        return value

    take_id = value_of("id", str)
    if take_id != folder.name:
        raise _Unusable(f"its {TAKE_FILE} belongs to another take")
    created_at = value_of("created_at", str)
    try:
        if datetime.fromisoformat(created_at).tzinfo is None:
            raise ValueError
    except ValueError:
        raise _Unusable(f"its {TAKE_FILE} has an invalid 'created_at'") from None
    warnings = value_of("warnings", list)
    if not all(isinstance(w, str) for w in warnings):
        raise _Unusable(f"its {TAKE_FILE} has an invalid 'warnings'")
    fmt = value_of("format", str)
    if fmt not in STORABLE_FORMATS:
        raise _Unusable(f"its {TAKE_FILE} names an unknown audio format")
    # The audio name is fixed by the format, so a record can never point outside its folder.
    if value_of("audio", str) != f"{AUDIO_STEM}.{fmt}":
        raise _Unusable(f"its {TAKE_FILE} names an unexpected audio file")
    duration_s = float(value_of("duration_s", (int, float)))
    sample_rate = value_of("sample_rate", int)
    size_bytes = value_of("size_bytes", int)
    if not (math.isfinite(duration_s) and duration_s >= 0 and sample_rate > 0 and size_bytes >= 0):
        raise _Unusable(f"its {TAKE_FILE} has an impossible duration, sample rate or size")
    engine = record.get("engine", "torch")  # absent from takes kept before engines were named
    if not isinstance(engine, str) or not engine:
        raise _Unusable(f"its {TAKE_FILE} has an invalid 'engine'")
    status = record.get("status", TAKE_COMPLETE)  # absent from takes kept before Stop existed
    if status not in (TAKE_COMPLETE, TAKE_STOPPED):
        raise _Unusable(f"its {TAKE_FILE} has an invalid 'status'")
    counts = [record.get("stopped_at"), record.get("total_chunks")]
    if any(c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 0) for c in counts):
        raise _Unusable(f"its {TAKE_FILE} has an invalid 'stopped_at' or 'total_chunks'")
    try:
        parts = parts_from_record(record.get("parts"), folder)  # absent from takes kept before parts
    except BadParts as exc:
        raise _Unusable(f"its {TAKE_FILE} has invalid parts ({exc})") from None
    pause = record.get("parts_pause_s")
    if pause is not None and (isinstance(pause, bool) or not isinstance(pause, (int, float)) or not pause >= 0):
        raise _Unusable(f"its {TAKE_FILE} has an invalid 'parts_pause_s'")
    return Take(
        id=take_id,
        created_at=created_at,
        mode=value_of("mode", str),
        model=value_of("model", str),
        seed=value_of("seed", int),
        demo=value_of("demo", bool),
        text=value_of("text", str),
        voice=value_of("voice", dict),
        language=value_of("language", str),
        sampling=value_of("sampling", dict),
        request=value_of("request", dict),
        timings=value_of("timings", dict),
        warnings=warnings,
        duration_s=duration_s,
        sample_rate=sample_rate,
        format=fmt,
        audio_path=folder / f"{AUDIO_STEM}.{fmt}",
        size_bytes=size_bytes,
        engine=engine,
        status=status,
        stopped_at=counts[0],
        total_chunks=counts[1],
        parts=parts,
        parts_pause_s=None if pause is None else float(pause),
    )


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _when(take: Take) -> datetime:
    return datetime.fromisoformat(take.created_at)


def _storable_format(fmt: Any) -> str:
    name = str(fmt).strip().lower().lstrip(".")
    if name == "opus":
        name = "ogg"
    if name == "pcm":
        raise InvalidInput(
            "Raw PCM has no header, so a take saved that way could not be played back; "
            "keep WAV or FLAC in the history and export PCM from it."
        )
    if name not in STORABLE_FORMATS:
        raise InvalidInput(f"Cannot keep a take as '{fmt}'; choose one of {', '.join(STORABLE_FORMATS)}.")
    return name


def _json_dict(value: Any, what: str) -> dict[str, Any]:
    """``value`` as it will read back from JSON (tuples become lists, number keys strings)."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"The {what} stored with a take must be a dict, not {type(value).__name__}.")
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        # json's own message names the offending type, never the data itself.
        raise InvalidInput(
            f"The {what} stored with a take must hold only text, numbers, booleans, lists and dicts ({exc})."
        ) from None


def _is_take_folder(folder: Path) -> bool:
    return folder.is_dir() and not folder.is_symlink()


def _bad_id_message(take_id: Any) -> str:
    if isinstance(take_id, str) and not take_id.strip():
        return "No take was chosen: the take id is empty."
    shown = ""
    if isinstance(take_id, str) and len(take_id) <= 64 and take_id.isprintable():
        shown = f" '{take_id}'"
    return f"The take id{shown} is not valid; take ids look like {_ID_EXAMPLE}."


def _not_found_message(take_id: str) -> str:
    return f"There is no take {take_id} in the history; it may have been deleted or pruned."


def _haystack(take: Take) -> str:
    parts = [take.text, take.mode, take.model, take.id, *_strings(take.voice)]
    return fold("\n".join(parts))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# --- files ---------------------------------------------------------------


def _empty_trash(removed: list[tuple[str, Path]]) -> None:
    # Outside the lock: the take is already gone from every listing, and a
    # large folder should not hold up other writers while it is deleted.
    for _, folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
