"""/resume: a stopped take finished through the named API, as a job of the studio's worker
(real server, real gradio_client, demo models)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from gradio_client.exceptions import AppError

from core.audio.io import load_audio

LONG = " ".join(f"Sentence number {n} of a take that is resumed." for n in range(1, 9))


@pytest.fixture
def chunked(studio_server):
    synthesis = studio_server["ctx"].app.synthesis
    saved = synthesis.chunk_chars, synthesis.batching
    synthesis.chunk_chars, synthesis.batching = 50, False  # eight chunks, made one by one
    yield
    synthesis.chunk_chars, synthesis.batching = saved


def stopped_take(ctx, client):
    job = client.submit(text=LONG, description="A calm voice.", seed=11, max_seconds=1, api_name="/design")
    deadline = time.monotonic() + 180
    while not (ctx.jobs.all() and ctx.jobs.all()[0].chunks_done >= 2):
        assert time.monotonic() < deadline, "the take never got going"
        time.sleep(0.02)
    running = ctx.jobs.all()[0]
    assert job.cancel()
    assert running.wait(60) and running.state.value == "stopped", running.state
    return running.partial.take


def test_resume_finishes_a_stopped_take_as_if_it_never_stopped(studio_server, client, chunked):
    ctx = studio_server["ctx"]
    partial = stopped_take(ctx, client)
    assert partial.status == "stopped" and partial.total_chunks == 8 and 2 <= partial.stopped_at < 8

    path, details = client.predict(take_id=partial.id, api_name="/resume")

    resumed = ctx.jobs.all()[0]
    assert resumed.kind == "resume" and resumed.state.value == "done"  # made by the registry's worker
    whole = ctx.app.history.get(details["take_id"])
    assert whole.status == "complete" and whole.seed == partial.seed == 11 and whole.text == partial.text
    assert len(whole.parts) == 8 and details["chunks"] == 8
    assert partial.id not in {t.id for t in ctx.app.history.list()}  # the complete take replaced it
    # The same take made in one go sounds exactly the same (same per-chunk seeds).
    _, again = client.predict(text=LONG, description="A calm voice.", seed=11, max_seconds=1, api_name="/design")
    alone = load_audio(ctx.app.history.get(again["take_id"]).audio_path).samples
    assert np.array_equal(load_audio(path).samples, alone)


def test_resume_refuses_a_complete_take_and_an_unknown_one(studio_server, client):
    ctx = studio_server["ctx"]
    _, details = client.predict(text="Done in one.", description="A calm voice.", seed=2, api_name="/design")
    with pytest.raises(AppError, match="only a stopped take can be resumed"):
        client.predict(take_id=details["take_id"], api_name="/resume")
    with pytest.raises(AppError, match=r"(?i)take"):
        client.predict(take_id="no-such-take", api_name="/resume")
    assert ctx.app.history.get(details["take_id"]).status == "complete"


def test_cancelling_a_resume_keeps_the_longer_partial_take(studio_server, client, chunked):
    ctx = studio_server["ctx"]
    partial = stopped_take(ctx, client)
    call = client.submit(take_id=partial.id, api_name="/resume")
    deadline = time.monotonic() + 180
    while not (ctx.jobs.all()[0].kind == "resume" and ctx.jobs.all()[0].chunks_done > partial.stopped_at):
        assert time.monotonic() < deadline, "the resume never got going"
        time.sleep(0.02)
    resumed = ctx.jobs.all()[0]
    assert call.cancel()
    assert resumed.wait(60) and resumed.state.value == "stopped", resumed.state
    longer = resumed.partial.take
    assert longer.stopped and partial.stopped_at < longer.stopped_at < 8 and longer.seed == partial.seed
    assert partial.id not in {t.id for t in ctx.app.history.list()}  # its chunks are in the longer one
