"""take_handlers: one parse function gives the API, streaming and retry handlers (demo models)."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from core.audio.io import load_audio
from core.takes.service import TakeJob
from core.takes.values import sampling_from_values
from core.types import DesignRequest
from studio.ui.context import StudioContext
from studio.ui.handlers import failed_key, take_handlers


def parse_echo(text: str, seed: float | None = -1) -> TakeJob:
    """Echo: speak `text`."""
    request = DesignRequest(text=text, description="Calm.", sampling=sampling_from_values(seed, max_seconds=0.5))
    return TakeJob(request, "wav", info={"description": "Calm."})


@pytest.fixture
def ctx(demo_context) -> StudioContext:
    demo_context.synthesis.chunk_chars = 40  # several chunks from a short text
    demo_context.synthesis.batching = False
    return StudioContext(demo_context)


def test_the_api_and_ui_handlers_carry_parse_signature(ctx):
    run, stream, retry = take_handlers(ctx, parse_echo)
    for handler in (run, stream):
        params = list(inspect.signature(handler).parameters)
        assert params == ["text", "seed", "progress", "request"]
        assert handler.__name__ == "parse_echo" and handler.__doc__ == "Echo: speak `text`."
    assert inspect.iscoroutinefunction(run)  # so a cancelled API call can stop its job
    assert inspect.isgeneratorfunction(stream) and inspect.isgeneratorfunction(retry)


def test_run_and_stream_keep_the_same_take(ctx):
    run, stream, _ = take_handlers(ctx, parse_echo)
    path, info = asyncio.run(run("Same take.", 4))
    assert info["take_id"] == ctx.app.history.list()[0].id and info["description"] == "Calm."
    assert info["seed"] == 4 and info["text"] == "Same take."
    updates = list(stream("Same take.", 4))
    live = [u[0] for u in updates if not isinstance(u[0], dict)]
    assert live and all(rate == 24_000 for rate, _ in live)
    _, streamed_path, streamed_info, progress = updates[-1]
    assert progress.startswith("Done in ")
    assert np.array_equal(load_audio(streamed_path).samples, load_audio(path).samples)
    assert set(streamed_info) == set(info) and streamed_info["take_id"] != info["take_id"]


def test_errors_are_sentences_and_retry_needs_a_failed_take(ctx):
    run, _, retry = take_handlers(ctx, parse_echo)
    with pytest.raises(gr.Error, match="Enter some text"):
        asyncio.run(run("  "))
    with pytest.raises(gr.Error, match="Nothing to retry"):
        list(retry(None, None))


def test_failed_takes_wait_per_session_and_tab():
    request = SimpleNamespace(session_hash="abc")
    assert failed_key(request, parse_echo) == "abc:parse_echo"
    assert failed_key(None, parse_echo) == ":parse_echo"


def test_a_cancelled_api_call_stops_its_job_and_hands_the_device_back(ctx):
    """What Gradio does when gradio_client's job.cancel() arrives: it cancels the handler's task."""
    run, _, _ = take_handlers(ctx, parse_long)

    async def cancel_midway():
        task = asyncio.ensure_future(run(LONG_TEXT, 5))
        while not (ctx.jobs.all() and ctx.jobs.all()[0].chunks_done >= 1):
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    job = ctx.jobs.all()[0]
    assert job.state.value == "stopped" and job.finished
    assert not ctx.jobs.busy()  # the next request can start at once
    assert job.partial is not None and ctx.app.history.get(job.partial.take.id).status == "stopped"


LONG_TEXT = " ".join(f"Sentence {n} of a longer take." for n in range(1, 7))


def parse_long(text: str, seed: float | None = -1) -> TakeJob:
    """Long: speak `text` in several chunks."""
    request = DesignRequest(text=text, description="Calm.", sampling=sampling_from_values(seed, max_seconds=2))
    return TakeJob(request, "wav")


def test_a_refusal_after_a_progress_line_clears_it():
    """Issue 23: the line stayed on "Waiting for the device… 0 s elapsed" under a refusal."""
    from studio.ui.handlers import inline_errors

    def follow():
        yield gr.skip(), gr.skip(), gr.skip(), "Waiting for the device… · 0 s elapsed", gr.skip()
        raise gr.Error("The reference has no speech.")

    updates = list(inline_errors(follow, 5)())
    assert updates[0][3].startswith("Waiting") and updates[0][-1] == ""
    last = updates[-1]
    assert last[3] == "" and last[-1] == "⚠️ The reference has no speech." and len(last) == 6
