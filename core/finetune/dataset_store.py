"""The fine-tuning datasets on disk: ``<data_dir>/datasets/``, one folder per dataset.

Layout (the folder-per-record store the voice library and the history share,
:mod:`core.storage.folder_store`)::

    .lock                 cross-process lock file
    <id>/dataset.json     the record (:mod:`core.finetune.dataset`)
    <id>/audio/u0001.wav  its clips
    .tmp-<uuid>/          a dataset being built or imported (never listed)
    .trash-<uuid>/        a dataset being deleted (never listed)

Nothing is ever half-saved: a build or an import is written into a hidden staging folder,
fsynced, and published by one rename under the lock (a failure, a Stop or a crash leaves
no dataset); a review edit replaces ``dataset.json`` atomically
(:func:`core.storage.durable.write_atomic`), so a reader sees the old record or the new one.
Names are unique case-insensitively; ids are slugs the store chooses.
"""

from __future__ import annotations

import builtins  # the list() method shadows list[...] in the class's own annotations
import json
import logging
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import DatasetError, InvalidInput
from core.finetune import builder, dataset_archive
from core.finetune.builder import Progress, Source
from core.finetune.dataset import (
    DATASET_FILE,
    Dataset,
    UtteranceEdit,
    clean_dataset_name,
    dataset_from_record,
)
from core.finetune.segment import SegmentOptions
from core.storage.durable import write_atomic, write_file
from core.storage.folder_store import LOCK_TIMEOUT_S, FolderStore, fold, record_bytes
from core.storage.library.records import ID_RE, slugify

if TYPE_CHECKING:
    from core.engine.transcription import Transcriber

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class DatasetStore:
    """The datasets under one root folder. Safe to share between threads and processes."""

    def __init__(self, root: Path | str, *, lock_timeout: float = LOCK_TIMEOUT_S):
        self.root = Path(root).expanduser().resolve()
        self._lock_timeout = lock_timeout
        self._folders: FolderStore | None = None
        self.warnings: list[str] = []  # human messages about folders the last listing skipped

    @property
    def _store(self) -> FolderStore:
        """The folder store, made (with its folder) on the first write: a studio that never
        builds a dataset has no datasets folder."""
        if self._folders is None:
            self._folders = FolderStore(
                self.root,
                name="dataset folder",
                error=DatasetError,
                busy="The datasets are busy (another window or process is saving one); try again in a moment.",
                failure_note="; nothing was changed",
                lock_timeout=self._lock_timeout,
                logger=log,
            )
        return self._folders

    # --- reading ---------------------------------------------------------

    def list(self) -> builtins.list[Dataset]:
        """Every readable dataset, by name. A damaged folder is skipped and named in ``warnings``."""
        found: builtins.list[Dataset] = []
        warnings: builtins.list[str] = []
        if self._folders is None and not self.root.is_dir():
            return found
        for entry in self._store.entries():
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                found.append(self._read(Path(entry.path)))
            except DatasetError as exc:
                warnings.append(f"Skipped the dataset folder '{entry.name}': {exc}.")
        self.warnings = warnings
        self._store.log_once(warnings)
        return sorted(found, key=lambda d: (fold(d.name), d.id))

    def get(self, name_or_id: str | Dataset) -> Dataset:
        """A dataset by id, else by name (case-insensitive); re-read from disk."""
        wanted = name_or_id.id if isinstance(name_or_id, Dataset) else name_or_id
        if not isinstance(wanted, str) or not wanted.strip():
            raise InvalidInput("Choose a dataset: no dataset name was given.")
        wanted = wanted.strip()
        if ID_RE.fullmatch(wanted) and (self.root / wanted / DATASET_FILE).is_file():
            try:
                return self._read(self.root / wanted)
            except DatasetError as exc:
                raise DatasetError(f"The dataset '{wanted}' cannot be read: {exc}.") from None
        datasets = self.list()
        match = next((d for d in datasets if fold(d.name) == fold(wanted)), None)
        if match is None:
            names = ", ".join(f"'{d.name}'" for d in datasets[:10]) or "none yet"
            raise InvalidInput(f"No dataset is named '{wanted}' (datasets: {names}).")
        return match

    # --- building --------------------------------------------------------

    def create(
        self,
        name: str,
        sources: Sequence[Source],
        *,
        transcriber: Transcriber | None = None,
        options: SegmentOptions | None = None,
        progress: Progress | None = None,
    ) -> Dataset:
        """Cuts ``sources`` into clips, transcribes them (when a transcriber is given) and saves
        the new dataset; it appears whole or not at all. A Stop (the job's cancel token) or
        an error leaves nothing behind."""
        name = clean_dataset_name(name)
        opts = (options or SegmentOptions()).validated()
        self._check_name_free(name)
        with self._store.disk_errors(f"save the dataset '{name}'"), self._store.staging() as staged:
            infos, utterances = builder.cut_sources(sources, staged, opts, progress)
            asr_model, asr_demo, language = None, False, "auto"
            if transcriber is not None:
                done = builder.transcribe_clips(utterances, staged, transcriber, progress, start=builder.CUT_SHARE)
                utterances = builder.apply_transcripts(utterances, done)
                asr_model, asr_demo, language = done.model, done.demo, done.language
            stamp = _now()
            dataset = Dataset(
                id="",
                name=name,
                folder=staged,
                created_at=stamp,
                updated_at=stamp,
                utterances=tuple(utterances),
                sources=tuple(infos),
                language=language,
                asr_model=asr_model,
                asr_demo=asr_demo,
                reference_id=None,
                options=opts,
            )
            created = self._install(staged, dataset)
        if progress:
            progress(1.0, "Dataset saved")
        log.info("event=dataset_created id=%s clips=%d", created.id, len(created.utterances))
        return created

    def transcribe(
        self,
        dataset: str | Dataset,
        transcriber: Transcriber,
        *,
        only_missing: bool = True,
        progress: Progress | None = None,
    ) -> Dataset:
        """Transcribes the clips without a transcript (or all of them); edits made meanwhile win."""
        before = self.get(dataset)
        todo = [u for u in before.utterances if not (only_missing and u.text.strip())]
        if not todo:
            return before
        done = builder.transcribe_clips(todo, before.folder, transcriber, progress)
        fresh = {u.id: u for u in builder.apply_transcripts(todo, done)}
        with self._store.locked():
            current = self.get(before.id)
            old = {u.id: u for u in before.utterances}
            # A clip whose text changed while the ASR ran was edited by the user: theirs stays.
            merged = tuple(fresh[u.id] if u.id in fresh and u.text == old[u.id].text else u for u in current.utterances)
            updated = replace(
                current,
                utterances=merged,
                asr_model=done.model or current.asr_model,
                asr_demo=done.demo if done.model else current.asr_demo,
                language=done.language if done.language != "auto" else current.language,
            )
            return self._write(current, updated, "save the transcripts")

    # --- review ----------------------------------------------------------

    def edit(self, dataset: str | Dataset, edits: Iterable[UtteranceEdit]) -> Dataset:
        """Applies the review table's edits (transcripts, exclusions) in one durable write."""
        changes = builtins.list(edits)
        with self._store.locked():
            current = self.get(dataset)
            return self._write(current, current.with_edits(changes), "save the review")

    def set_text(self, dataset: str | Dataset, utterance_id: str, text: str) -> Dataset:
        return self.edit(dataset, [UtteranceEdit(utterance_id, text=text)])

    def set_excluded(self, dataset: str | Dataset, utterance_id: str, excluded: bool = True) -> Dataset:
        return self.edit(dataset, [UtteranceEdit(utterance_id, excluded=excluded)])

    def set_reference(self, dataset: str | Dataset, utterance_id: str | None) -> Dataset:
        """Chooses the clip every training row's ``ref_audio`` points at (None: the best kept one)."""
        with self._store.locked():
            current = self.get(dataset)
            if utterance_id is not None and not current.utterance(utterance_id).trainable:
                raise InvalidInput(
                    f"The clip '{utterance_id}' is excluded or has no transcript; include it and give it "
                    "its words before making it the reference."
                )
            return self._write(current, replace(current, reference_id=utterance_id), "choose the reference clip")

    def rename(self, dataset: str | Dataset, new_name: str) -> Dataset:
        new_name = clean_dataset_name(new_name)
        with self._store.locked():
            current = self.get(dataset)
            if fold(new_name) != fold(current.name):
                self._check_name_free(new_name)
            return self._write(current, replace(current, name=new_name), f"rename the dataset '{current.name}'")

    def delete(self, dataset: str | Dataset) -> None:
        with self._store.disk_errors("delete the dataset"), self._store.locked():
            current = self.get(dataset)
            trash = self._store.to_trash(current.folder)
        log.info("event=dataset_deleted id=%s", current.id)
        shutil.rmtree(trash, ignore_errors=True)

    # --- export / import -------------------------------------------------

    def export_zip(self, dataset: str | Dataset, dest: Path | str) -> Path:
        """One zip (``dataset.json`` + ``audio/``); ``dest`` is the file or an existing folder."""
        with self._store.locked():  # a consistent record and clips
            current = self.get(dataset)
            path = dataset_archive.export_path(dest, self.root, current.name)
            dataset_archive.write_export(path, current)
        log.info("event=dataset_exported id=%s path=%s", current.id, path)
        return path

    def import_zip(self, path: Path | str) -> Dataset:
        """Imports an exported dataset; everything is checked before it appears. A name already
        taken gets " (imported)", " (imported 2)", ..."""
        source = Path(path).expanduser()
        with self._store.disk_errors(f"import '{source.name}'"), self._store.staging() as staged:
            imported = dataset_archive.unpack(source, staged)
            with self._store.locked():
                taken = {fold(d.name) for d in self.list()}
                name = imported.name
                number = 1
                while fold(name) in taken:
                    suffix = " (imported)" if number == 1 else f" (imported {number})"
                    name = imported.name[: 80 - len(suffix)].rstrip() + suffix
                    number += 1
                created = self._install(staged, replace(imported, name=name, updated_at=_now()))
        log.info("event=dataset_imported id=%s clips=%d", created.id, len(created.utterances))
        return created

    # --- internals -------------------------------------------------------

    def _read(self, folder: Path) -> Dataset:
        try:
            raw = (folder / DATASET_FILE).read_bytes()
        except OSError as exc:
            raise DatasetError(f"its {DATASET_FILE} cannot be read ({exc.strerror or exc})") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise DatasetError(f"its {DATASET_FILE} is not valid JSON") from None
        dataset = dataset_from_record(data, folder)
        if dataset.id != folder.name:
            raise DatasetError(f"its {DATASET_FILE} names the id '{dataset.id}'")
        return dataset

    def _check_name_free(self, name: str) -> None:
        if any(fold(d.name) == fold(name) for d in self.list()):
            raise InvalidInput(f"A dataset named '{name}' already exists; choose another name or delete it first.")

    def _install(self, staged: Path, dataset: Dataset) -> Dataset:
        """Writes the record into ``staged`` and publishes it under a fresh id (name checked again)."""
        with self._store.locked():
            self._check_name_free(dataset.name)
            base = slugify(dataset.name)[:40].rstrip("-") or "dataset"
            dataset_id = f"{base}-{uuid.uuid4().hex[:6]}"
            final = replace(dataset, id=dataset_id, folder=self.root / dataset_id)
            write_file(staged / DATASET_FILE, record_bytes(final.as_record()))
            self._store.publish(staged, dataset_id)
        return final

    def _write(self, current: Dataset, updated: Dataset, action: str) -> Dataset:
        """Saves ``updated`` over ``current`` (under the lock); an unchanged record is not rewritten."""
        if updated == current:
            return current
        updated = replace(updated, updated_at=_now())
        with self._store.disk_errors(f"{action} of '{current.name}'"):
            write_atomic(current.folder / DATASET_FILE, record_bytes(updated.as_record()))
        return updated
