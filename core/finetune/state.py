"""A training run on disk: its settings, its prepared data and its last kept checkpoint.

``<data_dir>/finetune-runs/<run id>/`` holds

* ``run.json``: the settings, the rows, the Base checkpoint, the status and the trained voice
  (replaced atomically, core/storage/durable.py);
* ``prepared.pt``: every row encoded once (text ids, codes, reference embeddings), so a
  Resume does not encode the audio again;
* ``state-NNNNNN/``: the checkpoint after optimizer step N: the trained weights
  (``weights.safetensors``: the LoRA adapter, or every trained talker weight), the
  optimizer's state and ``state.json`` (step, loss history, elapsed time).

A checkpoint is written into a hidden temporary folder, every file fsynced, then renamed into
place; only then is the previous one deleted. A crash or a full disk at any moment leaves the
previous checkpoint whole, and the half-written folder is removed (or swept at the next start).
Before writing, the free space is checked against the checkpoint's size plus ``reserve_bytes``
(a quota the caller sets; tests set it beyond the disk to simulate a full one).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from core.errors import InvalidInput, StorageFull
from core.storage.durable import fsync_dir, fsync_file, remove_if_stale, write_atomic, write_file

RUNS_FOLDER = "finetune-runs"
RESERVE_BYTES = 64 * 2**20  # left free on the disk after a checkpoint, for everything else
_STATE = re.compile(r"^state-(\d{6})$")
TMP_PREFIX = ".tmp-"
_STALE_S = 3600.0
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class RunStatus(str, Enum):
    PREPARING = "preparing"
    TRAINING = "training"
    STOPPED = "stopped"
    FAILED = "failed"
    DONE = "done"  # trained and exported: ``output`` names the checkpoint


@dataclass
class KeptState:
    """What a checkpoint restores: the weights, the optimizer and where the run was."""

    step: int
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    losses: list[float]
    elapsed_s: float


@dataclass
class Run:
    id: str
    folder: Path
    config: dict[str, Any]
    base_key: str
    base_path: str
    rows: list[dict[str, Any]]
    created: float = field(default_factory=time.time)
    status: RunStatus = RunStatus.PREPARING
    message: str = ""
    step: int = 0
    total_steps: int = 0
    output: str | None = None  # the trained checkpoint's key, once exported
    reserve_bytes: int = RESERVE_BYTES

    # --- the run record -------------------------------------------------------------

    def as_record(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "id": self.id,
            "config": self.config,
            "base_key": self.base_key,
            "base_path": self.base_path,
            "rows": self.rows,
            "created": self.created,
            "status": RunStatus(self.status).value,
            "message": self.message,
            "step": self.step,
            "total_steps": self.total_steps,
            "output": self.output,
        }

    def save(self) -> None:
        write_atomic(
            self.folder / "run.json", (json.dumps(self.as_record(), indent=2, ensure_ascii=False) + "\n").encode()
        )

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.save()

    # --- prepared data -----------------------------------------------------------------

    @property
    def prepared_path(self) -> Path:
        return self.folder / "prepared.pt"

    def save_prepared(self, data: dict[str, Any]) -> None:
        self._write_file(self.prepared_path, lambda handle: torch.save(data, handle), "the prepared data")

    def load_prepared(self) -> dict[str, Any] | None:
        if not self.prepared_path.is_file():
            return None
        return torch.load(self.prepared_path, map_location="cpu", weights_only=True)

    # --- checkpoints ------------------------------------------------------------------------

    def latest_state(self) -> Path | None:
        steps = sorted(
            (int(m.group(1)), p) for p in self.folder.iterdir() if (m := _STATE.match(p.name)) and p.is_dir()
        )
        return steps[-1][1] if steps else None

    def kept_step(self) -> int:
        latest = self.latest_state()
        return int(_STATE.match(latest.name).group(1)) if latest else 0  # type: ignore[union-attr]

    def save_state(self, state: KeptState) -> Path:
        """Writes the checkpoint of ``state.step`` crash-safe; the previous one goes once it is in place.

        Raises StorageFull (the previous checkpoint intact, nothing of this one left) when the
        disk has not room for it plus ``reserve_bytes``, or fills up while it is written.
        """
        weights = {k: v.detach().cpu().contiguous() for k, v in state.weights.items()}
        need = sum(t.numel() * t.element_size() for t in weights.values()) + _tensor_bytes(state.optimizer)
        self._check_space(need, f"the checkpoint at step {state.step}")
        final = self.folder / f"state-{state.step:06d}"
        tmp = self.folder / f"{TMP_PREFIX}state-{uuid.uuid4().hex}"
        try:
            tmp.mkdir()
            save_safetensors(weights, tmp / "weights.safetensors")
            with open(tmp / "optimizer.pt", "wb") as handle:
                torch.save(state.optimizer, handle)
                handle.flush()
                os.fsync(handle.fileno())
            info = {"step": state.step, "losses": state.losses, "elapsed_s": state.elapsed_s, "saved": time.time()}
            write_file(tmp / "state.json", json.dumps(info).encode())
            fsync_dir(tmp)
            if final.exists():  # the same step saved again (Stop right after a save)
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(self.folder)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise self._full_error(exc, f"the checkpoint at step {state.step}") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in self.folder.iterdir():
            if _STATE.match(old.name) and old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def load_state(self) -> KeptState | None:
        latest = self.latest_state()
        if latest is None:
            return None
        from safetensors.torch import load_file

        info = json.loads((latest / "state.json").read_text(encoding="utf-8"))
        return KeptState(
            step=int(info["step"]),
            weights=load_file(str(latest / "weights.safetensors")),
            optimizer=torch.load(latest / "optimizer.pt", map_location="cpu", weights_only=True),
            losses=[float(x) for x in info.get("losses", [])],
            elapsed_s=float(info.get("elapsed_s", 0.0)),
        )

    def losses(self) -> list[float]:
        """The loss of every optimizer step up to the kept checkpoint (for the plot)."""
        latest = self.latest_state()
        if latest is None:
            return []
        with contextlib.suppress(OSError, ValueError):
            return [float(x) for x in json.loads((latest / "state.json").read_text(encoding="utf-8"))["losses"]]
        return []

    # --- disk space ------------------------------------------------------------------------

    def _check_space(self, need: int, what: str) -> None:
        check_space(self.folder, need, self.reserve_bytes, what, self._kept_note())

    def _full_error(self, exc: OSError, what: str) -> Exception:
        return full_error(exc, what, self._kept_note())

    def _kept_note(self) -> str:
        step = self.kept_step()
        return f" The checkpoint at step {step} is kept." if step else ""

    def _write_file(self, path: Path, write: Any, what: str) -> None:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            fsync_dir(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise full_error(exc, what, "") from exc


def save_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' ``save_file``, fsynced, with its I/O failures raised as the OSError they are.

    The Rust writer reports a full disk as ``SafetensorError("... I/O error: No space left on
    device (os error 28)")``; turned back into OSError, the callers' roll-back sees it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path), metadata={"format": "pt"})
    except SafetensorError as exc:
        found = re.search(r"os error (\d+)", str(exc))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), str(path)) from exc
    fsync_file(path)


def check_space(folder: Path, need: int, reserve: int, what: str, note: str = "") -> None:
    free = shutil.disk_usage(folder).free
    if free - need < reserve:
        raise StorageFull(
            f"Not enough disk space for {what}: it needs {_mb(need)} and {_mb(reserve)} must stay free, "
            f"but {folder} has {_mb(free)} free. Free some space and Resume.{note}"
        )


def full_error(exc: OSError, what: str, note: str) -> Exception:
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(
            f"The disk filled up while writing {what}; nothing of it was kept.{note} Free some space and Resume."
        )
    return StorageFull(f"Could not write {what}: {exc.strerror or exc}. Nothing of it was kept.{note}")


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 1024:,.0f} KB"


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


class RunStore:
    """The runs of one data dir."""

    def __init__(self, root: Path, *, reserve_bytes: int = RESERVE_BYTES):
        self.root = Path(root)
        self.reserve_bytes = reserve_bytes

    def create(self, config: dict[str, Any], base_key: str, base_path: Path, rows: list[dict[str, Any]]) -> Run:
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep()
        run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder = self.root / run_id
        folder.mkdir()
        run = Run(run_id, folder, config, base_key, str(base_path), rows, reserve_bytes=self.reserve_bytes)
        run.save()
        return run

    def get(self, run_id: str) -> Run:
        if not isinstance(run_id, str) or not re.fullmatch(r"run-[0-9a-z\-]+", run_id):
            raise InvalidInput("Name the training run by its id, e.g. run-20250101-120000-ab12cd.")
        path = self.root / run_id / "run.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(f"There is no training run {run_id}.") from None
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"The training run {run_id} cannot be read ({exc}).") from None
        return Run(
            id=data["id"],
            folder=path.parent,
            config=data["config"],
            base_key=data["base_key"],
            base_path=data["base_path"],
            rows=data["rows"],
            created=float(data.get("created", 0.0)),
            status=RunStatus(data.get("status", RunStatus.STOPPED.value)),
            message=data.get("message", ""),
            step=int(data.get("step", 0)),
            total_steps=int(data.get("total_steps", 0)),
            output=data.get("output"),
            reserve_bytes=self.reserve_bytes,
        )

    def all(self) -> list[Run]:
        if not self.root.is_dir():
            return []
        runs = []
        for folder in self.root.iterdir():
            if (folder / "run.json").is_file():
                with contextlib.suppress(InvalidInput, KeyError):
                    runs.append(self.get(folder.name))
        return sorted(runs, key=lambda r: r.created, reverse=True)

    def delete(self, run_id: str) -> None:
        shutil.rmtree(self.get(run_id).folder)

    def _sweep(self) -> None:
        """Removes the temporary files and folders a crash left behind (old enough to be surely dead)."""
        now = time.time()
        for run in os.scandir(self.root):
            if run.is_dir():
                for entry in os.scandir(run.path):
                    if entry.name.startswith(TMP_PREFIX) or entry.name.endswith(".tmp"):
                        remove_if_stale(entry, now, _STALE_S, "training runs")
