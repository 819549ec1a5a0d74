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
server, so one take spreads over every server for its checkpoint.

**Live pieces:** a chunk asked for with ``stream_chunk(live=True)`` (the first chunk
of a take the UI plays, a ``stream: true`` API call) goes out with ``stream: true``
and ``response_format: pcm``; the PCM blocks are handed on as
:class:`~core.engine.live_decoding.LiveAudio` pieces of at least ``MIN_PIECE_S`` as
they arrive, and the chunk's audio is their concatenation, so the pieces tile it.
A server that rejects ``stream`` (a 4xx before any audio) gets the same chunk as a
whole WAV, and whole files from then on (``ServerState.streams``). A server that
fails mid-stream is left for the next one, whose audio is played from where the
pieces had got to. Streamed audio is the server's live audio in 16 bits: for a
studio engine, its windowed live decode (within ~1e-5 of its take), so a chunk
made live can differ from the same chunk made whole in the last bit. Remote
servers clone from the clip itself, so :meth:`create_clone_prompt` encodes
nothing: it returns a prompt that carries the clip (``ClonePrompt.reference``).

``load`` returns a fresh :class:`LoadedModel` per take whose ``model`` is a
:class:`RemoteModel`: it records which servers made the take's chunks and what
the take's details must say, so concurrent takes never mix their notes.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.engine.catalog import Checkpoint
from core.engine.interface import BatchItem, Capabilities, Engine
from core.engine.live_decoding import LiveAudio
from core.engine.model_manager import LoadedModel
from core.engine.model_store import ProgressCallback
from core.engine.remote.client import RemoteFailure, wav_bytes
from core.engine.remote.discovery import ServerKind
from core.engine.remote.pool import Pool, ServerState
from core.errors import GenerationError, InvalidInput
from core.settings import EngineKind
from core.types import MODES, Mode, Sampling

log = logging.getLogger(__name__)

ENGINE_NAME = EngineKind.REMOTE.value
TASK_TYPES = {Mode.CUSTOM_VOICE: "CustomVoice", Mode.VOICE_DESIGN: "VoiceDesign", Mode.BASE: "Base"}
# Requests one take keeps in flight per server: vLLM-Omni batches concurrent requests
# itself; a studio queues them behind its one device lock, so a few keep it busy.
PER_SERVER = 4
# Live pieces of a streamed chunk are at least two codec frames long: fewer, fuller player updates.
MIN_PIECE_S = 0.16


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


class RemoteEngine(Engine):
    name = ENGINE_NAME
    kind = EngineKind.REMOTE

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

    def routes_remote(self, checkpoint: Checkpoint) -> bool:
        return True  # every take is made on a server

    # --- what it can do ---------------------------------------------------------

    def capabilities(self, loaded: LoadedModel | None = None) -> Capabilities:
        servers = len(self.pool.servers_for(loaded.checkpoint.key)) if loaded else len(self.pool.states)
        return Capabilities(
            engine=self.name,
            modes=MODES,
            batching=True,
            max_batch=max(1, servers * PER_SERVER),
            per_item_seeds=True,  # every item is its own request with its own seed
            live_frames=True,  # streamed from the server (stream: true), see the module notes
            clone_prompts=False,  # servers clone from the clip (ref_audio)
        )

    def batch_size(self, loaded: LoadedModel, items: Sequence[BatchItem]) -> int:
        servers = len(self.pool.servers_for(loaded.checkpoint.key))
        return max(1, min(len(items), servers * PER_SERVER))

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
            _note_seed(model, state, kind, headers, item, sampling)
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
    ) -> Generator[LiveAudio | Audio, None, None]:
        """Live pieces as the server streams them (see the module notes), then the chunk's audio;
        without ``live``, the chunk whole."""
        if not live:
            yield self.generate_one(loaded, mode, item, sampling, index=index, total=total)
            return
        checkpoint = loaded.checkpoint
        model = loaded.model
        assert isinstance(model, RemoteModel)

        def send(state: ServerState) -> Iterator[tuple[np.ndarray, int, Any, bool]]:
            kind = self.pool.kind(state)
            payload = speech_payload(state.models[checkpoint.key], mode, item, sampling, kind)
            if state.streams:
                received = False
                try:
                    for samples, rate, headers in state.client.speech_stream({**payload, "response_format": "pcm"}):
                        received = True
                        yield samples, rate, headers, True
                except RemoteFailure as exc:
                    if received or exc.kind != "rejected":
                        raise
                    state.streams = False  # it said no to stream: whole files from now on
                    log.info("event=remote_stream_unsupported server=%s error=%s", state.label, exc)
                else:
                    if not received:
                        raise RemoteFailure("server", "answered an empty stream")
                    return
            audio, headers = state.client.speech(payload)
            yield audio.samples, audio.sample_rate, headers, False  # whole: no live pieces, the chunk plays

        server: ServerState | None = None
        blocks: list[np.ndarray] = []  # this server's samples (a retry elsewhere starts over)
        waiting: list[np.ndarray] = []  # received, not yet handed on
        received = played = 0  # samples from this server / handed on as live pieces
        rate, headers = TARGET_SAMPLE_RATE, None
        what = f"chunk {index + 1} of {total}"
        for (samples, rate, answer, streamed), state in self.pool.stream(checkpoint.key, what, send):
            headers = answer
            if state is not server:
                server, blocks, waiting, received = state, [], [], 0
            blocks.append(samples)
            fresh = samples[max(0, played - received) :]  # what the player has not had yet
            received += len(samples)
            if (not streamed and not played) or rate != TARGET_SAMPLE_RATE or not len(fresh):
                # A whole answer, or another rate (resampled below): the chunk itself plays. (After
                # pieces were played, the rest of a whole answer still goes out as the last piece.)
                continue
            waiting.append(fresh)
            if sum(len(w) for w in waiting) >= MIN_PIECE_S * rate:
                piece = np.concatenate(waiting)
                yield LiveAudio(index, total, item.text, Audio(piece, rate), played / rate, exact=False)
                played += len(piece)
                waiting = []
        assert server is not None  # pool.stream raises when no server made the chunk
        whole = np.concatenate(blocks).astype(np.float32, copy=False)
        if not whole.size:
            raise GenerationError(f"The remote engine {server.label} answered no audio for chunk {index + 1}.")
        if waiting:
            piece = np.concatenate(waiting)
            yield LiveAudio(index, total, item.text, Audio(piece, rate), played / rate, exact=True)
        if rate != TARGET_SAMPLE_RATE:
            import librosa

            whole = librosa.resample(whole, orig_sr=rate, target_sr=TARGET_SAMPLE_RATE).astype(np.float32)
        _note_seed(model, server, self.pool.kind(server), headers, item, sampling)
        model.used(server.label)
        yield Audio(whole, TARGET_SAMPLE_RATE)


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


def _note_seed(
    model: RemoteModel, state: ServerState, kind: ServerKind, headers: Any, item: BatchItem, sampling: Sampling
) -> None:
    """A studio proves it applied the seed (X-Seed); for any other server the take's details say it was not."""
    if kind is ServerKind.STUDIO and headers is not None and headers.get("X-Seed") == str(item.seed):
        return
    model.note(
        f"The remote engine {state.label} does not take seeds: the seed was not applied, so this take "
        "cannot be made again from its seed."
        + (" Its sampling settings were not applied either." if _has_sampling(sampling) else "")
    )


def _has_sampling(sampling: Sampling) -> bool:
    return any(getattr(sampling, n) is not None for n in ("temperature", "top_k", "top_p", "repetition_penalty"))
