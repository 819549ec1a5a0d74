"""The job registry on the real demo models: takes in a worker thread, Stop within a frame,
partial takes kept in History, Resume with the same seeds, progress for followers."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.audio.io import load_audio
from core.engine.cancel import CancelToken, cancellable
from core.errors import Stopped
from core.takes.jobs import JobRegistry, JobState, plan_text
from core.takes.service import TakeJob, TakeService
from core.types import DesignRequest, Mode, Sampling

# Eight chunks at a 40-character chunk size; 24 frames each keeps a chunk under a second here.
LONG = " ".join(f"Sentence number {n} of a long take goes here." for n in range(1, 9))
SAMPLING = Sampling(seed=7, max_new_tokens=24)


@pytest.fixture
def registry(demo_context):
    demo_context.synthesis.chunk_chars = 48
    # Chunk by chunk, so a test can stop between "chunk 3 done" and the end; batched takes
    # stop too (test_stop_during_a_batch_keeps_the_chunks_before_it).
    demo_context.synthesis.batching = False
    registry = JobRegistry(TakeService.for_app(demo_context))
    yield registry
    registry.stop_all()


def take_job(text: str = LONG) -> TakeJob:
    return TakeJob(
        DesignRequest(text=text, description="Calm.", sampling=SAMPLING), "wav", info={"description": "Calm."}
    )


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_plan_tells_chars_chunks_and_an_estimate():
    plan = plan_text(LONG, 48)
    assert plan.chars == len(LONG) and plan.chunks == 8
    assert plan.speech_s == pytest.approx(len(LONG) / 15.0)
    assert plan.describe() == f"{len(LONG):,} characters · 8 chunks · about {round(len(LONG) / 15)} s of speech"
    assert plan_text("   ", 48).describe() == ""


def test_a_take_runs_in_the_worker_and_lands_in_history(registry, demo_context):
    job = registry.start_take(take_job(), owner="s1", tab="parse_design")
    assert job.state in (JobState.QUEUED, JobState.RUNNING)
    texts = []
    for _pieces, finished in job.follow():
        if not finished and job.state is JobState.RUNNING and job.chunks_done:
            texts.append(job.progress_text())
    assert job.state is JobState.DONE, job.error
    kept = job.kept[0]
    assert demo_context.history.get(kept.take.id).status == "complete"
    assert job.chunks_done == job.chunks_total == 8
    assert any(t.startswith("Chunk ") and " of 8 · " in t and "elapsed" in t and " left" in t for t in texts), texts
    assert job.progress_text().startswith("Done in ")
    assert registry.latest("s1", "parse_design") is job
    # Regenerate is a job too: listed for its client, the same take again; and it stops like any job.
    again = registry.regenerate(kept.take.id, client="me@127.0.0.1", tab="history")
    assert again in registry.all() and again.kind == "regenerate" and again.client == "me@127.0.0.1"
    assert again.wait(300) and again.state is JobState.DONE, again.error
    assert again.kept[0].take.seed == kept.take.seed and again.kept[0].take.id != kept.take.id
    stopped = registry.regenerate(kept.take.id)
    registry.stop(stopped.id)
    assert stopped.wait(120) and stopped.state is JobState.STOPPED and not stopped.kept


def test_stop_keeps_a_partial_take_and_resume_makes_the_whole_take(registry, demo_context):
    history = demo_context.history
    whole = TakeService.for_app(demo_context).make(take_job())  # the take made in one go, same seed
    job = registry.start_take(take_job(), owner="s1", tab="parse_design")
    wait_for(lambda: job.chunks_done >= 3 or job.finished)
    registry.stop(job.id)
    assert job.wait(60)
    assert job.state is JobState.STOPPED, job.state
    partial = history.get(job.partial.take.id)
    k = partial.stopped_at
    assert partial.status == "stopped" and 3 <= k < 8 and partial.total_chunks == 8
    assert partial.status_label == f"stopped at chunk {k + 1} of 8"
    assert len(partial.parts) == k  # the finished chunks, each kept for Resume
    assert job.progress_text() == f"Stopped at chunk {k + 1} of 8; {k} chunk(s) were finished and are kept."

    again = registry.resume(partial.id, owner="s1", tab="parse_design")
    assert again.wait(120) and again.state is JobState.DONE, again.error
    done = history.get(again.kept[0].take.id)
    assert done.status == "complete" and done.seed == whole.take.seed
    np.testing.assert_allclose(load_audio(done.audio_path).samples, load_audio(whole.path).samples, atol=1e-4)
    with pytest.raises(Exception, match="no take"):
        history.get(partial.id)  # replaced by the complete take


def test_stop_during_a_batch_keeps_the_chunks_before_it(registry, demo_context):
    demo_context.synthesis.batching = True  # chunk 1 alone, then chunks 2-8 in one batch
    job = registry.start_take(take_job())
    wait_for(lambda: job.chunks_done >= 1 or job.finished)
    registry.stop(job.id)
    assert job.wait(60) and job.state is JobState.STOPPED, job.state
    assert job.partial.take.stopped_at == 1 and job.partial.take.total_chunks == 8


def test_resume_after_a_restart_uses_the_stored_chunks(registry, demo_context):
    whole = TakeService.for_app(demo_context).make(take_job())
    job = registry.start_take(take_job())
    wait_for(lambda: job.chunks_done >= 2 or job.finished)
    registry.stop(job.id)
    job.wait(60)
    partial_id = job.partial.take.id
    fresh = JobRegistry(TakeService.for_app(demo_context))  # nothing in memory: History only
    try:
        again = fresh.resume(partial_id)
        assert again.wait(120) and again.state is JobState.DONE, again.error
        made = load_audio(again.kept[0].path).samples
        np.testing.assert_allclose(made, load_audio(whole.path).samples, atol=1e-4)
    finally:
        fresh.stop_all()


def test_a_queued_job_waits_and_a_stopped_one_never_runs(registry):
    first = registry.start_take(take_job())
    second = registry.start_take(take_job("A short one."))
    wait_for(lambda: first.state is JobState.RUNNING)
    assert second.state is JobState.QUEUED and second.progress_text().startswith("Queued")
    registry.stop(second.id)
    registry.stop(first.id)
    assert second.wait(60) and second.state is JobState.STOPPED and not second.kept
    assert first.wait(60) and first.state is JobState.STOPPED


def test_the_engine_stops_within_one_frame_alone_and_batched(demo_context):
    """A token set during generation stops the stock call at the next talker step."""
    synthesis = demo_context.synthesis
    checkpoint = synthesis.checkpoint_for(Mode.VOICE_DESIGN, None)
    loaded = synthesis.engine.load(checkpoint)
    talker = loaded.model.model.talker
    for count in (1, 3):
        token = CancelToken()
        steps = {"n": 0, "after": 0}

        def step(_m, _a, _o):
            steps["n"] += 1
            if token.cancelled:
                steps["after"] += 1
            if steps["n"] == 5:
                token.cancel()

        handle = talker.register_forward_hook(step)
        items = [
            synthesis._prepare(DesignRequest(text="Stop me.", description="Calm.")).item("Stop me.", i, 200)
            for i in range(count)
        ]
        try:
            with cancellable(token), pytest.raises(Stopped):
                if count == 1:
                    synthesis.engine.generate_one(loaded, Mode.VOICE_DESIGN, items[0], Sampling())
                else:
                    synthesis.engine.generate_batch(loaded, Mode.VOICE_DESIGN, items, Sampling())
        finally:
            handle.remove()
        assert steps["n"] == 5 and steps["after"] == 0  # not one more frame after Stop


def test_stop_reaches_the_live_path_worker_thread(demo_context):
    """stream(live=True) generates in its own thread: the token still stops it mid-chunk."""
    synthesis = demo_context.synthesis
    token = CancelToken()
    made = []
    with cancellable(token), pytest.raises(Stopped):
        for item in synthesis.stream(
            DesignRequest(
                text="A single long chunk.", description="Calm.", sampling=Sampling(seed=1, max_new_tokens=400)
            ),
            live=True,
        ):
            made.append(item)
            if len(made) == 2:
                threading.Timer(0.0, token.cancel).start()
    assert all(type(m).__name__ == "LiveAudio" for m in made)


def test_time_left_is_measured_from_the_chunks_done(monkeypatch):
    from core.takes import jobs as jobs_module
    from core.takes.jobs import Job

    now = [100.0]
    monkeypatch.setattr(jobs_module.time, "monotonic", lambda: now[0])
    job = Job(id="j", kind="take", mode="Design", summary="", chars=300, chunks_total=6, state=JobState.RUNNING)
    job.started = 100.0
    assert job.eta_s() is None and "estimating time left" in job.progress_text()
    now[0] = 110.0  # the first chunk took 10 s (the model load with it)
    job.chunk_done(0, 6)
    assert job.eta_s() == pytest.approx(50.0)
    now[0] = 114.0  # then two chunks in 4 s: 2 s a chunk, 3 left
    job.chunk_done(1, 6)
    job.chunk_done(2, 6)
    assert job.eta_s() == pytest.approx(6.0)
    assert job.progress_text() == "Chunk 4 of 6 · 14 s elapsed · about 6 s left"
    resumed = Job(
        id="r", kind="resume", mode="Design", summary="", chunks_total=6, chunks_done=4, state=JobState.RUNNING
    )
    resumed.started = 100.0
    now[0] = 103.0
    resumed.chunk_done(4, 6)  # its own first chunk: 3 s, 1 left
    assert resumed.eta_s() == pytest.approx(3.0)
