"""The voice library: a creator's saved voices, kept safe on disk.

Layout under the library root (``<data_dir>/voices/``), one folder per voice::

    .lock                                  cross-process lock file (filelock)
    <id>/voice.json                        the voice's record (schema 1, UTF-8 JSON)
    <id>/reference.wav                     the trimmed reference clip, 24 kHz mono PCM_16
    <id>/prompts/<checkpoint>.safetensors  cached clone prompt for one Base checkpoint
    .tmp-<uuid>/                           a save or import being built (ignored when listing)
    .trash-<uuid>/                         a voice being deleted (ignored when listing)

Why it is built this way:

- A voice appears in one ``os.rename`` of a fully written, fsynced folder, and
  disappears in one rename to ``.trash-*``, so a crash never leaves half a
  voice that lists. ``voice.json`` edits go through a temp file and
  ``os.replace``. Leftover ``.tmp-*`` / ``.trash-*`` folders are removed once
  they are an hour old (a live save in another process may still own a young one).
- Ids are ASCII slugs chosen by the library, never by the user, and every
  path is ``root / <slug>``: no name, tag or archive member can reach outside
  the root. Names are free text and unique case-insensitively.
- The name check, id choice and final rename happen under one
  ``filelock.FileLock`` on ``root/.lock``, so concurrent saves from threads
  and processes cannot take the same name or id.
- ``reference.wav`` is 16-bit PCM: what every editor plays, half the size of
  float, and its quantisation noise (-96 dBFS) is far below what the speaker
  encoder hears. Prompts are always encoded from the file as stored, so a
  cached prompt and a fresh one see exactly the same samples.
- A cached prompt records the SHA-256 of the reference file and the
  transcript it was made from; it is used only while both still match the
  voice on disk, so a changed reference or transcript can never reuse a stale
  speaker embedding. A damaged prompt file is ignored and re-encoded.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import stat
import time
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock
import numpy as np
import safetensors
import safetensors.torch
import soundfile as sf

from core.audio import TARGET_SAMPLE_RATE, Audio, encode, load_audio
from core.errors import AudioError, InvalidInput, LibraryError, VoiceNotFound
from core.reference import ReferenceOptions
from core.engine.synthesis import ClonePrompt, normalize_language
from core.storage.durable import write_file as _write_file, write_atomic as _write_atomic, fsync_file as _fsync_file, fsync_dir as _fsync_dir
from core.storage.durable import holding, remove_if_stale

log = logging.getLogger(__name__)

__all__ = ["SCHEMA_VERSION", "KINDS", "Voice", "VoiceLibrary"]

SCHEMA_VERSION = 1
KINDS = ("clone", "design")

MAX_NAME_CHARS = 100
MAX_ID_CHARS = 48
MAX_TAGS = 32
MAX_TAG_CHARS = 40
MAX_TRANSCRIPT_CHARS = 5_000
MAX_DESCRIPTION_CHARS = 2_000  # the synthesis service's own limit for design text
MAX_NOTES_CHARS = 10_000
MAX_CONSENT_CHARS = 2_000
MAX_SOURCE_NAME_CHARS = 255
# Below half a second the speaker encoder has nothing to work with; above a
# minute every prompt encode gets slow for no gain (3-30 s clones best).
MIN_REFERENCE_SECONDS = 0.5
MAX_REFERENCE_SECONDS = 60.0

# Import limits. A real export holds two files per voice (plus optional folder
# entries); the byte caps sit well above a 60 s reference even as 96 kHz
# 24-bit stereo, and the ratio check catches a bomb before a byte is inflated.
MAX_IMPORT_MEMBERS = 6_000
MAX_IMPORT_JSON_BYTES = 1 << 20
MAX_IMPORT_REFERENCE_BYTES = 64 << 20
MAX_IMPORT_TOTAL_BYTES = 4 << 30
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 << 20  # tiny members may compress absurdly well and still be harmless

STALE_TEMP_SECONDS = 3_600.0
LOCK_TIMEOUT_S = 60.0
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
# An import's journal (root/.import-<batch>.json) and the marker it leaves in
# each voice folder it installs (<voice>/.import-<batch>). Deleting the journal
# is the commit point: voices still carrying the marker of a journal that
# exists belong to an import that has not finished, so they are hidden and,
# after a crash, removed. That keeps "every voice or none" across a SIGKILL.
IMPORT_PREFIX = ".import-"
VOICE_FILE = "voice.json"
REFERENCE_FILE = "reference.wav"
PROMPTS_DIR = "prompts"
PROMPT_FORMAT = "qwen-tts-studio-prompt/1"

_ID_RE = re.compile(rf"[a-z0-9](?:[a-z0-9-]{{0,{MAX_ID_CHARS - 2}}}[a-z0-9])?")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_CHECKPOINT_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Device names Windows refuses as file names, whatever the extension.
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_TRIM_KEYS = ("start_s", "end_s", "trim_silence", "normalize")
_ARCHIVE_FILES = {VOICE_FILE: MAX_IMPORT_JSON_BYTES, REFERENCE_FILE: MAX_IMPORT_REFERENCE_BYTES}
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
        }


class _Unusable(Exception):
    """A folder or archive entry that is not a usable voice; the message says why."""


class VoiceLibrary:
    """The voices under one root folder. Safe to share between threads and processes."""

    def __init__(self, root: Path | str, *, lock_timeout: float = LOCK_TIMEOUT_S):
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LibraryError(f"Cannot create the voice library folder {self.root} ({exc.strerror}).") from exc
        # Human messages about entries skipped by the last listing.
        self.warnings: list[str] = []
        self._lock = filelock.FileLock(str(self.root / ".lock"), timeout=lock_timeout)
        # folder name -> (voice.json identity, parsed Voice). os.replace gives an
        # edited voice.json a new inode, so (inode, mtime, size) never misses an edit
        # and listing 1,000 voices costs two stats each instead of 1,000 JSON parses.
        self._cache: dict[str, tuple[tuple[int, int, int], Voice]] = {}
        self._logged: set[str] = set()
        self._active_imports: set[str] = set()  # batches this instance is installing now

    # --- reading ---------------------------------------------------------

    def list(
        self,
        query: str | None = None,
        kind: str | None = None,
        language: str | None = None,
        tag: str | None = None,
    ) -> list[Voice]:
        """Voices sorted by name; every filter given must match.

        ``query`` is split into words and each word must appear (case-insensitively)
        in the name, tags, notes, description or transcript.
        """
        voices = self._scan()
        if kind:
            wanted_kind = _clean_kind(kind)
            voices = [v for v in voices if v.kind == wanted_kind]
        if language:
            wanted_language = _clean_language(language)
            voices = [v for v in voices if v.language == wanted_language]
        if tag and tag.strip():
            wanted_tag = _fold(tag.strip())
            voices = [v for v in voices if any(_fold(t) == wanted_tag for t in v.tags)]
        if query and query.strip():
            terms = _fold(query).split()
            voices = [v for v in voices if all(term in _haystack(v) for term in terms)]
        return sorted(voices, key=lambda v: (_fold(v.name), v.id))

    def get(self, name_or_id: str | Voice) -> Voice:
        """A voice by exact id, else by name (case-insensitive)."""
        if isinstance(name_or_id, Voice):
            name_or_id = name_or_id.id
        if not isinstance(name_or_id, str) or not name_or_id.strip():
            raise VoiceNotFound("Choose a voice: no voice name was given.")
        wanted = name_or_id.strip()
        voices = self._scan()
        for voice in voices:
            if voice.id == wanted:
                return voice
        folded = _fold(wanted)
        for voice in voices:
            if _fold(voice.name) == folded:
                return voice
        raise VoiceNotFound(_not_found_message(wanted, voices))

    def reference_audio(self, name_or_id: str | Voice) -> Audio:
        """The stored reference clip, exactly as prompts are encoded from it."""
        voice = self.get(name_or_id)
        return _decode_reference(voice, _read_reference(voice))

    # --- writing ---------------------------------------------------------

    def save(
        self,
        *,
        name: str,
        kind: str,
        reference: Audio,
        transcript: str | None,
        language: str = "auto",
        description: str | None = None,
        tags: Iterable[str] | str = (),
        notes: str = "",
        source_name: str | None = None,
        consent: str = "",
        trim: ReferenceOptions | Mapping[str, Any] | None = None,
    ) -> Voice:
        """Saves a new voice; its name must not be taken (case-insensitively)."""
        name = _clean_name(name)
        record = _clean_record_fields(
            kind=kind, language=language, transcript=transcript, description=description,
            tags=tags, notes=notes, source_name=source_name, consent=consent, trim=trim,
        )
        wav = encode(_check_reference(reference), "wav")
        now = _now()
        record.update(
            name=name,
            reference_sha256=hashlib.sha256(wav).hexdigest(),
            reference_seconds=_wav_seconds(wav),
            created_at=now,
            updated_at=now,
        )
        with _disk_errors(f"save the voice '{name}'"), self._staging() as staged:
            _write_file(staged / REFERENCE_FILE, wav)
            voice = self._install(staged, record)
        log.info("event=voice_saved id=%s kind=%s seconds=%.2f", voice.id, voice.kind, voice.reference_seconds)
        return voice

    def rename(self, name_or_id: str | Voice, new_name: str) -> Voice:
        """Changes the display name; the id (and folder) stay, so links keep working."""
        new_name = _clean_name(new_name)
        with self._locked():
            voice = self.get(name_or_id)
            if new_name == voice.name:
                return voice
            clash = next(
                (v for v in self._scan() if v.id != voice.id and _fold(v.name) == _fold(new_name)), None
            )
            if clash is not None:
                raise LibraryError(_name_taken_message(new_name))
            renamed = replace(voice, name=new_name, updated_at=_now())
            with _disk_errors(f"rename the voice '{voice.name}'"):
                self._write_record(renamed)
        return renamed

    def update(
        self,
        name_or_id: str | Voice,
        *,
        tags: Iterable[str] | str | None = None,
        notes: str | None = None,
        transcript: str | None = None,
        language: str | None = None,
        consent: str | None = None,
        description: str | None = None,
        reference: Audio | None = None,
        trim: ReferenceOptions | Mapping[str, Any] | None = None,
    ) -> Voice:
        """Changes the given fields; None leaves a field as it is.

        An empty ``transcript`` or ``description`` clears it. ``trim`` is only
        accepted with a new ``reference`` (it describes that clip). A new
        transcript or reference makes every cached prompt stale, so they are deleted.
        """
        changes: dict[str, Any] = {}
        if tags is not None:
            changes["tags"] = _clean_tags(tags)
        if notes is not None:
            changes["notes"] = _clean_text(notes, "The notes", MAX_NOTES_CHARS, multiline=True)
        if transcript is not None:
            changes["transcript"] = _clean_text(
                transcript, "The transcript", MAX_TRANSCRIPT_CHARS, multiline=True, optional=True
            )
        if language is not None:
            changes["language"] = _clean_language(language)
        if consent is not None:
            changes["consent"] = _clean_text(consent, "The consent note", MAX_CONSENT_CHARS, multiline=True)
        if description is not None:
            changes["description"] = _clean_text(
                description, "The description", MAX_DESCRIPTION_CHARS, multiline=True, optional=True
            )
        wav: bytes | None = None
        if reference is not None:
            wav = encode(_check_reference(reference), "wav")
            changes.update(
                reference_sha256=hashlib.sha256(wav).hexdigest(),
                reference_seconds=_wav_seconds(wav),
                trim=_clean_trim(trim),
            )
        elif trim is not None:
            raise LibraryError("Trim settings describe a reference clip; pass them together with the new reference.")

        with self._locked():
            voice = self.get(name_or_id)
            updated = replace(voice, **changes)
            if updated == voice and wav is None:
                return voice
            updated = replace(updated, updated_at=_now())
            with _disk_errors(f"update the voice '{voice.name}'"):
                self._write_changes(voice, updated, wav)
        return updated

    def duplicate(self, name_or_id: str | Voice, new_name: str | None = None) -> Voice:
        """A copy with its own id; the default name is "<name> (copy)", "(copy 2)", ..."""
        explicit = None if new_name is None else _clean_name(new_name)
        with _disk_errors("copy the voice"), self._locked():
            source = self.get(name_or_id)
            data = _read_reference(source)
            now = _now()
            record = source.as_dict()
            record.update(
                name=explicit or source.name,
                reference_sha256=hashlib.sha256(data).hexdigest(),
                created_at=now,
                updated_at=now,
            )
            with self._staging() as staged:
                _write_file(staged / REFERENCE_FILE, data)
                # The prompts are still valid for the copy (same clip, same
                # transcript), so copying them saves an encode per model size.
                prompts = source.folder / PROMPTS_DIR
                if prompts.is_dir():
                    (staged / PROMPTS_DIR).mkdir()
                    for item in prompts.glob("*.safetensors"):
                        try:
                            _write_file(staged / PROMPTS_DIR / item.name, item.read_bytes())
                        except OSError:
                            pass  # only a cache; it is rebuilt on first use
                return self._install(staged, record, rename_on_clash=None if explicit else "copy")

    def delete(self, name_or_id: str | Voice) -> None:
        """Removes a voice. It stops listing the moment its folder is renamed away."""
        with _disk_errors("delete the voice"), self._locked():
            voice = self.get(name_or_id)
            trash = self._remove_folder(voice.folder)
        self._cache.pop(voice.id, None)
        log.info("event=voice_deleted id=%s", voice.id)
        shutil.rmtree(trash, ignore_errors=True)

    # --- prompt cache ----------------------------------------------------

    def cached_prompt(self, voice: str | Voice, checkpoint_key: str) -> ClonePrompt | None:
        """The cached prompt for ``checkpoint_key``, or None if absent, stale or damaged."""
        current = self.get(voice)  # the record on disk, not a possibly stale snapshot
        path = _prompt_path(current, checkpoint_key)
        if not path.is_file():
            return None
        data = _read_reference(current)
        return _load_prompt(path, checkpoint_key, hashlib.sha256(data).hexdigest(), current.transcript)

    def store_prompt(self, voice: str | Voice, prompt: ClonePrompt) -> Path:
        """Caches ``prompt``, made from ``voice``'s reference and transcript as given.

        Pass the Voice the prompt was encoded from: if it has changed since,
        the stored prompt simply never matches and is rebuilt.
        """
        current = self.get(voice)  # must be a voice of *this* library, whatever root a snapshot carries
        snapshot = voice if isinstance(voice, Voice) else current
        return self._write_prompt(current, prompt, snapshot.reference_sha256, snapshot.transcript)

    def prompt_for(
        self,
        voice: str | Voice,
        checkpoint_key: str,
        encode: Callable[[Audio, str | None], ClonePrompt],
    ) -> tuple[ClonePrompt, bool]:
        """The voice's prompt for a checkpoint: from the cache (True) or freshly encoded (False).

        ``encode(reference_audio, transcript)`` is called only on a cache miss;
        its result is stored. Failing to store is logged, never fatal.
        """
        current = self.get(voice)
        path = _prompt_path(current, checkpoint_key)
        data = _read_reference(current)
        sha = hashlib.sha256(data).hexdigest()
        if path.is_file():
            cached = _load_prompt(path, checkpoint_key, sha, current.transcript)
            if cached is not None:
                return cached, True
        prompt = encode(_decode_reference(current, data), current.transcript)
        if not isinstance(prompt, ClonePrompt):
            raise TypeError(f"encode must return a ClonePrompt, not {type(prompt).__name__}")
        if prompt.checkpoint_key != checkpoint_key:
            raise LibraryError(
                f"The prompt was made with {prompt.checkpoint_key}, not {checkpoint_key}; "
                "encode it with the model the prompt is asked for."
            )
        try:
            self._write_prompt(current, prompt, sha, current.transcript)
        except (LibraryError, OSError) as exc:
            log.warning("Could not cache the prompt of voice '%s' for %s: %s", current.name, checkpoint_key, exc)
        return prompt, False

    # --- import / export -------------------------------------------------

    def export_zip(self, names_or_ids: Iterable[str | Voice] | str, dest: Path | str) -> Path:
        """Writes ``<id>/voice.json`` and ``<id>/reference.wav`` per voice (no prompt caches).

        ``dest`` is the zip file, or an existing folder to write a dated one into.
        """
        if isinstance(names_or_ids, (str, Voice)):
            names_or_ids = [names_or_ids]
        voices: dict[str, Voice] = {}
        for item in names_or_ids:
            voice = self.get(item)
            voices.setdefault(voice.id, voice)
        if not voices:
            raise LibraryError("Choose at least one voice to export.")
        dest = Path(dest).expanduser()
        if dest.is_dir():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            dest = dest / f"qwen-tts-voices-{stamp}.zip"
        dest = dest.resolve()
        if dest == self.root or self.root in dest.parents:
            raise LibraryError("Choose a destination outside the voice library folder for the export.")
        if not dest.parent.is_dir():
            raise LibraryError(f"The folder {dest.parent} does not exist; choose an existing folder for the export.")
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for voice in voices.values():
                    # Read record and clip under the lock so a concurrent
                    # update cannot pair a new clip with an old record.
                    with self._locked():
                        current = self.get(voice.id)
                        wav = _read_reference(current)
                    record = current.as_dict()
                    record["reference_sha256"] = hashlib.sha256(wav).hexdigest()
                    archive.writestr(f"{current.id}/{VOICE_FILE}", _record_bytes(record))
                    archive.writestr(f"{current.id}/{REFERENCE_FILE}", wav)
            _fsync_file(part)
            os.replace(part, dest)
        except OSError as exc:
            raise LibraryError(f"Could not write the export to {dest} ({exc.strerror or exc}).") from exc
        finally:
            part.unlink(missing_ok=True)
        log.info("event=voices_exported count=%d path=%s", len(voices), dest)
        return dest

    def import_zip(self, path: Path | str) -> list[Voice]:
        """Imports every voice in an export, or none of them.

        The whole archive is checked (structure, sizes, records, audio) before
        a single byte is written to the library. Voices are then staged in
        hidden ``.tmp-*`` folders and installed under the lock; if one fails,
        the ones already installed by this import are removed again. A name
        already in the library gets " (imported)", " (imported 2)", ... appended.
        """
        path = Path(path).expanduser()
        label = path.name
        if not path.is_file():
            raise LibraryError(f"The file '{label}' does not exist.")
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise LibraryError(
                f"'{label}' is not a valid zip archive, or it is damaged or incomplete "
                "(was the download cut short?)."
            ) from exc
        installed: list[Voice] = []
        with archive, _disk_errors(f"import '{label}'"), self._staging_many() as stage:
            plan = _check_archive(archive.infolist(), label)
            # Pass one only validates, keeping nothing, so a bad last voice
            # costs no disk writes and a big archive never sits in memory;
            # pass two reads each voice again (decoding is cheap) and stages it.
            for voice_id, members in plan.items():
                _read_archived_voice(archive, voice_id, members, label)
            batch = uuid.uuid4().hex
            marker = f"{IMPORT_PREFIX}{batch}"
            staged: list[tuple[Path, dict[str, Any], str]] = []
            for voice_id, members in plan.items():
                record, wav = _read_archived_voice(archive, voice_id, members, label)
                folder = stage()
                _write_file(folder / REFERENCE_FILE, wav)
                _write_file(folder / marker, b"")
                staged.append((folder, record, voice_id))
            journal = self.root / f"{marker}.json"
            with self._locked():
                self._active_imports.add(batch)
                try:
                    _write_atomic(journal, json.dumps({"archive": label, "voices": len(staged)}).encode())
                    for folder, record, voice_id in staged:
                        installed.append(
                            self._install(folder, record, rename_on_clash="imported", prefer_id=voice_id)
                        )
                    journal.unlink()  # the commit point
                    _fsync_dir(self.root)
                except BaseException:
                    for voice in installed:
                        shutil.rmtree(self._remove_folder(voice.folder), ignore_errors=True)
                    journal.unlink(missing_ok=True)
                    raise
                finally:
                    self._active_imports.discard(batch)
            for voice in installed:  # committed: the markers are now just clutter
                try:
                    (voice.folder / marker).unlink()
                except OSError:
                    pass
        log.info("event=voices_imported count=%d archive=%s", len(installed), label)
        return installed

    # --- internals -------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # FileLock is re-entrant per thread, so locked methods may call each other.
        with holding(self._lock, LibraryError("The voice library is busy (another window or process is saving); try again in a moment.")):
            yield

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        """A hidden folder to build a voice in; removed unless it was installed."""
        with self._staging_many() as stage:
            yield stage()

    @contextmanager
    def _staging_many(self) -> Iterator[Callable[[], Path]]:
        made: list[Path] = []

        def stage() -> Path:
            folder = self.root / f"{TMP_PREFIX}{uuid.uuid4().hex}"
            folder.mkdir()
            made.append(folder)
            return folder

        try:
            yield stage
        finally:
            for folder in made:
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)

    def _install(
        self,
        staged: Path,
        record: dict[str, Any],
        *,
        rename_on_clash: str | None = None,
        prefer_id: str | None = None,
    ) -> Voice:
        """Names, numbers and publishes a staged folder in one locked step."""
        with self._locked():
            taken = {_fold(v.name) for v in self._scan()}
            name = record["name"]
            if _fold(name) in taken:
                if rename_on_clash is None:
                    raise LibraryError(_name_taken_message(name))
                name = _unique_name(name, rename_on_clash, taken)
            if prefer_id and _ID_RE.fullmatch(prefer_id) and not self._id_taken(prefer_id):
                voice_id = prefer_id
            else:
                voice_id = self._allocate_id(_slugify(name))
            record = {**record, "schema": SCHEMA_VERSION, "id": voice_id, "name": name}
            voice = _voice_from_record(record, self.root, voice_id)  # the record must read back
            _write_file(staged / VOICE_FILE, _record_bytes(voice.as_dict()))
            _fsync_dir(staged)
            target = self._folder(voice_id)
            os.rename(staged, target)
            _fsync_dir(self.root)
        return voice

    def _write_record(self, voice: Voice) -> None:
        _write_atomic(self._folder(voice.id) / VOICE_FILE, _record_bytes(voice.as_dict()))

    def _write_changes(self, voice: Voice, updated: Voice, wav: bytes | None) -> None:
        if wav is not None:
            # Written before voice.json: after a crash between the two the
            # record's hash is stale, which only ever invalidates prompts.
            _write_atomic(voice.reference_path, wav)
        self._write_record(updated)
        if updated.transcript != voice.transcript or wav is not None:
            shutil.rmtree(voice.folder / PROMPTS_DIR, ignore_errors=True)

    def _write_prompt(self, voice: Voice, prompt: ClonePrompt, reference_sha256: str, transcript: str | None) -> Path:
        if not isinstance(prompt, ClonePrompt):
            raise TypeError(f"prompt must be a ClonePrompt, not {type(prompt).__name__}")
        path = _prompt_path(voice, prompt.checkpoint_key)
        tensors = {"speaker_embedding": prompt.speaker_embedding.detach().cpu().contiguous()}
        if prompt.ref_code is not None:
            tensors["ref_code"] = prompt.ref_code.detach().cpu().contiguous()
        metadata = {
            "format": PROMPT_FORMAT,
            "checkpoint_key": prompt.checkpoint_key,
            "reference_sha256": reference_sha256,
            # JSON keeps None distinct from "" in safetensors' string-only metadata.
            "transcript": json.dumps(transcript),
            "ref_text": json.dumps(prompt.ref_text),
            "x_vector_only": json.dumps(bool(prompt.x_vector_only)),
        }
        data = safetensors.torch.save(tensors, metadata=metadata)
        folder = self._folder(voice.id)
        try:
            # No parents=True: a voice deleted meanwhile must not be resurrected
            # as a folder holding only prompts.
            (folder / PROMPTS_DIR).mkdir(exist_ok=True)
        except FileNotFoundError:
            raise VoiceNotFound(f"The voice '{voice.name}' was deleted; its prompt was not cached.") from None
        _write_atomic(path, data)
        return path

    def _folder(self, voice_id: str) -> Path:
        # Ids are slugs (no separators, no dots), so this is always a direct
        # child of the root; the checks below guard against future mistakes.
        if not _ID_RE.fullmatch(voice_id):
            raise LibraryError(f"'{voice_id}' is not a valid voice id.")
        folder = self.root / voice_id
        if folder.parent != self.root or folder.is_symlink():
            raise LibraryError(f"The voice folder '{voice_id}' is not inside the voice library.")
        return folder

    def _id_taken(self, voice_id: str) -> bool:
        return os.path.lexists(self.root / voice_id)

    def _allocate_id(self, base: str) -> str:
        if not self._id_taken(base):
            return base
        for number in range(2, 10_000):
            suffix = f"-{number}"
            candidate = base[: MAX_ID_CHARS - len(suffix)].rstrip("-") + suffix
            if not self._id_taken(candidate):
                return candidate
        return f"voice-{uuid.uuid4().hex[:12]}"

    def _remove_folder(self, folder: Path) -> Path:
        """Renames a voice folder out of sight; the caller deletes the returned trash folder."""
        trash = self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
        os.rename(folder, trash)
        _fsync_dir(self.root)
        return trash

    def _roll_back_interrupted_imports(self, markers: set[str]) -> bool:
        """Removes what crashed imports installed; True if anything changed.

        Only when no import is running anywhere: the library lock is free (no
        other process or thread holds it) and this instance runs none."""
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        changed = False
        try:
            for marker in markers:
                if marker[len(IMPORT_PREFIX):] in self._active_imports:
                    continue
                for entry in os.scandir(self.root):
                    if _ID_RE.fullmatch(entry.name) and os.path.exists(os.path.join(entry.path, marker)):
                        shutil.rmtree(self._remove_folder(Path(entry.path)), ignore_errors=True)
                (self.root / f"{marker}.json").unlink(missing_ok=True)
                _fsync_dir(self.root)
                log.warning("event=import_rolled_back journal=%s", marker)
                changed = True
        finally:
            self._lock.release()
        return changed

    def _scan(self) -> list[Voice]:
        voices: list[Voice] = []
        warnings: list[str] = []
        cache: dict[str, tuple[tuple[int, int, int], Voice]] = {}
        now = time.time()
        try:
            entries = list(os.scandir(self.root))
        except OSError as exc:
            raise LibraryError(f"Cannot read the voice library folder {self.root} ({exc.strerror}).") from exc
        open_imports = {
            e.name[: -len(".json")] for e in entries
            if e.name.startswith(IMPORT_PREFIX) and e.name.endswith(".json")
        }
        if open_imports and self._roll_back_interrupted_imports(open_imports):
            return self._scan()
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                if name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                    _remove_if_stale(entry, now)
                continue
            try:
                if entry.is_symlink():
                    # Following a link could read or write outside the library root.
                    warnings.append(f"Skipped '{name}' in the voice library: it is a link, which the library does not follow.")
                    continue
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            if not _ID_RE.fullmatch(name):
                warnings.append(f"Skipped the folder '{name}' in the voice library: it is not a voice folder.")
                continue
            folder = Path(entry.path)
            if open_imports and any(os.path.exists(folder / m) for m in open_imports):
                continue  # part of an import that has not committed
            try:
                info = os.stat(folder / VOICE_FILE)
                os.stat(folder / REFERENCE_FILE)
            except FileNotFoundError as exc:
                missing = Path(exc.filename or "").name or "a file"
                warnings.append(
                    f"Skipped the voice folder '{name}': its {missing} is missing "
                    "(it may be left over from an interrupted save)."
                )
                continue
            except OSError as exc:
                warnings.append(f"Skipped the voice folder '{name}': it cannot be read ({exc.strerror}).")
                continue
            key = (info.st_ino, info.st_mtime_ns, info.st_size)
            cached = self._cache.get(name)
            if cached is not None and cached[0] == key:
                voice = cached[1]
            else:
                try:
                    voice = _read_voice(folder, self.root)
                except _Unusable as exc:
                    warnings.append(f"Skipped the voice folder '{name}': {exc}.")
                    continue
            cache[name] = (key, voice)
            voices.append(voice)
        self._cache = cache
        self.warnings = warnings
        for message in warnings:
            if message not in self._logged:  # once per message, not on every listing
                self._logged.add(message)
                log.warning(message)
        return voices


@contextmanager
def _disk_errors(action: str) -> Iterator[None]:
    """Turns a disk failure (full, read-only, permissions) into a sentence for the user."""
    try:
        yield
    except OSError as exc:
        raise LibraryError(f"Could not {action} ({exc.strerror or exc}); nothing was changed.") from exc


# --- validation ----------------------------------------------------------


def _clean_name(value: Any) -> str:
    if not isinstance(value, str):
        raise LibraryError("The voice name must be text.")
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise LibraryError("Give the voice a name.")
    if "\x00" in name:
        raise LibraryError("The voice name contains a NUL character, which is not allowed; use plain text.")
    if _bad_char(name, multiline=False):
        raise LibraryError(
            "The voice name contains a control character (such as a line break or tab); use plain text."
        )
    if len(name) > MAX_NAME_CHARS:
        raise LibraryError(
            f"The voice name is {len(name):,} characters long; keep it to {MAX_NAME_CHARS} or fewer."
        )
    return name


def _clean_text(
    value: Any, what: str, max_chars: int, *, multiline: bool, optional: bool = False
) -> Any:
    """Stripped NFC text; for ``optional`` fields an empty value becomes None."""
    if value is None:
        return None if optional else ""
    if not isinstance(value, str):
        raise LibraryError(f"{what} must be text.")
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
    if _bad_char(text, multiline=multiline):
        raise LibraryError(f"{what} contains a control character (such as NUL); remove it.")
    if len(text) > max_chars:
        raise LibraryError(f"{what} is {len(text):,} characters long; keep it to {max_chars:,} or fewer.")
    if optional and not text:
        return None
    return text


def _bad_char(text: str, *, multiline: bool) -> bool:
    # Cc: control characters (NUL, line breaks, DEL, C1); Zl/Zp: line and
    # paragraph separators; Cs: lone surrogates that cannot be written as UTF-8.
    # Format characters (Cf) stay allowed: emoji sequences rely on the ZWJ.
    allowed = "\n\t" if multiline else ""
    return any(
        unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") and c not in allowed for c in text
    )


def _clean_kind(value: Any) -> str:
    kind = str(value).strip().lower() if isinstance(value, str) else None
    if kind not in KINDS:
        raise LibraryError(f"The voice kind must be 'clone' or 'design', not {value!r}.")
    return kind


def _clean_language(value: Any) -> str:
    if not isinstance(value, str):
        raise LibraryError("The language must be text, such as 'auto' or 'English'.")
    try:
        return normalize_language(value)
    except InvalidInput as exc:
        raise LibraryError(str(exc)) from None


def _clean_tags(value: Iterable[str] | str) -> tuple[str, ...]:
    # A single string is what a text box gives: "warm, narrator, en".
    if not isinstance(value, (str, list, tuple, set, frozenset)):
        raise LibraryError("Tags must be text (comma separated) or a list of text.")
    items = value.split(",") if isinstance(value, str) else list(value)
    tags: list[str] = []
    seen: set[str] = set()
    for item in items:
        tag = _clean_text(item, "A tag", MAX_TAG_CHARS, multiline=False)
        tag = " ".join(tag.split())
        if tag and _fold(tag) not in seen:
            seen.add(_fold(tag))
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise LibraryError(f"A voice can have at most {MAX_TAGS} tags; this one has {len(tags)}.")
    return tuple(tags)


def _clean_trim(value: Any) -> ReferenceOptions | None:
    if value is None or isinstance(value, ReferenceOptions):
        return value
    if not isinstance(value, Mapping) or set(value) - set(_TRIM_KEYS):
        raise LibraryError(
            "The trim settings must be ReferenceOptions or a mapping of start_s, end_s, trim_silence and normalize."
        )
    start, end = value.get("start_s"), value.get("end_s")
    for seconds in (start, end):
        if seconds is not None and not (_is_number(seconds) and 0 <= seconds < 1e6):
            raise LibraryError("The trim start and end must be numbers of seconds (or empty).")
    flags = (value.get("trim_silence", True), value.get("normalize", True))
    if not all(isinstance(flag, bool) for flag in flags):
        raise LibraryError("The trim settings' trim_silence and normalize must be true or false.")
    return ReferenceOptions(
        start_s=None if start is None else float(start),
        end_s=None if end is None else float(end),
        trim_silence=flags[0],
        normalize=flags[1],
    )


def _clean_record_fields(
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
    cleaned_trim = _clean_trim(trim)
    return {
        "kind": _clean_kind(kind),
        "language": _clean_language(language),
        "transcript": _clean_text(transcript, "The transcript", MAX_TRANSCRIPT_CHARS, multiline=True, optional=True),
        "description": _clean_text(
            description, "The description", MAX_DESCRIPTION_CHARS, multiline=True, optional=True
        ),
        "tags": list(_clean_tags(tags)),
        "notes": _clean_text(notes, "The notes", MAX_NOTES_CHARS, multiline=True),
        "source_name": _clean_text(
            source_name, "The source file name", MAX_SOURCE_NAME_CHARS, multiline=False, optional=True
        ),
        "consent": _clean_text(consent, "The consent note", MAX_CONSENT_CHARS, multiline=True),
        "trim": None if cleaned_trim is None else cleaned_trim.as_dict(),
    }


def _check_reference(audio: Any) -> Audio:
    if not isinstance(audio, Audio):
        raise AudioError("The reference must be decoded audio; load the clip with load_audio() first.")
    if audio.sample_rate != TARGET_SAMPLE_RATE:
        raise AudioError(
            f"The reference is {audio.sample_rate:,} Hz; resample it to 24 kHz "
            "(load_audio does this) before saving the voice."
        )
    if not np.isfinite(audio.samples).all():
        raise AudioError("The reference contains invalid samples (NaN or infinity); re-export it from your editor.")
    seconds = audio.duration
    if seconds < MIN_REFERENCE_SECONDS:
        raise AudioError(
            f"The reference is only {seconds:.2f} s long; a voice needs at least "
            f"{MIN_REFERENCE_SECONDS:.1f} s of speech (3-30 s clones best)."
        )
    if seconds > MAX_REFERENCE_SECONDS:
        raise AudioError(
            f"The reference is {seconds:.1f} s long; the library keeps at most "
            f"{MAX_REFERENCE_SECONDS:.0f} s. Trim it to the cleanest 3-30 s."
        )
    if not np.any(audio.samples):
        raise AudioError("The reference is completely silent; choose a clip with speech in it.")
    return audio


# --- records -------------------------------------------------------------


def _read_voice(folder: Path, root: Path) -> Voice:
    try:
        raw = (folder / VOICE_FILE).read_bytes()
    except OSError as exc:
        raise _Unusable(f"its {VOICE_FILE} cannot be read ({exc.strerror})") from exc
    if len(raw) > MAX_IMPORT_JSON_BYTES:
        raise _Unusable(f"its {VOICE_FILE} is too large to be a voice record")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Unusable(f"its {VOICE_FILE} is damaged (not valid JSON; it may have been cut short)") from None
    return _voice_from_record(data, root, folder.name)


def _voice_from_record(data: Any, root: Path, folder_name: str) -> Voice:
    """Type-checks a ``voice.json`` record; raises _Unusable with the reason."""
    if not isinstance(data, dict):
        raise _Unusable(f"its {VOICE_FILE} does not hold a voice record")
    schema = data.get("schema")
    if type(schema) is not int:
        raise _Unusable(f"its {VOICE_FILE} has no valid schema version")
    if schema > SCHEMA_VERSION:
        raise _Unusable(
            f"it was made by a newer version of Qwen TTS Studio (voice format {schema}); "
            "update the studio to use it"
        )
    if schema != SCHEMA_VERSION:
        raise _Unusable(f"its {VOICE_FILE} has an unknown schema version ({schema})")

    def get(key: str, check: Callable[[Any], bool], what: str, default: Any = _REQUIRED) -> Any:
        if key not in data:
            if default is _REQUIRED:
                raise _Unusable(f"its {VOICE_FILE} has no '{key}'")
            return default
        value = data[key]
        if not check(value):
            raise _Unusable(f"its {VOICE_FILE} has an invalid '{key}' (expected {what})")
        return value

    text = lambda v: isinstance(v, str)  # noqa: E731
    text_or_none = lambda v: v is None or isinstance(v, str)  # noqa: E731
    voice_id = get("id", text, "text")
    if voice_id != folder_name:
        raise _Unusable(f"its {VOICE_FILE} names the id '{voice_id}' but the folder is '{folder_name}'")
    trim = get("trim", lambda v: v is None or isinstance(v, dict), "an object or null", None)
    try:
        trim_options = _clean_trim(trim)
    except LibraryError:
        raise _Unusable(f"its {VOICE_FILE} has invalid trim settings") from None
    seconds = get("reference_seconds", lambda v: _is_number(v) and v > 0, "a positive number")
    return Voice(
        id=voice_id,
        name=get("name", lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty name"),
        kind=get("kind", lambda v: v in KINDS, "'clone' or 'design'"),
        language=get("language", text, "text", "auto"),
        transcript=get("transcript", text_or_none, "text or null", None),
        description=get("description", text_or_none, "text or null", None),
        tags=tuple(get("tags", lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v),
                       "a list of text", [])),
        notes=get("notes", text, "text", ""),
        source_name=get("source_name", text_or_none, "text or null", None),
        consent=get("consent", text, "text", ""),
        trim=trim_options,
        reference_sha256=get("reference_sha256", lambda v: isinstance(v, str) and bool(_SHA_RE.fullmatch(v)),
                             "a SHA-256 hex digest"),
        reference_seconds=float(seconds),
        created_at=get("created_at", _is_timestamp, "an ISO 8601 time"),
        updated_at=get("updated_at", _is_timestamp, "an ISO 8601 time"),
        root=root,
    )


def _record_bytes(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fold(text: str) -> str:
    # NFKC + casefold: "Ａnna", "ANNA" and "anna" are one name to a person.
    return unicodedata.normalize("NFKC", text).casefold()


def _haystack(voice: Voice) -> str:
    parts = [voice.name, *voice.tags, voice.notes, voice.description or "", voice.transcript or ""]
    return _fold("\n".join(parts))


def _slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:MAX_ID_CHARS].rstrip("-")
    if not slug:
        return "voice"
    if slug in _WINDOWS_RESERVED:
        return f"{slug}-voice"
    return slug


def _unique_name(name: str, word: str, taken: set[str]) -> str:
    for number in range(1, 10_000):
        suffix = f" ({word})" if number == 1 else f" ({word} {number})"
        candidate = name[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix
        if _fold(candidate) not in taken:
            return candidate
    raise LibraryError(_name_taken_message(name))


def _name_taken_message(name: str) -> str:
    return f"A voice named '{name}' already exists; choose another name or rename it first."


def _not_found_message(wanted: str, voices: list[Voice]) -> str:
    if not voices:
        return f"No voice named '{wanted}': the voice library is empty."
    by_fold = {_fold(v.name): v.name for v in voices}
    close = difflib.get_close_matches(_fold(wanted), list(by_fold), n=3, cutoff=0.6)
    if not close:
        return f"No voice named '{wanted}' in the library."
    names = [f"'{by_fold[c]}'" for c in close]
    options = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"No voice named '{wanted}' in the library. Did you mean {options}?"


# --- reference and prompt files -------------------------------------------


def _wav_seconds(wav: bytes) -> float:
    info = sf.info(io.BytesIO(wav))
    return round(info.frames / info.samplerate, 6)


def _read_reference(voice: Voice) -> bytes:
    try:
        return voice.reference_path.read_bytes()
    except OSError as exc:
        raise LibraryError(
            f"The reference clip of voice '{voice.name}' is missing or unreadable ({voice.reference_path}); "
            "delete the voice and save it again from the original recording."
        ) from exc


def _decode_reference(voice: Voice, data: bytes) -> Audio:
    try:
        return load_audio(data, max_seconds=MAX_REFERENCE_SECONDS + 1.0)
    except AudioError as exc:
        log.warning("reference of voice %s does not decode: %s", voice.id, exc)
        raise LibraryError(
            f"The reference clip of voice '{voice.name}' is damaged ({voice.reference_path}); "
            "delete the voice and save it again from the original recording."
        ) from exc


def _prompt_path(voice: Voice, checkpoint_key: str) -> Path:
    if not isinstance(checkpoint_key, str) or not _CHECKPOINT_KEY_RE.fullmatch(checkpoint_key):
        raise LibraryError(f"'{checkpoint_key}' is not a valid model key for a cached prompt.")
    return voice.folder / PROMPTS_DIR / f"{checkpoint_key}.safetensors"


def _load_prompt(path: Path, checkpoint_key: str, reference_sha256: str, transcript: str | None) -> ClonePrompt | None:
    """The prompt in ``path`` if it is intact and made from this exact clip and transcript."""
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            if (
                meta.get("format") != PROMPT_FORMAT
                or meta.get("checkpoint_key") != checkpoint_key
                or meta.get("reference_sha256") != reference_sha256
                or meta.get("transcript") != json.dumps(transcript)
            ):
                log.debug("stale cached prompt %s", path)
                return None
            names = set(handle.keys())
            speaker_embedding = handle.get_tensor("speaker_embedding")
            ref_code = handle.get_tensor("ref_code") if "ref_code" in names else None
        ref_text = json.loads(meta["ref_text"])
        x_vector_only = json.loads(meta["x_vector_only"])
        if not (isinstance(x_vector_only, bool) and (ref_text is None or isinstance(ref_text, str))):
            raise ValueError("bad metadata types")
        if not x_vector_only and ref_code is None:
            raise ValueError("an in-context prompt without ref_code")
    except Exception as exc:  # a cache must never be fatal: any damage means "encode again"
        log.warning("Ignoring the damaged cached prompt %s (%s); it will be encoded again.", path, exc)
        return None
    return ClonePrompt(
        checkpoint_key=checkpoint_key,
        speaker_embedding=speaker_embedding,
        ref_code=ref_code,
        ref_text=ref_text,
        x_vector_only=x_vector_only,
    )


# --- archives ------------------------------------------------------------


def _check_archive(infos: list[zipfile.ZipInfo], label: str) -> dict[str, dict[str, zipfile.ZipInfo]]:
    """Checks the central directory (no data is read) and groups members by voice id."""
    if len(infos) > MAX_IMPORT_MEMBERS:
        raise LibraryError(
            f"'{label}' holds {len(infos):,} files; a voice export holds at most {MAX_IMPORT_MEMBERS:,}. "
            "It was not imported."
        )
    plan: dict[str, dict[str, zipfile.ZipInfo]] = {}
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        _check_member_name(name, label)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise LibraryError(f"'{label}' contains a symbolic link ('{name}'), which is unsafe; it was not imported.")
        if name in seen:
            raise LibraryError(f"'{label}' contains '{name}' twice; it is not a valid voice export.")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise LibraryError(f"'{label}' is password-protected; export the voices again without a password.")
        parts = name.split("/")
        if info.is_dir():
            if len(parts) == 2 and parts[1] == "" and _ID_RE.fullmatch(parts[0]):
                continue
            raise LibraryError(_unexpected_member(label, name))
        if len(parts) != 2 or not _ID_RE.fullmatch(parts[0]) or parts[1] not in _ARCHIVE_FILES:
            raise LibraryError(_unexpected_member(label, name))
        limit = _ARCHIVE_FILES[parts[1]]
        if info.file_size > limit:
            raise LibraryError(
                f"'{name}' in '{label}' unpacks to {info.file_size:,} bytes, more than the "
                f"{limit:,} a voice file can be; the archive was not imported."
            )
        if info.file_size > RATIO_CHECK_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise LibraryError(
                f"'{name}' in '{label}' is compressed over {MAX_COMPRESSION_RATIO}-fold, which no voice "
                "file is (it looks like a zip bomb); the archive was not imported."
            )
        total += info.file_size
        if total > MAX_IMPORT_TOTAL_BYTES:
            raise LibraryError(
                f"'{label}' unpacks to more than {MAX_IMPORT_TOTAL_BYTES >> 30} GiB; it was not imported."
            )
        plan.setdefault(parts[0], {})[parts[1]] = info
    if not plan:
        raise LibraryError(f"'{label}' holds no voices; choose a zip made with Export.")
    for voice_id, members in plan.items():
        for needed in _ARCHIVE_FILES:
            if needed not in members:
                raise LibraryError(
                    f"The voice '{voice_id}' in '{label}' has no {needed}; the archive is incomplete and was not imported."
                )
    return plan


def _check_member_name(name: str, label: str) -> None:
    unsafe = f"'{label}' contains an unsafe path ('{name}'); it was not imported."
    if "\\" in name:
        raise LibraryError(f"'{label}' contains a Windows-style path with backslashes ('{name}'); it was not imported.")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise LibraryError(f"'{label}' contains an absolute path ('{name}'), which is unsafe; it was not imported.")
    if ".." in name.split("/"):
        raise LibraryError(
            f"'{label}' contains a path that climbs out of its folder ('{name}'), which is unsafe; it was not imported."
        )
    if not name or _bad_char(name, multiline=False):
        raise LibraryError(unsafe)


def _unexpected_member(label: str, name: str) -> str:
    return (
        f"'{label}' contains '{name}', which is not part of a voice export "
        f"(expected only <id>/{VOICE_FILE} and <id>/{REFERENCE_FILE}); it was not imported."
    )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    limit = _ARCHIVE_FILES[info.filename.split("/")[1]]
    try:
        with archive.open(info) as handle:
            # Never trust the declared size: read at most one byte past the cap.
            data = handle.read(limit + 1)
    except Exception as exc:  # BadZipFile (bad CRC), zlib.error, EOFError, unsupported method...
        raise LibraryError(
            f"'{info.filename}' in '{label}' is damaged and could not be unpacked; the archive was not imported."
        ) from exc
    if len(data) > limit:
        raise LibraryError(
            f"'{info.filename}' in '{label}' unpacks to more than {limit:,} bytes (it looks like a zip bomb); "
            "the archive was not imported."
        )
    return data


def _read_archived_voice(
    archive: zipfile.ZipFile, voice_id: str, members: dict[str, zipfile.ZipInfo], label: str
) -> tuple[dict[str, Any], bytes]:
    """One archived voice, fully validated: its cleaned record and canonical WAV bytes."""
    where = f"The voice '{voice_id}' in '{label}'"
    raw = _read_member(archive, members[VOICE_FILE], label)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LibraryError(f"{where} has a damaged {VOICE_FILE} (not valid JSON); nothing was imported.") from None
    try:
        voice = _voice_from_record(data, Path("."), voice_id)
    except _Unusable as exc:
        raise LibraryError(f"{where} cannot be imported: {exc}. Nothing was imported.") from None
    try:
        name = _clean_name(voice.name)
        record = _clean_record_fields(
            kind=voice.kind, language=voice.language, transcript=voice.transcript,
            description=voice.description, tags=voice.tags, notes=voice.notes,
            source_name=voice.source_name, consent=voice.consent, trim=voice.trim,
        )
    except LibraryError as exc:
        raise LibraryError(f"{where} cannot be imported: {exc} Nothing was imported.") from None

    wav_in = _read_member(archive, members[REFERENCE_FILE], label)
    try:
        # Only WAV is accepted, so hostile bytes never reach ffmpeg.
        fmt = sf.info(io.BytesIO(wav_in)).format
    except Exception:
        fmt = None
    if fmt not in ("WAV", "WAVEX"):
        raise LibraryError(f"{where} has a {REFERENCE_FILE} that is not WAV audio; nothing was imported.")
    try:
        audio = _check_reference(load_audio(wav_in, max_seconds=MAX_REFERENCE_SECONDS + 1.0))
    except AudioError as exc:
        raise LibraryError(f"{where} has an unusable {REFERENCE_FILE}: {exc} Nothing was imported.") from None
    # Re-encoded so the stored clip is always 24 kHz mono PCM_16; an export of
    # this library re-encodes to the very same bytes.
    wav = encode(audio, "wav")
    record.update(
        name=name,
        reference_sha256=hashlib.sha256(wav).hexdigest(),
        reference_seconds=_wav_seconds(wav),
        created_at=voice.created_at,
        updated_at=voice.updated_at,
    )
    return record, wav


# --- files ---------------------------------------------------------------


def _remove_if_stale(entry: os.DirEntry, now: float) -> None:
    remove_if_stale(entry, now, STALE_TEMP_SECONDS, "voice library")
