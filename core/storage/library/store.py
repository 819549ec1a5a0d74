"""The voice library: a creator's saved voices, kept safe on disk.

Layout under the library root (``<data_dir>/voices/``), one folder per voice::

    .lock                                  cross-process lock file (filelock)
    <id>/voice.json                        the voice's record (schema 1, UTF-8 JSON)
    <id>/reference.wav                     the trimmed reference clip, 24 kHz mono PCM_16
    <id>/prompts/<checkpoint>.safetensors  cached clone prompt for one Base checkpoint
    .tmp-<uuid>/                           a save or import being built (ignored when listing)
    .trash-<uuid>/                         a voice being deleted (ignored when listing)
    .import-<batch>.json                   the journal of an import not yet committed

Why it is built this way:

- Voices appear and disappear by whole-folder renames, under one
  cross-process lock (:mod:`core.storage.folder_store`), so a crash never
  leaves half a voice that lists. ``voice.json`` edits go through a temp file
  and ``os.replace``.
- Ids are ASCII slugs chosen by the library, never by the user, and every
  path is ``root / <slug>``: no name, tag or archive member can reach outside
  the root. Names are free text and unique case-insensitively; the name
  check, id choice and final rename happen under the lock, so concurrent
  saves from threads and processes cannot take the same name or id.
- ``reference.wav`` is 16-bit PCM: what every editor plays, half the size of
  float, and its quantisation noise (-96 dBFS) is far below what the speaker
  encoder hears.
- An import installs every voice of an archive or none, even across a
  SIGKILL: see :meth:`VoiceLibrary.import_zip`.

The record schema lives in :mod:`.records`, the prompt cache in
:mod:`.prompt_cache` and archive checks in :mod:`.archive`.
"""

from __future__ import annotations

import builtins  # the list() method shadows list[...] in the class's own annotations
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import filelock

from core.audio.clip import Audio
from core.audio.io import encode
from core.audio.reference import ReferenceOptions
from core.audio.speech_check import require_speech
from core.errors import LibraryError, VoiceNotFound
from core.events import Events, VoiceAction, VoiceChanged
from core.storage.durable import fsync_dir, write_atomic, write_file
from core.storage.folder_store import (
    LOCK_TIMEOUT_S,
    FileIdentity,
    FolderStore,
    file_identity,
    fold,
    record_bytes,
)
from core.storage.library import archive, prompt_cache
from core.storage.library.prompt_cache import PROMPTS_DIR, Encoder
from core.storage.library.records import (
    ID_RE,
    MAX_CONSENT_CHARS,
    MAX_DESCRIPTION_CHARS,
    MAX_ID_CHARS,
    MAX_NOTES_CHARS,
    MAX_TRANSCRIPT_CHARS,
    REFERENCE_FILE,
    SCHEMA_VERSION,
    VOICE_FILE,
    Unusable,
    Voice,
    clean_kind,
    clean_language,
    clean_name,
    clean_record_fields,
    clean_tags,
    clean_text,
    clean_trim,
    decode_reference,
    haystack,
    name_taken_message,
    not_found_message,
    now,
    read_reference,
    read_voice,
    slugify,
    unique_name,
    voice_folder,
    voice_from_record,
    wav_seconds,
)
from core.types import ClonePrompt, check_reference

log = logging.getLogger(__name__)

# An import's journal (root/.import-<batch>.json) and the marker it leaves in
# each voice folder it installs (<voice>/.import-<batch>). Deleting the journal
# is the commit point: voices still carrying the marker of a journal that
# exists belong to an import that has not finished, so they are hidden and,
# after a crash, removed. That keeps "every voice or none" across a SIGKILL.
IMPORT_PREFIX = ".import-"


class VoiceLibrary:
    """The voices under one root folder. Safe to share between threads and processes."""

    def __init__(self, root: Path | str, *, lock_timeout: float = LOCK_TIMEOUT_S, events: Events | None = None):
        self.events = events or Events()  # every change is told to its observers (the audit log)
        self._store = FolderStore(
            root,
            name="voice library",
            error=LibraryError,
            busy="The voice library is busy (another window or process is saving); try again in a moment.",
            failure_note="; nothing was changed",
            lock_timeout=lock_timeout,
            logger=log,
        )
        self.root = self._store.root
        # Human messages about entries skipped by the last listing.
        self.warnings: list[str] = []
        # folder name -> (voice.json identity, parsed Voice): listing 1,000
        # voices costs two stats each instead of 1,000 JSON parses.
        self._cache: dict[str, tuple[FileIdentity, Voice]] = {}
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
            wanted_kind = clean_kind(kind)
            voices = [v for v in voices if v.kind == wanted_kind]
        if language:
            wanted_language = clean_language(language)
            voices = [v for v in voices if v.language == wanted_language]
        if tag and tag.strip():
            wanted_tag = fold(tag.strip())
            voices = [v for v in voices if any(fold(t) == wanted_tag for t in v.tags)]
        if query and query.strip():
            terms = fold(query).split()
            voices = [v for v in voices if all(term in haystack(v) for term in terms)]
        return sorted(voices, key=lambda v: (fold(v.name), v.id))

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
        folded = fold(wanted)
        for voice in voices:
            if fold(voice.name) == folded:
                return voice
        raise VoiceNotFound(not_found_message(wanted, voices))

    def reference_audio(self, name_or_id: str | Voice) -> Audio:
        """The stored reference clip, exactly as prompts are encoded from it."""
        voice = self.get(name_or_id)
        return decode_reference(voice, read_reference(voice))

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
        model_output: bool = False,
    ) -> Voice:
        """Saves a new voice; its name must not be taken (case-insensitively). ``model_output``:
        the reference is a take the studio made (read from History by the caller, never an upload)."""
        name = clean_name(name)
        record = clean_record_fields(
            kind=kind,
            language=language,
            transcript=transcript,
            description=description,
            tags=tags,
            notes=notes,
            source_name=source_name,
            consent=consent,
            trim=trim,
        )
        checked = check_reference(reference, saving=True)
        if record["kind"] != "design" and not model_output:
            # A design voice, or any take the studio made, is its own model output (known to
            # be a voice, and noise with the demo models); every other reference must hold speech.
            require_speech(checked, saving=True)
        wav = encode(checked, "wav")
        stamp = now()
        record.update(
            name=name,
            reference_sha256=hashlib.sha256(wav).hexdigest(),
            reference_seconds=wav_seconds(wav),
            created_at=stamp,
            updated_at=stamp,
            model_output=bool(model_output),
        )
        with self._store.disk_errors(f"save the voice '{name}'"), self._store.staging() as staged:
            write_file(staged / REFERENCE_FILE, wav)
            voice = self._install(staged, record)
        log.info("event=voice_saved id=%s kind=%s seconds=%.2f", voice.id, voice.kind, voice.reference_seconds)
        self.events.emit(VoiceChanged(VoiceAction.SAVE, voice.id, name=voice.name, kind=voice.kind))
        return voice

    def rename(self, name_or_id: str | Voice, new_name: str) -> Voice:
        """Changes the display name; the id (and folder) stay, so links keep working."""
        new_name = clean_name(new_name)
        with self._store.locked():
            voice = renamed = self.get(name_or_id)
            if new_name != voice.name:
                clash = next((v for v in self._scan() if v.id != voice.id and fold(v.name) == fold(new_name)), None)
                if clash is not None:
                    raise LibraryError(name_taken_message(new_name))
                renamed = replace(voice, name=new_name, updated_at=now())
                with self._store.disk_errors(f"rename the voice '{voice.name}'"):
                    self._write_record(renamed)
        self.events.emit(VoiceChanged(VoiceAction.RENAME, renamed.id, name=renamed.name))
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
            changes["tags"] = clean_tags(tags)
        if notes is not None:
            changes["notes"] = clean_text(notes, "The notes", MAX_NOTES_CHARS, multiline=True)
        if transcript is not None:
            changes["transcript"] = clean_text(
                transcript, "The transcript", MAX_TRANSCRIPT_CHARS, multiline=True, optional=True
            )
        if language is not None:
            changes["language"] = clean_language(language)
        if consent is not None:
            changes["consent"] = clean_text(consent, "The consent note", MAX_CONSENT_CHARS, multiline=True)
        if description is not None:
            changes["description"] = clean_text(
                description, "The description", MAX_DESCRIPTION_CHARS, multiline=True, optional=True
            )
        wav: bytes | None = None
        if reference is not None:
            # A replaced clip comes from outside the studio, whatever the voice's kind.
            wav = encode(check_reference(reference, saving=True), "wav")
            require_speech(reference, saving=True)
            changes.update(
                reference_sha256=hashlib.sha256(wav).hexdigest(),
                reference_seconds=wav_seconds(wav),
                trim=clean_trim(trim),
                model_output=False,
            )
        elif trim is not None:
            raise LibraryError("Trim settings describe a reference clip; pass them together with the new reference.")

        with self._store.locked():
            voice = self.get(name_or_id)
            updated = replace(voice, **changes)
            if updated != voice or wav is not None:
                updated = replace(updated, updated_at=now())
                with self._store.disk_errors(f"update the voice '{voice.name}'"):
                    self._write_changes(voice, updated, wav)
        names = ("tags", "notes", "transcript", "language", "consent", "description", "reference", "trim")
        values = (tags, notes, transcript, language, consent, description, reference, trim)
        fields = tuple(name for name, value in zip(names, values, strict=True) if value is not None)
        self.events.emit(VoiceChanged(VoiceAction.UPDATE, updated.id, fields=fields))
        return updated

    def duplicate(self, name_or_id: str | Voice, new_name: str | None = None) -> Voice:
        """A copy with its own id; the default name is "<name> (copy)", "(copy 2)", ..."""
        explicit = None if new_name is None else clean_name(new_name)
        with self._store.disk_errors("copy the voice"), self._store.locked():
            source = self.get(name_or_id)
            data = read_reference(source)
            stamp = now()
            record = source.as_dict()
            record.update(
                name=explicit or source.name,
                reference_sha256=hashlib.sha256(data).hexdigest(),
                created_at=stamp,
                updated_at=stamp,
            )
            with self._store.staging() as staged:
                write_file(staged / REFERENCE_FILE, data)
                # The prompts are still valid for the copy (same clip, same
                # transcript), so copying them saves an encode per model size.
                prompts = source.folder / PROMPTS_DIR
                if prompts.is_dir():
                    (staged / PROMPTS_DIR).mkdir()
                    for item in prompts.glob("*.safetensors"):
                        try:
                            write_file(staged / PROMPTS_DIR / item.name, item.read_bytes())
                        except OSError:
                            pass  # only a cache; it is rebuilt on first use
                copy = self._install(staged, record, rename_on_clash=None if explicit else "copy")
        self.events.emit(VoiceChanged(VoiceAction.DUPLICATE, copy.id, source=source.id))
        return copy

    def delete(self, name_or_id: str | Voice) -> None:
        """Removes a voice. It stops listing the moment its folder is renamed away."""
        with self._store.disk_errors("delete the voice"), self._store.locked():
            voice = self.get(name_or_id)
            trash = self._store.to_trash(voice.folder)
        self._cache.pop(voice.id, None)
        log.info("event=voice_deleted id=%s", voice.id)
        self.events.emit(VoiceChanged(VoiceAction.DELETE, voice.id))
        shutil.rmtree(trash, ignore_errors=True)

    # --- prompt cache ----------------------------------------------------

    def cached_prompt(self, voice: str | Voice, checkpoint_key: str) -> ClonePrompt | None:
        """The cached prompt for ``checkpoint_key``, or None if absent, stale or damaged."""
        # The record on disk, not a possibly stale snapshot.
        return prompt_cache.cached_prompt(self.get(voice), checkpoint_key)

    def store_prompt(self, voice: str | Voice, prompt: ClonePrompt) -> Path:
        """Caches ``prompt``, made from ``voice``'s reference and transcript as given.

        Pass the Voice the prompt was encoded from: if it has changed since,
        the stored prompt simply never matches and is rebuilt.
        """
        current = self.get(voice)  # must be a voice of *this* library, whatever root a snapshot carries
        snapshot = voice if isinstance(voice, Voice) else current
        return prompt_cache.write_prompt(current, prompt, snapshot.reference_sha256, snapshot.transcript)

    def prompt_for(self, voice: str | Voice, checkpoint_key: str, encode: Encoder) -> tuple[ClonePrompt, bool]:
        """The voice's prompt for a checkpoint: from the cache (True) or freshly encoded (False).

        ``encode(reference_audio, transcript)`` is called only on a cache miss;
        its result is stored. Failing to store is logged, never fatal.
        """
        return prompt_cache.prompt_for(self.get(voice), checkpoint_key, encode)

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
        path = archive.export_path(dest, self.root)

        def current_voices() -> Iterator[tuple[Voice, bytes]]:
            for voice in voices.values():
                # Read record and clip under the lock so a concurrent
                # update cannot pair a new clip with an old record.
                with self._store.locked():
                    current = self.get(voice.id)
                    wav = read_reference(current)
                yield current, wav

        archive.write_export(path, current_voices())
        log.info("event=voices_exported count=%d path=%s", len(voices), path)
        self.events.emit(VoiceChanged(VoiceAction.EXPORT, ",".join(voices)))
        return path

    def import_zip(self, path: Path | str) -> builtins.list[Voice]:
        """Imports every voice in an export, or none of them.

        The whole archive is checked (structure, sizes, records, audio) before
        a single byte is written to the library. Voices are then staged in
        hidden ``.tmp-*`` folders and installed under the lock; if one fails,
        the ones already installed by this import are removed again. A name
        already in the library gets " (imported)", " (imported 2)", ... appended.
        """
        path = Path(path).expanduser()
        label = path.name
        zipped = archive.open_archive(path)
        installed: list[Voice] = []
        with zipped, self._store.disk_errors(f"import '{label}'"), self._store.staging_many() as stage:
            plan = archive.check_archive(zipped.infolist(), label)
            # Pass one only validates, keeping nothing, so a bad last voice
            # costs no disk writes and a big archive never sits in memory;
            # pass two reads each voice again (decoding is cheap) and stages it.
            for voice_id, members in plan.items():
                archive.read_archived_voice(zipped, voice_id, members, label)
            batch = uuid.uuid4().hex
            marker = f"{IMPORT_PREFIX}{batch}"
            staged: list[tuple[Path, dict[str, Any], str]] = []
            for voice_id, members in plan.items():
                record, wav = archive.read_archived_voice(zipped, voice_id, members, label)
                folder = stage()
                write_file(folder / REFERENCE_FILE, wav)
                write_file(folder / marker, b"")
                staged.append((folder, record, voice_id))
            journal = self.root / f"{marker}.json"
            with self._store.locked():
                self._active_imports.add(batch)
                try:
                    write_atomic(journal, json.dumps({"archive": label, "voices": len(staged)}).encode())
                    for folder, record, voice_id in staged:
                        installed.append(self._install(folder, record, rename_on_clash="imported", prefer_id=voice_id))
                    journal.unlink()  # the commit point
                    fsync_dir(self.root)
                except BaseException:
                    for voice in installed:
                        shutil.rmtree(self._store.to_trash(voice.folder), ignore_errors=True)
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
        self.events.emit(VoiceChanged(VoiceAction.IMPORT, ",".join(v.id for v in installed), count=len(installed)))
        return installed

    # --- internals -------------------------------------------------------

    def _install(
        self,
        staged: Path,
        record: dict[str, Any],
        *,
        rename_on_clash: str | None = None,
        prefer_id: str | None = None,
    ) -> Voice:
        """Names, numbers and publishes a staged folder in one locked step."""
        with self._store.locked():
            taken = {fold(v.name) for v in self._scan()}
            name = record["name"]
            if fold(name) in taken:
                if rename_on_clash is None:
                    raise LibraryError(name_taken_message(name))
                name = unique_name(name, rename_on_clash, taken)
            if prefer_id and ID_RE.fullmatch(prefer_id) and not self._id_taken(prefer_id):
                voice_id = prefer_id
            else:
                voice_id = self._allocate_id(slugify(name))
            record = {**record, "schema": SCHEMA_VERSION, "id": voice_id, "name": name}
            voice = voice_from_record(record, self.root, voice_id)  # the record must read back
            write_file(staged / VOICE_FILE, record_bytes(voice.as_dict()))
            voice_folder(self.root, voice_id)
            self._store.publish(staged, voice_id)
        return voice

    def _write_record(self, voice: Voice) -> None:
        write_atomic(voice_folder(self.root, voice.id) / VOICE_FILE, record_bytes(voice.as_dict()))

    def _write_changes(self, voice: Voice, updated: Voice, wav: bytes | None) -> None:
        if wav is not None:
            # Written before voice.json: after a crash between the two the
            # record's hash is stale, which only ever invalidates prompts.
            write_atomic(voice.reference_path, wav)
        self._write_record(updated)
        if updated.transcript != voice.transcript or wav is not None:
            shutil.rmtree(voice.folder / PROMPTS_DIR, ignore_errors=True)

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

    def _roll_back_interrupted_imports(self, markers: set[str]) -> bool:
        """Removes what crashed imports installed; True if anything changed.

        Only when no import is running anywhere: the library lock is free (no
        other process or thread holds it) and this instance runs none."""
        try:
            self._store.lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        changed = False
        try:
            for marker in markers:
                if marker[len(IMPORT_PREFIX) :] in self._active_imports:
                    continue
                for entry in os.scandir(self.root):
                    if ID_RE.fullmatch(entry.name) and os.path.exists(os.path.join(entry.path, marker)):
                        shutil.rmtree(self._store.to_trash(Path(entry.path)), ignore_errors=True)
                (self.root / f"{marker}.json").unlink(missing_ok=True)
                fsync_dir(self.root)
                log.warning("event=import_rolled_back journal=%s", marker)
                changed = True
        finally:
            self._store.lock.release()
        return changed

    def _scan(self) -> builtins.list[Voice]:
        voices: list[Voice] = []
        warnings: list[str] = []
        cache: dict[str, tuple[FileIdentity, Voice]] = {}
        entries = self._store.entries()
        open_imports = {
            e.name[: -len(".json")] for e in entries if e.name.startswith(IMPORT_PREFIX) and e.name.endswith(".json")
        }
        if open_imports and self._roll_back_interrupted_imports(open_imports):
            return self._scan()
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    # Following a link could read or write outside the library root.
                    warnings.append(
                        f"Skipped '{name}' in the voice library: it is a link, which the library does not follow."
                    )
                    continue
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            if not ID_RE.fullmatch(name):
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
            key = file_identity(info)
            cached = self._cache.get(name)
            if cached is not None and cached[0] == key:
                voice = cached[1]
            else:
                try:
                    voice = read_voice(folder, self.root)
                except Unusable as exc:
                    warnings.append(f"Skipped the voice folder '{name}': {exc}.")
                    continue
            cache[name] = (key, voice)
            voices.append(voice)
        self._cache = cache
        self.warnings = warnings
        self._store.log_once(warnings)
        return voices
