"""Script renders as jobs: Stop keeps the lines made as a partial take, Resume finishes it.

A script render is a job of the studio's registry (``core/takes/jobs.py``), like a take. When
it is stopped, the lines it finished are kept in History as a partial take ("stopped at line
k of n"), each line a part with its speaker, voice and seed (``core/storage/take_parts.py``,
stored losslessly). Resume plans the script again from the take's recipe and renders only the
missing lines, each with its own seed (``script_render.line_seed``), so the complete take
sounds as if it had never stopped; the finished lines are reused, not made again. The complete
take (or a longer partial one) replaces the stopped take in History.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from core.audio.assembly import EDGE_S, assemble
from core.audio.edit import PostProcessing
from core.engine.synthesis import DEMO_WARNING
from core.errors import InvalidInput, Stopped, StudioError
from core.takes.job import Job
from core.takes.script_render import RenderedLine, ScriptPlan, ScriptResult, plan_script, stream_script
from core.takes.service import KeptTake, TakeService
from core.types import Sampling

OnLine = Callable[[RenderedLine], None]
Finish = Callable[[ScriptResult], KeptTake]


def keep_stopped_script(takes: TakeService, plan: ScriptPlan, lines: Mapping[int, RenderedLine], fmt: str) -> KeptTake:
    """Keeps the lines a stopped render finished as a partial take, "stopped at line k of n"."""
    done = [lines[i] for i in sorted(lines)]
    assembled = assemble([r.audio for r in done], plan.pause_s, plan.scene_post, edge_s=EDGE_S)
    starts = [start for start, _ in assembled.spans]
    demo = any(v.checkpoint.demo for v in plan.cast.values())
    partial = ScriptResult(
        audio=assembled.audio,
        lines=done,
        starts=starts,
        seed=plan.seed,
        pause_s=plan.pause_s,
        demo=demo,
        models=list(dict.fromkeys(r.model for r in done)),
        language=plan.language,
        cast=[plan.cast[key].summary() for key in plan.cast],
        timings={},
        warnings=[DEMO_WARNING] if demo else [],
        engine=takes.synthesis.engine.name,
    )
    result = partial.to_synthesis_result()
    # A part's index is its line's place in the script (grouped renders may leave gaps): Resume
    # knows from it which lines are made.
    result.parts = [replace(part, index=line.index) for part, line in zip(result.parts, done)]
    return takes.keep_script(plan, partial, fmt, synthesis=result, stopped_at=len(done))


def plan_from_recipe(takes: TakeService, recipe: Mapping[str, Any]) -> ScriptPlan:
    """The plan a script take was rendered with, from its recipe (same seed, same voices)."""
    return plan_script(
        takes.synthesis,
        takes.library,
        recipe["script"],
        recipe["casting"],
        language=recipe.get("language", "auto"),
        size=recipe.get("size"),
        sampling=Sampling(**recipe.get("sampling", {})),
        pause_s=recipe.get("pause_s", 0.4),
        post=PostProcessing(**recipe.get("post", {})),
    )


def stopped_script(takes: TakeService, take_id: str) -> tuple[ScriptPlan, str, dict[int, RenderedLine]]:
    """A stopped script take in History: its plan, format and the lines it kept (by index)."""
    take = takes.history.get(take_id)
    if not take.stopped or take.mode != "script":
        raise InvalidInput("Only a stopped script can be resumed here.")
    if len(take.parts) != take.stopped_at:
        raise InvalidInput("This stopped script has lost its lines, so it cannot be resumed; render it again.")
    plan = plan_from_recipe(takes, take.request)
    done: dict[int, RenderedLine] = {}
    for part in take.parts:
        if not 0 <= part.index < len(plan.lines) or plan.lines[part.index].text != part.text:
            raise InvalidInput("This stopped script's lines no longer match its script; render it again.")
        line = plan.lines[part.index]
        voice = plan.voice_of(line)
        done[part.index] = RenderedLine(
            index=part.index,
            total=len(plan.lines),
            line=line,
            audio=part.load(),
            voice=part.voice or voice.label,
            seed=part.seed,
            model=voice.checkpoint.key,
            timings={},
        )
    return plan, take.format, done


def script_work(
    takes: TakeService,
    plan: ScriptPlan,
    fmt: str,
    *,
    done: Mapping[int, RenderedLine] | None = None,
    replaces: str | None = None,
    on_line: OnLine | None = None,
    finish: Finish | None = None,
) -> Callable[[Job], list[KeptTake]]:
    """The work of a script job: renders the lines not in ``done`` and keeps the take (through
    ``finish``, by default ``TakeService.keep_script``); when stopped, keeps the lines made as a
    partial take. ``replaces``: the stopped take this resumes, removed once its lines are in a
    newer take. Every line, reused ones first, is published to followers and given to ``on_line``."""
    reused = dict(done or {})
    total = len(plan.lines)

    def work(job: Job) -> list[KeptTake]:
        made = dict(reused)
        for line in made.values():
            if on_line is not None:
                on_line(line)
            job.publish(line)
        with job._changed:  # not chunk_done: the time-left estimate counts only lines made here
            job.chunks_done = len(made)
        try:
            for item in stream_script(takes.synthesis, takes.library, plan, progress=job.report, done=reused):
                if isinstance(item, RenderedLine):
                    made[item.index] = item
                    if on_line is not None:
                        on_line(item)
                    job.publish(item)
                    job.chunk_done(len(made) - 1, total)
                else:
                    kept = finish(item) if finish is not None else takes.keep_script(plan, item, fmt)
                    _forget(takes, replaces)
                    return [kept]
        except Stopped:
            if len(made) > len(reused):  # nothing new: a stopped take being resumed stays as it was
                job.partial = keep_stopped_script(takes, plan, made, fmt)
                _forget(takes, replaces)
            elif replaces is not None:  # still resumable from "Running & recent"
                old = takes.history.get(replaces)
                job.partial = KeptTake(old, {"take_id": old.id, "status": old.status})
            raise
        raise AssertionError("a script stream always ends with a result")  # pragma: no cover

    return work


def _forget(takes: TakeService, take_id: str | None) -> None:
    """The stopped take a resume replaced: every line of it is in the newer take."""
    if take_id is not None:
        with contextlib.suppress(StudioError):
            takes.history.delete(take_id)
