"""gradio_client's job.cancel() on a running named-API take: the model stops, the partial take is
kept, and the device is free for the next request (real server, real client, demo models)."""

from __future__ import annotations

import time

LONG = " ".join(f"Sentence number {n} of a long take that a script cancels." for n in range(1, 9))


def test_cancel_stops_the_take_and_frees_the_device(studio_server, client):
    ctx = studio_server["ctx"]
    synthesis = ctx.app.synthesis
    saved = synthesis.chunk_chars, synthesis.batching
    synthesis.chunk_chars, synthesis.batching = 60, False  # eight chunks, made one by one
    try:
        job = client.submit(text=LONG, description="A calm voice.", seed=3, max_seconds=2, api_name="/design")
        deadline = time.monotonic() + 180
        while not (ctx.jobs.all() and ctx.jobs.all()[0].chunks_done >= 2):
            assert time.monotonic() < deadline, "the take never got going"
            time.sleep(0.05)
        running = ctx.jobs.all()[0]
        assert running.kind == "take" and running.mode == "Design"
        assert job.cancel()
        assert running.wait(60), "the job did not stop"
        assert running.state.value == "stopped"
        kept = running.partial.take
        assert kept.status == "stopped" and 2 <= kept.stopped_at < 8 and kept.total_chunks == 8
        # The device is free: no job runs on it, and the next request is served at once.
        deadline = time.monotonic() + 10
        while ctx.jobs.busy():
            assert time.monotonic() < deadline, "the device is still busy after the cancel"
            time.sleep(0.05)
        path, details = client.predict(
            text="Next one.", description="A calm voice.", seed=4, max_seconds=1, api_name="/design"
        )
        assert details["seed"] == 4 and path.endswith(".wav")
        assert ctx.app.history.list()[0].id == details["take_id"]
    finally:
        synthesis.chunk_chars, synthesis.batching = saved
