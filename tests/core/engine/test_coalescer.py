"""Takes queued behind a busy device are served together, each exactly as made alone.

The device is made busy by a real live take (the UI's path, which keeps its own
turn): its stream holds the device lock while it is suspended. Takes started
meanwhile on other threads queue; when the live take ends, the first of each
group serves the group through one engine batch. The tiny real models make every
item; each result must equal the same request made alone with the same seed.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.engine.live_decoding import LiveAudio
from core.engine.synthesis import ChunkAudio
from core.types import CustomVoiceRequest, DesignRequest, Sampling, SynthesisResult

LONG = "The first sentence is here. A second one follows now. And a third ends it."


def request(speaker: str, seed: int, text: str = "Served together.", **sampling) -> CustomVoiceRequest:
    return CustomVoiceRequest(
        text=text, speaker=speaker, size="0.6B", sampling=Sampling(seed=seed, max_new_tokens=10, **sampling)
    )


def busy(service):
    """A live take that holds the device until the returned function finishes it."""
    stream = service.stream(request("Vivian", 99, "Keeps the device busy."), live=True)
    first = next(stream)  # the lock is held from here until the stream ends
    assert isinstance(first, LiveAudio | ChunkAudio)
    assert service._device_lock.locked()

    def finish():
        for _ in stream:
            pass

    return finish


def queued(service, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while service.coalescer.waiting() < count:
        assert time.monotonic() < deadline, f"only {service.coalescer.waiting()} of {count} takes queued"
        time.sleep(0.01)


def test_takes_queued_for_the_same_model_are_served_in_one_batch_each_as_made_alone(demo_context, caplog):
    service = demo_context.synthesis
    service.chunk_chars = 40  # LONG is 3 chunks: takes of different lengths share batches
    requests = [request("Ryan", 11), request("Aiden", 12, LONG), request("Ryan", 13, "A third, short take.")]
    alone = [service.synthesize(r) for r in requests]  # the device is free: each takes the ordinary path
    assert all("served_together" not in a.timings for a in alone)
    calls: list[int] = []
    original = service.engine.generate_batch

    def counted(loaded, mode, items, *args, **kwargs):
        calls.append(len(items))
        return original(loaded, mode, items, *args, **kwargs)

    service.engine.generate_batch = counted  # wrapped, not replaced: the real model makes every item
    finish = busy(service)
    with caplog.at_level(logging.INFO), ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(service.synthesize, r, client=f"client{k}") for k, r in enumerate(requests)]
        queued(service, len(requests))
        assert not any(f.done() for f in futures)
        finish()
        together = [f.result(timeout=300) for f in futures]
    for made, single in zip(together, alone, strict=True):
        assert made.seed == single.seed and made.chunks == single.chunks
        assert np.array_equal(made.audio.samples, single.audio.samples)  # bit-identical to alone
        assert made.timings["served_together"] == 3 and made.timings["queued_s"] > 0
        assert [p.seed for p in made.parts] == [p.seed for p in single.parts]
    # The 5 chunks of the three takes went through the model in one call (the CPU batches up to 8).
    assert calls == [5]
    assert service.coalescer.counts() == (3, 1)
    lines = [r.getMessage() for r in caplog.records if "event=coalesce" in r.getMessage()]
    assert len(lines) == 1 and "requests=3" in lines[0] and "chunks=5" in lines[0]
    assert "client0,client1,client2" in lines[0]
    assert sum("together=3" in r.getMessage() for r in caplog.records) == 3


def test_a_lone_queued_take_and_takes_that_cannot_share_a_batch_run_the_ordinary_way(demo_context):
    service = demo_context.synthesis
    design = DesignRequest(
        text="Another model.", description="A calm voice.", sampling=Sampling(seed=5, max_new_tokens=10)
    )
    hotter = request("Ryan", 21, temperature=0.5)  # other sampling options: another group
    plain = request("Ryan", 22)
    alone = [service.synthesize(r) for r in (design, hotter, plain)]
    finish = busy(service)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(service.synthesize, r) for r in (design, hotter, plain)]
        queued(service, 3)
        finish()
        made = [f.result(timeout=300) for f in futures]
    for one, single in zip(made, alone, strict=True):
        assert "served_together" not in one.timings  # each was alone in its group: the ordinary path
        assert np.array_equal(one.audio.samples, single.audio.samples)
    assert service.coalescer.counts() == (0, 0)


def test_live_and_free_device_takes_are_never_held_back(demo_context):
    service = demo_context.synthesis
    # Free device: the take starts at once (no queue, no group).
    result = service.synthesize(request("Ryan", 31))
    assert "queued_s" not in result.timings and service.coalescer.waiting() == 0
    # A live take behind a busy device waits in line and keeps its live pieces.
    finish = busy(service)
    items: list = []
    worker = threading.Thread(target=lambda: items.extend(service.stream(request("Ryan", 32), live=True)))
    worker.start()
    time.sleep(0.3)
    assert service.coalescer.waiting() == 0  # live takes never join a group
    finish()
    worker.join(300)
    assert any(isinstance(i, LiveAudio) for i in items) and isinstance(items[-1], SynthesisResult)


def test_a_failing_group_gives_each_take_its_error_and_frees_the_device(demo_context, monkeypatch):
    from core.errors import GenerationError

    service = demo_context.synthesis
    finish = busy(service)

    def broken(*_args, **_kwargs):
        raise GenerationError("the model broke")

    monkeypatch.setattr(service.engine, "generate_batch", broken)
    monkeypatch.setattr(service.engine, "generate_one", broken)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(service.synthesize, request(s, 41)) for s in ("Ryan", "Aiden")]
        queued(service, 2)
        finish()
        for future in futures:
            with pytest.raises(GenerationError, match="the model broke") as failed:
                future.result(timeout=300)
            assert failed.value.index == 0 and failed.value.completed == []  # ChunkFailed: retry from chunk 1
    assert not service._device_lock.locked()
