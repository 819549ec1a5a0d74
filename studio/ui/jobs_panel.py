"""The "Running & recent" panel: takes being made (and just made), whatever page started them.

A take is a job in the studio's worker (core/takes/jobs.py), so closing or reloading the page
loses nothing: reopened, the page lists this client's running and recent jobs (refreshed by a
timer), and a running one can be followed again -- its live pieces and progress -- or stopped; a
stopped one can be resumed. A finished one points to its take in History.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from core.errors import InvalidInput, StudioError
from core.takes.jobs import Job, JobState
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import SILENCE, STOP_WAIT_S, player_audio
from studio.ui.widgets import markdown_text, summary_from_info

REFRESH_S = 2.0
ICONS = {
    JobState.QUEUED: "Queued",
    JobState.RUNNING: "Running",
    JobState.DONE: "Done",
    JobState.STOPPED: "Stopped",
    JobState.FAILED: "Failed",
}


def resumed(job: Job, jobs: list[Job], ctx: StudioContext) -> bool:
    """Whether a stopped job's take was resumed since: it left History (a resume replaces it), or a
    newer job of the same client on the same text is making the rest now. Such a row stayed
    "Stopped" with its Resume, and a second Resume said "There is no take … in the history"."""
    if job.state is not JobState.STOPPED or job.partial is None:
        return False
    try:
        ctx.app.history.get(job.partial.take.id)
    except StudioError:
        return True
    return any(
        other.created > job.created and not other.finished and (other.mode, other.summary) == (job.mode, job.summary)
        for other in jobs
    )


def job_line(job: Job, done_since: bool = False) -> str:
    """One job in plain words: what it is, and where it stands or where its take is."""
    if done_since:  # a stopped take resumed since: the newer line tells how that went
        return f"Resumed · **{job.mode}** · “{markdown_text(job.summary, 60)}” · the rest is made in the line above"
    head = f"{ICONS[job.state]} · **{job.mode}** · “{markdown_text(job.summary, 60)}”"
    if job.state is JobState.DONE and job.kept:
        where = f"take `{job.kept[0].take.id}` is in History"
    elif job.state is JobState.STOPPED and job.partial is not None:
        where = f"{job.partial.take.status_label}; the partial take `{job.partial.take.id}` is in History"
    else:
        where = markdown_text(job.progress_text(), 200)
    return f"{head} · {where}"


def mine(ctx: StudioContext, request: gr.Request | None) -> list[Job]:
    """This client's jobs (user@address: a reloaded page is the same client, another person is not)."""
    me = client_id(request)
    return [job for job in ctx.jobs.all() if job.client == me]


def build_jobs_panel(ctx: StudioContext, app: gr.Blocks) -> None:
    with gr.Accordion("Running & recent", open=False, elem_id="jobs-panel") as panel:
        listing = gr.Markdown("No takes yet in this session.", elem_id="jobs-list")
        with gr.Row(equal_height=True):
            pick = gr.Dropdown([], label="Take", scale=3, elem_id="jobs-pick", allow_custom_value=True)
            follow = gr.Button("Follow", scale=1, min_width=90, elem_id="jobs-follow")
            stop = gr.Button("Stop", variant="stop", scale=1, min_width=90, elem_id="jobs-stop")
            resume = gr.Button("Resume", scale=1, min_width=90, elem_id="jobs-resume")
        progress = gr.Markdown(elem_id="jobs-progress", elem_classes=["take-progress"])
        live = gr.Audio(
            label="Take (playing as it is made)",
            streaming=True,
            autoplay=True,
            interactive=False,
            visible="hidden",
            buttons=[],
            elem_id="jobs-live",
        )
        take = gr.Audio(
            label="Take",
            type="filepath",
            interactive=False,
            visible="hidden",
            buttons=["download"],
            elem_id="jobs-audio",
        )
        summary = gr.Markdown(elem_id="jobs-summary")
        # The id of the job a Follow or Resume here saw finish: the tabs listen to its change, so
        # the tab that stopped a take stops saying "Press Resume" once it is resumed here. The
        # event's own end can come long after (Gradio ends it when the live stream has played).
        ended = gr.State(None)

    def refresh(current: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        jobs = mine(ctx, request)
        running = [j for j in jobs if not j.finished]
        label = f"Running & recent ({len(running)} running)" if running else "Running & recent"
        # Running takes (to follow or stop) and stopped ones that can be resumed.
        done_since = {j.id for j in jobs if resumed(j, jobs, ctx)}
        resumable = [
            j for j in jobs if j.state is JobState.STOPPED and j.partial is not None and j.id not in done_since
        ]
        choices = [(f"{j.mode} · {j.summary[:50]}", j.id) for j in running]
        choices += [(f"Stopped · {j.mode} · {j.summary[:40]}", j.id) for j in resumable]
        text = "\n".join(f"- {job_line(j, j.id in done_since)}" for j in jobs) or "No takes yet in this session."
        if current in {c[1] for c in choices}:
            # The value is left alone: a tick that read the old pick and answered after the user
            # picked another row set the old one back, and Stop then stopped the wrong take.
            return gr.update(label=label), text, gr.update(choices=choices)
        return gr.update(label=label), text, gr.update(choices=choices, value=choices[0][1] if choices else None)

    def on_load(request: gr.Request | None = None) -> tuple[Any, ...]:
        label, text, choices = refresh(None, request)
        # Reopened while a take is being made: show it at once.
        return gr.update(label=label["label"], open=any(not j.finished for j in mine(ctx, request))), text, choices

    def follow_job(job_id: str | None, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        if not job_id:
            raise InvalidInput("No take is being made right now; finished ones are in History.")
        job = ctx.jobs.get(job_id)
        if job.client != client_id(request):
            raise InvalidInput("That take was started by someone else.")
        yield from follow_pieces(job)

    def resume_job(job_id: str | None, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        job = ctx.jobs.get(job_id) if job_id else None
        if job is None or job.client != client_id(request) or job.partial is None:
            raise InvalidInput("Pick a stopped take to resume (it is marked 'Stopped').")
        if resumed(job, ctx.jobs.all(), ctx):
            raise InvalidInput("That take was resumed already; its newer line shows how far it got.")
        ctx.check_request_rate(request)
        again = ctx.jobs.resume(job.partial.take.id, client=client_id(request), owner=job.owner, tab=job.tab)
        yield from follow_pieces(again)

    def follow_pieces(job: Job) -> Iterator[tuple[Any, ...]]:
        started = False
        for audio in player_audio(job):
            started = started or audio is not None
            live = gr.skip() if audio is None else (audio.sample_rate, audio.samples)
            yield live, gr.skip(), job.progress_text(), gr.skip(), gr.skip()
        first = gr.skip() if started else SILENCE
        kept = job.kept[0] if job.kept else job.partial
        if kept is None:
            yield first, gr.skip(), job_line(job), "", job.id
        else:
            yield first, kept.path, job_line(job), summary_from_info(kept.details), job.id

    def stop_job(job_id: str | None, request: gr.Request | None = None) -> str:
        if not job_id:
            return "Nothing is being made right now."
        job = ctx.jobs.get(job_id)
        if job.client != client_id(request):
            raise InvalidInput("That take was started by someone else.")
        ctx.jobs.stop(job_id)
        return "Stopping…"

    ctx.panel_resumed = ended  # the tabs listen (handlers.wire_generate)
    outputs = [panel, listing, pick]
    timer = gr.Timer(REFRESH_S)
    timer.tick(refresh, pick, outputs, api_visibility="private", queue=False, show_progress="hidden")
    for button, handler in ((follow, follow_job), (resume, resume_job)):
        followed = button.click(
            lambda: (gr.update(visible=True), gr.update(visible="hidden")),
            None,
            [live, take],
            api_visibility="private",
            queue=False,
        ).then(
            friendly_errors(handler),
            pick,
            [live, take, progress, summary, ended],
            api_visibility="private",
            show_progress="hidden",
            concurrency_limit=None,  # only follows: the job waits its own turn for the device
        )
        for after in (followed.success, followed.failure):
            after(
                lambda: (gr.update(visible="hidden"), gr.update(visible=True)),
                None,
                [live, take],
                api_visibility="private",
                queue=False,
            )

    def stopped_line(job_id: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Once a job Stop reached has stopped: its line and the list, at once. The line stayed
        "Stopping…" until a Follow's stream or the timer caught up (15.7 s once, issue 23)."""
        try:
            job = ctx.jobs.get(job_id or "")
        except StudioError:
            return (gr.skip(),) * 4
        if job.client != client_id(request):
            return (gr.skip(),) * 4
        job.wait(STOP_WAIT_S)
        return (job_line(job), *refresh(job_id, request))

    stop.click(friendly_errors(stop_job), pick, progress, api_visibility="private", queue=False).then(
        stopped_line,
        pick,
        [progress, *outputs],
        api_visibility="private",
        show_progress="hidden",
        concurrency_limit=None,  # only waits for the stop
    )
    # Opening (or reloading) the page lists the jobs at once, and opens the panel while one runs.
    app.load(on_load, None, outputs, api_visibility="private", queue=False)
