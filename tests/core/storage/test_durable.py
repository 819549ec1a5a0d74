"""Durable writes on real files: fsynced new files, atomic replaces, stale leftovers swept."""

from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

import pytest

from core.storage import durable


@pytest.fixture
def fsyncs(monkeypatch) -> list[str]:
    """Records what each os.fsync call synced ("file" or "dir"), then really syncs it."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        seen.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(durable.os, "fsync", spy)
    return seen


def age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)


def entry_of(path: Path) -> os.DirEntry[str]:
    return next(e for e in os.scandir(path.parent) if e.name == path.name)


# --- write_file / fsync_file / fsync_dir ------------------------------------------


def test_write_file_writes_every_byte_and_syncs_it(tmp_path, fsyncs):
    data = bytes(range(256)) * 1000
    durable.write_file(tmp_path / "a.bin", data)
    assert (tmp_path / "a.bin").read_bytes() == data
    assert fsyncs == ["file"]


def test_write_file_truncates_what_was_there(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 100)
    durable.write_file(tmp_path / "a.bin", b"short")
    assert (tmp_path / "a.bin").read_bytes() == b"short"


def test_fsync_file_and_dir_sync_what_they_name(tmp_path, fsyncs):
    (tmp_path / "a.bin").write_bytes(b"data")
    durable.fsync_file(tmp_path / "a.bin")
    durable.fsync_dir(tmp_path)
    assert fsyncs == ["file", "dir"]
    assert (tmp_path / "a.bin").read_bytes() == b"data"  # syncing never changes the file


def test_fsync_dir_of_a_missing_folder_is_a_no_op(tmp_path, fsyncs):
    durable.fsync_dir(tmp_path / "gone")
    assert fsyncs == []


# --- write_atomic ---------------------------------------------------------------


def test_write_atomic_replaces_the_file_and_leaves_nothing_behind(tmp_path, fsyncs):
    target = tmp_path / "voice.json"
    target.write_bytes(b"old")
    durable.write_atomic(target, b"new record")
    assert target.read_bytes() == b"new record"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.json"]
    # The new file is synced before the rename, the folder after it.
    assert fsyncs == ["file", "dir"]


def test_write_atomic_creates_a_missing_file(tmp_path):
    durable.write_atomic(tmp_path / "new.json", b"{}")
    assert (tmp_path / "new.json").read_bytes() == b"{}"


def test_a_reader_of_the_old_file_keeps_the_old_bytes(tmp_path):
    target = tmp_path / "voice.json"
    target.write_bytes(b"old contents")
    with open(target, "rb") as reader:
        durable.write_atomic(target, b"new contents")
        # The replace swapped in a new inode; an open reader never sees a mix.
        assert reader.read() == b"old contents"
    assert target.read_bytes() == b"new contents"


def test_a_failed_replace_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    target = tmp_path / "voice.json"
    target.write_bytes(b"old")

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(durable.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        durable.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["voice.json"]


def test_an_interrupted_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    target = tmp_path / "voice.json"
    target.write_bytes(b"old")
    real_write_file = durable.write_file

    def interrupted(path: Path, data: bytes) -> None:
        real_write_file(path, data[:2])  # a partial temp file really exists on disk...
        raise KeyboardInterrupt  # ...when the write is cut short

    monkeypatch.setattr(durable, "write_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        durable.write_atomic(target, b"new record")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["voice.json"]


# --- remove_if_stale ------------------------------------------------------------


def test_young_leftovers_are_kept(tmp_path):
    folder = tmp_path / ".tmp-young"
    folder.mkdir()
    (folder / "reference.wav").write_bytes(b"RIFF")
    durable.remove_if_stale(entry_of(folder), time.time(), 3600.0, "voice library")
    assert (folder / "reference.wav").read_bytes() == b"RIFF"


def test_old_leftover_folders_and_files_are_removed(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="core.storage.durable")
    folder = tmp_path / ".trash-old"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "a.safetensors").write_bytes(b"x")
    age(folder, 7200)
    stray = tmp_path / ".voice.json.abc.tmp"
    stray.write_bytes(b"half")
    age(stray, 7200)
    now = time.time()
    for path in (folder, stray):
        durable.remove_if_stale(entry_of(path), now, 3600.0, "history")
    assert list(tmp_path.iterdir()) == []
    assert "Removed the leftover .trash-old from the history." in caplog.text


def test_an_old_link_is_removed_without_touching_what_it_points_to(tmp_path):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "take.wav").write_bytes(b"RIFF")
    link = tmp_path / ".tmp-link"
    link.symlink_to(kept, target_is_directory=True)
    age(link, 7200)
    durable.remove_if_stale(entry_of(link), time.time(), 3600.0, "history")
    assert not os.path.lexists(link)
    assert (kept / "take.wav").read_bytes() == b"RIFF"


def test_a_leftover_that_vanished_meanwhile_is_not_an_error(tmp_path):
    folder = tmp_path / ".tmp-gone"
    folder.mkdir()
    entry = entry_of(folder)
    folder.rmdir()  # another process cleaned it up first
    durable.remove_if_stale(entry, time.time(), 0.0, "history")
    assert list(tmp_path.iterdir()) == []
