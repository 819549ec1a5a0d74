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
