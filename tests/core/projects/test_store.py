"""The projects folder on real files: crash-safe creation, atomic saves, one-file export and import."""

from __future__ import annotations

import json
import threading
import zipfile

import numpy as np
import pytest

from core.audio.clip import Audio
from core.audio.io import encode, load_audio
from core.errors import InvalidInput
from core.projects.model import Block, BlockTake, Chapter, Project, QAVerdict, VoiceChoice, WordTime
from core.projects.store import PROJECT_FILE, ProjectStore, cover_name, slug

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def tone(seconds: float = 0.5, hz: float = 220.0) -> Audio:
    t = np.arange(int(24_000 * seconds)) / 24_000
    return Audio((0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 24_000)


def book(title: str = "The Lighthouse") -> Project:
    return Project(
        id="",
        title=title,
        author="A. Writer",
        narrator=VoiceChoice(speaker="Ryan", instruct="calm"),
        chapters=[
            Chapter(
                "c001",
                "One",
                [Block("b0001", "The keeper climbed."), Block("b0002", "Maya: Who is there?", speaker="Maya")],
            ),
            Chapter("c002", "Two", [Block("b0003", "Nobody answered.")], voice=VoiceChoice(speaker="Aiden")),
        ],
    )


def with_take(store: ProjectStore, project: Project, block_id: str = "b0001") -> BlockTake:
    """A real take file in the project and the project naming it (as a render saves a block)."""
    file = f"audio/{block_id}-t1.wav"
    store.write_file(project.id, file, encode(tone(), "wav"))
    verdict = QAVerdict(passed=True, wer=0.0, heard="the keeper climbed", words=(WordTime("the", 0.0, 0.1),))
    take = BlockTake(
        id=f"{block_id}-t1",
        file=file,
        seed=7,
        seconds=0.5,
        text="The keeper climbed.",
        voice="Ryan (calm)",
        created=1.0,
        qa=verdict,
    )

    def change(p: Project) -> None:
        _, block = p.block(block_id)
        block.takes.append(take)
        block.chosen = take.id

    store.update(project.id, change)
    return take


def test_a_created_project_is_whole_on_disk_and_survives_a_new_store(tmp_path):
    store = ProjectStore(tmp_path / "projects")
    project = store.create(book(), {cover_name(PNG): PNG})
    assert project.id.startswith("the-lighthouse-") and project.created > 0
    folder = tmp_path / "projects" / project.id
    assert sorted(p.name for p in folder.iterdir()) == ["audio", "cover.png", PROJECT_FILE]
    assert json.loads((folder / PROJECT_FILE).read_text())["title"] == "The Lighthouse"
    assert not [p for p in (tmp_path / "projects").iterdir() if p.name.startswith(".tmp-")]

    again = ProjectStore(tmp_path / "projects")  # a restart
    loaded = again.load(project.id)
    assert loaded.as_dict() == project.as_dict()
    assert [p.id for p in again.all()] == [project.id]


def test_a_staged_or_broken_folder_never_lists(tmp_path):
    store = ProjectStore(tmp_path / "projects")
    kept = store.create(book())
    (tmp_path / "projects" / ".tmp-half").mkdir()  # a crash mid-create
    (tmp_path / "projects" / ".tmp-half" / PROJECT_FILE).write_text("{")
    broken = tmp_path / "projects" / "broken-000000"
    broken.mkdir()
    (broken / PROJECT_FILE).write_text("{not json")
    assert [p.id for p in store.all()] == [kept.id]
    with pytest.raises(InvalidInput, match="There is no project"):
        store.load("../etc")
    with pytest.raises(InvalidInput, match="There is no project"):
        store.load("missing-123456")


def test_updates_from_two_threads_keep_both_changes(tmp_path):
    store = ProjectStore(tmp_path / "projects")
    project = store.create(book())
    errors: list[BaseException] = []

    def lock(block_id: str) -> None:
        try:
            for _ in range(10):
                store.update(
                    project.id, lambda p: setattr(p.block(block_id)[1], "locked", not p.block(block_id)[1].locked)
                )
        except BaseException as exc:  # pragma: no cover - told below
            errors.append(exc)

    threads = [threading.Thread(target=lock, args=(b,)) for b in ("b0001", "b0003")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = store.load(project.id)
    # Ten toggles each: both back to unlocked, and no update lost the other's (a lost one leaves one locked).
    assert [stored.block(b)[1].locked for b in ("b0001", "b0003")] == [False, False]
    store.update(project.id, lambda p: setattr(p.block("b0003")[1], "locked", True))
    assert store.load(project.id).block("b0003")[1].locked


def test_a_bad_cover_is_refused_before_anything_is_created(tmp_path):
    store = ProjectStore(tmp_path / "projects")
    with pytest.raises(InvalidInput, match="JPEG or PNG"):
        cover_name(b"GIF89a....")
    assert cover_name(JPEG) == "cover.jpg"
    assert store.all() == []
    assert slug("  Ça va? The END!! ") == "a-va-the-end" and slug("???") == "project"


def test_export_and_import_round_trip_with_audio_and_cover(tmp_path):
    store = ProjectStore(tmp_path / "projects")
    project = store.create(book(), {"cover.jpg": JPEG})
    store.update(project.id, lambda p: setattr(p, "cover", "cover.jpg"))
    take = with_take(store, project)
    exported = store.export_project(project.id, tmp_path / "out")
    assert exported.name == "the-lighthouse.qtsproject"
    with zipfile.ZipFile(exported) as archive:
        assert sorted(archive.namelist()) == sorted([PROJECT_FILE, "cover.jpg", take.file])

    # Into another studio: the same project, files and all.
    other = ProjectStore(tmp_path / "elsewhere")
    imported = other.import_project(exported)
    assert imported.id == project.id
    assert imported.block("b0001")[1].chosen_take.qa.heard == "the keeper climbed"
    assert (other.folder(imported.id) / "cover.jpg").read_bytes() == JPEG
    audio = load_audio(other.folder(imported.id) / take.file)
    assert abs(audio.duration - 0.5) < 0.01

    # Into the same studio again: a new id, the original untouched.
    twice = store.import_project(exported)
    assert twice.id != project.id and twice.title == project.title
    assert {p.id for p in store.all()} == {project.id, twice.id}
    assert (store.folder(twice.id) / take.file).is_file()


def _zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (None, "not a zip archive"),
        ({"readme.txt": b"hi"}, "has no project.json"),
        ({PROJECT_FILE: b"{broken"}, "project.json cannot be read"),
        ({PROJECT_FILE: json.dumps({"title": "x"}).encode()}, "project.json cannot be read"),
        ({PROJECT_FILE: json.dumps({**book().as_dict(), "format": 99}).encode()}, "newer studio"),
        ("missing-audio", "audio/b0001-t1.wav is missing"),
        ("escape", "not a path inside a project"),
    ],
)
def test_a_wrong_or_broken_project_file_is_refused_and_nothing_is_imported(tmp_path, entries, message):
    store = ProjectStore(tmp_path / "projects")
    path = tmp_path / "in.qtsproject"
    if entries is None:
        path.write_bytes(b"this is not a zip")
    elif entries in ("missing-audio", "escape"):
        source = book()
        file = "audio/b0001-t1.wav" if entries == "missing-audio" else "../../evil.wav"
        source.chapters[0].blocks[0].takes.append(BlockTake("t1", file, 1, 0.5, "x", "Ryan", 1.0))
        _zip(path, {PROJECT_FILE: json.dumps(source.as_dict()).encode(), "../../evil.wav": b"x"})
    else:
        _zip(path, entries)
    with pytest.raises(InvalidInput, match=message):
        store.import_project(path)
    assert store.all() == []
    root = tmp_path / "projects"  # made only when something is saved: a refused import may leave none
    assert not root.exists() or [p.name for p in root.iterdir() if not p.name.startswith(".lock")] == []
    assert not (tmp_path / "evil.wav").exists()


def test_files_are_removed_and_a_deleted_project_is_gone(tmp_path):
    store = ProjectStore(tmp_path / "projects")
    project = store.create(book())
    take = with_take(store, project)
    store.remove_files(project.id, [take.file, "audio/never-there.wav"])
    assert not (store.folder(project.id) / take.file).exists()
    store.delete(project.id)
    assert store.all() == []
    with pytest.raises(InvalidInput, match="no project"):
        store.load(project.id)
