"""The remote engine: the Engine protocol (core/engine/interface.py) over the pool's servers.

Each chunk is one ``POST {URL}/audio/speech`` in vLLM-Omni's dialect: ``model``
(the id the server listed), ``input``, ``task_type`` (CustomVoice, VoiceDesign,
Base), ``voice``, ``language``, ``instructions``, ``ref_audio`` (the reference
clip as a base64 WAV data URL), ``ref_text``, ``x_vector_only_mode``,
``max_new_tokens`` (the chunk's own cap) and ``response_format: wav``. A studio
server also gets ``seed`` and the sampling options, and its ``X-Seed`` answer
proves the seed was applied; for other servers the take's warnings say the
seed (and sampling) could not be applied.

A batch of chunks goes out as concurrent requests, each to the least busy
server, so one take spreads over every server for its checkpoint. Remote
servers clone from the clip itself, so :meth:`create_clone_prompt` encodes
nothing: it returns a prompt that carries the clip (``ClonePrompt.reference``).

``load`` returns a fresh :class:`LoadedModel` per take whose ``model`` is a
:class:`RemoteModel`: it records which servers made the take's chunks and what
the take's details must say, so concurrent takes never mix their notes.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from core.audio.clip import Audio
from core.engine.catalog import Checkpoint
from core.engine.interface import BatchItem, Capabilities
from core.engine.live_decoding import LiveAudio
from core.engine.model_manager import LoadedModel
from core.engine.model_store import ProgressCallback
from core.engine.remote.client import wav_bytes
from core.engine.remote.discovery import ServerKind
from core.engine.remote.pool import Pool, ServerState
from core.errors import InvalidInput
from core.types import ClonePrompt, Mode, Sampling

ENGINE_NAME = "remote"
TASK_TYPES = {Mode.CUSTOM_VOICE: "CustomVoice", Mode.VOICE_DESIGN: "VoiceDesign", Mode.BASE: "Base"}
# Requests one take keeps in flight per server: vLLM-Omni batches concurrent requests
# itself; a studio queues them behind its one device lock, so a few keep it busy.
PER_SERVER = 4


class RemoteModel:
    """What ``LoadedModel.model`` holds for a remote take: the servers used and the notes."""

    def __init__(self, checkpoint: Checkpoint):
        self.checkpoint = checkpoint
        self.servers: list[str] = []  # in the order they first made a chunk
        self.notes: list[str] = []
        self.fallback: str | None = None  # set by the router when the local model took over
        self._lock = threading.Lock()

    def used(self, label: str) -> None:
        with self._lock:
            if label not in self.servers:
                self.servers.append(label)

    def note(self, text: str) -> None:
        with self._lock:
            if text not in self.notes:
                self.notes.append(text)

    # The synthesis service reads speakers and languages through the engine; a remote
    # server checks them itself and answers a clear 400.
    def get_supported_speakers(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return []


def is_remote(loaded: LoadedModel) -> bool:
    return isinstance(loaded.model, RemoteModel)


class RemoteEngine:
    name = ENGINE_NAME

    def __init__(self, pool: Pool):
        self.pool = pool

    # --- load / unload --------------------------------------------------------

    def load(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> LoadedModel:
        if not self.pool.available(checkpoint.key):
            raise self.pool.down_error(checkpoint.key, "a take")
        return LoadedModel(
            checkpoint=checkpoint,
            model=RemoteModel(checkpoint),
            device="remote",
            dtype="remote",
            load_seconds=0.0,
            memory_bytes=0,
            path=Path(),
        )

    def unload(self, key: str | None = None) -> list[str]:
        return []  # nothing is held here

    # --- what it can do ---------------------------------------------------------

    def capabilities(self, loaded: LoadedModel | None = None) -> Capabilities:
        servers = len(self.pool.servers_for(loaded.checkpoint.key)) if loaded else len(self.pool.states)
        return Capabilities(
            engine=self.name,
            modes=tuple(Mode),
            batching=True,
            max_batch=max(1, servers * PER_SERVER),
            per_item_seeds=True,  # every item is its own request with its own seed
            live_frames=False,
            clone_prompts=False,  # servers clone from the clip (ref_audio)
        )

    def batch_size(self, loaded: LoadedModel, items: Sequence[BatchItem]) -> int:
        servers = len(self.pool.servers_for(loaded.checkpoint.key))
        return max(1, min(len(items), servers * PER_SERVER))

    def speakers(self, loaded: LoadedModel) -> list[str]:
        return []

    def languages(self, loaded: LoadedModel) -> list[str]:
        return []

    # --- generation -------------------------------------------------------------

    def generate_one(
        self, loaded: LoadedModel, mode: Mode, item: BatchItem, sampling: Sampling, *, index: int = 0, total: int = 1
    ) -> Audio:
        checkpoint = loaded.checkpoint
        model = loaded.model
        assert isinstance(model, RemoteModel)

        def send(state: ServerState) -> Audio:
            kind = self.pool.kind(state)
            payload = speech_payload(state.models[checkpoint.key], mode, item, sampling, kind)
            audio, headers = state.client.speech(payload)
            if kind is ServerKind.STUDIO and headers.get("X-Seed") == str(item.seed):
                return audio
            model.note(
                f"The remote engine {state.label} does not take seeds: the seed was not applied, so this take "
                "cannot be made again from its seed."
                + (" Its sampling settings were not applied either." if _has_sampling(sampling) else "")
            )
            return audio

        audio, state = self.pool.call(checkpoint.key, f"chunk {index + 1} of {total}", send)
        model.used(state.label)
        return audio

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
        """Every item as its own request, all at once; each goes to the least busy server."""
        if not items:
            return []
        total = total or len(items)
        with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="remote") as pool:
            futures = [
                pool.submit(self.generate_one, loaded, mode, item, sampling, index=first_index + k, total=total)
                for k, item in enumerate(items)
            ]
            return [f.result() for f in futures]

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
    ) -> Iterator[LiveAudio | Audio]:
        """The chunk whole (a remote chunk arrives in one answer; the Live player still plays chunk by chunk)."""
        yield self.generate_one(loaded, mode, item, sampling, index=index, total=total)

    def create_clone_prompt(
        self, loaded: LoadedModel, reference: Audio, reference_text: str | None, x_vector_only: bool
    ) -> ClonePrompt:
        return ClonePrompt(
            checkpoint_key=loaded.checkpoint.key,
            speaker_embedding=torch.zeros(0),  # nothing encoded here: the server encodes the clip
            ref_code=None,
            ref_text=None if x_vector_only else (reference_text or "").strip() or None,
            x_vector_only=x_vector_only,
            reference=reference,
        )


def speech_payload(model_id: str, mode: Mode, item: BatchItem, sampling: Sampling, kind: ServerKind) -> dict[str, Any]:
    """One chunk as a vLLM-Omni ``/audio/speech`` request (plus seed and sampling for a studio)."""
    payload: dict[str, Any] = {
        "model": model_id,
        "input": item.text,
        "task_type": TASK_TYPES[mode],
        "language": "Auto" if item.language in ("", "auto") else item.language.capitalize(),
        "max_new_tokens": int(item.max_new_tokens),
        "response_format": "wav",
    }
    if mode == Mode.CUSTOM_VOICE:
        payload["voice"] = item.speaker
        if item.instruct:
            payload["instructions"] = item.instruct
    elif mode == Mode.VOICE_DESIGN:
        payload["instructions"] = item.instruct or ""
    else:
        prompt = item.prompt
        if prompt is None or prompt.reference is None:
            raise InvalidInput(
                "A remote engine clones from the reference clip itself; add a reference clip or pick a library voice."
            )
        payload["ref_audio"] = "data:audio/wav;base64," + base64.b64encode(wav_bytes(prompt.reference)).decode()
        payload["x_vector_only_mode"] = bool(prompt.x_vector_only)
        if not prompt.x_vector_only and prompt.ref_text:
            payload["ref_text"] = prompt.ref_text
    if kind is ServerKind.STUDIO:
        payload["seed"] = int(item.seed)
        for name in ("temperature", "top_k", "top_p", "repetition_penalty"):
            value = getattr(sampling, name)
            if value is not None:
                payload[name] = value
    return payload


def _has_sampling(sampling: Sampling) -> bool:
    return any(getattr(sampling, n) is not None for n in ("temperature", "top_k", "top_p", "repetition_penalty"))
