"""The Train tab's training section: a run's settings from the form, its progress, its loss, its API.

Thin over ``core.finetune.service.FineTuning`` (``ctx.finetune``): training is a job of the one
take runner's device lane (kind "train"), which unloads the resident models first and says so;
Stop keeps the last completed step and Resume continues from it; the trained voice is written
into the models dir, where Models lists it and Custom Voice speaks it.

Named API (``run`` is a run id from ``/train_start``):

- ``/train_start`` (dataset, speaker, method, size, epochs, max_steps, trial) -> the run (at once)
- ``/train_status`` (run) -> status, step k of n, the loss of every step, the trained voice
- ``/train_stop`` (run) -> the run once stopped (its last completed step is kept)
- ``/train_resume`` (run) -> the run, training again from its kept step
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from core.errors import InvalidInput
from core.finetune.config import MIN_ROWS, TrainConfig, TrainMethod
from core.finetune.service import TrainingJob, TrainNote
from core.finetune.state import Run, RunStatus
from core.finetune.train import TrainStep
from core.takes.jobs import Job, JobState
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import STOP_WAIT_S, api_function, owner_of
from studio.ui.widgets import markdown_text

TRAIN_TAB = "train"
SIZES = ["0.6B", "1.7B"]
METHOD_CHOICES = [("LoRA (recommended)", TrainMethod.LORA.value), ("Full fine-tuning", TrainMethod.FULL.value)]
TRIAL_MIN_ROWS = 2  # a trial run trains on whatever is kept, never on nothing
STATUS_WORDS = {
    RunStatus.PREPARING: "Preparing",
    RunStatus.TRAINING: "Training",
    RunStatus.STOPPED: "Stopped",
    RunStatus.FAILED: "Failed",
    RunStatus.DONE: "Done",
}


class RunJobs:
    """Each run's latest job in this studio (the run outlives it: a reload, Resume, the loss)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def track(self, started: TrainingJob) -> TrainingJob:
        with self._lock:
            self._jobs[started.run_id] = started.job
        return started

    def job(self, run_id: str | None) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id or "")


# --- starting a run -------------------------------------------------------------------------


def whole(value: Any, what: str, low: int, default: int | None = None) -> int | None:
    """A whole-number field of the form (an empty one takes ``default``)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < low:
        raise InvalidInput(f"{what} must be a whole number of at least {low}.")
    return int(value)


def train_config(
    speaker: Any,
    method: Any,
    epochs: Any,
    max_steps: Any,
    trial: bool,
    batch_size: Any = 2,
    grad_accum: Any = 4,
    save_every: Any = 20,
) -> TrainConfig:
    """The run's settings from the form; the core checks the rest (the name above all)."""
    if method not in {m.value for m in TrainMethod}:
        raise InvalidInput(f"Choose the training method: lora or full, not {method!r}.")
    steps = whole(max_steps, "The step limit", 0, 0)
    return TrainConfig(
        speaker=speaker if isinstance(speaker, str) else "",
        method=TrainMethod(method),
        epochs=whole(epochs, "Epochs", 1, 3) or 3,
        batch_size=whole(batch_size, "The batch size", 1, 2) or 2,
        grad_accum=whole(grad_accum, "Gradient accumulation", 1, 4) or 4,
        save_every=whole(save_every, "The checkpoint interval", 1, 20) or 20,
        max_steps=steps or None,
        min_rows=TRIAL_MIN_ROWS if trial else MIN_ROWS,
    )


def base_key(ctx: StudioContext, size: Any) -> str:
    """The Base checkpoint of ``size`` that is on disk."""
    if size not in SIZES:
        raise InvalidInput(f"Choose the model size: {' or '.join(SIZES)}, not {size!r}.")
    bases = ctx.finetune.bases()
    for checkpoint in bases:
        if checkpoint.size == size:
            return checkpoint.key
    have = ", ".join(c.size for c in bases) or "none"
    raise InvalidInput(
        f"The {size} Base model is not on this machine (on disk: {have}); download it in Models first, "
        "or choose the other size."
    )


def start_training(
    ctx: StudioContext,
    runs: RunJobs,
    dataset: Any,
    config: TrainConfig,
    size: Any,
    *,
    trial: bool,
    owner: str = "",
    client: str | None = None,
) -> TrainingJob:
    """Reads the dataset's training rows (a no-go one is refused with its reason, unless ``trial``)
    and starts the run as a job."""
    if not isinstance(dataset, str) or not dataset.strip():
        raise InvalidInput("Choose the dataset to train on (build one in section 1 first).")
    chosen = ctx.app.datasets.get(dataset)
    rows = chosen.training_rows(require_go=not trial)
    started = ctx.finetune.start(rows, config, base=base_key(ctx, size), owner=owner, tab=TRAIN_TAB, client=client)
    started.job.summary = f"{started.job.summary} from '{chosen.name}'"
    return runs.track(started)


# --- what a run looks like on the page ------------------------------------------------------


def status_of(run: Run, job: Job | None) -> RunStatus:
    """The run's status; a job stopped (or failed) before its trainer started leaves the record at
    "preparing", so the job's end says it then."""
    if job is not None and job.finished and run.status in (RunStatus.PREPARING, RunStatus.TRAINING):
        return RunStatus.FAILED if job.state is JobState.FAILED else RunStatus.STOPPED
    return RunStatus(run.status)


def run_label(run: Run, job: Job | None = None) -> str:
    config = run.config
    method = TrainMethod(config.get("method", "lora")).label
    where = f"step {run.step} of {run.total_steps}" if run.total_steps else ""
    status = STATUS_WORDS[status_of(run, job)]
    return " · ".join(p for p in (str(config.get("speaker", "?")), method, status, where) if p)


def run_choices(ctx: StudioContext, runs: RunJobs | None = None) -> list[tuple[str, str]]:
    return [(run_label(r, runs.job(r.id) if runs else None), r.id) for r in ctx.finetune.all()]


def loss_points(run: Run, job: Job | None) -> list[tuple[int, float]]:
    """(step, loss) of every step: the kept ones from the run, then the running job's newer ones."""
    points = dict(enumerate(run.losses(), 1))
    for piece in list(job.pieces) if job is not None else []:
        if isinstance(piece, TrainStep):
            points[piece.step] = piece.loss
    return sorted(points.items())


def loss_frame(run: Run | None, job: Job | None) -> pd.DataFrame:
    points = loss_points(run, job) if run is not None else []
    return pd.DataFrame({"step": [p[0] for p in points], "loss": [p[1] for p in points]})


def notes(job: Job | None) -> list[str]:
    return [p.message for p in list(job.pieces) if isinstance(p, TrainNote)] if job is not None else []


def progress_line(run: Run | None, job: Job | None) -> str:
    """The job's own line while it runs ("Step 3 of 12 · loss 2.345 · 0:20 elapsed · about 1 min left")."""
    if run is None:
        return ""
    if job is not None and not job.finished:
        return job.progress_text()
    if job is not None and job.state is JobState.FAILED:
        return f"Failed: {job.error}" if job.error else "Failed."
    done = f"step {run.step} of {run.total_steps}" if run.total_steps else "no step yet"
    status = status_of(run, job)
    if status is RunStatus.STOPPED:
        return f"Stopped at {done}: the last completed step is kept. Press **Resume** to continue from it."
    if status is RunStatus.FAILED:
        return f"Failed at {done}: {markdown_text(run.message, 300)} Press **Resume** to try again from the kept step."
    if status is RunStatus.DONE:
        return f"Done: {done}."
    return f"{STATUS_WORDS[status]}: {done}."


def result_text(ctx: StudioContext, run: Run | None, job: Job | None = None) -> str:
    """What became of the run: the trained voice, where to find it; and what training unloaded."""
    if run is None:
        return ""
    lines = [f"_{markdown_text(n, 300)}_" for n in notes(job)]
    if run.status is RunStatus.DONE and run.output:
        speaker = markdown_text(str(run.config.get("speaker", "")), 60)
        try:
            label = ctx.app.catalog.get(run.output).label
        except Exception:  # removed in Models since: say where it was
            label = run.output
        lines.append(
            f"✔ **{speaker}** is ready: choose **{speaker}** as the speaker in **Custom Voice** "
            f'(scripts: `speaker="{speaker}"` in /custom_voice and /v1/audio/speech). '
            f"It is listed in **Models** as {markdown_text(label, 120)}."
        )
    return "\n\n".join(lines)


def run_dict(ctx: StudioContext, runs: RunJobs, run: Run) -> dict[str, Any]:
    job = runs.job(run.id)
    config = run.config
    return {
        "run": run.id,
        "speaker": config.get("speaker"),
        "method": config.get("method"),
        "base": run.base_key,
        "status": status_of(run, job).value,
        "running": job is not None and not job.finished,
        "step": max(run.step, job.chunks_done if job is not None and not job.finished else 0),
        "total_steps": run.total_steps or (job.chunks_total if job is not None else 0),
        "progress": progress_line(run, job),
        "losses": [loss for _, loss in loss_points(run, job)],
        "notes": notes(job),
        "output": run.output,
        "message": run.message,
    }


# --- the named API ----------------------------------------------------------------------------


def make_train_api(ctx: StudioContext, runs: RunJobs) -> dict[str, Any]:
    def train_start(
        dataset: str,
        speaker: str,
        method: str = "lora",
        size: str = "0.6B",
        epochs: float = 3,
        max_steps: float = 0,
        trial: bool = False,
        request: gr.Request | None = None,
    ) -> dict[str, Any]:
        """Starts training a new speaker from a dataset (id or name) and returns the run at once
        (follow it with /train_status). `method`: lora (default) or full; `size`: the Base model,
        0.6B or 1.7B; `max_steps`: 0 = all of the epochs; `trial`: train on whatever is kept even
        when the verdict is no-go (a quick try, at least 2 clips). The speaker's name must not be
        a built-in speaker's."""
        config = train_config(speaker, method, epochs, max_steps, bool(trial))
        started = start_training(
            ctx, runs, dataset, config, size, trial=bool(trial), owner=owner_of(request), client=client_id(request)
        )
        return run_dict(ctx, runs, ctx.finetune.get(started.run_id)) | {"running": True}

    def train_status(run: str) -> dict[str, Any]:
        """A run's status, step k of n, the loss of every step so far, and the trained voice once done."""
        return run_dict(ctx, runs, ctx.finetune.get(run))

    def train_stop(run: str) -> dict[str, Any]:
        """Stops a run's training; its last completed step is kept for /train_resume."""
        found = ctx.finetune.get(run)
        job = runs.job(found.id)
        if job is None or job.finished:
            status = STATUS_WORDS[status_of(found, job)].lower()
            raise InvalidInput(f"The run {found.id} is not training now ({status}).")
        ctx.finetune.stop(job.id)
        job.wait(STOP_WAIT_S)
        return run_dict(ctx, runs, ctx.finetune.get(found.id))

    def train_resume(run: str, request: gr.Request | None = None) -> dict[str, Any]:
        """Continues a stopped (or failed) run from its kept step, with the same data order."""
        started = runs.track(
            ctx.finetune.resume(run, owner=owner_of(request), tab=TRAIN_TAB, client=client_id(request))
        )
        return run_dict(ctx, runs, ctx.finetune.get(started.run_id)) | {"running": True}

    functions: dict[str, Callable[..., Any]] = {
        "train_start": train_start,
        "train_status": train_status,
        "train_stop": train_stop,
        "train_resume": train_resume,
    }
    return {name: friendly_errors(fn) for name, fn in functions.items()}


def register_train_api(api: dict[str, Any]) -> None:
    api_function(api["train_start"], "train_start")
    api_function(api["train_status"], "train_status", queue=False)
    api_function(api["train_stop"], "train_stop", concurrency_limit=None)
    api_function(api["train_resume"], "train_resume")
