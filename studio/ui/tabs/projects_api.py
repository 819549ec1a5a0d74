"""The Projects named API: a gradio_client script turns a manuscript into an M4B.

``/project_create`` (optionally with the manuscript) → ``/project_import`` → ``/project_render``
(waits for the render job; cancelling the call stops it, and rendering again resumes) →
``/project_qa_report`` → ``/project_export`` (the M4B, the zip and the compliance report).
``/project_list`` and ``/project_get`` read. Every call goes through ``ctx.projects``
(core/projects/service.py); core errors become sentences at studio/ui/errors.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import gradio as gr

from core.errors import InvalidInput
from core.projects.model import Project
from core.takes.job import Job, JobState
from core.takes.values import language_value
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, api_function, owner_of, wait_job

TAB = "projects"
SEEDS = ("keep", "new")  # render with the chosen take's seed, or a new one


def read_bytes(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


def manuscript_source(file: str | None, text: str | None) -> tuple[Path | str | None, str]:
    """(source, name) for ``ProjectService``: an uploaded file (by its name's suffix) or pasted text."""
    if file and text and text.strip():
        raise InvalidInput("Give the manuscript as a file or as pasted text, not both.")
    if file:
        return Path(file), Path(file).name
    if text and text.strip():
        return text, ""
    return None, ""


def summary(ctx: StudioContext, project_id: str) -> dict[str, Any]:
    """The project's line of ``ProjectService.list()``: id, title, counts of blocks by status."""
    for row in ctx.projects.list():
        if row["id"] == project_id:
            return dict(row)
    raise InvalidInput(f"There is no project '{project_id}'.")


def project_dict(project: Project) -> dict[str, Any]:
    return project.as_dict()


def start_render(
    ctx: StudioContext,
    project_id: str,
    chapter_id: str | None,
    block_id: str | None,
    seed: str,
    request: gr.Request | None,
) -> Job:
    if seed not in SEEDS:
        raise InvalidInput(f"seed must be 'keep' (the chosen take's seed) or 'new', not {seed!r}.")
    ctx.check_request_rate(request)
    return ctx.projects.render(
        project_id,
        chapter_id=chapter_id or None,
        block_id=block_id or None,
        seed=seed,
        owner=owner_of(request),
        client=client_id(request),
        tab=TAB,
    )


def export_files(result: Any) -> tuple[str | None, str | None, dict[str, Any]]:
    """The M4B, the zip and the report (every file's name, the compliance per chapter)."""
    files = {key: str(path) for key, path in result.files.items()}
    report = {
        "files": {key: Path(path).name for key, path in files.items()},
        "compliance": [{"chapter": title, **report.as_dict()} for title, report in result.compliance],
        "passed": all(report.passed for _, report in result.compliance),
    }
    return files.get("m4b"), files.get("zip"), report


def make_project_api(ctx: StudioContext) -> dict[str, Any]:
    @friendly_errors
    def project_list() -> list[dict[str, Any]]:
        """Every project: id, title, author, chapters, blocks, rendered, checked, flagged, updated."""
        return ctx.projects.list()

    @friendly_errors
    def project_get(project_id: str) -> dict[str, Any]:
        """A project with its chapters, blocks, takes (seed, length, QA verdict) and statuses."""
        return project_dict(ctx.projects.get(project_id or ""))

    @friendly_errors
    def project_create(
        title: str,
        author: str = "",
        narrator: str = "Ryan",
        language: str = "Auto",
        text: str = "",
        manuscript: str | None = None,
        cover: str | None = None,
    ) -> dict[str, Any]:
        """A new project. narrator in the Script tab's casting grammar ("Ryan (calm)", "voice: Ada");
        the manuscript (optional) as a file (.txt, .md, .epub) or as pasted text."""
        source, name = manuscript_source(manuscript, text)
        project = ctx.projects.create(
            title or "",
            author=author or "",
            narrator=narrator or "Ryan",
            language=language_value(language),
            cover=read_bytes(cover),
            manuscript=source,
            manuscript_name=name,
        )
        return project_dict(project)

    @friendly_errors
    def project_import(
        project_id: str, text: str = "", manuscript: str | None = None, replace: bool = False
    ) -> dict[str, Any]:
        """Adds a manuscript's chapters to a project (replace=true: instead of its chapters)."""
        source, name = manuscript_source(manuscript, text)
        if source is None:
            raise InvalidInput("Paste the manuscript's text, or upload a .txt, .md or .epub file.")
        return project_dict(ctx.projects.import_manuscript(project_id or "", source, name=name, replace=replace))

    @friendly_errors
    async def project_render(
        project_id: str,
        chapter_id: str = "",
        block_id: str = "",
        seed: str = "keep",
        progress=gr.Progress(),
        request: gr.Request | None = None,
    ) -> dict[str, Any]:
        """Renders the project (or one chapter, or one block) and waits: every block is checked by
        ear and re-taken when it fails. Cancelling the call stops the render; calling again resumes
        (rendered, unchanged blocks are skipped). Returns the project's counts and the job's last word."""
        job = await asyncio.to_thread(start_render, ctx, project_id or "", chapter_id, block_id, seed, request)
        await wait_job(ctx, job, progress)
        if job.state is not JobState.DONE:
            raise job.error or InvalidInput("The render was stopped; render again to resume it.")
        return {**summary(ctx, project_id), "message": job.progress_text()}

    @friendly_errors
    def project_qa_report(project_id: str) -> dict[str, Any]:
        """Per chapter: blocks, checked, flagged (with the reasons); demo = heard by the demo ASR."""
        return ctx.projects.qa_report(project_id or "")

    @friendly_errors
    def project_export(
        project_id: str, preset: str = "", formats: str = ""
    ) -> tuple[str | None, str | None, dict[str, Any]]:
        """Masters and exports: the M4B (chapters, title, author, cover), a zip of everything, and the
        compliance report per chapter. preset: acx, podcast, broadcast or none (empty: the project's);
        formats: comma separated from m4b, mp3, wav, srt, vtt, zip (empty: all but wav)."""
        chosen = [f.strip().lower() for f in (formats or "").split(",") if f.strip()]
        kwargs: dict[str, Any] = {"preset": preset.strip().lower() or None}
        if chosen:
            kwargs["formats"] = chosen
        return export_files(ctx.projects.export(project_id or "", **kwargs))

    return {
        fn.__name__: fn
        for fn in (
            project_list,
            project_get,
            project_create,
            project_import,
            project_render,
            project_qa_report,
            project_export,
        )
    }


def register_project_api(ctx: StudioContext, api: dict[str, Any]) -> None:
    """Plain JSON ones with gr.api; the ones with files through hidden components (uploads, downloads)."""
    api_function(api["project_list"], "project_list", queue=False)
    api_function(api["project_get"], "project_get", queue=False)
    api_function(api["project_qa_report"], "project_qa_report", queue=False)

    def text(value: str | None = None) -> gr.Textbox:
        return gr.Textbox(value=value, visible=False)

    def file() -> gr.File:
        return gr.File(visible=False, type="filepath")

    def json() -> gr.JSON:
        return gr.JSON(visible=False)

    api_endpoint(
        api["project_create"],
        [text(), text(""), text("Ryan"), text("Auto"), text(""), file(), file()],
        json(),
        "project_create",
    )
    api_endpoint(
        api["project_import"],
        [text(), text(""), file(), gr.Checkbox(value=False, visible=False)],
        json(),
        "project_import",
    )
    api_endpoint(api["project_render"], [text(), text(""), text(""), text("keep")], json(), "project_render")
    api_endpoint(api["project_export"], [text(), text(""), text("")], [file(), file(), json()], "project_export")
