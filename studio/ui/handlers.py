"""Event handlers made from a tab's parse function, and how they are wired to buttons.

A synthesis tab only writes ``parse(plain values) -> TakeJob``; from it come
the named API endpoint (returns (file, details)), the Generate button's handler
(follows the take: live pieces and progress, then the same (file, details)),
Stop, Resume and "Retry failed chunk". Every take is a job of ``ctx.jobs``
(core/takes/jobs.py), made and kept through ``core.takes.service.TakeService``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from core.audio.clip import Audio
from core.audio.io import load_audio, write_audio
from core.engine.live_decoding import LiveAudio
from core.engine.synthesis import ChunkAudio, ChunkFailed
from core.errors import InvalidInput, StudioError
from core.takes.jobs import Job, JobState, plan_text
from core.takes.service import KeptTake, TakeJob
from core.takes.subtitles import SubtitleFormat, take_file_stem, write_subtitles
from core.takes.values import output_format
from studio.api.endpoints import declared
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.progress import gradio_progress
from studio.ui.widgets import MAX_TAKES, ActionBar, TakePlayers, summary_from_info, wire_gallery

# Failed takes kept for "Retry failed chunk" across all sessions; the oldest are dropped.
MAX_FAILED_TAKES = 50

Parse = Callable[..., TakeJob]
Handler = Callable[..., Any]


def failed_key(request: gr.Request | None, parse: Parse) -> str:
    """Where this browser session's failed take in this tab waits in ``ctx.failed``."""
    return f"{getattr(request, 'session_hash', '')}:{parse.__name__}"


def takes_count(value: Any) -> int:
    """The Takes control's value (1-8; empty means 1)."""
    if value is None or value == "":
        return 1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InvalidInput("Takes must be a whole number from 1 to 8.")
    return int(value)


def owner_of(request: gr.Request | None) -> str:
    """The browser session a job belongs to (its tab's Stop and Resume act on its own jobs)."""
    return str(getattr(request, "session_hash", "") or "")


def take_handlers(
    ctx: StudioContext, parse: Parse, *, takes: bool = False, extra_outputs: int = 0
) -> tuple[Handler, Handler, Handler]:
    """From one `parse(plain values) -> TakeJob`, the event handlers:

    - the API handler returns (file, details) -- the scripting contract;
    - the UI handler follows the take as it is made: each live piece to the player, the
      progress line ("chunk k of n", elapsed, time left), then the same (file, details);
    - the retry handler continues this session's last failed take from its failed chunk.
    Every take is made by a job in ``ctx.jobs`` (core/takes/jobs.py), in the studio's worker
    thread: it keeps going if the page closes, and Stop reaches it. An API client that
    cancels its call (gradio_client's ``job.cancel()``) stops the job the same way.
    The first two carry parse's signature, so the API shows its parameter names.
    With ``takes``, a ``variants`` count (1-8) follows parse's values: several
    takes of the request generated together (``TakeService.make_variants``);
    the UI handler then also fills ``extra_outputs`` (the take gallery).
    UI outputs: live player, take, details, progress line, then the gallery's.
    """
    count = len(inspect.signature(parse).parameters)
    width = count + (1 if takes else 0)
    tab = parse.__name__

    def split(args: tuple[Any, ...], progress: Any, request: Any) -> tuple[tuple[Any, ...], int, Any, Any]:
        """Gradio hands progress and request over positionally, right after parse's values: it only
        fills in positional parameters, so that is where the signature declared below puts them."""
        if len(args) > width:
            progress, request = [*args[width:], None][:2]
        variants = takes_count(args[count]) if takes and len(args) > count else 1
        return args[:count], variants, progress, request

    def start(args: tuple[Any, ...], kwargs: dict[str, Any], variants: int, request: Any) -> Job:
        job = parse(*args, **kwargs)
        job.variants = variants
        ctx.check_request_rate(request)
        return ctx.jobs.start_take(job, client=client_id(request), owner=owner_of(request), tab=tab)

    async def run(
        *args: Any, progress: Any = None, request: gr.Request | None = None, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        args, variants, progress, request = split(args, progress, request)
        # Parsing reads reference clips and the library: off the event loop, which also serves
        # every other page's files and streams.
        job = await asyncio.to_thread(start, args, kwargs, variants, request)
        return await job_result(ctx, job, progress)

    def stream(
        *args: Any, progress: Any = None, request: gr.Request | None = None, **kwargs: Any
    ) -> Iterator[tuple[Any, ...]]:
        args, variants, progress, request = split(args, progress, request)
        key = failed_key(request, parse)
        ctx.failed.pop(key, None)
        job = start(args, kwargs, variants, request)
        yield from follow_job(ctx, job, key, extra_outputs)

    def retry(progress: gr.Progress = gr.Progress(), request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        key = failed_key(request, parse)
        if key not in ctx.failed:
            raise InvalidInput("Nothing to retry: the last take in this tab did not fail.")
        ctx.check_request_rate(request)
        take, failed = ctx.failed.pop(key)
        job = ctx.jobs.retry(take, failed, client=client_id(request), owner=owner_of(request), tab=tab)
        yield from follow_job(ctx, job, key, extra_outputs)

    # Positional (not keyword-only): Gradio injects Progress and Request only into positional parameters.
    extra = [
        *(
            [inspect.Parameter("variants", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=1, annotation=float)]
            if takes
            else []
        ),
        inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
    ]
    signature = inspect.signature(parse)
    signature = signature.replace(
        parameters=[*signature.parameters.values(), *extra], return_annotation=tuple[str, dict[str, Any]]
    )
    for fn in (run, stream):
        fn.__signature__ = signature  # type: ignore[union-attr]
        fn.__name__ = parse.__name__
        fn.__doc__ = parse.__doc__
    return friendly_errors(run), friendly_errors(stream), friendly_errors(retry)


async def job_result(ctx: StudioContext, job: Job, progress: Any) -> tuple[str, dict[str, Any]]:
    """An API call's answer: waits for ``job`` (reporting its progress), then (file, details)."""
    await wait_job(ctx, job, progress)
    if job.state is not JobState.DONE:
        raise job.error or InvalidInput("The take was stopped.")
    return job.kept[0].path, with_takes(job.kept)


async def wait_job(ctx: StudioContext, job: Job, progress: Any) -> None:
    """Waits for ``job`` to finish, reporting its progress; a cancelled call stops the job."""
    report = gradio_progress(progress)
    try:
        while not job.finished:
            await asyncio.sleep(0.1)
            if report is not None:
                report(job.fraction(), job.progress_text())
    except asyncio.CancelledError:
        # Gradio cancels this task when the client cancels (job.cancel()) or goes away:
        # stop the model too, and hand the device back before the next request starts.
        ctx.jobs.stop(job.id)
        await asyncio.get_running_loop().run_in_executor(None, job.wait, STOP_WAIT_S)
        raise


def player_audio(job: Job) -> Iterator[Audio | None]:
    """What the one player plays while ``job`` runs: each new piece as it comes, and None when the
    job moved on without new audio (so the progress line still updates), until the job ends.

    Live pieces (core/engine/live_decoding.py) tile their chunk, so a chunk that
    had them is not played again when its exact audio arrives.
    """
    played_live: set[int] = set()
    for pieces, finished in job.follow():
        for item in pieces:
            if isinstance(item, LiveAudio):
                played_live.add(item.index)
                yield item.audio
            elif isinstance(item, ChunkAudio) and item.index not in played_live:
                yield item.audio
        if not finished:
            yield None


def follow_job(ctx: StudioContext, job: Job, key: str, extra_outputs: int = 0) -> Iterator[tuple[Any, ...]]:
    """A job's progress and live pieces as UI updates, then its take (live, take, details, progress, gallery…).

    Only follows: closing the page ends this generator, never the job.
    """
    skips = (gr.skip(),) * extra_outputs
    started = False
    for audio in player_audio(job):
        started = started or audio is not None
        live = gr.skip() if audio is None else (audio.sample_rate, audio.samples)
        yield live, gr.skip(), gr.skip(), job.progress_text(), *skips
    # Gradio fails a streaming event whose live player never got a value: a moment of silence.
    first = gr.skip() if started else SILENCE
    if job.state is JobState.DONE:
        kept = job.kept
        yield first, kept[0].path, with_takes(kept), job.progress_text(), *gallery_updates(kept, extra_outputs)
    elif job.state is JobState.STOPPED:
        partial = job.partial
        if partial is not None:
            note = f"{partial.take.status_label.capitalize()}: the chunks before it are kept in History. Press **Resume** to finish it."
            yield first, partial.path, partial.details, note, *gallery_updates([], extra_outputs)
        else:
            yield first, gr.skip(), gr.skip(), f"{job.progress_text()} Nothing was kept.", *skips
    else:
        error = job.error
        if isinstance(error, ChunkFailed) and job.take is not None:
            ctx.failed[key] = (job.take, error)
            while len(ctx.failed) > MAX_FAILED_TAKES:
                ctx.failed.pop(next(iter(ctx.failed)))
            reason = str(error).rstrip()
            reason += "" if reason.endswith((".", "!", "?")) else "."
            raise gr.Error(
                f"{reason} The {error.index} chunk(s) before it are kept: press "
                "'Retry failed chunk' to regenerate from this chunk on.",
                title="A chunk failed",
            )
        raise error or InvalidInput("The take failed.")


SILENCE = (24_000, np.zeros(2_400, dtype=np.float32))
STOP_WAIT_S = 30.0  # how long a cancelled API call waits for the model to let go (it takes about a frame)


def gallery_updates(kept: list[KeptTake], extra_outputs: int) -> tuple[Any, ...]:
    """Row, details state, then per take its column (shown or not) and its player."""
    if not extra_outputs:
        return ()
    shown = list(kept) if len(kept) > 1 else []
    columns = [gr.update(visible=i < len(shown)) for i in range(MAX_TAKES)]
    players = [
        gr.update(value=shown[i].path, label=f"Take {i + 1} · seed {shown[i].details.get('seed')}")
        if i < len(shown)
        else gr.update(value=None)
        for i in range(MAX_TAKES)
    ]
    return (gr.update(visible=bool(shown)), [k.details | {"path": k.path} for k in shown], *columns, *players)


def wire_generate(
    ctx: StudioContext,
    parse: Parse,
    api_name: str,
    button: gr.Button,
    inputs: list[Any],
    players: TakePlayers,
    info: gr.JSON,
    summary: gr.Markdown,
    status: gr.Markdown | None = None,
    text: gr.Textbox | None = None,
    *,
    bar: ActionBar,
) -> None:
    """The visible button streams (UI only); a hidden twin is the stable named API endpoint.

    With a ``status`` line (under the button), a refused or failed take is told there in plain
    words and the players keep what they had; without it, the error goes to a toast. Stop and
    Resume (``bar``, from widgets.action_bar) act on this browser session's take in this tab; with ``text``, the
    progress line tells the text's characters, chunks and estimated length before generating.
    """
    live, take = players.live, players.take
    gallery = players.gallery
    players.bar = bar
    outputs: list[Any] = []
    if players.takes is not None and gallery is not None:
        inputs = [*inputs, players.takes]
        outputs = [gallery.row, gallery.details, *gallery.columns, *gallery.players]
    run, stream, retry = take_handlers(ctx, parse, takes=bool(outputs), extra_outputs=len(outputs))
    ui_outputs: list[Any] = [live, take, info, bar.progress, *outputs]
    if status is not None:
        stream, retry = inline_errors(stream, len(ui_outputs)), inline_errors(retry, len(ui_outputs))
        ui_outputs.append(status)
    api_endpoint(run, inputs, [take, info], api_name)
    tab = parse.__name__

    def offer_retry(request: gr.Request | None = None) -> dict[str, Any]:
        return gr.update(visible=failed_key(request, parse) in ctx.failed)

    def stopped_take(request: gr.Request | None) -> str | None:
        """The id of this session's take in this tab, when its last job stopped it part-way."""
        job = ctx.jobs.latest(owner_of(request), tab)
        if job is None or job.state is not JobState.STOPPED or job.partial is None:
            return None
        return job.partial.take.id

    def offer_resume(request: gr.Request | None = None) -> dict[str, Any]:
        return gr.update(visible=stopped_take(request) is not None)

    def stop(request: gr.Request | None = None) -> str:
        jobs = ctx.jobs.active(owner_of(request), tab)
        for job in jobs:
            ctx.jobs.stop(job.id)
        return "Stopping…" if jobs else "Nothing is being made in this tab."

    # Not named `resume`: Gradio names private endpoints after their function, and /resume is the
    # named API's (studio/ui/tabs/history_resume.py).
    def resume_in_tab(
        progress: gr.Progress = gr.Progress(), request: gr.Request | None = None
    ) -> Iterator[tuple[Any, ...]]:
        take_id = stopped_take(request)
        if take_id is None:
            raise InvalidInput("Nothing to resume: the last take in this tab was not stopped part-way.")
        ctx.check_request_rate(request)
        job = ctx.jobs.resume(take_id, client=client_id(request), owner=owner_of(request), tab=tab)
        yield from follow_job(ctx, job, failed_key(request, parse), len(outputs))

    resume_handler = friendly_errors(resume_in_tab)
    if status is not None:
        resume_handler = inline_errors(resume_handler, len(ui_outputs) - 1)

    # A second click while this tab's take ran was refused by Gradio without a word (a 422 in the
    # log): the button first says a take is being made (chained, so it can never arrive after the
    # take is done), and comes back when it is. The one take player gives way to the live one.
    label = button.value

    def busy() -> tuple[Any, ...]:
        return (
            gr.update(value=BUSY_LABEL, interactive=False),
            # Emptied first: a new take starts at 0:00, not at the last take's playhead (issue 23).
            gr.update(visible=True, value=None),
            gr.update(visible=False),
            gr.update(visible=True, interactive=True),
            # The last take's Resume goes while another take runs (it stayed, offering the old take).
            gr.update(visible=False),
        )

    busy_outputs = [button, live, take, bar.stop, bar.resume]
    events = []
    for trigger, handler, handler_inputs in (
        (button, stream, inputs),
        (players.retry, retry, None),
        (bar.resume, resume_handler, None),
    ):
        events.append(
            trigger.click(busy, None, busy_outputs, api_visibility="private", queue=False).then(
                handler,
                handler_inputs,
                ui_outputs,
                api_visibility="private",
                show_progress="hidden",  # the progress line says it, and the players stay usable
            )
        )
    stopped = bar.stop.click(stop, None, bar.progress, api_visibility="private", queue=False)

    def resume_after_stop(request: gr.Request | None = None) -> dict[str, Any]:
        """Resume, once the stopped take is kept. Not left to the take's own follow alone: its
        .then came too early or not at all now and then, and no Resume showed (issue 23)."""
        for job in ctx.jobs.active(owner_of(request), tab):
            job.wait(STOP_WAIT_S)
        return offer_resume(request)

    def after_panel_resume(request: gr.Request | None = None) -> tuple[Any, ...]:
        """A take this tab stopped was just resumed in "Running & recent": the tab stops saying
        "Press Resume" (it kept saying it, and its Resume said there was nothing to resume)."""
        latest = ctx.jobs.latest(owner_of(request), tab)
        if latest is None or latest.kind != "resume" or not latest.finished:
            return gr.skip(), gr.skip()  # not this tab's take
        return offer_resume(request), f"Resumed: {latest.progress_text()}"

    if ctx.panel_resumed is not None:  # "Running & recent" saw a job finish (studio/ui/jobs_panel.py)
        ctx.panel_resumed.change(
            after_panel_resume, None, [bar.resume, bar.progress], api_visibility="private", queue=False
        )

    # Queued (it waits for the stop), never for the device: concurrency_limit=None.
    stopped.then(
        resume_after_stop, None, bar.resume, api_visibility="private", concurrency_limit=None, show_progress="hidden"
    )

    def idle() -> tuple[Any, ...]:
        return (
            gr.update(value=label, interactive=True),
            gr.update(visible=False),
            gr.update(visible=True),
            gr.update(visible=False),
        )

    for event in events:
        for after in (event.success, event.failure):
            after(idle, None, [button, live, take, bar.stop], api_visibility="private", queue=False)
        event.success(summary_from_info, info, summary, api_visibility="private", queue=False)
        # Gradio 6.17 runs .then only after a success; .failure covers the rest.
        for after in (event.then, event.failure):
            after(offer_retry, None, players.retry, api_visibility="private", queue=False)
            after(offer_resume, None, bar.resume, api_visibility="private", queue=False)
    if text is not None:
        text.change(
            lambda value: plan_text(value or "", ctx.app.synthesis.chunk_chars).describe(),
            text,
            bar.progress,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
    if players.download is not None and players.download_format is not None:
        chosen = [take, players.download_format, info]
        for change in (take.change, players.download_format.change):
            change(
                friendly_errors(functools.partial(take_download, ctx)),
                chosen,
                players.download,
                api_visibility="private",
                queue=False,
                show_progress="hidden",
            )
    if players.srt is not None and players.vtt is not None:
        # The take the tab shows (a variant picked, a stopped take) by its id in the details.
        info.change(
            functools.partial(take_subtitles, ctx),
            info,
            [players.srt, players.vtt],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
    if gallery is not None:
        wire_gallery(gallery, players.takes, take, info, summary)


def take_download(
    ctx: StudioContext, path: str | None, fmt: str | None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The take in the chosen format, for the Download button (written once per take and format)."""
    if not path:
        return gr.update(value=None, interactive=False)
    fmt = output_format(fmt or "wav")
    source = Path(path)
    # Named as its subtitles are (who speaks, the first words, the take's id), from the details of
    # the take the tab shows; the player's path is Gradio's cached copy, named by a hash.
    take_id = details.get("take_id") if isinstance(details, dict) else None
    try:
        stem = take_file_stem(ctx.app.history.get(str(take_id))) if take_id else f"take-{source.parent.name}"
    except StudioError:
        stem = f"take-{source.parent.name}"
    target = Path(ctx.outputs_dir) / "downloads" / f"{stem}.{fmt}"
    if not target.exists():
        write_audio(load_audio(source), target, fmt)
    return gr.update(value=str(target), interactive=True)


def take_subtitles(ctx: StudioContext, details: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SRT and WebVTT subtitles of the take in ``details`` (its ``take_id``), for the buttons by the player."""
    take_id = details.get("take_id") if isinstance(details, dict) else None
    off = gr.update(value=None, interactive=False)
    if not take_id:
        return off, off
    try:
        take = ctx.app.history.get(str(take_id))
    except StudioError:  # deleted from History meanwhile: nothing to time
        return off, off
    folder = Path(ctx.outputs_dir) / "subtitles"
    srt, vtt = (write_subtitles(take, folder, fmt, readable=True) for fmt in (SubtitleFormat.SRT, SubtitleFormat.VTT))
    return gr.update(value=str(srt), interactive=True), gr.update(value=str(vtt), interactive=True)


def inline_errors(handler: Handler, width: int) -> Handler:
    """A UI generator handler whose errors become a sentence on the status line (its last output).

    A failed event makes Gradio put a red "Error" pill over every output, the Take player
    included; the handler ends normally instead, leaving the players as they were. The status
    line is cleared by the handler's first update. The API endpoints keep raising.
    """

    # wraps: Gradio reads the annotations (not only the signature) to inject gr.Request.
    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, ...]]:
        try:
            for update in handler(*args, **kwargs):
                yield (*update, "")
        except gr.Error as exc:
            # Gradio ends every streaming output when a generator finishes, and fails the event
            # (the pill again) if the live player never started: it gets a moment of silence.
            # The progress line (the 4th output: live, take, details, progress) is cleared: it
            # must not stay on "Waiting for the device… 0 s elapsed" under a refusal.
            yield (SILENCE, gr.skip(), gr.skip(), "", *(gr.skip(),) * (width - 4), f"⚠️ {exc.message}")

    wrapper.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    return wrapper


BUSY_LABEL = "Generating… (this tab's take is being made)"


def with_takes(kept: list[KeptTake]) -> dict[str, Any]:
    """The first take's details; with variants, also every take's id, seed and length."""
    details = dict(kept[0].details)
    if len(kept) > 1:
        details["takes"] = [
            {"take_id": k.take.id, "seed": k.details.get("seed"), "duration_s": k.details.get("duration_s")}
            for k in kept
        ]
    return details


def api_endpoint(fn: Handler, inputs: list[Any], outputs: Any, api_name: str, **kwargs: Any) -> None:
    """A named API endpoint on a hidden trigger, so the visible button can give
    the UI its own outputs while scripts get plain values."""
    endpoint = declared(api_name, fn)
    # render=False keeps the trigger out of the layout: a stray child of gr.Tabs
    # breaks the tab bar and stops Tab.select from firing.
    gr.Button(visible=False, render=False).click(fn, inputs, outputs, api_name=endpoint.name, **kwargs)


def api_function(fn: Handler, api_name: str, **kwargs: Any) -> None:
    """A named API endpoint with no widgets: plain JSON in and out, typed by ``fn``'s signature."""
    gr.api(fn, api_name=declared(api_name, fn).name, **kwargs)
