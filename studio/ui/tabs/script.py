"""Script: a dialogue as ``Name: line``, cast with built-in speakers and library voices."""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from core.audio.io import write_audio
from core.engine.speakers import speakers
from core.errors import InvalidInput
from core.takes.jobs import Job, JobState, format_seconds
from core.takes.script_grammar import draft_casting
from core.takes.script_jobs import script_work, stopped_script
from core.takes.script_render import (
    DEFAULT_PAUSE_S,
    MAX_PAUSE_S,
    RenderedLine,
    ScriptPlan,
    ScriptResult,
    plan_script,
)
from core.takes.service import KeptTake
from core.takes.subtitles import SubtitleFormat, write_subtitles
from core.takes.values import Options, language_value
from core.types import Mode
from studio.ui.advanced import advanced_accordion, with_advanced
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, job_result, owner_of
from studio.ui.widgets import LANGUAGE_CHOICES, STARTS_HIDDEN, action_bar, demo_banner

EXAMPLE_SCRIPT = """\
# Lines are 'Name: text'. Lines starting with # are comments.
Narrator: It was a dark and stormy night.
Anna: Who's there?
Narrator: Nobody answered. The wind rattled the shutters,
  and a line without a name continues the one before.
Anna: I know you're out there."""
EXAMPLE_CASTING = """\
Narrator = Ryan (calm, unhurried)
Anna = Vivian [English]"""
CASTING_PLACEHOLDER = """\
Narrator = Ryan (calm, slow)
Anna = Vivian [English, 0.6B]
Bob = voice: My Voice"""
CASTING_HELP = """\
One line per name: `NAME = VOICE (style) [options]`

- `Narrator = Ryan` — a built-in speaker; `(calm, slow)` after it is a style instruction (1.7B only).
- `Anna = voice: My Voice` — a voice from the Voice Library (cloned as recorded, no style).
- `[English, 0.6B]` — this voice's own language and/or model size; otherwise the settings below apply.
- A bare name that is not a built-in speaker is looked up in the library. Names match case-insensitively;
  `#` starts a comment. JSON works too: `{"Anna": {"voice": "My Voice"}}`.
"""
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]<>#|~])")


def voices_help(ctx: StudioContext) -> str:
    builtin = ", ".join(f"`{s.name}`" for s in speakers())
    names = [v.name for v in ctx.app.library.list()]
    library = ", ".join(f"`voice: {n}`" for n in names[:40]) if names else "none yet (save one in Voice Clone)"
    more = f" and {len(names) - 40} more" if len(names) > 40 else ""
    return f"**Built-in speakers:** {builtin}\n\n**Library voices:** {library}{more}"


def pause_value(value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_PAUSE_S
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"The pause between lines must be a number of seconds, not {value!r}.") from None
    if not math.isfinite(number) or not 0 <= number <= MAX_PAUSE_S:
        raise InvalidInput(f"The pause between lines is {value} s; it must be 0 to {MAX_PAUSE_S:g} seconds.")
    return number


def pcm16(samples: np.ndarray) -> np.ndarray:
    """What the live player streams (Gradio would convert float audio itself, with a warning)."""
    return (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)


def file_stem(index: int, speaker: str) -> str:
    slug = re.sub(r"[^\w-]+", "_", speaker).strip("_")[:40] or "line"
    return f"{index + 1:03d}-{slug}"


def lines_word(count: int) -> str:
    """ "1 line", "2 lines" (the stop message said "1 lines")."""
    return f"{count} line{'' if count == 1 else 's'}"


def progress_line(job: Job, run: ScriptRun) -> str:
    """Where a render stands: the lines made so far and the line being made now, by its number.

    The job's own "Line k of n" counted lines done plus one, which read "Line 2 of 6" while line 1
    was still waiting (lines are made in batches, or grouped by model, not always in order).
    """
    if job.state is not JobState.RUNNING:
        return job.progress_text()
    total = len(run.plan.lines)
    parts = [f"{len(run.durations)} of {total} lines made"]
    if job.message.startswith("Line"):  # the engine's label: "Line 3 of 6 (Tom)", "Lines 2-4 of 6 together"
        parts.append(f"making {job.message[0].lower()}{job.message[1:]}")
    parts.append(f"{format_seconds(job.elapsed_s())} elapsed")
    eta = job.eta_s()
    parts.append(f"about {format_seconds(eta)} left" if eta is not None else "estimating time left…")
    if job.token.cancelled:
        parts.insert(0, "Stopping…")
    return " · ".join(parts)


def stop_note(run: ScriptRun, partial: KeptTake | None) -> str:
    """One consistent sentence for a stopped render (it said "Stopped at line 4… stopped at line 2 of 6")."""
    total = len(run.plan.lines)
    made = len(run.files)
    if partial is None:
        return f"Stopped: {made} of {total} lines made; nothing new was kept."
    kept = partial.take.stopped_at or made
    return (
        f"Stopped with {kept} of {total} lines made. They are in the files list and in History "
        f"(take `{partial.take.id}`, {lines_word(total - kept)} to go). Press **Resume** to render the rest."
    )


def md(text: str) -> str:
    """Script text shown literally in Markdown."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def lines_markdown(plan: ScriptPlan, durations: dict[int, float], starts: list[float] | None = None) -> str:
    """The script as a numbered list that fills in as lines are generated (wraps on any screen)."""
    rows = []
    for i, line in enumerate(plan.lines):
        voice = plan.voice_of(line).label
        if i in durations and starts is not None:
            status = f"at {starts[i]:.1f} s · {durations[i]:.1f} s"
        elif i in durations:
            status = f"✓ {durations[i]:.1f} s"
        else:
            status = "waiting…"
        rows.append(f"{i + 1}. **{md(line.speaker)}** — {md(line.text)}  \n   _{md(voice)} · {status}_")
    done = f"{len(durations)} of {len(plan.lines)} lines" if starts is None else f"{len(plan.lines)} lines"
    return f"**Lines** ({done})\n\n" + "\n".join(rows)


class ScriptRun:
    """One render's files: a line file as each line arrives, then the zip and the take."""

    def __init__(self, ctx: StudioContext, plan: ScriptPlan, fmt: str):
        self.ctx, self.plan, self.fmt = ctx, plan, fmt
        self.folder = Path(ctx.outputs_dir) / "scripts" / uuid.uuid4().hex[:12]
        self.files: dict[int, Path] = {}
        self.durations: dict[int, float] = {}
        self.starts: list[float] | None = None
        self.subtitles: list[str] = []
        self.outputs: tuple[str, str, dict[str, Any]] | None = None  # (take, zip, details) once finished

    def add_line(self, item: RenderedLine) -> None:
        path = self.folder / f"{file_stem(item.index, item.speaker)}.{self.fmt}"
        self.files[item.index] = write_audio(item.audio, path, self.fmt)
        self.durations[item.index] = item.duration

    @property
    def lines(self) -> str:
        return lines_markdown(self.plan, self.durations, self.starts)

    @property
    def file_list(self) -> list[str]:
        return [str(self.files[i]) for i in sorted(self.files)]

    def finish(self, result: ScriptResult) -> tuple[str, str, dict[str, Any]]:
        """Keeps the merged take in the history, zips the lines; returns (take, zip, details)."""
        plan = self.plan
        kept = self.ctx.takes.keep_script(plan, result, self.fmt)
        take, info = kept.take, kept.details
        self.starts = result.starts
        names = {i: self.files[i].name for i in self.files}
        for i, line in enumerate(info["lines"]):
            line["file"] = names[i]
        zip_path = self.folder / f"script-{take.id}-all-lines.zip"
        manifest = {
            "take_id": take.id,
            "script": plan.text,
            "casting": plan.casting.as_text(),
            "seed": result.seed,
            "pause_s": result.pause_s,
            "lines": info["lines"],
        }
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for i in sorted(self.files):
                archive.write(self.files[i], self.files[i].name)
            archive.writestr("script.json", json.dumps(manifest, ensure_ascii=False, indent=2))
        info["zip"] = zip_path.name
        # Subtitles timed from the lines, beside the zip (History offers them too).
        self.subtitles = [str(write_subtitles(take, self.folder, fmt)) for fmt in SubtitleFormat]
        info["subtitles"] = [Path(path).name for path in self.subtitles]
        self.outputs = str(take.audio_path), str(zip_path), info
        return self.outputs

    def keep(self, result: ScriptResult) -> KeptTake:
        """The job's ``finish`` (core/takes/script_jobs.py): the take, the zip and the subtitles."""
        info = self.finish(result)[2]
        return KeptTake(self.ctx.app.history.get(info["take_id"]), info)


def summary_from_info(info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    t = info.get("timings", {})
    parts = [
        f"**{info.get('duration_s', 0):.1f} s** of audio",
        lines_word(len(info.get("lines", []))),
        f"{len(info.get('cast', []))} voice{'' if len(info.get('cast', [])) == 1 else 's'}",
        f"seed `{info.get('seed')}`",
        f"generated in {t.get('generate_s', 0):.1f} s",
    ]
    if t.get("load_s", 0) > 0.5:
        parts.append(f"model loads {t['load_s']:.1f} s")
    return "\n\n".join([" · ".join(parts), *[f"⚠️ {w}" for w in info.get("warnings", [])]])


def make_script_handlers(ctx: StudioContext):
    def prepare(script: Any, casting: Any, language: Any, size: Any, pause_s: Any, advanced: Options) -> ScriptPlan:
        if not isinstance(script, str) and script is not None:
            raise InvalidInput("The script must be text.")
        return plan_script(
            ctx.app.synthesis,
            ctx.app.library,
            script or "",
            casting or "",
            language=language_value(language),
            size=(size or "").strip() or None,
            sampling=advanced.sampling,
            pause_s=pause_value(pause_s),
            post=advanced.post,
        )

    @friendly_errors
    @with_advanced
    async def script_render(
        script: str,
        casting: str = "",
        language: str = "Auto",
        size: str = "1.7B",
        pause_s: float = DEFAULT_PAUSE_S,
        advanced: Options = Options(),
        progress=gr.Progress(),
        request: gr.Request | None = None,
    ) -> tuple[str, str, dict[str, Any]]:
        """Script mode: renders a dialogue (`Name: line` per line) with a casting (`Name = Speaker (style)` or
        `Name = voice: Library Voice`, one per line). Returns the merged take, a zip of the line files and details.
        Silence trim and DC removal apply to each line; normalisation and fades to the whole scene.
        Cancelling the call (gradio_client's job.cancel()) stops the render and keeps the lines made as a
        partial take ("stopped at line k of n") that /resume finishes."""
        ctx.check_request_rate(request)
        # Casting reads library voices: off the event loop, which serves every other page.
        plan = await asyncio.to_thread(prepare, script, casting, language, size, pause_s, advanced)
        run = ScriptRun(ctx, plan, advanced.fmt)
        # A job in the studio's worker, as in the tab: the call only waits for it, so a cancelled
        # call stops the model (job_result) and the device is free for the next request.
        await job_result(ctx, start(run, request), progress)
        assert run.outputs is not None, "a finished script job has kept its take"
        return run.outputs

    def start(run: ScriptRun, request: gr.Request | None, **resume: Any) -> Job:
        """The render as a job (core/takes/script_jobs.py): a reload does not stop it, Stop does, and
        when stopped the lines made are kept in History as a partial take."""
        work = script_work(ctx.takes, run.plan, run.fmt, on_line=run.add_line, finish=run.keep, **resume)
        return ctx.jobs.submit(
            work,
            kind="script",
            mode="Script",
            text=run.plan.text,
            owner=owner_of(request),
            tab="script",
            chunks=len(run.plan.lines),
            client=client_id(request),
        )

    def follow(job: Job, run: ScriptRun, reused: frozenset[int] = frozenset()):
        """The job's lines, progress and take as the tab's updates (only follows: closing the page
        ends this, never the job). ``reused``: lines a resumed render kept, not played again."""
        plan, skip, hide = run.plan, gr.skip(), gr.update(visible=False)
        # Only intermediate yields change visibility: Gradio can drop prop updates
        # that arrive with a stream's final message.
        yield skip, None, run.lines, gr.update(value=None, visible=False), skip, progress_line(job, run), hide
        started = False
        for pieces, done in job.follow():
            for item in pieces:
                # The live player gets each line as soon as it is made, with the pause before it. It
                # waited for the lines before it in the script, and lines made grouped by model (or in
                # a batch) left it silent until the render ended, then it all played at once.
                live = skip
                if item.index not in reused:
                    chunk = [item.audio.samples]
                    if started and plan.pause_s > 0:
                        chunk.insert(0, np.zeros(round(plan.pause_s * item.audio.sample_rate), dtype=np.float32))
                    live = (item.audio.sample_rate, pcm16(np.concatenate(chunk)))
                    started = True
                files = gr.update(value=run.file_list, visible=True)
                yield live, skip, run.lines, files, skip, progress_line(job, run), skip
            if not done:
                yield skip, skip, skip, skip, skip, progress_line(job, run), skip
        first = skip if started else (24_000, np.zeros(2_400, dtype=np.int16))
        if job.state is JobState.DONE and run.outputs is not None:
            take, zip_path, info = run.outputs
            yield first, take, run.lines, [zip_path, *run.subtitles, *run.file_list], info, job.progress_text(), skip
        elif job.state is JobState.STOPPED:
            partial = job.partial
            note = stop_note(run, partial)
            if partial is not None:
                # Resume shows in an intermediate yield: Gradio can drop a stream's last visibility change.
                yield first, partial.path, run.lines, skip, partial.details, note, gr.update(visible=True)
                yield skip, skip, skip, skip, skip, note, skip
            else:
                yield first, skip, run.lines, skip, skip, note, skip
        else:
            raise job.error or InvalidInput("The script failed.")

    @with_advanced
    def script_stream(
        script: str,
        casting: str = "",
        language: str = "Auto",
        size: str = "1.7B",
        pause_s: float = DEFAULT_PAUSE_S,
        advanced: Options = Options(),
        progress=gr.Progress(),
        request: gr.Request | None = None,
    ):
        # Gradio calls it with script_render's parameters, progress and request in their places.
        ctx.check_request_rate(request)
        run = ScriptRun(ctx, prepare(script, casting, language, size, pause_s, advanced), advanced.fmt)
        yield from follow(start(run, request), run)

    def stopped_here(request: gr.Request | None) -> str | None:
        """The partial take of this session's last script, when Stop ended it part-way."""
        job = ctx.jobs.latest(owner_of(request), "script")
        if job is None or job.state is not JobState.STOPPED or job.partial is None:
            return None
        return job.partial.take.id

    # Not named `resume`: Gradio names private endpoints after their function, and /resume is the
    # named API's (studio/ui/tabs/history_resume.py), which resumes scripts too (JobRegistry.resume).
    def resume_script_in_tab(request: gr.Request | None = None):
        take_id = stopped_here(request)
        if take_id is None:
            raise InvalidInput("Nothing to resume: the last script in this tab was not stopped part-way.")
        ctx.check_request_rate(request)
        plan, fmt, done = stopped_script(ctx.takes, take_id)
        run = ScriptRun(ctx, plan, fmt)
        yield from follow(start(run, request, done=done, replaces=take_id), run, frozenset(done))

    return script_render, friendly_errors(script_stream), friendly_errors(resume_script_in_tab), stopped_here


def build_script_tab(ctx: StudioContext) -> dict[str, Any]:
    sizes = ctx.app.catalog.sizes(Mode.CUSTOM_VOICE)
    default_size = ctx.app.settings.preferred_size if ctx.app.settings.preferred_size in sizes else sizes[0]
    with gr.Tab("Script", id="script") as tab:
        demo_banner(ctx)
        gr.Markdown(
            "Write a dialogue, one `Name: line` per line, give each name a voice, and render the "
            "whole scene as one take — plus every line as its own file."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                script = gr.Textbox(
                    label="Script", lines=10, max_lines=30, placeholder=EXAMPLE_SCRIPT, elem_id="script-text"
                )
                casting = gr.Textbox(
                    label="Casting",
                    lines=4,
                    max_lines=15,
                    placeholder=CASTING_PLACEHOLDER,
                    info="NAME = Speaker (style) [language, size]  ·  NAME = voice: Library Voice",
                    elem_id="script-casting",
                )
                with gr.Row():
                    fill = gr.Button("Cast the script's names", size="sm", elem_id="script-fill")
                    example = gr.Button("Load an example", size="sm", elem_id="script-example")
                with gr.Accordion(
                    "Available voices and casting syntax", open=False, elem_id="script-voices"
                ) as voices_panel:
                    # A callable: read on every page load. The list made when the studio started said
                    # "Library voices: none yet" for good, reloads included (issue 23).
                    voices = gr.Markdown(lambda: voices_help(ctx), elem_id="script-voices-list")
                    gr.Markdown(CASTING_HELP)
                with gr.Row():
                    language = gr.Dropdown(
                        LANGUAGE_CHOICES, value="Auto", label="Language", allow_custom_value=True, min_width=140
                    )
                    size = gr.Radio(sizes, value=default_size, label="Model size", min_width=140)
                pause = gr.Slider(
                    0,
                    MAX_PAUSE_S,
                    value=DEFAULT_PAUSE_S,
                    step=0.05,
                    label="Pause between lines (s)",
                    info="Silence between lines, with short fades at every cut",
                    elem_id="script-pause",
                )
                widgets = advanced_accordion()
                # Render, Stop and progress stay on screen (a sticky bar at the end of the column).
                bar = action_bar("script", "Render script", button_id="script-render")
                render = bar.generate
            with gr.Column(scale=2):
                live = gr.Audio(
                    label="Live (plays lines as they're ready)",
                    streaming=True,
                    autoplay=True,
                    interactive=False,
                    elem_id="script-live",
                )
                take = gr.Audio(
                    label="Whole scene (one take)",
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="script-audio",
                )
                summary = gr.Markdown(elem_id="script-summary")
                lines = gr.Markdown(elem_id="script-lines")
                files = gr.File(
                    label="Files: all lines (.zip), subtitles (.srt, .vtt), then each line",
                    file_count="multiple",
                    interactive=False,
                    visible=STARTS_HIDDEN,
                    elem_id="script-files",
                )
                # The API's second output; the page shows the zip in the list above.
                zip_file = gr.File(label="All lines (.zip)", interactive=False, visible=False, elem_id="script-zip")
                with gr.Accordion("Details", open=False):
                    info = gr.JSON(label="Script details")

        script_render, script_stream, resume_handler, stopped_here = make_script_handlers(ctx)
        inputs = [script, casting, language, size, pause, *widgets.inputs]
        api_endpoint(script_render, inputs, [take, zip_file, info], "script")

        def offer_resume(request: gr.Request | None = None) -> dict[str, Any]:
            """Resume is offered when this session's last script was stopped part-way."""
            return gr.update(visible=stopped_here(request) is not None)

        # Render and Resume (a stopped script's missing lines) share the outputs and the busy state.
        outputs = [live, take, lines, files, info, bar.progress, bar.resume]
        busy = [render, bar.stop, bar.resume]
        for trigger, handler, handler_inputs in ((render, script_stream, inputs), (bar.resume, resume_handler, None)):
            event = trigger.click(
                lambda: (gr.update(interactive=False), gr.update(visible=True), gr.update(visible=False)),
                None,
                busy,
                api_visibility="private",
                queue=False,
            ).then(
                handler,
                handler_inputs,
                outputs,
                api_visibility="private",
                show_progress="hidden",  # the progress line under Render says it
            )
            event.success(summary_from_info, info, summary, api_visibility="private", queue=False)
            for after in (event.success, event.failure):
                after(
                    lambda: (gr.update(interactive=True), gr.update(visible=False)),
                    None,
                    [render, bar.stop],
                    api_visibility="private",
                    queue=False,
                )
            # Gradio 6.17 runs .then only after a success; .failure covers the rest.
            for after in (event.then, event.failure):
                after(offer_resume, None, bar.resume, api_visibility="private", queue=False)

        def stop(request: gr.Request | None = None) -> str:
            running = ctx.jobs.active(owner_of(request), "script")
            for job in running:
                ctx.jobs.stop(job.id)
            return "Stopping…" if running else "No script is being rendered in this tab."

        bar.stop.click(stop, None, bar.progress, api_visibility="private", queue=False)

        fill.click(
            friendly_errors(draft_casting), [script, casting, language], casting, api_visibility="private", queue=False
        )
        example.click(
            lambda: (EXAMPLE_SCRIPT, EXAMPLE_CASTING), None, [script, casting], api_visibility="private", queue=False
        )
        # The library changes from other tabs and scripts: refresh the list when the tab or the list
        # opens, and when the casting is edited.
        for opened in (tab.select, voices_panel.expand, casting.focus):
            opened(lambda: voices_help(ctx), None, voices, api_visibility="private", queue=False)
    return {"script": script, "casting": casting, "audio": take, "info": info}
