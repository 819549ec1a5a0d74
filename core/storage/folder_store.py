"""The folder-per-record store that the voice library and the take history share.

Both keep a user's data as one folder per record under a root folder::

    .lock            cross-process lock file (filelock)
    <id>/            one record: its JSON file and its audio
    .tmp-<uuid>/     a record being built (ignored when listing)
    .trash-<uuid>/   a record being deleted (ignored when listing)

Why it is built this way:

- A record appears in one ``os.rename`` of a fully written, fsynced folder
  and disappears in one rename to ``.trash-*``, so a crash never leaves half
  a record that lists.
- Leftover ``.tmp-*`` / ``.trash-*`` folders are removed once they are an
  hour old: a save in another process may still own a young one.
- Whatever must not race (choosing an id, publishing, pruning) happens under
  one ``filelock.FileLock`` on ``root/.lock``, which threads and processes
  alike respect. Reading never needs it.

What a record holds, how ids are chosen and which folders count are each
store's own business; this module only does what they do the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock

from core.errors import StudioError
from core.storage.durable import fsync_dir, remove_if_stale

TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
STALE_TEMP_SECONDS = 3_600.0
LOCK_TIMEOUT_S = 60.0

# (inode, mtime in ns, size) of a record file. Records are replaced with
# os.replace, which gives the new file a new inode, so an unchanged identity
# means an unchanged record and a listing can skip parsing it again.
FileIdentity = tuple[int, int, int]


def file_identity(info: os.stat_result) -> FileIdentity:
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """A record as stored: indented UTF-8 JSON (readable by hand), ending in a newline."""
    return (json.dumps(record, ensure_ascii=False, indent=2, allow_nan=False) + "\n").encode("utf-8")


def fold(text: str) -> str:
    """Text as a person compares it: NFKC + casefold, so "Ａnna", "ANNA" and "anna" are one."""
    return unicodedata.normalize("NFKC", text).casefold()


class FolderStore:
    """The root folder, its lock and the staging, publishing and trashing of record folders.

    ``name`` is how messages call the store ("voice library"), ``error`` the
    exception it raises, ``busy`` the message when the lock times out, and
    ``failure_note`` what a failed write adds after its reason (such as
    "; nothing was changed").
    """

    def __init__(
        self,
        root: Path | str,
        *,
        name: str,
        error: type[StudioError],
        busy: str,
        failure_note: str = "",
        lock_timeout: float = LOCK_TIMEOUT_S,
        logger: logging.Logger,
    ):
        self.root = Path(root).expanduser().resolve()
        self.name = name
        self.error = error
        self._busy = busy
        self._failure_note = failure_note
        self._log = logger
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise error(f"Cannot create the {name} folder {self.root} ({exc.strerror or exc}).") from exc
        self.lock = filelock.FileLock(str(self.root / ".lock"), timeout=lock_timeout)
        self._logged: set[str] = set()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Holds the cross-process lock; re-entrant per thread, so locked methods may call each other."""
        try:
            self.lock.acquire()
        except filelock.Timeout:
            raise self.error(self._busy) from None
        try:
            yield
        finally:
            self.lock.release()

    @contextmanager
    def disk_errors(self, action: str) -> Iterator[None]:
        """Turns a disk failure (full, read-only, permissions) into a sentence for the user."""
        try:
            yield
        except OSError as exc:
            raise self.error(f"Could not {action} ({exc.strerror or exc}){self._failure_note}.") from exc

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A hidden folder to build one record in; removed unless it was published."""
        with self.staging_many() as stage:
            yield stage()

    @contextmanager
    def staging_many(self) -> Iterator[Callable[[], Path]]:
        """A maker of hidden staging folders; those not published are removed at the end."""
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

    def publish(self, staged: Path, record_id: str) -> Path:
        """Makes a fully written staged folder the record ``record_id``, in one durable rename.

        Call it under :meth:`locked`, with ``record_id`` checked and free.
        """
        fsync_dir(staged)
        target = self.root / record_id
        os.rename(staged, target)
        fsync_dir(self.root)
        return target

    def to_trash(self, folder: Path) -> Path:
        """Renames a record folder out of sight; the caller deletes the returned trash folder."""
        trash = self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
        os.rename(folder, trash)
        fsync_dir(self.root)
        return trash

    def entries(self) -> list[os.DirEntry[str]]:
        """Every entry of the root, hidden ones included; stale leftovers are swept on the way.

        The sweep deletes from disk but not from the returned list, so callers
        skip every name starting with "." as before.
        """
        try:
            entries = list(os.scandir(self.root))
        except OSError as exc:
            raise self.error(f"Cannot read the {self.name} folder {self.root} ({exc.strerror or exc}).") from exc
        now = time.time()
        for entry in entries:
            if entry.name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                remove_if_stale(entry, now, STALE_TEMP_SECONDS, self.name)
        return entries

    def log_once(self, warnings: list[str]) -> None:
        """Logs each warning the first time a listing meets it, not on every listing."""
        for message in warnings:
            if message not in self._logged:
                self._logged.add(message)
                self._log.warning(message)
