"""Projects: a book or an episode from manuscript to mastered file, every block checked by ear.

The tab is thin over ``ctx.projects`` (core/projects/service.py). Its state is the three pickers
(project, chapter, block: ids as values); every action returns an *outcome* (what to select, a
message, files) into a gr.State, and one function, ``show``, redraws every panel from the stored
project. A refusal is one toast and leaves the panels as they were; switching project, chapter or
block redraws them all, so no panel can keep showing the previous one's state.
Words and tables come from studio/ui/tabs/projects_view.py; the named API from projects_api.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from core.engine.speakers import speakers
from core.errors import InvalidInput
from core.projects.model import Block, Chapter, MasteringPreset, Project
from core.takes.job import Job, JobState
from core.takes.values import language_value
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import owner_of
from studio.ui.tabs.history import refresh_rows_js
from studio.ui.tabs.projects_api import (
    make_project_api,
    manuscript_source,
    read_bytes,
    register_project_api,
    start_render,
)
from studio.ui.tabs.projects_view import (
    BLOCK_COLUMNS,
    CHAPTER_COLUMNS,
    block_choices,
    block_header,
    block_rows,
    chapter_choices,
    chapter_rows,
    compliance_markdown,
    project_choices,
    project_header,
    qa_report_markdown,
    take_choices,
)
from studio.ui.widgets import LANGUAGE_CHOICES, action_bar, demo_banner, markdown_text

TAB = "projects"
SCOPES = ["Whole project", "This chapter", "This block"]
PRESETS = [
    ("ACX audiobook", MasteringPreset.ACX.value),
    ("Podcast", MasteringPreset.PODCAST.value),
    ("Broadcast (EBU R128)", MasteringPreset.BROADCAST.value),
    ("None (as rendered)", MasteringPreset.NONE.value),
]
FORMATS = [
    ("M4B audiobook", "m4b"),
    ("MP3 per chapter", "mp3"),
    ("WAV per chapter", "wav"),
    ("SRT subtitles", "srt"),
    ("WebVTT subtitles", "vtt"),
    ("Zip of everything", "zip"),
]
DEFAULT_FORMATS = ["m4b", "mp3", "srt", "vtt", "zip"]
CONFIRM_LABEL = "Yes, delete this project and its audio"
CHAPTER_DEFAULT = ("(the narrator)", "")
BLOCK_DEFAULT = ("(the chapter's voice)", "")


def voice_choices(ctx: StudioContext) -> list[str]:
    """The nine built-in speakers, then the library's voices, in the casting grammar."""
    return [s.name for s in speakers()] + [f"voice: {v.name}" for v in ctx.app.library.list()]


def find_chapter(project: Project | None, chapter_id: str | None) -> Chapter | None:
    if project is None or not project.chapters:
        return None
    return next((c for c in project.chapters if c.id == chapter_id), project.chapters[0])


def find_block(chapter: Chapter | None, block_id: str | None) -> Block | None:
    if chapter is None or not chapter.blocks:
        return None
    return next((b for b in chapter.blocks if b.id == block_id), chapter.blocks[0])


def progress_line(job: Job) -> str:
    text = job.progress_text()
    if job.state is JobState.RUNNING and job.token.cancelled:
        return f"Stopping… {text}"
    if job.state is JobState.STOPPED:
        return f"{text} Rendered blocks are kept: press **Resume** to render the rest."
    return text


def build_projects_tab(ctx: StudioContext) -> dict[str, Any]:
    service = ctx.projects
    voices = voice_choices(ctx)
    with gr.Tab("Projects", id=TAB, elem_id="projects-tab") as tab:
        demo_banner(ctx)
        gr.Markdown(
            "A book or an episode in one place: import a manuscript, render it chapter by chapter "
            "(every block is checked by ear and re-taken when it fails), fix single blocks, and "
            "export a mastered M4B with chapters."
        )
        with gr.Row(equal_height=False):
            pick = gr.Dropdown([], label="Project", scale=4, min_width=220, elem_id="projects-pick")
            reload = gr.Button("↻ Refresh", size="sm", scale=0, min_width=110, elem_id="projects-refresh")
        header = gr.Markdown(elem_id="projects-header")
        status = gr.Markdown(elem_id="projects-note", elem_classes=["inline-status"])

        with gr.Accordion("New project", open=not service.list(), elem_id="projects-new") as new_panel:
            with gr.Row():
                title = gr.Textbox(label="Title", min_width=200, elem_id="projects-title")
                author = gr.Textbox(label="Author", min_width=200, elem_id="projects-author")
            with gr.Row():
                narrator = gr.Dropdown(
                    voices,
                    value="Ryan",
                    label="Narrator",
                    allow_custom_value=True,
                    info="A speaker with a style, e.g. Ryan (calm), or voice: Library Voice",
                    min_width=200,
                    elem_id="projects-narrator",
                )
                language = gr.Dropdown(
                    LANGUAGE_CHOICES, value="Auto", label="Language", allow_custom_value=True, min_width=140
                )
            cover = gr.Image(
                label="Cover (optional)", type="filepath", sources=["upload"], height=160, elem_id="projects-cover"
            )
            create = gr.Button("Create project", variant="primary", elem_id="projects-create")

        with gr.Accordion("Import manuscript", open=False, elem_id="projects-import-panel") as import_panel:
            paste = gr.Textbox(
                label="Paste the text",
                lines=6,
                max_lines=20,
                placeholder="# Chapter One\n\nA paragraph is a block.\n\nMaya: Dialogue lines use the casting.",
                elem_id="projects-paste",
            )
            manuscript = gr.File(
                label="…or upload a manuscript (.txt, .md, .epub)",
                file_types=[".txt", ".md", ".markdown", ".epub"],
                type="filepath",
                height=120,
                elem_id="projects-manuscript",
            )
            replace = gr.Checkbox(value=False, label="Replace the project's chapters", elem_id="projects-replace")
            import_button = gr.Button("Import into this project", variant="primary", elem_id="projects-import")

        with gr.Accordion("Project file", open=False, elem_id="projects-file-panel"):
            with gr.Row(equal_height=True):
                save_file = gr.Button("Export the project file", min_width=160, elem_id="projects-file-export")
                confirm = gr.Checkbox(value=False, label=CONFIRM_LABEL, min_width=200, elem_id="projects-confirm")
                delete = gr.Button("Delete project", variant="stop", min_width=140, elem_id="projects-delete")
            project_file = gr.File(label="Project file", interactive=False, visible="hidden", elem_id="projects-file")
            load_file = gr.File(
                label="Import a project file (.qtsproject)",
                file_types=[".qtsproject"],
                type="filepath",
                height=120,
                elem_id="projects-file-import",
            )

        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chapter = gr.Dropdown([], label="Chapter", elem_id="projects-chapter")
                chapters = gr.Dataframe(
                    chapter_rows(None),
                    headers=CHAPTER_COLUMNS,
                    interactive=False,
                    max_height=260,
                    wrap=True,
                    column_widths=[36, 150, 76, 92, 88, 88, 130, 150],
                    pinned_columns=2,
                    elem_id="projects-chapters",
                )
                with gr.Row(equal_height=True):
                    chapter_voice = gr.Dropdown(
                        [CHAPTER_DEFAULT, *voices],
                        value="",
                        label="This chapter's voice",
                        allow_custom_value=True,
                        scale=3,
                        min_width=200,
                        elem_id="projects-chapter-voice",
                    )
                    chapter_voice_set = gr.Button("Set", scale=0, min_width=80, elem_id="projects-chapter-voice-set")
                blocks = gr.Dataframe(
                    block_rows(None, None),
                    headers=BLOCK_COLUMNS,
                    interactive=False,
                    max_height=360,
                    wrap=True,
                    column_widths=[40, 260, 130, 120, 72, 64],
                    pinned_columns=2,
                    elem_id="projects-blocks",
                )
                scope = gr.Radio(SCOPES, value=SCOPES[0], label="Render", elem_id="projects-scope")
                bar = action_bar(TAB, "Render", button_id="projects-render")
            with gr.Column(scale=2, min_width=300):
                block = gr.Dropdown([], label="Block", elem_id="projects-block")
                block_info = gr.Markdown(elem_id="projects-block-info")
                # The one player: the picked block's chosen take, or the alternate picked below.
                player = gr.Audio(
                    label="Chosen take",
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="projects-player",
                )
                takes = gr.Radio([], label="Takes (pick one to hear it)", elem_id="projects-takes")
                with gr.Row():
                    choose = gr.Button("Use this take", size="sm", min_width=110, elem_id="projects-choose")
                    redo_same = gr.Button("Redo (same seed)", size="sm", min_width=110, elem_id="projects-redo-same")
                    redo_new = gr.Button("Redo (new seed)", size="sm", min_width=110, elem_id="projects-redo-new")
                text = gr.Textbox(label="Text", lines=4, max_lines=12, elem_id="projects-block-text")
                with gr.Row(equal_height=True):
                    save = gr.Button("Save text", size="sm", min_width=110, elem_id="projects-save")
                    lock = gr.Checkbox(value=False, label="Locked (never re-rendered)", elem_id="projects-lock")
                with gr.Row(equal_height=True):
                    block_voice = gr.Dropdown(
                        [BLOCK_DEFAULT, *voices],
                        value="",
                        label="This block's voice",
                        allow_custom_value=True,
                        scale=3,
                        min_width=200,
                        elem_id="projects-block-voice",
                    )
                    block_voice_set = gr.Button("Set", scale=0, min_width=80, elem_id="projects-block-voice-set")

        with gr.Accordion("QA report", open=False, elem_id="projects-qa"):
            qa_report = gr.Markdown(elem_id="projects-qa-report")

        with gr.Accordion("Export", open=False, elem_id="projects-export-panel"):
            with gr.Row():
                preset = gr.Radio(
                    PRESETS, value=MasteringPreset.ACX.value, label="Mastering", elem_id="projects-preset"
                )
                formats = gr.CheckboxGroup(FORMATS, value=DEFAULT_FORMATS, label="Formats", elem_id="projects-formats")
            export = gr.Button("Export", variant="primary", elem_id="projects-export")
            files = gr.File(
                label="Files", file_count="multiple", interactive=False, visible="hidden", elem_id="projects-files"
            )
            compliance = gr.Markdown(elem_id="projects-compliance")

        outcome = gr.State({})  # what the last action did: what to select, a message, files
        last_render = gr.State({})  # the scope of the last render, for Resume
        # Inside the tab: a stray child of gr.Tabs breaks the tab bar.
        register_project_api(ctx, make_project_api(ctx))

    # --- drawing ----------------------------------------------------------------------

    panels = [
        pick, header, chapter, chapters, chapter_voice, block, blocks, block_info,
        text, block_voice, lock, takes, player, qa_report, preset, files, compliance, project_file, status,
    ]  # fmt: skip

    def show(done: dict[str, Any] | None, project_id: str | None, chapter_id: str | None, block_id: str | None):
        """Every panel from the stored project, with the outcome's selection and message."""
        done = done or {}
        if "project" in done:
            project_id, chapter_id, block_id = done["project"], None, None
        if "chapter" in done:
            chapter_id, block_id = done["chapter"], None
        block_id = done.get("block", block_id)
        choices = project_choices(service.list())
        ids = [value for _, value in choices]
        if project_id not in ids:
            project_id = ids[0] if ids else None
        project = service.get(project_id) if project_id else None
        ch = find_chapter(project, chapter_id)
        bl = find_block(ch, block_id)
        take = bl.chosen_take if bl is not None else None
        audio = str(service.take_path(project.id, take)) if project is not None and take is not None else None
        exported = done.get("files") or []
        return (
            gr.update(choices=choices, value=project_id),
            project_header(project),
            gr.update(choices=chapter_choices(project), value=ch.id if ch else None),
            chapter_rows(project),
            ch.voice.label if ch is not None and ch.voice is not None else "",
            gr.update(choices=block_choices(ch), value=bl.id if bl else None),
            block_rows(project, ch),
            block_header(project, ch, bl),
            bl.text if bl is not None else "",
            bl.voice.label if bl is not None and bl.voice is not None else "",
            bl.locked if bl is not None else False,
            gr.update(choices=take_choices(bl), value=bl.chosen if bl is not None else None),
            gr.update(value=audio, label="Chosen take" if take is not None else "Not rendered yet"),
            qa_report_markdown(project),
            project.preset.value if project is not None else MasteringPreset.ACX.value,
            # "hidden", not False: a File left out of the page never came back with its value.
            gr.update(value=exported or None, visible=True if exported else "hidden"),
            done.get("compliance", ""),
            gr.update(value=done.get("project_file"), visible=True if done.get("project_file") else "hidden"),
            done.get("message", ""),
        )

    def redraw(project_id, chapter_id, block_id):
        return show({}, project_id, chapter_id, block_id)

    # --- actions: each returns an outcome -----------------------------------------------

    def do_create(title_v, author_v, narrator_v, language_v, cover_v):
        project = service.create(
            title_v or "",
            author=author_v or "",
            narrator=narrator_v or "Ryan",
            language=language_value(language_v),
            cover=read_bytes(cover_v),
        )
        return {
            "project": project.id,
            "message": f"Made **{markdown_text(project.title)}**: import its manuscript next.",
        }

    def do_import(project_id, paste_v, file_v, replace_v):
        if not project_id:
            raise InvalidInput("Make a project first (New project), then import its manuscript into it.")
        source, name = manuscript_source(file_v, paste_v)
        if source is None:
            raise InvalidInput("Paste the manuscript's text, or upload a .txt, .md or .epub file.")
        before = len(service.get(project_id).chapters)
        project = service.import_manuscript(project_id, source, name=name, replace=bool(replace_v))
        added = project.chapters if replace_v else project.chapters[before:]
        count = sum(len(c.blocks) for c in added)
        first = added[0].id if added else None
        return {
            "project": project.id,
            **({"chapter": first} if first else {}),
            "message": f"Imported {len(added)} chapter(s) with {count} block(s).",
        }

    def do_delete(project_id, confirmed):
        if not project_id:
            raise InvalidInput("Pick a project to delete.")
        if not confirmed:
            raise gr.Error(f"Tick “{CONFIRM_LABEL}” first, then press Delete again.", title="Please confirm")
        title_v = service.get(project_id).title
        service.delete(project_id)
        return {"project": None, "message": f"Deleted **{markdown_text(title_v)}**."}

    def do_save_file(project_id):
        path = service.export_project(project_id or "")
        return {"project_file": str(path), "message": f"The project file `{path.name}` is ready below."}

    def do_load_file(path):
        if not path:
            raise InvalidInput("Choose a .qtsproject file made with Export the project file.")
        project = service.import_project(Path(path))
        return {"project": project.id, "message": f"Imported the project **{markdown_text(project.title)}**."}

    def do_save_text(project_id, block_id, text_v):
        service.edit_block(project_id or "", block_id or "", text_v or "")
        return {"message": "Saved. Only this block is marked for re-rendering: press Redo or Render."}

    def do_lock(project_id, block_id, locked):
        service.lock_block(project_id or "", block_id or "", bool(locked))
        return {"message": "Locked: renders leave this block as it is." if locked else "Unlocked."}

    def do_chapter_voice(project_id, chapter_id, voice):
        service.set_voice(project_id or "", voice or None, chapter_id=chapter_id or None)
        return {"message": f"This chapter is read by {markdown_text(voice)}." if voice else "The narrator reads it."}

    def do_block_voice(project_id, block_id, voice):
        service.set_voice(project_id or "", voice or None, block_id=block_id or None)
        return {
            "message": f"This block is read by {markdown_text(voice)}." if voice else "The chapter's voice reads it."
        }

    def do_choose(project_id, block_id, take_id):
        if not take_id:
            raise InvalidInput("Pick one of the block's takes first.")
        service.choose_take(project_id or "", block_id or "", take_id)
        return {"message": "That take is the chosen one now: exports use it."}

    def do_export(project_id, preset_v, formats_v):
        if not formats_v:
            raise InvalidInput("Tick at least one format to export.")
        result = service.export(project_id or "", formats=list(formats_v), preset=preset_v or None)
        return {
            "files": [str(p) for p in result.files.values()],
            "compliance": compliance_markdown(result.compliance),
            "message": f"Exported {len(result.files)} file(s): download them under Export.",
        }

    def play_take(project_id, block_id, take_id):
        """An alternate in the one player (hearing it does not choose it)."""
        if not (project_id and block_id and take_id):
            return gr.skip()
        _, bl = service.get(project_id).block(block_id)
        take = next((t for t in bl.takes if t.id == take_id), None)
        if take is None:
            return gr.skip()
        label = "Chosen take" if take.id == bl.chosen else "Alternate take (not chosen)"
        return gr.update(value=str(service.take_path(project_id, take)), label=label)

    def pick_chapter_row(project_id, evt: gr.SelectData):
        project = service.get(project_id) if project_id else None
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else None
        if project is None or row is None or row >= len(project.chapters):
            return {}
        return {"chapter": project.chapters[row].id}

    def pick_block_row(project_id, chapter_id, evt: gr.SelectData):
        ch = find_chapter(service.get(project_id), chapter_id) if project_id else None
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else None
        if ch is None or row is None or row >= len(ch.blocks):
            return {}
        return {"chapter": ch.id, "block": ch.blocks[row].id}

    # --- rendering: a job, followed ----------------------------------------------------------

    def scope_of(scope_v, chapter_id, block_id) -> dict[str, str]:
        if scope_v == SCOPES[1]:
            return {"chapter": chapter_id or "", "block": "", "seed": "keep"}
        if scope_v == SCOPES[2]:
            return {"chapter": "", "block": block_id or "", "seed": "keep"}
        return {"chapter": "", "block": "", "seed": "keep"}

    def follow(project_id, what: dict[str, str], request) -> Iterator[tuple[Any, ...]]:
        """The job's progress line while it runs (only follows: closing the page never stops it),
        then the outcome that redraws the panels."""
        if not project_id:
            raise InvalidInput("Pick a project to render (or make one under New project).")
        job = start_render(ctx, project_id, what["chapter"], what["block"], what["seed"], request)
        for _, finished in job.follow():
            if not finished:
                yield progress_line(job), gr.skip(), what
        if job.state is JobState.FAILED:
            raise job.error or InvalidInput("The render failed.")
        yield progress_line(job), {}, what

    def render(project_id, chapter_id, block_id, scope_v, request: gr.Request):
        yield from follow(project_id, scope_of(scope_v, chapter_id, block_id), request)

    def redo(seed: str):
        def redo_block(project_id, block_id, request: gr.Request):
            if not block_id:
                raise InvalidInput("Pick a block to redo.")
            yield from follow(project_id, {"chapter": "", "block": block_id, "seed": seed}, request)

        redo_block.__name__ = f"redo_{seed}_seed"
        return redo_block

    def resume_render(project_id, what, request: gr.Request):
        if not what:
            raise InvalidInput("Nothing to resume: render something first.")
        yield from follow(project_id, {**what, "seed": "keep"}, request)

    def stop(request: gr.Request):
        running = ctx.jobs.active(owner_of(request), TAB)
        for job in running:
            ctx.jobs.stop(job.id)
        return "Stopping…" if running else "Nothing is being rendered in this tab."

    def offer_resume(request: gr.Request):
        job = ctx.jobs.latest(owner_of(request), TAB)
        return gr.update(visible=job is not None and job.state is JobState.STOPPED)

    # --- wiring -----------------------------------------------------------------------

    private: dict[str, Any] = dict(api_visibility="private")
    where = [pick, chapter, block]
    redraw_rows = [refresh_rows_js("projects-chapters"), refresh_rows_js("projects-blocks")]

    def then_show(event: Any) -> None:
        shown = event.success(friendly_errors(show), [outcome, *where], panels, queue=False, **private)
        for js in redraw_rows:
            shown.then(None, None, None, js=js, queue=False, **private)

    def act(trigger: Any, fn: Any, inputs: list[Any]) -> None:
        then_show(trigger(friendly_errors(fn), inputs, outcome, **private))

    for opened in (tab.select, reload.click):
        shown = opened(friendly_errors(redraw), where, panels, queue=False, **private)
        for js in redraw_rows:
            shown.then(None, None, None, js=js, queue=False, **private)
        opened(
            lambda: tuple(gr.update(choices=c) for c in voice_lists(ctx)),
            None,
            [narrator, chapter_voice, block_voice],
            queue=False,
            **private,
        )
    act(pick.input, lambda p: {"project": p}, [pick])
    act(chapter.input, lambda c: {"chapter": c}, [chapter])
    act(block.input, lambda b: {"block": b}, [block])
    act(chapters.select, pick_chapter_row, [pick])
    act(blocks.select, pick_block_row, [pick, chapter])
    # Made: the form folds away and the manuscript import opens; imported: it folds too.
    made = create.click(friendly_errors(do_create), [title, author, narrator, language, cover], outcome, **private)
    then_show(made)
    made.success(lambda: (gr.update(open=False), gr.update(open=True)), None, [new_panel, import_panel], **private)
    imported = import_button.click(friendly_errors(do_import), [pick, paste, manuscript, replace], outcome, **private)
    then_show(imported)
    imported.success(lambda: (gr.update(open=False), "", None), None, [import_panel, paste, manuscript], **private)
    act(delete.click, do_delete, [pick, confirm])
    act(save_file.click, do_save_file, [pick])
    act(load_file.upload, do_load_file, [load_file])
    act(save.click, do_save_text, [pick, block, text])
    act(lock.input, do_lock, [pick, block, lock])
    act(chapter_voice_set.click, do_chapter_voice, [pick, chapter, chapter_voice])
    act(block_voice_set.click, do_block_voice, [pick, block, block_voice])
    act(choose.click, do_choose, [pick, block, takes])
    act(export.click, do_export, [pick, preset, formats])
    takes.input(friendly_errors(play_take), [pick, block, takes], player, queue=False, **private)

    busy = [bar.generate, redo_same, redo_new, bar.stop, bar.resume]
    for trigger, handler, inputs in (
        (bar.generate, render, [pick, chapter, block, scope]),
        (redo_same, redo("keep"), [pick, block]),
        (redo_new, redo("new"), [pick, block]),
        (bar.resume, resume_render, [pick, last_render]),
    ):
        event = trigger.click(
            lambda: (*(gr.update(interactive=False),) * 3, gr.update(visible=True), gr.update(visible=False)),
            None,
            busy,
            queue=False,
            **private,
        ).then(
            friendly_errors(handler),
            inputs,
            [bar.progress, outcome, last_render],
            show_progress="hidden",  # the progress line under Render says it
            **private,
        )
        # A stopped or failed render still made blocks: redraw whatever happened.
        for after in (event.then, event.failure):
            shown = after(friendly_errors(show), [outcome, *where], panels, queue=False, **private)
            for js in redraw_rows:
                shown.then(None, None, None, js=js, queue=False, **private)
            after(
                lambda: (*(gr.update(interactive=True),) * 3, gr.update(visible=False)),
                None,
                busy[:4],
                queue=False,
                **private,
            )
            after(offer_resume, None, bar.resume, queue=False, **private)
    bar.stop.click(stop, None, bar.progress, queue=False, **private)
    # The projects change from the API and other windows: the page opens on the truth.
    return {"pick": pick, "panels": panels}


def voice_lists(ctx: StudioContext) -> tuple[list[Any], list[Any], list[Any]]:
    """The narrator, chapter and block voice choices (the library changes from other tabs)."""
    voices = voice_choices(ctx)
    return voices, [CHAPTER_DEFAULT, *voices], [BLOCK_DEFAULT, *voices]
