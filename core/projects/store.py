"""Projects on disk: one folder per project under ``<data_dir>/projects/``, crash-safe.

A project's folder holds::

    project.json        the Project (core/projects/model.py), replaced atomically
    audio/<take>.wav    one file per kept take (16-bit PCM)
    cover.jpg|png       the cover, when it has one

It is built like the voice library and the history (core/storage/folder_store.py): a new
project appears in one rename of a fully written, fsynced folder, and disappears in one rename
to the trash, so a crash never leaves half a project that lists. After that, ``project.json``
is only ever replaced with ``write_atomic`` (readers see the old file or the new, never a mix)
and a take's audio is written (atomically too) before the ``project.json`` that names it, so a
crash mid-render loses at most the block in flight and never points at a missing file.

Read-modify-write (a render saving a block while the page edits another) goes through
:meth:`ProjectStore.update`, under the store's cross-process lock, so neither undoes the other.

A project exports as one ``.qtsproject`` file (a zip of the folder) and imports from one,
checked entry by entry first: a wrong or broken file is refused with a sentence, nothing half
imported is ever seen, and an id already here gets a new one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TypeVar

from core.errors import InvalidInput, StudioError
from core.projects.model import Project
from core.storage.durable import write_atomic, write_file
from core.storage.folder_store import TRASH_PREFIX, FolderStore, record_bytes

log = logging.getLogger(__name__)

PROJECT_FILE = "project.json"
AUDIO_DIR = "audio"
PROJECT_SUFFIX = ".qtsproject"
COVER_TYPES = {b"\xff\xd8\xff": "cover.jpg", b"\x89PNG\r\n\x1a\n": "cover.png"}
MAX_IMPORT_BYTES = 4 * 1024**3  # a project file larger than this unpacked is refused (zip bombs)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

T = TypeVar("T")


class ProjectStoreError(StudioError):
    """The projects folder cannot be read or written (disk full, permissions, busy)."""


def cover_name(data: bytes) -> str:
    """The file name a cover is kept under, from its first bytes (JPEG or PNG only)."""
    for magic, name in COVER_TYPES.items():
        if data.startswith(magic):
            return name
    raise InvalidInput("The cover must be a JPEG or PNG image.")


def slug(title: str) -> str:
    """A short readable id part from a title ("The Lighthouse" -> "the-lighthouse")."""
    text = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return text[:40].strip("-") or "project"


class ProjectStore:
    """The projects folder: create, read, update, delete, export and import projects."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()
        self._folders: FolderStore | None = None

    @property
    def folders(self) -> FolderStore:
        """The folder store, made (with its folder) on first use: a studio that never made a
        project has no projects folder (the data dir holds only what the user made)."""
        if self._folders is None:
            self._folders = FolderStore(
                self.root,
                name="projects folder",
                error=ProjectStoreError,
                busy="The projects folder is busy (another studio is saving); try again in a moment.",
                failure_note="; the project was not changed",
                logger=log,
            )
        return self._folders

    # --- reading ---------------------------------------------------------------------

    def folder(self, project_id: str) -> Path:
        """The folder of an existing project (a clear error for an unknown or odd id)."""
        if not isinstance(project_id, str) or not _ID.match(project_id):
            raise InvalidInput(f"There is no project '{project_id}'.")
        folder = self.root / project_id
        if not (folder / PROJECT_FILE).is_file():
            raise InvalidInput(f"There is no project '{project_id}'; it may have been deleted.")
        return folder

    def load(self, project_id: str) -> Project:
        folder = self.folder(project_id)
        return self._read(folder)

    def _read(self, folder: Path) -> Project:
        try:
            data = json.loads((folder / PROJECT_FILE).read_text(encoding="utf-8"))
            project = Project.from_dict(data)
        except InvalidInput:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProjectStoreError(f"The project in {folder} cannot be read ({exc}).") from exc
        project.id = folder.name  # the folder is the truth (a copied folder keeps working)
        return project

    def all(self) -> list[Project]:
        """Every project, most recently changed first; an unreadable one is logged and skipped."""
        projects: list[Project] = []
        warnings: list[str] = []
        if not self.root.is_dir():
            return projects  # no project made yet
        for entry in self.folders.entries():
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            if not (Path(entry.path) / PROJECT_FILE).is_file():
                continue
            try:
                projects.append(self._read(Path(entry.path)))
            except StudioError as exc:
                warnings.append(f"Skipped a project: {exc}")
        self.folders.log_once(warnings)
        return sorted(projects, key=lambda p: p.updated, reverse=True)

    # --- writing ---------------------------------------------------------------------

    def create(self, project: Project, files: dict[str, bytes] | None = None) -> Project:
        """Publishes a new project (its id chosen from its title) with ``files`` (relative
        path -> bytes, e.g. the cover) in one rename: it exists whole or not at all."""
        now = time.time()
        project.created = project.created or now
        project.updated = now
        with self.folders.disk_errors("create the project"), self.folders.staging() as stage:
            (stage / AUDIO_DIR).mkdir()
            for name, data in (files or {}).items():
                path = stage / _safe_relative(name)
                path.parent.mkdir(parents=True, exist_ok=True)
                write_file(path, data)
            with self.folders.locked():
                project.id = self._free_id(project.title)
                write_file(stage / PROJECT_FILE, record_bytes(project.as_dict()))
                self.folders.publish(stage, project.id)
        return project

    def _free_id(self, title: str) -> str:
        while True:
            candidate = f"{slug(title)}-{uuid.uuid4().hex[:6]}"
            if not (self.root / candidate).exists():
                return candidate

    def save(self, project: Project) -> Project:
        """Replaces the project's ``project.json`` atomically (the folder must exist)."""
        with self.folders.locked():
            folder = self.folder(project.id)
            project.updated = time.time()
            with self.folders.disk_errors("save the project"):
                write_atomic(folder / PROJECT_FILE, record_bytes(project.as_dict()))
        return project

    def update(self, project_id: str, change: Callable[[Project], T]) -> tuple[Project, T]:
        """Reads the project, applies ``change`` and saves it, all under the store's lock, so a
        render saving one block and an edit of another never undo each other."""
        with self.folders.locked():
            project = self.load(project_id)
            result = change(project)
            self.save(project)
        return project, result

    def write_file(self, project_id: str, relative: str, data: bytes) -> Path:
        """Writes a file of the project (a take's audio, the cover) atomically."""
        path = self.folder(project_id) / _safe_relative(relative)
        with self.folders.disk_errors("save the project's audio"):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
        return path

    def remove_files(self, project_id: str, relatives: list[str]) -> None:
        """Deletes files the project no longer names (dropped alternates); missing ones are fine."""
        folder = self.root / project_id
        for relative in relatives:
            try:
                (folder / _safe_relative(relative)).unlink(missing_ok=True)
            except (OSError, InvalidInput) as exc:
                log.warning("Could not remove %s of project %s: %s", relative, project_id, exc)

    def delete(self, project_id: str) -> None:
        with self.folders.locked():
            folder = self.folder(project_id)
            with self.folders.disk_errors("delete the project"):
                trash = self.folders.to_trash(folder)
        shutil.rmtree(trash, ignore_errors=True)

    # --- one file out, one file in ---------------------------------------------------

    def export_project(self, project_id: str, out_dir: Path) -> Path:
        """The project as one ``<title>.qtsproject`` zip in ``out_dir`` (written whole, then renamed)."""
        with self.folders.locked():  # a consistent copy: no block is saved half-way through it
            folder = self.folder(project_id)
            project = self._read(folder)
            names: list[str] = [PROJECT_FILE] + ([project.cover] if project.cover else [])
            names += [take.file for chapter in project.chapters for block in chapter.blocks for take in block.takes]
            out_dir.mkdir(parents=True, exist_ok=True)
            target = out_dir / f"{slug(project.title)}{PROJECT_SUFFIX}"
            tmp = out_dir / f".{target.name}.{uuid.uuid4().hex}.tmp"
            try:
                with self.folders.disk_errors("export the project"), zipfile.ZipFile(tmp, "w") as archive:
                    for name in dict.fromkeys(names):
                        path = folder / _safe_relative(name)
                        if path.is_file():
                            # Audio does not shrink in a zip; the JSON does.
                            method = zipfile.ZIP_DEFLATED if name == PROJECT_FILE else zipfile.ZIP_STORED
                            archive.write(path, name, compress_type=method)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        return target

    def import_project(self, path: Path | str) -> Project:
        """A project from a ``.qtsproject`` file, checked whole before anything is written;
        it gets a new id when one with its id is already here."""
        path = Path(path)
        what = "This is not a Qwen TTS Studio project file (.qtsproject)"
        try:
            archive = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise InvalidInput(f"There is no file {path}.") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise InvalidInput(f"{what}: it is not a zip archive ({exc}).") from None
        with archive:
            infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
            if PROJECT_FILE not in infos:
                raise InvalidInput(f"{what}: it has no {PROJECT_FILE}.")
            if sum(info.file_size for info in infos.values()) > MAX_IMPORT_BYTES:
                raise InvalidInput(f"{what}: it unpacks to more than {MAX_IMPORT_BYTES // 1024**3} GB.")
            try:
                data = json.loads(archive.read(PROJECT_FILE).decode("utf-8"))
                project = Project.from_dict(data)
            except InvalidInput:
                raise
            except (ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
                raise InvalidInput(f"The project file is broken: its {PROJECT_FILE} cannot be read ({exc}).") from None
            needed = [project.cover] if project.cover else []
            needed += [t.file for c in project.chapters for b in c.blocks for t in b.takes]
            for name in needed:
                _safe_relative(name)
                if name not in infos:
                    raise InvalidInput(f"The project file is broken: {name} is missing from it.")
            project.updated = time.time()
            with self.folders.disk_errors("import the project"), self.folders.staging() as stage:
                (stage / AUDIO_DIR).mkdir()
                for name in dict.fromkeys(needed):
                    try:
                        write_file(stage / _safe_relative(name), archive.read(name))
                    except (zipfile.BadZipFile, ValueError) as exc:  # a CRC error: a damaged file
                        raise InvalidInput(f"The project file is broken: {name} is damaged ({exc}).") from None
                with self.folders.locked():
                    wanted = project.id if isinstance(project.id, str) and _ID.match(project.id) else ""
                    project.id = (
                        wanted if wanted and not (self.root / wanted).exists() else self._free_id(project.title)
                    )
                    write_file(stage / PROJECT_FILE, record_bytes(project.as_dict()))
                    self.folders.publish(stage, project.id)
        return project


def _safe_relative(name: str) -> str:
    """A path inside a project's folder, never outside it (an imported file could try)."""
    pure = PurePosixPath(name)
    if (
        not name
        or pure.is_absolute()
        or ".." in pure.parts
        or "\\" in name
        or pure.parts[0].startswith((".", TRASH_PREFIX))
    ):
        raise InvalidInput(f"The project file is broken: '{name}' is not a path inside a project.")
    return str(pure)
