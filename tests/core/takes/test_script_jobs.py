"""Stopped scripts on the real demo models: the lines made are kept in History as a partial take
("stopped at line k of n"), and Resume renders only the missing lines with their own seeds, so the
complete take matches an uninterrupted render with the same seed."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.errors import InvalidInput
from core.takes.jobs import JobRegistry, JobState
from core.takes.script_jobs import script_work, stopped_script
from core.takes.script_render import line_seed, plan_script, render_script
from core.takes.service import TakeService
from core.types import Sampling

SCRIPT = "\n".join(f"{'Anna' if n % 2 else 'Tom'}: This is line number {n} of the scene." for n in range(1, 7))
CASTING = "Anna = Ryan (calm)\nTom = Aiden"
SAMPLING = Sampling(seed=11, max_new_tokens=24)


@pytest.fixture
def registry(demo_context):
    demo_context.synthesis.batching = False  # line by line, so there is a line to stop after
    registry = JobRegistry(TakeService.for_app(demo_context))
    yield registry
    registry.stop_all()


def plan(ctx):
    return plan_script(ctx.synthesis, ctx.library, SCRIPT, CASTING, language="English", sampling=SAMPLING)


def stop_after(registry, job, lines: int) -> None:
    deadline = time.monotonic() + 180
    while job.chunks_done < lines and not job.finished:
        assert time.monotonic() < deadline, "the script never got going"
        time.sleep(0.02)
    threading.Thread(target=registry.stop, args=(job.id,)).start()
    assert job.wait(120), "the script did not stop"


def test_a_stopped_script_is_kept_and_resumes_to_the_uninterrupted_render(registry, demo_context):
    takes = registry.takes
    job = registry.submit(script_work(takes, plan(demo_context), "wav"), kind="script", mode="Script", text=SCRIPT)
    stop_after(registry, job, 2)
    assert job.state is JobState.STOPPED and str(job.error).startswith("Stopped at line ")
    partial = job.partial.take
    k = partial.stopped_at
    assert 2 <= k < 6 and partial.total_chunks == 6 and partial.status == "stopped"
    assert partial.status_label == f"stopped at line {k + 1} of 6"
    assert partial.mode == "script" and demo_context.history.get(partial.id).stopped
    parts = sorted(partial.parts, key=lambda p: p.index)
    assert [p.index for p in parts] == list(range(k))
    assert [p.speaker for p in parts] == [("Anna", "Tom")[i % 2] for i in range(k)]
    assert [p.voice for p in parts] == [("Ryan (calm)", "Aiden")[i % 2] for i in range(k)]
    assert [p.seed for p in parts] == [line_seed(11, i) for i in range(k)]
    assert partial.duration_s > 0

    # Resume (as History, the jobs panel and /resume do): only the missing lines are made.
    made = []
    original_synthesize = demo_context.synthesis.synthesize

    def counting(request, *args, **kwargs):
        made.append(request.text)
        return original_synthesize(request, *args, **kwargs)

    demo_context.synthesis.synthesize = counting
    try:
        again = registry.resume(partial.id, owner="s1", tab="history")
        assert again.kind == "script" and again.chunks_total == 6
        assert again.wait(300) and again.state is JobState.DONE, again.error
    finally:
        del demo_context.synthesis.synthesize
    assert made == [line.split(": ", 1)[1] for line in SCRIPT.splitlines()[k:]]
    complete = again.kept[0].take
    assert complete.mode == "script" and not complete.stopped and len(complete.parts) == 6
    with pytest.raises(InvalidInput):  # the stopped take gave way to the complete one
        demo_context.history.get(partial.id)

    whole = render_script(
        demo_context.synthesis, demo_context.library, SCRIPT, CASTING, language="English", sampling=SAMPLING
    )
    for part, line in zip(sorted(complete.parts, key=lambda p: p.index), whole.lines, strict=True):
        assert part.seed == line.seed and part.speaker == line.speaker
        assert np.array_equal(part.load().samples, line.audio.samples), f"line {part.index} differs"
    assert again.kept[0].details["seed"] == 11
    assert complete.duration_s == pytest.approx(whole.duration, abs=1e-3)


def test_a_complete_or_chunked_take_is_not_resumed_as_a_script(registry, demo_context):
    takes = registry.takes
    job = registry.submit(script_work(takes, plan(demo_context), "wav"), kind="script", mode="Script", text=SCRIPT)
    assert job.wait(300) and job.state is JobState.DONE
    with pytest.raises(InvalidInput, match="only a stopped"):
        registry.resume(job.kept[0].take.id)
    with pytest.raises(InvalidInput, match="Only a stopped script"):
        stopped_script(takes, job.kept[0].take.id)
