"""Whole takes queued behind a busy device are served together by the take runner, each as made alone.

The device is made busy by a turn of the runner's device lane (what a running take does).
Whole takes started meanwhile queue as jobs; when the device frees, the worker takes the
first and, with it, every queued whole take that can share its batches (same checkpoint,
mode and sampling). The tiny real models make every item; each job's result must equal the
same request made alone with the same seed.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from core.errors import GenerationError
from core.takes.jobs import JobRegistry, JobState
from core.takes.service import TakeJob, TakeService
from core.types import CustomVoiceRequest, DesignRequest, Sampling

LONG = "The first sentence is here. A second one follows now. And a third ends it."


def request(speaker: str, seed: int, text: str = "Served together.", **sampling) -> CustomVoiceRequest:
    return CustomVoiceRequest(
        text=text, speaker=speaker, size="0.6B", sampling=Sampling(seed=seed, max_new_tokens=10, **sampling)
    )


@pytest.fixture
def registry(demo_context):
    demo_context.synthesis.chunk_chars = 40  # LONG is 3 chunks: takes of different lengths share batches
    registry = JobRegistry(TakeService.for_app(demo_context))
    yield registry
    registry.stop_all()


@contextmanager
def busy_device(registry: JobRegistry):
    """Holds the device (as a running take does) until the block ends."""
    held, free = threading.Event(), threading.Event()

    def hold() -> None:
        with registry.device():
            held.set()
            free.wait(120)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    try:
        yield
    finally:
        free.set()
        holder.join(60)


def start(registry: JobRegistry, requests, clients=None):
    clients = clients or [None] * len(requests)
    return [registry.start_take(TakeJob(r, "wav"), client=c, live=False) for r, c in zip(requests, clients)]


def test_takes_queued_for_the_same_model_are_served_in_one_batch_each_as_made_alone(
    registry, demo_context, caplog, monkeypatch
):
    service = demo_context.synthesis
    requests = [request("Ryan", 11), request("Aiden", 12, LONG), request("Ryan", 13, "A third, short take.")]
    alone = [service.synthesize(r) for r in requests]  # outside the runner: each the ordinary way
    calls: list[int] = []
    original = service.engine.generate_batch

    def counted(loaded, mode, items, *args, **kwargs):
        calls.append(len(items))
        return original(loaded, mode, items, *args, **kwargs)

    monkeypatch.setattr(service.engine, "generate_batch", counted)  # the real model makes every item
    with caplog.at_level(logging.INFO):
        with busy_device(registry):
            jobs = start(registry, requests, [f"client{k}" for k in range(3)])
            time.sleep(0.2)
            assert all(j.state is JobState.QUEUED for j in jobs)  # listed, waiting for the device
        for job in jobs:
            assert job.wait(300) and job.state is JobState.DONE, job.error
    for job, single in zip(jobs, alone, strict=True):
        made = job.result
        assert made.seed == single.seed and made.chunks == single.chunks and job.together == 3
        assert np.array_equal(made.audio.samples, single.audio.samples)  # bit-identical to alone
        assert made.timings["served_together"] == 3 and made.timings["queued_s"] > 0
        assert [p.seed for p in made.parts] == [p.seed for p in single.parts]
        assert job.kept[0].take.seed == single.seed  # each its own take in History
    # The 5 chunks of the three takes went through the model in one call (the CPU batches up to 8).
    assert calls == [5]
    assert registry.counts() == (3, 1)
    lines = [r.getMessage() for r in caplog.records if "event=coalesce" in r.getMessage()]
    assert len(lines) == 1 and "requests=3" in lines[0] and "chunks=5" in lines[0]
    assert "client0,client1,client2" in lines[0]
    assert sum("together=3" in r.getMessage() for r in caplog.records) == 3


def test_takes_that_cannot_share_a_batch_and_live_takes_run_the_ordinary_way(registry, demo_context):
    service = demo_context.synthesis
    design = DesignRequest(
        text="Another model.", description="A calm voice.", sampling=Sampling(seed=5, max_new_tokens=10)
    )
    hotter = request("Ryan", 21, temperature=0.5)  # other sampling options: another group
    plain = request("Ryan", 22)
    alone = [service.synthesize(r) for r in (design, hotter, plain)]
    with busy_device(registry):
        jobs = start(registry, [design, hotter, plain])
        live = registry.start_take(TakeJob(request("Ryan", 32), "wav"))  # live: never in a group
    for job, single in zip(jobs, alone, strict=True):
        assert job.wait(300) and job.state is JobState.DONE
        assert "served_together" not in job.result.timings and job.together == 1
        assert np.array_equal(job.result.audio.samples, single.audio.samples)
    assert live.wait(300) and live.state is JobState.DONE and live.together == 1
    assert any(type(p).__name__ == "LiveAudio" for p in live.pieces)
    assert registry.counts() == (0, 0)


def test_a_failing_group_gives_each_take_its_error_and_a_stopped_one_leaves(registry, demo_context, monkeypatch):
    service = demo_context.synthesis

    def broken(*_args, **_kwargs):
        raise GenerationError("the model broke")

    with busy_device(registry):
        jobs = start(registry, [request(s, 41) for s in ("Ryan", "Aiden")])
        stopped = start(registry, [request("Vivian", 41)])[0]
        registry.stop(stopped.id)
        monkeypatch.setattr(service.engine, "generate_batch", broken)
        monkeypatch.setattr(service.engine, "generate_one", broken)
    for job in jobs:
        assert job.wait(300) and job.state is JobState.FAILED and "the model broke" in str(job.error)
    assert stopped.wait(60) and stopped.state is JobState.STOPPED and not stopped.kept
    assert not registry.busy()
