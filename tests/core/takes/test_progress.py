"""Progress from the model's frames: it moves within a chunk, and the time left counts down
honestly (a resume counts only the work it still has to do)."""

from __future__ import annotations

import re

import pytest

from core.engine.cancel import CancelToken
from core.takes.jobs import Job, JobRegistry, JobState
from core.takes.progress import FRAME_S, frames_eta_s
from core.takes.service import TakeJob, TakeService
from core.types import DesignRequest, Sampling


def running(kind: str = "take", **kwargs) -> Job:
    job = Job(id="j", kind=kind, mode="Design", summary="", state=JobState.RUNNING, **kwargs)
    job.started = 100.0
    return job


def test_time_left_counts_down_with_the_frames_made_and_a_resume_counts_only_what_is_left():
    # 14 chunks, 140 s of speech expected: 10 s (125 frames) a chunk.
    job = running(chars=2100, speech_s=140.0, chunks_total=14)
    token: CancelToken = job.token
    token.first_frame_at = 110.0  # the model took 10 s to load
    assert frames_eta_s(job, now=110.0) is None  # no frames yet: nothing to time
    lefts = []
    for second in range(1, 6):  # 25 frames a second (two chunks batched, 2 x 12.5)
        token.frames = 25 * second
        lefts.append(frames_eta_s(job, now=110.0 + second))
    total_frames = 140.0 / FRAME_S
    assert lefts[0] == pytest.approx((total_frames - 25) / 25)
    steps = [a - b for a, b in zip(lefts, lefts[1:])]
    assert all(step == pytest.approx(1.0) for step in steps), lefts  # one second per second

    # Resumed at chunk 11 of 14: only 4 chunks (40 s of speech, 500 frames) are still to make.
    resumed = running("resume", chars=2100, speech_s=140.0, chunks_total=14, chunks_done=10)
    resumed.token.first_frame_at = 100.0
    resumed.token.frames = 50  # 5 s of work at 10 frames a second
    assert frames_eta_s(resumed, now=105.0) == pytest.approx((500 - 50) / 10)


def test_variants_expect_every_take_of_the_batch():
    job = running("variants", chars=150, speech_s=10.0, chunks_total=1)
    job.token.first_frame_at, job.token.frames, job.token.rows = 0.0, 100, 4  # 4 takes x 25 frames
    # 4 takes of 125 frames each, 100 made in 2 s.
    assert frames_eta_s(job, now=2.0) == pytest.approx((500 - 100) * 2.0 / 100)


@pytest.fixture
def registry(demo_context):
    demo_context.synthesis.chunk_chars = 400
    registry = JobRegistry(TakeService.for_app(demo_context))
    yield registry
    registry.stop_all()


def test_a_real_take_shows_audio_made_growing_inside_one_chunk(registry):
    """On the demo models one chunk of 150 frames: the line moves before the chunk is done."""
    take = TakeJob(
        DesignRequest(
            text="One long sentence that stays a single chunk.",
            description="Calm.",
            sampling=Sampling(seed=3, max_new_tokens=150),
        ),
        "wav",
        info={},
    )
    job = registry.start_take(take, owner="p", tab="parse_design")
    made: list[float] = []
    for _pieces, finished in job.follow(tick_s=0.05):
        if not finished and job.chunks_done == 0:
            found = re.search(r"([\d.]+) s of audio made", job.progress_text())
            if found:
                made.append(float(found.group(1)))
    assert job.state is JobState.DONE, job.error
    assert len(set(made)) >= 3 and made == sorted(made), made  # it grew, several times, inside the chunk
    assert job.token.frames > 50 and job.token.rows == 1  # a frame per talker step, one row


def test_every_new_message_is_kept_for_a_log_that_polls_and_the_oldest_go_past_the_cap(monkeypatch):
    import core.takes.job as job_module

    job = running("project")
    for label in ("Chapter 1 of 2 · block 1 of 1", "Chapter 1 of 2 · block 1 of 1", "Chapter 2 of 2 · block 1 of 1"):
        job.report(0.5, label)  # a repeat (the engine's own progress for the same block) is not new
    said, seen = job.said_since(0)
    assert said == ["Chapter 1 of 2 · block 1 of 1", "Chapter 2 of 2 · block 1 of 1"] and seen == 2
    job.report(1.0, "Done: 2 blocks rendered")
    assert job.said_since(seen) == (["Done: 2 blocks rendered"], 3)
    assert job.said_since(3) == ([], 3)

    monkeypatch.setattr(job_module, "MAX_SAID", 2)
    for n in range(10):
        job.report(0.9, f"step {n}")
    said, total = job.said_since(seen)
    assert total == 13 and said[-1] == "step 9" and len(said) <= 4  # only the last ones are kept
    assert job.said_since(12) == (["step 9"], 13)
