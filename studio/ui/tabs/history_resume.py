"""History: Resume a stopped take ("stopped at chunk k of n") from its kept chunks.

The rest is made by a job of the studio's registry (core/takes/jobs.py), as every take is: it
keeps going if the page closes, shows in "Running & recent" (where Stop reaches it), and
``TakeService.resume_stored`` continues with the same per-chunk seeds, so the complete take
sounds as if it had never stopped. The complete take replaces the stopped one in History.
The named API's twin: /resume (take_id -> file, details).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from core.errors import InvalidInput, StudioError
from core.takes.jobs import Job, JobState
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, job_result, owner_of

TAB = "history"


def can_resume(ctx: StudioContext, take_id: str | None) -> bool:
    """Whether the picked take is a stopped one (the Resume button is enabled only then)."""
    if not take_id:
        return False
    try:
        return ctx.app.history.get(take_id).stopped
    except StudioError:
        return False


def start_resume(ctx: StudioContext, take_id: str, request: gr.Request | None) -> Job:
    take_id = (take_id or "").strip()
    if not take_id:
        raise InvalidInput("Pick a stopped take to resume.")
    if not ctx.app.history.get(take_id).stopped:
        raise InvalidInput("This take is complete; only a stopped take can be resumed.")
    ctx.check_request_rate(request)
    return ctx.jobs.resume(take_id, client=client_id(request), owner=owner_of(request), tab=TAB)


def outcome(job: Job, take_id: str) -> tuple[str, str]:
    """(the take to pick afterwards, the sentence saying what happened)."""
    if job.state is JobState.DONE and job.kept:
        new = job.kept[0].take.id
        return new, f"Resumed: the complete take is {new} ({job.kept[0].take.duration_s:.1f} s); it replaces {take_id}."
    if job.state is JobState.STOPPED:
        if job.partial is not None:
            return job.partial.take.id, (
                f"Stopped again, {job.partial.take.status_label}; what was made is kept. Press Resume to go on."
            )
        return take_id, "Stopped before a new chunk was made; the take is as it was."
    return take_id, f"⚠️ {job.error}" if job.error else "⚠️ The take could not be resumed."


def wire_resume(
    ctx: StudioContext,
    *,
    button: gr.Button,
    picker: gr.Dropdown,
    query: gr.Textbox,
    mode: gr.Dropdown,
    list_outputs: list[Any],
    listing: Callable[..., tuple[Any, ...]],
    player: gr.Audio,
    info: gr.Markdown,
    message: gr.Markdown,
    summary: Callable[[Any], str],
) -> None:
    history = ctx.app.history
    width = len(list_outputs) + 2  # the list's outputs, the player and the settings

    @friendly_errors
    def resume_in_history(take_id, q, m, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        skips = (gr.skip(),) * width
        try:
            job = start_resume(ctx, take_id, request)
        except StudioError as exc:  # said under the buttons; the player stays as it is
            yield (*skips, f"⚠️ {exc}", gr.skip())
            return
        off = gr.update(interactive=False)
        for _, finished in job.follow():
            if not finished:
                yield (*skips, f"Resuming {take_id} · {job.progress_text()}", off)
        picked, note = outcome(job, take_id)
        try:
            take = history.get(picked)
        except StudioError:
            yield (*skips, note, gr.update(interactive=can_resume(ctx, take_id)))
            return
        rows, choices, warnings = listing(q, m, picked)
        yield rows, choices, warnings, str(take.audio_path), summary(take), note, gr.update(interactive=take.stopped)

    private: dict[str, Any] = {"api_visibility": "private"}
    picker.change(
        lambda take_id: gr.update(interactive=can_resume(ctx, take_id)), picker, button, queue=False, **private
    )
    button.click(
        resume_in_history,
        [picker, query, mode],
        [*list_outputs, player, info, message, button],
        show_progress="hidden",  # the message line tells chunk k of n, elapsed and time left
        concurrency_limit=None,  # only follows: the job waits its own turn for the device
        **private,
    )

    @friendly_errors
    async def resume_take(
        take_id: str, progress=gr.Progress(), request: gr.Request | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Finish a stopped take ("stopped at chunk k of n") from its kept chunks, with the same
        seeds; returns the complete take's audio and details (it replaces the stopped take)."""
        job = await asyncio.to_thread(start_resume, ctx, take_id, request)  # reads the kept chunks
        return await job_result(ctx, job, progress)

    api_endpoint(
        resume_take,
        [gr.Textbox(visible=False)],
        [gr.Audio(visible=False, type="filepath"), gr.JSON(visible=False)],
        "resume",
    )
