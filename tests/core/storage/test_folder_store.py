"""The folder-per-record skeleton shared by the voice library and the history, on real folders."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import filelock
import pytest

from core.errors import LibraryError
from core.storage.folder_store import FolderStore, file_identity, fold, record_bytes

log = logging.getLogger("tests.folder_store")


def make(root: Path, **kwargs) -> FolderStore:
    options = {"name": "voice library", "error": LibraryError, "busy": "Busy; try again.", "logger": log}
    return FolderStore(root, **{**options, **kwargs})


def visible(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def test_the_root_is_created_and_resolved(tmp_path):
    store = make(tmp_path / "a" / ".." / "voices")
    assert store.root == (tmp_path / "voices").resolve() and store.root.is_dir()


def test_a_root_that_cannot_be_created_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(LibraryError, match=r"Cannot create the voice library folder .*file"):
        make(tmp_path / "file" / "voices")


def test_a_published_folder_appears_whole_and_staging_leaves_nothing(tmp_path):
    store = make(tmp_path)
    with store.staging() as staged:
        assert staged.name.startswith(".tmp-") and visible(tmp_path) == []
        (staged / "voice.json").write_bytes(b"{}")
        target = store.publish(staged, "anna")
    assert target == tmp_path / "anna" and (target / "voice.json").read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anna"]


def test_unpublished_staging_folders_are_removed_even_on_error(tmp_path):
    store = make(tmp_path)
    with pytest.raises(RuntimeError), store.staging_many() as stage:
        for _ in range(3):
            (stage() / "reference.wav").write_bytes(b"RIFF")
        raise RuntimeError("a failed import")
    assert list(tmp_path.iterdir()) == []


def test_trashing_hides_a_record_in_one_rename(tmp_path):
    store = make(tmp_path)
    (tmp_path / "anna").mkdir()
    (tmp_path / "anna" / "voice.json").write_bytes(b"{}")
    trash = store.to_trash(tmp_path / "anna")
    assert trash.name.startswith(".trash-") and (trash / "voice.json").is_file()
    assert visible(tmp_path) == []


def test_entries_sweep_old_leftovers_and_keep_everything_else(tmp_path):
    store = make(tmp_path)
    for name in (".tmp-old", ".trash-old", ".tmp-young", "anna"):
        (tmp_path / name).mkdir()
    (tmp_path / ".import-1.json").write_text("{}")
    hour_ago = time.time() - 3_601
    for name in (".tmp-old", ".trash-old"):
        os.utime(tmp_path / name, (hour_ago, hour_ago))
    listed = {e.name for e in store.entries()}
    assert listed == {".tmp-old", ".trash-old", ".tmp-young", "anna", ".import-1.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".import-1.json", ".tmp-young", "anna"]


def test_an_unreadable_root_is_one_clear_error(tmp_path):
    store = make(tmp_path / "history", name="history")
    store.root.rmdir()
    with pytest.raises(LibraryError, match=r"Cannot read the history folder"):
        store.entries()


def test_disk_errors_become_sentences_with_the_stores_note(tmp_path):
    store = make(tmp_path, failure_note="; nothing was changed")
    failed = r"^Could not save the voice \(No space left on device\); nothing was changed\.$"
    with pytest.raises(LibraryError, match=failed), store.disk_errors("save the voice"):
        raise OSError(28, "No space left on device")
    with store.disk_errors("save the voice"):
        pass  # no failure, no error


def test_the_lock_is_reentrant_but_shared_with_other_holders(tmp_path):
    store = make(tmp_path, lock_timeout=0.2)
    with store.locked(), store.locked():  # locked methods may call each other
        assert store.lock.is_locked
    other = filelock.FileLock(str(tmp_path / ".lock"))  # another process, as far as flock can tell
    with other, pytest.raises(LibraryError, match="^Busy; try again.$"), store.locked():
        pass
    with store.locked():
        pass  # free again


def test_each_warning_is_logged_once(tmp_path, caplog):
    store = make(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tests.folder_store"):
        store.log_once(["Skipped 'x'.", "Skipped 'y'."])
        store.log_once(["Skipped 'x'."])
    assert [r.getMessage() for r in caplog.records] == ["Skipped 'x'.", "Skipped 'y'."]


def test_records_are_readable_utf8_json_and_never_nan():
    assert record_bytes({"name": "Zoë", "n": 1}) == '{\n  "name": "Zoë",\n  "n": 1\n}\n'.encode()
    with pytest.raises(ValueError):
        record_bytes({"seconds": float("nan")})


def test_file_identity_changes_when_a_record_is_replaced(tmp_path):
    path = tmp_path / "voice.json"
    path.write_bytes(b"{}")
    before = file_identity(os.stat(path))
    assert file_identity(os.stat(path)) == before
    replacement = tmp_path / "new.json"
    replacement.write_bytes(b"{}")
    os.replace(replacement, path)
    assert file_identity(os.stat(path)) != before


def test_fold_matches_what_a_person_calls_the_same_name():
    assert fold("ＡＮＮＡ") == fold("Anna") == fold("anna")
    assert fold("Straße") == fold("STRASSE")
