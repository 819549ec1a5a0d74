"""gradio_client's job.cancel() on a running /script render: the model stops, the lines made are
kept as a partial take ("stopped at line k of n"), the device is free for the next request, and
/resume finishes the script (real server, real client, demo models)."""

from __future__ import annotations

import time

SCRIPT = "\n".join(
    f"{'Anna' if n % 2 else 'Tom'}: Line number {n} of a script that a client cancels." for n in range(1, 9)
)
CASTING = "Anna = Ryan\nTom = Aiden"


def test_cancel_stops_a_script_keeps_its_lines_and_resume_finishes_it(studio_server, client):
    ctx = studio_server["ctx"]
    synthesis = ctx.app.synthesis
    saved = synthesis.batching
    synthesis.batching = False  # line by line, so there is a line to cancel after
    try:
        job = client.submit(
            script=SCRIPT, casting=CASTING, language="English", size="0.6B", seed=5, max_seconds=2, api_name="/script"
        )
        deadline = time.monotonic() + 180
        while not (ctx.jobs.all() and ctx.jobs.all()[0].kind == "script" and ctx.jobs.all()[0].chunks_done >= 2):
            assert time.monotonic() < deadline, "the script never got going"
            time.sleep(0.05)
        running = ctx.jobs.all()[0]
        assert job.cancel()
        assert running.wait(60), "the script did not stop"
        assert running.state.value == "stopped"
        kept = running.partial.take
        assert kept.mode == "script" and kept.status == "stopped"
        assert 2 <= kept.stopped_at < 8 and kept.total_chunks == 8 and len(kept.parts) == kept.stopped_at
        assert kept.status_label == f"stopped at line {kept.stopped_at + 1} of 8"
        # The device is free: no job runs on it, and the next request is served at once.
        deadline = time.monotonic() + 10
        while ctx.jobs.busy():
            assert time.monotonic() < deadline, "the device is still busy after the cancel"
            time.sleep(0.05)
        path, details = client.predict(
            text="Next one.", description="A calm voice.", seed=4, max_seconds=1, api_name="/design"
        )
        assert details["seed"] == 4 and path.endswith(".wav")
        # /resume (History's named API) finishes a stopped script too: the complete take replaces it.
        path, details = client.predict(kept.id, api_name="/resume")
        assert path.endswith(".wav") and details["mode"] == "script" and len(details["lines"]) == 8
        complete = ctx.app.history.get(details["take_id"])
        assert not complete.stopped and len(complete.parts) == 8
        assert [p.seed for p in complete.parts[: kept.stopped_at]] == [p.seed for p in kept.parts]
        assert kept.id not in {t.id for t in ctx.app.history.list()}
    finally:
        synthesis.batching = saved
