"""The engine router: each checkpoint to the remote servers that serve it, the rest to the local engine.

It implements the Engine protocol (core/engine/interface.py) and is what the
synthesis service holds when remote engines are configured. ``load`` decides
per take: a checkpoint some server serves goes remote; one no server serves
stays local. With every server for a checkpoint down, the take fails at once
with :class:`~core.errors.RemoteEngineError` naming each server and its failure
-- or, with ``fallback="local"``, the local model makes it (also when the
servers fail mid-take: the chunks already made are kept, the rest are local,
and the take's details say so). A server not reached since start might serve
the checkpoint, so until it answers the router does not guess "local" unless
the fallback allows it.

Remote takes do not hold this machine's device lock (``SynthesisService._device_for``):
a remote take never waits for a local generation, and takes on different servers
run at once. So everything the router hands to the local engine takes ``device_lock``
itself -- a remote take's local fallback holds nothing else -- and the lock is
re-entrant, so a local take that already holds it goes straight through.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Sequence
from dataclasses import replace

from core.audio.clip import Audio
from core.engine.cancel import DeviceTurn
from core.engine.catalog import Checkpoint
from core.engine.interface import BatchItem, Capabilities, Engine
from core.engine.live_decoding import LiveAudio
from core.engine.model_manager import LoadedModel
from core.engine.model_store import ProgressCallback
from core.engine.remote.engine import RemoteEngine, RemoteModel, is_remote
from core.engine.remote.pool import Pool
from core.errors import RemoteEngineError
from core.settings import EngineKind
from core.types import ClonePrompt, Mode, Sampling

log = logging.getLogger(__name__)


class EngineRouter(Engine):
    name = "router"
    kind = EngineKind.REMOTE  # remote servers are configured; the local engine does the rest

    def __init__(self, local: Engine, pool: Pool, *, fallback: str = "none", device_lock: DeviceTurn | None = None):
        self.local = local
        self.pool = pool
        self.remote = RemoteEngine(pool)
        self.fallback = fallback
        # The synthesis service's device turn (one local generation at a time), for the local fallback.
        self.device_lock = device_lock or DeviceTurn()

    @property
    def weights(self) -> str | None:
        return self.local.weights

    # --- routing --------------------------------------------------------------------

    def routes_remote(self, checkpoint: Checkpoint) -> bool:
        """True when takes of ``checkpoint`` go to remote servers (they clone from clips, not prompts)."""
        return self.pool.serves(checkpoint.key)

    def clones_from_clip(self, checkpoint: Checkpoint) -> bool:
        return self.routes_remote(checkpoint) or self.local.clones_from_clip(checkpoint)

    def load(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> LoadedModel:
        if not self.pool.serves(checkpoint.key) and self.pool.undiscovered():
            self.pool.check()  # a server down at start may serve it by now
        if self.pool.serves(checkpoint.key):
            try:
                return self.remote.load(checkpoint, progress)
            except RemoteEngineError as exc:
                if self.fallback != "local":
                    raise
                with self.device_lock:  # the service took no lock for a remote take
                    loaded = self.local.load(checkpoint, progress)
                log.warning("event=remote_fallback model=%s reason=%s", checkpoint.key, exc)
                return _with_note(loaded, f"Made by the local model: {exc}")
        unreached = self.pool.undiscovered()
        if unreached and self.fallback != "local":
            raise self.pool.down_error(checkpoint.key, "a take")
        with self.device_lock:
            return self.local.load(checkpoint, progress)

    def unload(self, key: str | None = None) -> list[str]:
        return self.local.unload(key)

    def capabilities(self, loaded: LoadedModel | None = None) -> Capabilities:
        if loaded is not None and is_remote(loaded):
            return self.remote.capabilities(loaded)
        return self.local.capabilities(loaded)

    def batch_size(self, loaded: LoadedModel, items: Sequence[BatchItem]) -> int:
        if is_remote(loaded):
            return self.remote.batch_size(loaded, items)
        return self.local.batch_size(loaded, items)

    def create_clone_prompt(
        self, loaded: LoadedModel, reference: Audio, reference_text: str | None, x_vector_only: bool
    ) -> ClonePrompt:
        if is_remote(loaded):
            return self.remote.create_clone_prompt(loaded, reference, reference_text, x_vector_only)
        with self.device_lock:
            return self.local.create_clone_prompt(loaded, reference, reference_text, x_vector_only)

    # --- generation -------------------------------------------------------------------

    def generate_batch(
        self,
        loaded: LoadedModel,
        mode: Mode,
        items: Sequence[BatchItem],
        sampling: Sampling,
        *,
        first_index: int = 0,
        total: int | None = None,
    ) -> list[Audio]:
        if not is_remote(loaded):
            with self.device_lock:
                return self.local.generate_batch(
                    loaded, mode, self._local_items(loaded, items), sampling, first_index=first_index, total=total
                )
        try:
            return self.remote.generate_batch(loaded, mode, items, sampling, first_index=first_index, total=total)
        except RemoteEngineError as exc:
            with self.device_lock:
                local = self._fall_back(loaded, exc)
                return self.local.generate_batch(
                    local, mode, self._local_items(local, items), sampling, first_index=first_index, total=total
                )

    def generate_one(
        self, loaded: LoadedModel, mode: Mode, item: BatchItem, sampling: Sampling, *, index: int = 0, total: int = 1
    ) -> Audio:
        if not is_remote(loaded):
            with self.device_lock:
                return self.local.generate_one(
                    loaded, mode, self._local_items(loaded, [item])[0], sampling, index=index, total=total
                )
        try:
            return self.remote.generate_one(loaded, mode, item, sampling, index=index, total=total)
        except RemoteEngineError as exc:
            with self.device_lock:
                local = self._fall_back(loaded, exc)
                return self.local.generate_one(
                    local, mode, self._local_items(local, [item])[0], sampling, index=index, total=total
                )

    def stream_chunk(
        self,
        loaded: LoadedModel,
        mode: Mode,
        item: BatchItem,
        sampling: Sampling,
        *,
        index: int,
        total: int,
        live: bool = False,
    ) -> Generator[LiveAudio | Audio, None, None]:
        if not is_remote(loaded):
            with self.device_lock:
                local_item = self._local_items(loaded, [item])[0]
            run = self.local.stream_chunk(loaded, mode, local_item, sampling, index=index, total=total, live=live)
            return self._held(run)
        return self._remote_chunk(loaded, mode, item, sampling, index=index, total=total, live=live)

    def _remote_chunk(
        self,
        loaded: LoadedModel,
        mode: Mode,
        item: BatchItem,
        sampling: Sampling,
        *,
        index: int,
        total: int,
        live: bool,
    ) -> Generator[LiveAudio | Audio, None, None]:
        """The server's live pieces (when it streams), then the chunk; the local model's chunk when
        every server failed and the fallback allows it."""
        run = self.remote.stream_chunk(loaded, mode, item, sampling, index=index, total=total, live=live)
        try:
            with contextlib.closing(run):
                yield from run
        except RemoteEngineError as exc:
            with self.device_lock:
                local = self._fall_back(loaded, exc)
                local_item = self._local_items(local, [item])[0]
                yield self.local.generate_one(local, mode, local_item, sampling, index=index, total=total)

    # --- take details -------------------------------------------------------------------

    def take_details(self, loaded: LoadedModel) -> tuple[str, list[str]]:
        """(the engine as the take's details name it, notes for its warnings)."""
        model = loaded.model
        if isinstance(model, RemoteModel):
            parts = []
            if model.servers:
                parts.append(f"remote {', '.join(model.servers)}")
            if model.fallback:
                parts.append(f"{self.local.name} (local fallback)")
            notes = list(model.notes) + ([model.fallback] if model.fallback else [])
            return " + ".join(parts) or "remote", notes
        notes = list(loaded.fallback_notes)
        return (f"{self.local.name} (local fallback)" if notes else self.local.name), notes

    # --- internals ------------------------------------------------------------------------

    def _held(self, run: Generator[LiveAudio | Audio, None, None]) -> Generator[LiveAudio | Audio, None, None]:
        """A local chunk stream that holds the device lock while it runs (closing it releases it)."""
        with self.device_lock, contextlib.closing(run):
            yield from run

    def _fall_back(self, loaded: LoadedModel, exc: RemoteEngineError) -> LoadedModel:
        if self.fallback != "local":
            raise exc
        model = loaded.model
        assert isinstance(model, RemoteModel)
        if model.fallback is None:
            log.warning("event=remote_fallback model=%s reason=%s", loaded.checkpoint.key, exc)
            model.fallback = f"Chunks were made by the local model after the remote engines failed: {exc}"
        return self.local.load(loaded.checkpoint)

    def _local_items(self, local: LoadedModel, items: Sequence[BatchItem]) -> list[BatchItem]:
        """Items whose clone prompt only carries a clip (made for a remote engine), encoded locally."""
        out: list[BatchItem] = []
        encoded: dict[int, ClonePrompt] = {}
        for item in items:
            prompt = item.prompt
            if prompt is not None and prompt.reference is not None and prompt.speaker_embedding.numel() == 0:
                if id(prompt) not in encoded:
                    encoded[id(prompt)] = self.local.create_clone_prompt(
                        local, prompt.reference, prompt.ref_text, prompt.x_vector_only
                    )
                item = replace(item, prompt=encoded[id(prompt)])
            out.append(item)
        return out


def _with_note(loaded: LoadedModel, note: str) -> LoadedModel:
    """A copy of the local model's record that carries why the take fell back (for its details)."""
    return replace(loaded, fallback_notes=[note])
