"""Durable file writes shared by the voice library and the history.

Both keep a user's data in plain folders and must survive a crash or a full
disk at any moment: new files are fsynced before they are published by a
rename, and the rename itself is made durable by syncing its folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)


def write_file(path: Path, data: bytes) -> None:
    """Writes and fsyncs a new file (inside a staged folder nobody else sees)."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomic(path: Path, data: bytes) -> None:
    """Replaces ``path`` so readers see the old file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write_file(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    # Makes a rename durable on POSIX; Windows cannot open folders this way,
    # and its renames are journaled by NTFS anyway.
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_if_stale(entry: os.DirEntry[str], now: float, max_age_s: float, where: str) -> None:
    """Deletes a leftover temp or trash entry once it is old enough to be surely dead."""
    try:
        if now - entry.stat(follow_symlinks=False).st_mtime < max_age_s:
            return
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
        log.info("Removed the leftover %s from the %s.", entry.name, where)
    except OSError:
        pass


@contextmanager
def replacing(dest: Path) -> Iterator[Path]:
    """A hidden file beside ``dest`` to write (an export zip); fsynced and renamed onto
    ``dest`` when the block ends well, removed when it fails: ``dest`` is whole or untouched."""
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        yield part
        fsync_file(part)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def export_destination(dest: Path | str, root: Path, *, prefix: str, where: str) -> Path:
    """The export file to write: ``dest`` itself, or ``<prefix>-<UTC time>.zip`` in the folder
    ``dest``. Raises ValueError with a sentence when it would land inside ``root`` (``where``
    names it: "the voice library folder") or in a folder that does not exist."""
    path = Path(dest).expanduser()
    if path.is_dir():
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = path / f"{prefix}-{stamp}.zip"
    path = path.resolve()
    if path == root or root in path.parents:
        raise ValueError(f"Choose a destination outside {where} for the export.")
    if not path.parent.is_dir():
        raise ValueError(f"The folder {path.parent} does not exist; choose an existing folder for the export.")
    return path
