"""The one in-process model manager shared by every tab, API call and command.

It loads a checkpoint on first use, keeps at most ``max_resident`` of them in
memory (least recently used goes first, *before* the next one loads, so peak
memory never holds max_resident + 1 models), and owns the device/dtype policy.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.engine.catalog import Catalog, Checkpoint
from core.engine.dependencies import import_model_code
from core.engine.device import (
    DeviceProbe,
    dtype_candidates,
    dtype_name,
    dtype_reason,
    prepare_environment,
    release_memory,
    resolve_device,
    system_probe,
)
from core.engine.model_store import ModelStore, ProgressCallback, folder_size
from core.errors import DependencyError, ModelLoadError
from core.events import Events, MaxResidentChanged, ModelAction, ModelChanged
from core.types import Mode

log = logging.getLogger(__name__)

# Loads a checkpoint folder onto a device in a dtype; returns the Qwen3TTSModel.
Loader = Callable[[Path, str, torch.dtype], Any]
# Runs a tiny generation to prove a freshly loaded model works in this dtype.
Verifier = Callable[[Any, Checkpoint], None]


def qwen_loader(path: Path, device: str, dtype: torch.dtype) -> Any:
    qwen_tts = import_model_code("loading a model")
    return qwen_tts.Qwen3TTSModel.from_pretrained(str(path), device_map=device, dtype=dtype)


def asr_loader(path: Path, device: str, dtype: torch.dtype) -> Any:
    """The transcription model (Mode.ASR): Whisper and its processor (core/engine/transcription.py)."""
    from core.engine.transcription import load_whisper

    return load_whisper(path, device, dtype)


def asr_smoke(model: Any, checkpoint: Checkpoint) -> None:
    """Two tokens from a second of quiet: proves the dtype works for the ASR model too."""
    from core.engine.transcription import smoke_transcription

    smoke_transcription(model)


def smoke_generation(model: Any, checkpoint: Checkpoint) -> None:
    """A few frames of audio: half precision on MPS can load fine and then fail here."""
    kwargs = {"max_new_tokens": 2}
    if checkpoint.mode == Mode.VOICE_DESIGN:
        model.generate_voice_design(text="Hi.", language="auto", instruct="A calm voice.", **kwargs)
    elif checkpoint.mode == Mode.CUSTOM_VOICE:
        speaker = sorted(model.get_supported_speakers() or ["vivian"])[0]
        model.generate_custom_voice(text="Hi.", language="auto", speaker=speaker, **kwargs)
    else:
        import numpy as np

        tone = (0.1 * np.sin(np.linspace(0, 440 * 2 * np.pi, 24000))).astype("float32")
        model.generate_voice_clone(
            text="Hi.", language="auto", ref_audio=(tone, 24000), x_vector_only_mode=True, **kwargs
        )


def model_memory_bytes(model: Any) -> int:
    modules = [getattr(model, "model", None)]
    tokenizer = getattr(getattr(model, "model", None), "speech_tokenizer", None)
    modules.append(getattr(tokenizer, "model", None))
    total = 0
    for module in modules:
        if isinstance(module, torch.nn.Module):
            total += sum(t.numel() * t.element_size() for t in module.parameters())
            total += sum(t.numel() * t.element_size() for t in module.buffers())
    return total


@dataclass
class LoadedModel:
    checkpoint: Checkpoint
    model: Any  # qwen_tts.Qwen3TTSModel
    device: str
    dtype: str
    load_seconds: float
    memory_bytes: int
    path: Path
    # Why this local model makes a take a remote server should have made (core/engine/remote/router.py).
    fallback_notes: list[str] = field(default_factory=list)

    @property
    def speakers(self) -> list[str]:
        return sorted(str(s) for s in (self.model.get_supported_speakers() or []))

    @property
    def languages(self) -> list[str]:
        return [str(lang) for lang in (self.model.get_supported_languages() or [])]


@dataclass(frozen=True)
class ModelStatus:
    key: str
    repo_id: str
    mode: Mode
    size: str
    demo: bool
    state: str  # not downloaded | downloaded | loading | loaded
    local_path: str | None
    disk_bytes: int
    device: str | None
    dtype: str | None
    load_seconds: float | None
    memory_bytes: int | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ModelManager:
    catalog: Catalog
    store: ModelStore
    device_preference: str = "auto"
    dtype_preference: str = "auto"
    max_resident: int = 1
    probe: DeviceProbe = field(default_factory=system_probe)
    loader: Loader = qwen_loader
    verifier: Verifier | None = smoke_generation
    # The ASR checkpoint (Mode.ASR) loads through its own pair; residency, LRU and
    # --max-resident are shared, so Whisper never sits next to a TTS model beyond the limit.
    asr_loader: Loader = asr_loader
    asr_verifier: Verifier | None = asr_smoke
    # Called after models leave memory (unload, eviction): an engine that holds them
    # elsewhere frees them there too (the MLX engine's child process, core/engine/mlx/).
    on_release: Callable[[], None] | None = None
    # Loads, unloads and evictions, and the resident limit changed, told to the audit log.
    events: Events = field(default_factory=Events)

    def __post_init__(self) -> None:
        self.device = resolve_device(self.device_preference, self.probe)
        self._dtypes = dtype_candidates(self.device, self.dtype_preference, self.probe)
        prepare_environment(self.device)
        self._resident: OrderedDict[str, LoadedModel] = OrderedDict()
        self._loading: set[str] = set()
        self._state_lock = threading.Lock()
        self._checkpoint_locks: dict[str, threading.Lock] = {}
        # Loads are serialised as a whole: evicting and loading two different
        # checkpoints at once would briefly hold both in memory.
        self._load_lock = threading.Lock()
        self.load_count: dict[str, int] = {}

    # --- queries -------------------------------------------------------

    @property
    def dtype_policy(self) -> str:
        return " -> ".join(dtype_name(d) for d in self._dtypes)

    @property
    def dtype_reason(self) -> str:
        """Why (e.g. "auto: CPU has AVX512-BF16, probe 0.58x fp32"); core/engine/device.py decides."""
        return dtype_reason(self.device, self.dtype_preference, self.probe)

    def dtype_details(self, loaded: LoadedModel) -> str:
        """What a take's details say: the model's precision and why (e.g. "bfloat16 (auto: ...)")."""
        if len(self._dtypes) > 1 and loaded.dtype != dtype_name(self._dtypes[0]):
            return f"{loaded.dtype} ({self.dtype_reason}; {dtype_name(self._dtypes[0])} failed to load)"
        return f"{loaded.dtype} ({self.dtype_reason})"

    def resident_keys(self) -> list[str]:
        with self._state_lock:
            return list(self._resident)

    def resident_models(self) -> list[LoadedModel]:
        with self._state_lock:
            return list(self._resident.values())

    def status(self) -> list[ModelStatus]:
        with self._state_lock:
            resident = dict(self._resident)
            loading = set(self._loading)
        rows = []
        for c in self.catalog.every():
            loaded = resident.get(c.key)
            path = loaded.path if loaded else self.store.local_path(c)
            if loaded:
                state = "loaded"
            elif c.key in loading:
                state = "loading"
            elif path is not None:
                state = "downloaded"
            else:
                state = "not downloaded"
            rows.append(
                ModelStatus(
                    key=c.key,
                    repo_id=c.repo_id,
                    mode=c.mode,
                    size=c.size,
                    demo=c.demo,
                    state=state,
                    local_path=str(path) if path else None,
                    disk_bytes=folder_size(path) if path else 0,
                    device=loaded.device if loaded else None,
                    dtype=loaded.dtype if loaded else None,
                    load_seconds=round(loaded.load_seconds, 3) if loaded else None,
                    memory_bytes=loaded.memory_bytes if loaded else None,
                )
            )
        return rows

    # --- loading ---------------------------------------------------------

    def get(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> LoadedModel:
        """The loaded model for a checkpoint, loading (and evicting) as needed."""
        with self._state_lock:
            loaded = self._resident.get(checkpoint.key)
            if loaded is not None:
                self._resident.move_to_end(checkpoint.key)
                return loaded
            lock = self._checkpoint_locks.setdefault(checkpoint.key, threading.Lock())
        # The per-checkpoint lock makes concurrent callers of the same model
        # wait for the first one's load instead of loading it again.
        with lock:
            with self._state_lock:
                loaded = self._resident.get(checkpoint.key)
                if loaded is not None:
                    self._resident.move_to_end(checkpoint.key)
                    return loaded
            with self._load_lock:
                return self._load(checkpoint, progress)

    def _load(self, checkpoint: Checkpoint, progress: ProgressCallback | None) -> LoadedModel:
        path = self.store.local_path(checkpoint)
        if path is None:
            if checkpoint.demo or not self.store.settings.offline:
                path = self.store.download(checkpoint, progress)
            else:
                path = self.store.require(checkpoint)  # raises the clear message
        self._make_room(self.max_resident - 1, for_model=checkpoint.key)
        with self._state_lock:
            self._loading.add(checkpoint.key)
        try:
            if progress:
                progress(0.0, f"Loading {checkpoint.label} on {self.device}")
            loaded = self._load_with_fallback(checkpoint, path)
        finally:
            with self._state_lock:
                self._loading.discard(checkpoint.key)
        with self._state_lock:
            self._resident[checkpoint.key] = loaded
            self.load_count[checkpoint.key] = self.load_count.get(checkpoint.key, 0) + 1
        log.info(
            "event=model_load model=%s device=%s dtype=%s seconds=%.2f memory_mb=%.0f",
            checkpoint.key,
            loaded.device,
            loaded.dtype,
            loaded.load_seconds,
            loaded.memory_bytes / 2**20,
        )
        self.events.emit(ModelChanged(ModelAction.LOAD, checkpoint.key, round(loaded.load_seconds, 3), loaded.device))
        if progress:
            progress(1.0, f"Loaded {checkpoint.label} in {loaded.load_seconds:.1f} s")
        return loaded

    def _load_with_fallback(self, checkpoint: Checkpoint, path: Path) -> LoadedModel:
        errors: list[str] = []
        asr = checkpoint.mode == Mode.ASR
        loader = self.asr_loader if asr else self.loader
        verifier = self.asr_verifier if asr else self.verifier
        for dtype in self._dtypes:
            start = time.perf_counter()
            model = None
            try:
                model = loader(path, self.device, dtype)
                # Only a chain of candidates needs proof that a dtype really works.
                if len(self._dtypes) > 1 and verifier is not None:
                    verifier(model, checkpoint)
            except DependencyError:
                raise  # a broken install, not this dtype: no other dtype will do better
            except Exception as exc:  # any failure means: try the next dtype
                errors.append(f"{dtype_name(dtype)}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                log.warning("loading %s as %s failed: %s", checkpoint.key, dtype_name(dtype), exc)
                del model
                release_memory(self.device)
                continue
            return LoadedModel(
                checkpoint=checkpoint,
                model=model,
                device=self.device,
                dtype=dtype_name(dtype),
                load_seconds=time.perf_counter() - start,
                memory_bytes=model_memory_bytes(model),
                path=path,
            )
        raise ModelLoadError(
            f"Could not load {checkpoint.label} from {path} on {self.device} "
            f"({'; '.join(errors)}). Try --device cpu or --dtype float32, and check that the "
            "download is complete (`qwen-tts-studio models list`)."
        )

    def _make_room(self, keep: int, *, for_model: str | None = None) -> None:
        while True:
            with self._state_lock:
                if len(self._resident) <= max(keep, 0):
                    return
                key, _ = self._resident.popitem(last=False)
            log.info("event=model_unload model=%s reason=evicted", key)
            self.events.emit(ModelChanged(ModelAction.UNLOAD, key, reason="evicted", for_model=for_model))
            release_memory(self.device)
            if self.on_release is not None:
                self.on_release()

    def unload(self, key: str | None = None) -> list[str]:
        """Drops one checkpoint (or all) from memory; returns the keys unloaded."""
        with self._state_lock:
            keys = [key] if key is not None else list(self._resident)
            removed = [k for k in keys if self._resident.pop(k, None) is not None]
        for k in removed:
            log.info("event=model_unload model=%s reason=requested", k)
        gc.collect()
        release_memory(self.device)
        if removed and self.on_release is not None:
            self.on_release()
        if removed:
            self.events.emit(ModelChanged(ModelAction.UNLOAD, ",".join(removed)))
        return removed

    def set_max_resident(self, value: int) -> None:
        self.max_resident = max(1, int(value))
        self.events.emit(MaxResidentChanged(self.max_resident))
        self._make_room(self.max_resident)
