"""Stop on the Script tab: the render is a job (core/takes/jobs.py); Stop ends it within a frame,
the lines made so far stay as files, and the progress line says so (demo models, real handlers)."""

from __future__ import annotations

import re
import threading

from studio.ui.context import StudioContext
from studio.ui.tabs.script import make_script_handlers

SCRIPT = "\n".join(f"{'A' if n % 2 else 'B'}: Line number {n} of a script that gets stopped." for n in range(1, 9))
CASTING = "A = Ryan\nB = Aiden"


def test_stop_ends_a_script_render_and_keeps_the_lines_made(demo_context):
    demo_context.synthesis.batching = False  # line by line, so there is a line to stop after
    ctx = StudioContext(demo_context)
    _, stream, _, _ = make_script_handlers(ctx)
    values = [SCRIPT, CASTING, "English", "0.6B", 0.1, 3, None, None, None, None, 2, "wav", "none", 0, 0, False, False]
    updates = []
    for update in stream(*values):
        updates.append(update)
        job = ctx.jobs.all()[0]
        if job.chunks_done >= 2 and not job.token.cancelled:
            threading.Thread(target=ctx.jobs.stop, args=(job.id,)).start()
    job = ctx.jobs.all()[0]
    assert job.state.value == "stopped" and job.kind == "script"
    # Progress counts the lines made and names the line being made (issue 23: it said "Line 2 of 6"
    # while line 1 was still waiting).
    running = [str(u[5]) for u in updates[:-1] if "elapsed" in str(u[5])]
    assert running and all(re.match(r"(Stopping… · )?\d of 8 lines made · ", text) for text in running), running
    assert any(" · making line " in text for text in running), running
    # One consistent stop message: the count agrees with the partial take ("stopped at line k+1").
    final = updates[-1][5]
    kept = job.partial.take.stopped_at
    assert final.startswith(f"Stopped with {kept} of 8 lines made. ") and "line(s)" not in final, final
    assert re.search(rf"\b{8 - kept} lines? to go", final) and "Stopped at line" not in final, final
    assert 2 <= job.chunks_done < 8
    assert not ctx.jobs.busy()
