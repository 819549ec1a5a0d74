"""The Train tab's evaluation section: a finished run's voice against a zero-shot clone, side by side.

Thin over ``core.finetune.evaluate`` (``ctx.finetune.evaluate`` / ``evaluation``): the evaluation is
a job of the one take runner's device lane (kind "evaluate") that renders three held-out sentences
with the trained speaker and with a clone of the run's reference clip, hears each take (word error
rate) and measures its speaker similarity to the training clips; the result is kept with the run.

Named API: ``/train_evaluate`` (run, max_seconds) -> the evaluation, once made (cancelling the call
stops it; the previous evaluation is kept).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd

from core.errors import InvalidInput, StudioError
from core.finetune.evaluate import SENTENCES, Evaluation, Side, TakeScore
from core.takes.jobs import Job, JobState
from core.takes.values import sampling_from_values
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import STOP_WAIT_S, api_function, owner_of
from studio.ui.widgets import STARTS_HIDDEN, markdown_text

TRAIN_TAB = "train"
TICK_S = 0.5
COLUMNS = ["Sentence", "Trained WER", "Trained similarity", "Clone WER", "Clone similarity"]
INTRO = (
    "How good is the trained voice? Three sentences it never heard are said by the **trained voice** "
    "and by a **zero-shot clone** of the same recordings (its reference clip). Each take gets its "
    "**word error rate** (what the speech recogniser hears against the text: 0 % is every word right) "
    "and its **speaker similarity** to the training clips (1.00 is the same voice print; above about "
    "0.75 usually the same speaker). Pick a finished run above and press **Evaluate**."
)
NO_EVALUATION = "_No evaluation of this run yet._"

private: dict[str, Any] = {"api_visibility": "private"}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def scores_frame(ev: Evaluation | None) -> pd.DataFrame:
    """One row per sentence and the means, as the table shows them."""
    if ev is None:
        return pd.DataFrame(columns=COLUMNS)
    rows = [
        [row.sentence, percent(row.trained.wer), f"{row.trained.similarity:.2f}"]
        + [percent(row.clone.wer), f"{row.clone.similarity:.2f}"]
        for row in ev.rows
    ]
    means = {side: (ev.mean(side, "wer"), ev.mean(side, "similarity")) for side in Side}
    rows.append(
        ["Mean"]
        + [percent(means[Side.TRAINED][0]), f"{means[Side.TRAINED][1]:.2f}"]
        + [percent(means[Side.CLONE][0]), f"{means[Side.CLONE][1]:.2f}"]
    )
    return pd.DataFrame(rows, columns=COLUMNS)


def take_label(ev: Evaluation, side: Side, score: TakeScore) -> str:
    who = ev.speaker if side is Side.TRAINED else "Clone"
    return f"{who} · WER {percent(score.wer)} · similarity {score.similarity:.2f}"


def reading_text(ev: Evaluation | None) -> str:
    if ev is None:
        return NO_EVALUATION
    lines = [("⚠️ " if ev.demo else "") + markdown_text(ev.reading(), 600)]
    clone = f"the clone read from `{markdown_text(ev.reference.rsplit('/', 1)[-1], 80)}`"
    lines.append(f"_Similarity to the mean of {ev.clips} training clips; {clone}._")
    lines += [f"_{markdown_text(n, 300)}_" for n in ev.notes]
    return "\n\n".join(lines)


def eval_dict(ev: Evaluation) -> dict[str, Any]:
    """What ``/train_evaluate`` answers: the record, its means and reading, and each take's WAV on the studio's disk."""
    data = ev.as_dict()
    for row, kept in zip(data["rows"], ev.rows):
        for side in Side:
            # Not "path": gradio_client would take the dict for a file to download.
            row[side.value]["wav"] = str(ev.path(kept.side(side)))
    return data


def max_frames(max_seconds: Any) -> int | None:
    """A cap on each take's length (0 or empty: the engine's own cap from the text), in codec frames."""
    return sampling_from_values(max_seconds=max_seconds).max_new_tokens


def start_evaluation(ctx: StudioContext, run: Any, max_seconds: Any = 0, **who: Any) -> Job:
    if not isinstance(run, str) or not run.strip():
        raise InvalidInput("Pick the finished training run to evaluate.")
    return ctx.finetune.evaluate(run.strip(), max_new_tokens=max_frames(max_seconds), tab=TRAIN_TAB, **who)


def make_eval_api(ctx: StudioContext) -> dict[str, Any]:
    async def train_evaluate(run: str, max_seconds: float = 0, request: gr.Request | None = None) -> dict[str, Any]:
        """Evaluates a finished run: three held-out sentences by the trained voice and by a zero-shot
        clone of its recordings, each with its word error rate and its speaker similarity to the
        training clips. Blocks until done; cancelling the call stops it. `max_seconds`: a cap on each
        take's length (0 = automatic)."""
        job = await asyncio.to_thread(
            start_evaluation, ctx, run, max_seconds, owner=owner_of(request), client=client_id(request)
        )
        try:
            while not job.finished:
                await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            ctx.jobs.stop(job.id)
            await asyncio.get_running_loop().run_in_executor(None, job.wait, STOP_WAIT_S)
            raise
        if job.state is not JobState.DONE:
            raise job.error or InvalidInput("The evaluation was stopped; the previous one is kept.")
        evaluation = ctx.finetune.evaluation(run.strip())
        assert evaluation is not None  # a finished job kept it
        return eval_dict(evaluation)

    return {"train_evaluate": friendly_errors(train_evaluate)}


def register_eval_api(api: dict[str, Any]) -> None:
    api_function(api["train_evaluate"], "train_evaluate")


# --- the section --------------------------------------------------------------------------------


def build_eval_section(ctx: StudioContext, run_pick: gr.Dropdown) -> None:
    """Section 3 of the Train tab, under the training run list (``run_pick``) it evaluates."""
    gr.Markdown("## 3. Evaluation", elem_classes=["section-title"])
    gr.Markdown(INTRO)
    with gr.Row():
        evaluate = gr.Button("Evaluate", variant="primary", scale=0, min_width=160, elem_id="train-eval-start")
        stop = gr.Button(
            "Stop", variant="stop", visible=STARTS_HIDDEN, scale=0, min_width=100, elem_id="train-eval-stop"
        )
    line = gr.Markdown(elem_id="train-eval-progress", elem_classes=["take-progress"])
    scores = gr.Dataframe(
        scores_frame(None),
        headers=COLUMNS,
        interactive=False,
        wrap=True,
        column_widths=["36%", "16%", "16%", "16%", "16%"],
        elem_id="train-eval-table",
    )
    reading = gr.Markdown(NO_EVALUATION, elem_id="train-eval-reading")
    players: list[Any] = []
    boxes: list[Any] = []  # per sentence: its words over its two players, shown once there is an evaluation
    said: list[Any] = []
    for k in range(1, SENTENCES + 1):
        with gr.Column(visible=False, elem_id=f"train-eval-row-{k}") as box:
            boxes.append(box)
            said.append(gr.Markdown(elem_id=f"train-eval-sentence-{k}"))
            with gr.Row(equal_height=True):
                for side in Side:
                    players.append(
                        gr.Audio(
                            label=side.value,
                            type="filepath",
                            interactive=False,
                            min_width=280,
                            elem_id=f"train-eval-{side.value}-{k}",
                        )
                    )
    api = make_eval_api(ctx)
    register_eval_api(api)

    outputs = [line, scores, reading, *boxes, *said, *players]

    def view(run_id: str | None, job: Job | None = None) -> tuple[Any, ...]:
        ev = ctx.finetune.evaluation(run_id) if run_id else None
        line_text = "" if job is None or job.state is JobState.DONE else job.progress_text()
        shown = ev.rows if ev is not None else ()
        rows = [gr.update(visible=k < len(shown)) for k in range(SENTENCES)]
        words = [
            f"**{k + 1}.** {markdown_text(shown[k].sentence, 200)}" if k < len(shown) else "" for k in range(SENTENCES)
        ]
        audio: list[Any] = []
        for k in range(SENTENCES):
            for side in Side:
                if ev is None or k >= len(shown):
                    audio.append(gr.update(value=None, label=side.value))
                    continue
                score = shown[k].side(side)
                path = ev.path(score)
                audio.append(gr.update(value=str(path) if path.is_file() else None, label=take_label(ev, side, score)))
        return (line_text, scores_frame(ev), reading_text(ev), *rows, *words, *audio)

    def run_eval(run_id: str | None, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        skips = tuple(gr.skip() for _ in outputs[1:])
        try:
            job = start_evaluation(ctx, run_id, owner=owner_of(request), client=client_id(request))
        except StudioError as exc:
            gr.Warning(str(exc), title="Could not evaluate")
            yield f"⚠️ {markdown_text(str(exc), 400)}", *skips
            return
        while not job.wait(TICK_S):
            yield job.progress_text(), *skips
        yield view(run_id, job)

    def stop_eval(run_id: str | None) -> str:
        job = ctx.finetune.evaluator.running(run_id or "")
        if job is None:
            return "No evaluation of this run is running."
        ctx.jobs.stop(job.id)
        return "Stopping… the previous evaluation is kept."

    def show(run_id: str | None) -> tuple[Any, ...]:
        running = ctx.finetune.evaluator.running(run_id or "") if run_id else None
        return view(run_id, running)

    evaluate.click(
        lambda: (gr.update(interactive=False), gr.update(visible=True)), None, [evaluate, stop], queue=False, **private
    ).then(friendly_errors(run_eval), run_pick, outputs, show_progress="hidden", **private).then(
        lambda: (gr.update(interactive=True), gr.update(visible=False)), None, [evaluate, stop], queue=False, **private
    )
    stop.click(stop_eval, run_pick, line, queue=False, **private)
    run_pick.change(
        friendly_errors(show),
        run_pick,
        outputs,
        concurrency_id="train-eval-view",
        concurrency_limit=1,
        show_progress="hidden",
        **private,
    )
