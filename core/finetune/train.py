"""The training loop: a Base checkpoint fine-tuned on a speaker's rows, kept and resumable.

:class:`Trainer` runs one run (core/finetune/state.py) from its last kept checkpoint, or from
the start: it loads the Base model on the device, encodes the rows once (kept in the run), sets
up LoRA or full fine-tuning (core/finetune/adapters.py), and steps AdamW over the batches
(core/finetune/batch.py) in an order fixed by the seed and the epoch, so a resumed run sees
exactly the batches the uninterrupted one would have. Every ``save_every`` optimizer steps,
at Stop and at the end it keeps a checkpoint (crash-safe). At the end it merges and writes the
trained voice into the models dir (core/finetune/merge.py).

The loop checks ``check`` (the job's Stop) between micro-batches: a stopped step is dropped
and the last completed step is kept.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.engine.device import release_memory
from core.engine.user_models import TrainedVoice
from core.errors import Stopped, StudioError, TrainingError
from core.finetune import adapters, merge
from core.finetune.batch import Prepared, TokenIds, collate, compute_losses, prepare
from core.finetune.config import TrainConfig, TrainMethod, TrainRow
from core.finetune.state import KeptState, Run, RunStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainStep:
    """One optimizer step done: what the job publishes (the loss plot reads these)."""

    step: int  # 1-based
    total: int
    loss: float
    talker_loss: float
    sub_talker_loss: float
    epoch: int  # 1-based
    elapsed_s: float  # training time of the run so far, earlier sessions included


@dataclass(frozen=True)
class Schedule:
    """Which examples each optimizer step reads: fixed by the seed, the same after a Resume."""

    examples: int
    batch_size: int
    grad_accum: int
    epochs: int
    seed: int
    max_steps: int | None = None

    @property
    def micro_per_epoch(self) -> int:
        return math.ceil(self.examples / self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.micro_per_epoch / self.grad_accum)

    @property
    def total(self) -> int:
        total = self.epochs * self.steps_per_epoch
        return min(total, self.max_steps) if self.max_steps else total

    def order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.examples, generator=generator).tolist()

    def step_batches(self, step: int) -> tuple[int, list[list[int]]]:
        """(epoch, the micro-batches of example indices) of 0-based optimizer step ``step``."""
        epoch, within = divmod(step, self.steps_per_epoch)
        order = self.order(epoch)
        micro = [order[i : i + self.batch_size] for i in range(0, self.examples, self.batch_size)]
        return epoch, micro[within * self.grad_accum : (within + 1) * self.grad_accum]


@dataclass
class Outcome:
    run: Run
    steps: int
    losses: list[float]
    voice: TrainedVoice | None  # the trained voice written into the models dir


def _rows(run: Run) -> list[TrainRow]:
    return [TrainRow(r["audio"], r["text"], r["ref_audio"]) for r in run.rows]


class Trainer:
    """Runs (or continues) one training run on ``device``."""

    def __init__(
        self,
        run: Run,
        *,
        device: str,
        dtype: torch.dtype,
        dest_root: Path,
        on_step: Callable[[TrainStep], None] = lambda step: None,
        on_message: Callable[[str], None] = lambda message: None,
        check: Callable[[], None] = lambda: None,
        loader: Callable[[Path, str, torch.dtype], Any] | None = None,
    ):
        self.run = run
        self.config = TrainConfig.from_dict(run.config)
        self.device = device
        self.dtype = dtype
        self.dest_root = dest_root
        self.on_step = on_step
        self.on_message = on_message
        self.check = check
        self.loader = loader or _load_base
        self.tts: Any = None
        self.peft: Any = None
        self.params: list[torch.nn.Parameter] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.prepared: Prepared | None = None
        self.losses: list[float] = []
        self.step = 0
        self.elapsed_before = 0.0

    # --- setting up ----------------------------------------------------------------------

    def setup(self) -> None:
        self.on_message(f"Loading the Base model on {self.device}…")
        self.tts = self.loader(Path(self.run.base_path), self.device, self.dtype)
        self.prepared = self._prepared()
        self.peft, self.params = adapters.prepare_trainable(self.tts.model, self.config)
        self.optimizer = torch.optim.AdamW(
            self.params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay
        )
        kept = self.run.load_state()
        if kept is not None:
            adapters.load_trained_weights(self.tts.model, kept.weights)
            self.optimizer.load_state_dict(kept.optimizer)
            self.step, self.losses, self.elapsed_before = kept.step, list(kept.losses), kept.elapsed_s
        self.schedule = Schedule(
            len(self.prepared.examples),
            self.config.batch_size,
            self.config.grad_accum,
            self.config.epochs,
            self.config.seed,
            self.config.max_steps,
        )
        self.run.update(status=RunStatus.TRAINING, step=self.step, total_steps=self.schedule.total, message="")

    def _prepared(self) -> Prepared:
        cached = self.run.load_prepared()
        if cached is not None:
            return Prepared.from_dict(cached)

        def progress(done: int, total: int) -> None:
            self.on_message(f"Encoding the recordings: {done} of {total}")

        prepared = prepare(self.tts, _rows(self.run), progress, self.check)
        self.run.save_prepared(prepared.as_dict())
        return prepared

    # --- training --------------------------------------------------------------------------

    def train(self, *, finish: bool = True) -> Outcome:
        """Steps to the end (or raises Stopped with the last step kept), then keeps the last
        checkpoint and writes the voice (``finish=False``: neither, for benchmarks)."""
        if self.tts is None:
            self.setup()
        assert self.prepared is not None and self.optimizer is not None
        ids = TokenIds.of(self.tts.model.config)
        talker = self.tts.model.talker
        talker.train()
        started = time.monotonic()
        saved = self.step
        try:
            while self.step < self.schedule.total:
                epoch, micro = self.schedule.step_batches(self.step)
                self.optimizer.zero_grad(set_to_none=True)
                parts = [0.0, 0.0, 0.0]
                for indices in micro:
                    self.check()
                    batch = collate([self.prepared.examples[i] for i in indices], ids).to(self.device)
                    speaker = self.prepared.speaker_embeddings[batch.refs.cpu()].to(self.device, self.dtype)
                    losses = compute_losses(talker, batch, speaker, self.config.sub_talker_weight)
                    (losses.total / len(micro)).backward()
                    for k, value in enumerate((losses.total, losses.talker, losses.sub_talker)):
                        parts[k] += float(value.detach()) / len(micro)
                if not math.isfinite(parts[0]):
                    raise TrainingError(
                        f"The loss became {parts[0]} at step {self.step + 1}; the run cannot go on. "
                        f"Try a lower learning rate, or float32 (--dtype float32)."
                    )
                torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
                self.optimizer.step()
                self.step += 1
                self.losses.append(parts[0])
                elapsed = self.elapsed_before + time.monotonic() - started
                self.on_step(
                    TrainStep(self.step, self.schedule.total, parts[0], parts[1], parts[2], epoch + 1, elapsed)
                )
                if self.step % self.config.save_every == 0 and self.step < self.schedule.total:
                    self._keep(elapsed)
                    saved = self.step
        except Stopped:
            self.optimizer.zero_grad(set_to_none=True)
            if self.step > saved or self.run.latest_state() is None:
                self._keep(self.elapsed_before + time.monotonic() - started)
            note = f"at step {self.step} of {self.schedule.total}" if self.step else "before the first step"
            self.run.update(status=RunStatus.STOPPED, step=self.step, message=f"Stopped {note}.")
            raise Stopped(
                f"Training stopped {note}; the checkpoint is kept. Resume continues from it."
                if self.step
                else "Training stopped before the first step; Resume starts it."
            ) from None
        except StudioError as exc:
            self.run.update(status=RunStatus.FAILED, step=self.step, message=str(exc))
            raise
        if not finish:
            return Outcome(self.run, self.step, list(self.losses), None)
        self._keep(self.elapsed_before + time.monotonic() - started)
        voice = self.export()
        return Outcome(self.run, self.step, list(self.losses), voice)

    def _keep(self, elapsed: float) -> None:
        assert self.optimizer is not None
        self.on_message(f"Keeping the checkpoint at step {self.step}…")
        self.run.save_state(
            KeptState(
                self.step, adapters.trained_weights(self.tts.model), self.optimizer.state_dict(), self.losses, elapsed
            )
        )
        self.run.update(step=self.step)

    # --- the trained voice -------------------------------------------------------------------

    def export(self) -> TrainedVoice:
        """Merges the adapters (LoRA) and writes the custom_voice checkpoint into the models dir."""
        assert self.prepared is not None
        self.on_message("Writing the trained voice…")
        self.tts.model.talker.eval()
        adapters.merge(self.peft)
        self.peft = None
        voice = merge.write_checkpoint(
            self.tts.model,
            base_path=Path(self.run.base_path),
            dest_root=self.dest_root,
            config=self.config,
            speaker_embedding=self.prepared.speaker_embedding,
            base_key=self.run.base_key,
            steps=self.step,
            reserve_bytes=self.run.reserve_bytes,
        )
        self.run.update(status=RunStatus.DONE, output=voice.key, message=f"Trained: {voice.speaker} ({voice.key}).")
        return voice

    def close(self) -> None:
        """Drops the model and returns its memory to the device."""
        self.tts = self.peft = self.optimizer = None
        self.params = []
        release_memory(self.device)


def export_kept(run: Run, *, device: str, dtype: torch.dtype, dest_root: Path, loader: Any = None) -> TrainedVoice:
    """A trained voice from a stopped run's last kept checkpoint (without finishing the run)."""
    if run.latest_state() is None:
        raise TrainingError("This run has no kept checkpoint yet; Resume it for a few steps first.")
    trainer = Trainer(run, device=device, dtype=dtype, dest_root=dest_root, loader=loader)
    try:
        trainer.setup()
        return trainer.export()
    finally:
        trainer.close()


def _load_base(path: Path, device: str, dtype: torch.dtype) -> Any:
    from core.engine.dependencies import import_model_code

    qwen_tts = import_model_code("fine-tuning")
    return qwen_tts.Qwen3TTSModel.from_pretrained(str(path), device_map=device, dtype=dtype)


def method_of(run: Run) -> TrainMethod:
    return TrainMethod(run.config.get("method", TrainMethod.LORA.value))
