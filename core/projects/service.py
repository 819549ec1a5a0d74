"""Projects: the one facade the Projects tab, its named API and the CLI call.

A project (core/projects/model.py) is kept by :class:`~core.projects.store.ProjectStore`
under ``<data_dir>/projects/``; every change here is a read-modify-write under the store's
lock, so the page, the API and a running render never undo each other. Rendering is a job
of the one take runner (core/takes/jobs.py, ``kind="project"``; the work is
core/projects/render.py): Stop is ``jobs.stop(job.id)``, and rendering again is the Resume.
Export joins each chapter's chosen takes (core/audio/assembly.py) and hands them with their
words and one subtitle sentence per block to core/projects/export.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.audio.assembly import assemble
from core.audio.edit import PostProcessing
from core.audio.io import load_audio
from core.context import AppContext
from core.errors import InvalidInput, VoiceNotFound
from core.projects import render
from core.projects.manuscript import dialogue_speaker, read_manuscript
from core.projects.model import (
    Block,
    BlockStatus,
    BlockTake,
    Chapter,
    ChapterAudio,
    Manuscript,
    MasteringPreset,
    Project,
    Sentence,
    VoiceChoice,
    WordTime,
)
from core.projects.store import ProjectStore, cover_name
from core.takes.job import Job
from core.takes.jobs import JobRegistry
from core.takes.script_grammar import casting_from
from core.takes.service import TakeService
from core.types import normalize_language

if TYPE_CHECKING:
    from core.projects.export import ExportResult

BLOCK_PAUSE_S = 0.6  # between paragraphs in a chapter's audio (a breath and a beat, as narrators read)
MAX_QA_TRIES = 5
MAX_ALTERNATES = 10
DEFAULT_FORMATS = ("m4b", "mp3", "srt", "vtt", "zip")
UPDATABLE = ("title", "author", "narrator", "language", "casting", "qa_tries", "alternates", "preset")


class ProjectService:
    def __init__(self, app: AppContext, jobs: JobRegistry, takes: TakeService, *, outputs_dir: Path | None = None):
        self.app = app
        self.jobs = jobs
        self.takes = takes
        self.store = ProjectStore(app.settings.data_dir / "projects")
        # Exports and project files are written here (the serving context's download folder).
        self.outputs_dir = Path(outputs_dir) if outputs_dir is not None else app.settings.data_dir / "exports"
        # A cap on codec frames per chunk for every block (None: the text's own cap). The tests
        # and --demo-models runs keep takes short with it.
        self.max_new_tokens: int | None = None

    # --- reading ---------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        rows = []
        for project in self.store.all():
            blocks = [b for c in project.chapters for b in c.blocks]
            rows.append(
                {
                    "id": project.id,
                    "title": project.title,
                    "author": project.author,
                    "chapters": len(project.chapters),
                    "blocks": len(blocks),
                    "rendered": sum(1 for b in blocks if b.status is not BlockStatus.NOT_RENDERED),
                    "checked": sum(1 for b in blocks if b.status is BlockStatus.CHECKED),
                    "flagged": sum(1 for b in blocks if b.status is BlockStatus.FLAGGED),
                    "updated": project.updated,
                }
            )
        return rows

    def get(self, project_id: str) -> Project:
        return self.store.load(project_id)

    def take_path(self, project_id: str, take: BlockTake) -> Path:
        return self.store.folder(project_id) / take.file

    # --- making and changing -------------------------------------------------------------

    def create(
        self,
        title: str,
        *,
        author: str = "",
        narrator: str = "Ryan",
        language: str = "auto",
        cover: bytes | None = None,
        manuscript: Path | str | bytes | None = None,
        manuscript_name: str = "",
    ) -> Project:
        """A new project; everything is checked (the manuscript read) before it is created."""
        voice = self._voice(narrator, "The narrator")
        language = normalize_language(language)
        book = _read(manuscript, manuscript_name) if manuscript is not None and manuscript != "" else None
        title = (title or "").strip() or (book.title if book else "")
        if not title:
            raise InvalidInput("Give the project a title.")
        files: dict[str, bytes] = {}
        cover_file = None
        if cover:
            cover_file = cover_name(cover)
            files[cover_file] = cover
        elif book is not None and book.cover:
            try:
                cover_file = cover_name(book.cover)
                files[cover_file] = book.cover
            except InvalidInput:
                pass  # an EPUB cover in another format: the project simply has none
        project = Project(
            id="",
            title=title,
            author=(author or "").strip() or (book.author if book else ""),
            narrator=voice,
            language=language,
            cover=cover_file,
        )
        if book is not None:
            _add_chapters(project, book)
        return self.store.create(project, files)

    def import_manuscript(
        self, project_id: str, source: Path | str | bytes, *, name: str = "", replace: bool = False
    ) -> Project:
        """Appends the manuscript's chapters (or replaces every chapter when asked)."""
        return self.add_manuscript(project_id, _read(source, name), replace=replace)

    def add_manuscript(self, project_id: str, book: Manuscript, *, replace: bool = False) -> Project:
        """Appends (or replaces with) the chapters of a manuscript already read."""

        def change(project: Project) -> list[str]:
            dropped = [t.file for c in project.chapters for b in c.blocks for t in b.takes] if replace else []
            if replace:
                project.chapters = []
            _add_chapters(project, book)
            return dropped

        project, dropped = self.store.update(project_id, change)
        self.store.remove_files(project_id, dropped)
        return project

    def update(self, project_id: str, **fields: Any) -> Project:
        unknown = sorted(set(fields) - set(UPDATABLE))
        if unknown:
            raise InvalidInput(f"A project has no setting {', '.join(unknown)}; change {', '.join(UPDATABLE)}.")
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "title":
                values[key] = str(value or "").strip()
                if not values[key]:
                    raise InvalidInput("Give the project a title.")
            elif key == "author":
                values[key] = str(value or "").strip()
            elif key == "narrator":
                values[key] = value if isinstance(value, VoiceChoice) else self._voice(str(value or ""), "The narrator")
            elif key == "language":
                values[key] = normalize_language(value)
            elif key == "casting":
                casting_from(value or "")  # checked: a clear error for a bad line
                values[key] = str(value or "")
            elif key in ("qa_tries", "alternates"):
                low, high = (0, MAX_QA_TRIES) if key == "qa_tries" else (1, MAX_ALTERNATES)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
                    raise InvalidInput(f"{_NAMES[key]} must be a whole number from {low} to {high}.")
                if not low <= int(value) <= high:
                    raise InvalidInput(f"{_NAMES[key]} is {int(value)}; it must be from {low} to {high}.")
                values[key] = int(value)
            else:
                values[key] = _preset(value)

        def change(project: Project) -> None:
            for key, value in values.items():
                setattr(project, key, value)
            _refresh(project)

        return self.store.update(project_id, change)[0]

    def set_voice(
        self, project_id: str, voice: str | None, *, chapter_id: str | None = None, block_id: str | None = None
    ) -> Project:
        """The voice of one block, one chapter or (neither given) the narrator; None/"" clears an override."""
        choice = self._voice(voice, "The voice") if voice else None
        if choice is None and not chapter_id and not block_id:
            raise InvalidInput("The project needs a narrator; choose a voice instead of clearing it.")

        def change(project: Project) -> None:
            if block_id:
                project.block(block_id)[1].voice = choice
            elif chapter_id:
                project.chapter(chapter_id).voice = choice
            else:
                project.narrator = choice  # type: ignore[assignment]
            _refresh(project)

        return self.store.update(project_id, change)[0]

    def edit_block(self, project_id: str, block_id: str, text: str) -> Project:
        """New text for a block: it shows as not rendered until it is made again (its takes stay)."""
        text = " ".join(str(text or "").split())
        if not text:
            raise InvalidInput("A block cannot be empty; give it the text to read.")

        def change(project: Project) -> None:
            _, block = project.block(block_id)
            if block.locked:
                raise InvalidInput("This block is locked; unlock it to edit it.")
            block.text = text
            _refresh(project)

        return self.store.update(project_id, change)[0]

    def lock_block(self, project_id: str, block_id: str, locked: bool) -> Project:
        def change(project: Project) -> None:
            project.block(block_id)[1].locked = bool(locked)

        return self.store.update(project_id, change)[0]

    def choose_take(self, project_id: str, block_id: str, take_id: str) -> Project:
        def change(project: Project) -> None:
            _, block = project.block(block_id)
            if not any(t.id == take_id for t in block.takes):
                raise InvalidInput("That take is not one of this block's alternates (it may have been dropped).")
            block.chosen = take_id
            _refresh(project)

        return self.store.update(project_id, change)[0]

    def delete(self, project_id: str) -> None:
        self.store.delete(project_id)

    # --- rendering -----------------------------------------------------------------------

    def render(
        self,
        project_id: str,
        *,
        chapter_id: str | None = None,
        block_id: str | None = None,
        seed: str = "keep",
        owner: str = "",
        client: str | None = None,
        tab: str = "projects",
    ) -> Job:
        """A job that makes the blocks asked for (core/projects/render.py says which and how)."""
        project = self.store.load(project_id)
        works = render.plan(project, chapter_id=chapter_id, block_id=block_id, seed=seed)
        render.check_voices(self.app, works)  # a missing voice is told now, not after a wait
        renderer = render.Renderer(self.app, self.store, project_id, max_new_tokens=self.max_new_tokens)

        def work(job: Job) -> list[Any]:
            # Planned again when it runs: a render queued behind another sees what that one made.
            fresh = self.store.load(project_id)
            try:
                now = render.plan(fresh, chapter_id=chapter_id, block_id=block_id, seed=seed)
            except InvalidInput:
                job.report(1.0, "Nothing left to render.")
                return []
            return renderer(job, now, fresh.qa_tries, fresh.alternates)

        return self.jobs.submit(
            work,
            kind="project",
            mode="Project",
            text=" ".join(w.cast.spoken for w in works),
            owner=owner,
            tab=tab,
            chunks=len(works),
            client=client,
        )

    # --- reports and files -----------------------------------------------------------------

    def qa_report(self, project_id: str) -> dict[str, Any]:
        """Per chapter: its blocks, how many are rendered and checked, and the flagged ones with why."""
        project = self.store.load(project_id)
        chapters: list[dict[str, Any]] = []
        for number, chapter in enumerate(project.chapters, 1):
            blocks = chapter.blocks
            flagged = [
                {"block": b.id, "number": i, "text": _preview(b.text), "reason": b.flag}
                for i, b in enumerate(blocks, 1)
                if b.status is BlockStatus.FLAGGED
            ]
            takes = [b.chosen_take for b in blocks if b.chosen_take is not None]
            chapters.append(
                {
                    "id": chapter.id,
                    "number": number,
                    "title": chapter.title,
                    "blocks": len(blocks),
                    "rendered": sum(1 for b in blocks if b.status is not BlockStatus.NOT_RENDERED),
                    "checked": sum(1 for b in blocks if b.status is BlockStatus.CHECKED),
                    "flagged": flagged,
                    "demo": any(t.qa is not None and t.qa.demo for t in takes),
                }
            )
        return {
            "id": project.id,
            "title": project.title,
            "blocks": sum(c["blocks"] for c in chapters),
            "rendered": sum(c["rendered"] for c in chapters),
            "checked": sum(c["checked"] for c in chapters),
            "flagged": sum(len(c["flagged"]) for c in chapters),
            "demo": any(c["demo"] for c in chapters),
            "chapters": chapters,
        }

    def chapter_audio(self, project_id: str, chapter_id: str) -> ChapterAudio:
        """A chapter as exported: its chosen takes joined, its words and one sentence per block."""
        project = self.store.load(project_id)
        return self._chapter_audio(project, project.chapter(chapter_id))

    def _chapter_audio(self, project: Project, chapter: Chapter) -> ChapterAudio:
        casting = casting_from(project.casting or "")
        chosen: list[tuple[Block, BlockTake]] = []
        missing = 0
        for block in chapter.blocks:
            if not block.text.strip():
                continue
            take = block.chosen_take
            if block.status is BlockStatus.NOT_RENDERED or take is None:
                missing += 1
            else:
                chosen.append((block, take))
        if missing:
            raise InvalidInput(
                f"Chapter '{chapter.title}' has {missing} block{'s' if missing != 1 else ''} not rendered yet; "
                "render the project first."
            )
        if not chosen:
            raise InvalidInput(f"Chapter '{chapter.title}' has nothing to read.")
        folder = self.store.folder(project.id)
        pieces = [load_audio(folder / take.file, max_seconds=3_600.0) for _, take in chosen]
        assembled = assemble(pieces, BLOCK_PAUSE_S, PostProcessing())
        words: list[WordTime] = []
        sentences: list[Sentence] = []
        for (block, take), (start, end) in zip(chosen, assembled.spans, strict=True):
            spoken = render.cast_of(project, chapter, block, casting).spoken
            sentences.append(Sentence(round(start, 3), round(end, 3), spoken))
            for word in take.qa.words if take.qa else ():
                # The block's words on the chapter's clock, kept inside the block.
                w_start = min(start + word.start, end)
                words.append(WordTime(word.word, round(w_start, 3), round(min(start + word.end, end), 3)))
        return ChapterAudio(chapter.title, assembled.audio, tuple(words), tuple(sentences))

    def export(
        self,
        project_id: str,
        *,
        formats: Iterable[Any] = DEFAULT_FORMATS,
        preset: MasteringPreset | str | None = None,
    ) -> ExportResult:
        """The finished book: mastered, with chapter markers, subtitles and a compliance report."""
        from core.projects.export import export_book

        project = self.store.load(project_id)
        if not project.chapters:
            raise InvalidInput("This project has no chapters yet; import a manuscript first.")
        chapters = [self._chapter_audio(project, chapter) for chapter in project.chapters if chapter.blocks]
        cover = (self.store.folder(project_id) / project.cover).read_bytes() if project.cover else None
        out_dir = self.outputs_dir / f"{project_id}-{time.strftime('%Y%m%d-%H%M%S')}"
        out_dir.mkdir(parents=True, exist_ok=True)
        return export_book(
            chapters,
            out_dir,
            title=project.title,
            author=project.author,
            cover=cover,
            preset=project.preset if preset is None or preset == "" else _preset(preset),
            formats=formats,
        )

    def export_project(self, project_id: str) -> Path:
        return self.store.export_project(project_id, self.outputs_dir / "projects")

    def import_project(self, path: Path) -> Project:
        return self.store.import_project(path)

    # --- helpers -------------------------------------------------------------------------

    def _voice(self, text: str | None, where: str) -> VoiceChoice:
        """A voice in the casting grammar, checked: a built-in speaker or a voice in the library."""
        if not text or not str(text).strip():
            raise InvalidInput(f"{where}: choose a built-in speaker ('Ryan (calm)') or a library voice ('voice: Ada').")
        choice = render.voice_from_text(str(text), where)
        if choice.voice:
            try:
                self.app.library.get(choice.voice)
            except VoiceNotFound as exc:
                raise InvalidInput(f"{where}: {exc}") from None
        return choice


_NAMES = {"qa_tries": "QA re-takes", "alternates": "Alternates kept"}


def _preset(value: Any) -> MasteringPreset:
    try:
        return MasteringPreset(str(getattr(value, "value", value)).strip().lower())
    except ValueError:
        names = ", ".join(p.value for p in MasteringPreset)
        raise InvalidInput(f"Mastering preset '{value}' is not one of {names}.") from None


def _read(source: Path | str | bytes, name: str) -> Manuscript:
    return read_manuscript(source, name=name)


def _speaker_of(paragraph: str) -> str | None:
    found = dialogue_speaker(paragraph)
    return found[0] if found else None


def _add_chapters(project: Project, book: Manuscript) -> None:
    """The manuscript's chapters and paragraphs as chapters and blocks, with ids new in the project."""
    chapter_n = 1 + max((_number(c.id) for c in project.chapters), default=0)
    block_n = 1 + max((_number(b.id) for c in project.chapters for b in c.blocks), default=0)
    for part in book.chapters:
        blocks = []
        for paragraph in part.paragraphs:
            text = " ".join(paragraph.split())
            if not text:
                continue
            blocks.append(Block(id=f"b{block_n:04d}", text=text, speaker=_speaker_of(text)))
            block_n += 1
        project.chapters.append(
            Chapter(id=f"c{chapter_n:03d}", title=part.title or f"Chapter {chapter_n}", blocks=blocks)
        )
        chapter_n += 1


def _number(item_id: str) -> int:
    digits = "".join(ch for ch in item_id if ch.isdigit())
    return int(digits) if digits else 0


def _refresh(project: Project) -> None:
    """Every block's badge, after a change that may make takes stale (text, voice, casting)."""
    casting = casting_from(project.casting or "")
    for chapter in project.chapters:
        for block in chapter.blocks:
            render.refresh(block, render.cast_of(project, chapter, block, casting))


def _preview(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
