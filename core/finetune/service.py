"""Fine-tuning as a job of the one take runner: what the Training UI, the API and the CLI call.

:class:`FineTuning` checks a request (the name, the rows, the Base checkpoint), creates a run
(core/finetune/state.py) and submits its training to the studio's :class:`JobRegistry` in the
device lane (``kind="train"``): takes and transcriptions wait their turn behind it, and the
model manager's resident models are unloaded first, so the device holds only the model being
trained (the job's first message says which were unloaded). The job reports progress as
"Step k of n · loss … · elapsed · time left" (core/takes/progress.py), publishes one
:class:`~core.finetune.train.TrainStep` per optimizer step (the loss plot), and on Stop keeps
the last completed step; :meth:`FineTuning.resume` continues from it. At the end the trained
voice is written into the models dir, where the catalog lists it (core/engine/user_models.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.engine.catalog import Checkpoint
from core.engine.device import resolve_device
from core.engine.speakers import speakers
from core.engine.user_models import TrainedVoice, user_models_dir
from core.errors import InvalidInput, ModelUnavailable, TrainingError
from core.finetune import adapters
from core.finetune.config import RowSource, TrainConfig, TrainMethod, check_name_free, load_rows
from core.finetune.evaluate import Evaluation, Evaluator
from core.finetune.state import RESERVE_BYTES, RUNS_FOLDER, Run, RunStatus, RunStore
from core.finetune.train import Schedule, Trainer, TrainStep, export_kept
from core.takes.job import Job
from core.types import Mode

JOB_KIND = "train"


@dataclass(frozen=True)
class TrainNote:
    """A line the job publishes before its steps (which models were unloaded), for the UI to show."""

    message: str


@dataclass(frozen=True)
class TrainingJob:
    """A training job and the run it trains (the run outlives the job: Resume, the loss history)."""

    job: Job
    run_id: str


class FineTuning:
    """Starts, stops, resumes and exports training runs (see the module notes)."""

    def __init__(
        self,
        ctx: Any,
        jobs: Any,
        *,
        reserve_bytes: int = RESERVE_BYTES,
        loader: Callable[[Path, str, torch.dtype], Any] | None = None,
    ):
        self.ctx = ctx  # core.context.AppContext
        self.jobs = jobs  # core.takes.jobs.JobRegistry
        self.runs = RunStore(Path(ctx.settings.data_dir) / RUNS_FOLDER, reserve_bytes=reserve_bytes)
        self.dest_root = user_models_dir(ctx.settings)
        self.loader = loader
        self._lock = threading.Lock()
        self._active: dict[str, Job] = {}  # run id -> its unfinished job
        self.evaluator = Evaluator(ctx, jobs, self.runs)

    # --- what a form offers ------------------------------------------------------------------

    def bases(self) -> list[Checkpoint]:
        """The Base checkpoints a run can start from (those on disk)."""
        return [c for c in self.ctx.catalog if c.mode == Mode.BASE and self.ctx.store.local_path(c) is not None]

    def taken_names(self) -> list[str]:
        """Speaker names a new voice cannot take: the built-in speakers and the voices trained here."""
        names = [s.name for s in speakers()] + [s.id for s in speakers()]
        return names + [s.name for s in self.ctx.catalog.trained_speakers()]

    # --- starting ---------------------------------------------------------------------------

    def start(
        self,
        rows: RowSource,
        config: TrainConfig,
        *,
        base: str | None = None,
        owner: str = "",
        tab: str = "",
        client: str | None = None,
    ) -> TrainingJob:
        """Checks everything that can be checked now, creates the run and queues its job."""
        config = config.validated()
        check_name_free(config.speaker, self.taken_names())
        loaded = load_rows(rows, min_rows=config.min_rows)
        checkpoint = self._base(base)
        path = self.ctx.store.local_path(checkpoint)
        if path is None:
            raise ModelUnavailable(f"{checkpoint.label} is not on disk; download it in Models first.")
        run = self.runs.create(config.as_dict(), checkpoint.key, path, [r.as_dict() for r in loaded])
        return self._submit(run, owner=owner, tab=tab, client=client)

    def resume(self, run_id: str, *, owner: str = "", tab: str = "", client: str | None = None) -> TrainingJob:
        """Continues a stopped (or failed) run from its last kept checkpoint, same data order."""
        run = self.runs.get(run_id)
        if run.status is RunStatus.DONE:
            raise InvalidInput(f"This run is finished; its voice is {run.output}.")
        return self._submit(run, owner=owner, tab=tab, client=client)

    def _base(self, key: str | None) -> Checkpoint:
        if key:
            checkpoint = self.ctx.catalog.get(key)
            if checkpoint.mode != Mode.BASE:
                raise InvalidInput(f"{checkpoint.label} is not a Base checkpoint; fine-tuning starts from a Base one.")
            return checkpoint
        return self.ctx.catalog.resolve(Mode.BASE, None, self.ctx.settings.preferred_size)

    def _submit(self, run: Run, *, owner: str, tab: str, client: str | None) -> TrainingJob:
        config = TrainConfig.from_dict(run.config)
        total = Schedule(
            len(run.rows), config.batch_size, config.grad_accum, config.epochs, config.seed, config.max_steps
        ).total
        with self._lock:
            running = self._active.get(run.id)
            if running is not None and not running.finished:
                raise InvalidInput("This run is already training; stop it first.")
            # No text: a take's speed per character must not be learnt from a training job.
            job = self.jobs.submit(
                self._work(run), kind=JOB_KIND, mode="Train", text="", owner=owner, tab=tab, chunks=total, client=client
            )
            self._active[run.id] = job
        method = TrainMethod(config.method).label
        job.summary = f"Training '{config.speaker}' ({method}, {len(run.rows)} utterances)"
        return TrainingJob(job, run.id)

    def _work(self, run: Run) -> Callable[[Job], list]:
        def work(job: Job) -> list:
            unloaded = self.ctx.models.unload()
            note = "Takes wait until training ends."
            if unloaded:
                note = f"Unloaded {', '.join(unloaded)} from memory for training. " + note
            job.report(0.0, note)
            job.publish(TrainNote(note))
            with job._changed:
                job.chunks_done = run.kept_step()  # a resumed run starts at its kept step
            device, dtype = self.device_and_dtype(TrainConfig.from_dict(run.config))

            def on_step(step: TrainStep) -> None:
                job.publish(step)
                job.report(step.step / step.total, f"loss {step.loss:.3f}")
                job.chunk_done(step.step - 1, step.total)

            trainer = Trainer(
                run,
                device=device,
                dtype=dtype,
                dest_root=self.dest_root,
                on_step=on_step,
                on_message=lambda message: job.report(0.0, message),
                check=lambda: job.token.check("Stopped."),
                loader=self.loader,
            )
            try:
                outcome = trainer.train()
            finally:
                trainer.close()
            voice = outcome.voice
            if voice is not None:
                job.report(1.0, f"Trained '{voice.speaker}': it speaks in Custom Voice as {voice.speaker}.")
            return []

        return work

    def device_and_dtype(self, config: TrainConfig) -> tuple[str, torch.dtype]:
        """The model manager's device (or the run's own choice) and the precision to train in there."""
        models = self.ctx.models
        device = models.device if config.device == "auto" else resolve_device(config.device, models.probe)
        preference = config.dtype if config.dtype != "auto" else self.ctx.settings.dtype
        if device == "cpu" and preference == "bfloat16":
            preference = "float32"  # the CPU trains in fp32: bf16 training there is slow and lossy
        return device, adapters.training_dtype(device, config.method, preference, models.probe.cuda_bf16_supported())

    # --- stopping, exporting, reading ------------------------------------------------------------

    def stop(self, job_id: str) -> Job:
        """Stop: the job keeps the last completed step and ends as stopped."""
        return self.jobs.stop(job_id)

    def export(self, run_id: str) -> TrainedVoice:
        """A voice from a stopped run's last kept checkpoint, now (it takes the device's turn)."""
        run = self.runs.get(run_id)
        if run.status is RunStatus.DONE:
            raise InvalidInput(f"This run is finished; its voice is {run.output}.")
        with self._lock:
            job = self._active.get(run.id)
            if job is not None and not job.finished:
                raise InvalidInput("This run is training; stop it first.")
        config = TrainConfig.from_dict(run.config)
        check_name_free(config.speaker, self.taken_names())
        device, dtype = self.device_and_dtype(config)
        with self.jobs.device():
            self.ctx.models.unload()
            return export_kept(run, device=device, dtype=dtype, dest_root=self.dest_root, loader=self.loader)

    def get(self, run_id: str) -> Run:
        return self.runs.get(run_id)

    # --- the evaluation after training (core/finetune/evaluate.py) ---------------------------------

    def evaluate(self, run_id: str, *, max_new_tokens: int | None = None, **who: Any) -> Job:
        """Queues the evaluation of a finished run (``who``: owner, tab, client of the job)."""
        return self.evaluator.start(run_id, max_new_tokens=max_new_tokens, **who)

    def evaluation(self, run_id: str) -> Evaluation | None:
        """The run's last evaluation, kept with it; None when it has none."""
        return self.evaluator.load(run_id)

    def all(self) -> list[Run]:
        return self.runs.all()

    def losses(self, run_id: str) -> list[float]:
        """The loss of every step up to the run's kept checkpoint (a running job's TrainStep pieces have the rest)."""
        return self.runs.get(run_id).losses()

    def delete(self, run_id: str) -> None:
        """Deletes a run's folder (its trained voice, if any, stays in Models)."""
        with self._lock:
            job = self._active.get(run_id)
            if job is not None and not job.finished:
                raise TrainingError("This run is training; stop it before deleting it.")
        self.runs.delete(run_id)
