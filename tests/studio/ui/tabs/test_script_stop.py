"""Stop on the Script tab: the render is a job (core/takes/jobs.py); Stop ends it within a frame,
the lines made so far stay as files, and the progress line says so (demo models, real handlers)."""

from __future__ import annotations

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
    assert any(str(u[5]).startswith("Line ") and "elapsed" in str(u[5]) for u in updates[:-1])
    final = updates[-1][5]
    assert final.startswith("Stopped at line ") and "line(s) made are in the files list" in final, final
    assert 2 <= job.chunks_done < 8
    assert not ctx.jobs.busy()
