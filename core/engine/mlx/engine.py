"""The MLX engine: the Engine protocol (core/engine/interface.py) over mlx-audio in a child process.

The child (``child_main.py``, supervised by ``supervisor.py``) is mlx-audio's own
OpenAI-compatible server on loopback. Each chunk is one ``POST /v1/audio/speech``
in mlx-audio's dialect -- ``model`` (the checkpoint folder), ``input``, ``lang_code``,
``voice`` (custom voice), ``instruct`` (design description or style),
``ref_audio`` (a WAV file path: the child runs on this machine) and ``ref_text``
(clone), ``max_tokens`` (the chunk's own cap), the sampling options that are set,
and the studio's ``seed``, which the child applies right before the chunk
generates. The HTTP side is the remote engine's client
(``core/engine/remote/client.py``): WAV answers, PCM streams, failures by kind.

* **Models** load through the shared :class:`ModelManager` (its ``loader`` makes an
  :class:`MlxModel` handle and loads the folder into the child), so ``--max-resident``,
  LRU eviction, the Models tab and ``/unload_model`` work as with torch. mlx-audio's
  own unload (``DELETE /v1/models``) drops the model but MLX keeps its arrays alive
  (measured: active memory unchanged), so freeing memory means stopping the child:
  when the manager no longer holds a model the child has loaded, the child is
  stopped, and the next request starts a fresh one that loads only what is wanted.
* **Clone** goes from the clip: mlx-audio encodes the reference itself, so
  :meth:`create_clone_prompt` keeps the clip (``ClonePrompt.reference``) and library
  voices hand their clip over (``clones_from_clip``); the clip is written once per
  content to ``run/refs/`` for the child to read.
* **Seeds** are honoured for every chunk generated alone: a seeded request runs alone
  in the child, which seeds MLX's random state before it generates, so the same seed
  gives the same audio. Batched chunks are the exception (next point).
* **Streaming**: ``stream_chunk(live=True)`` asks the child for a PCM stream
  (``streaming_interval`` 0.5 s) and hands the blocks on as live pieces.
* **Batches** (a long take's chunks after the first, and variants: ``takes`` N) go to
  the child's ``POST /studio/batch``, which runs mlx-audio's own ``batch_generate``
  on up to :data:`MAX_BATCH` items of one language (and, for clone, one clip with its
  transcript; x-vector-only clones go one by one, as ``batch_generate`` clones only
  with a transcript). ``batch_generate`` shares one random state and one frame cap
  across the batch, so the batch is seeded once with its first item's seed and
  capped at its largest item's cap: the take as a whole is reproducible (the same
  seed and text make it again), but the items' own seeds are **not applied**
  (``Capabilities.per_item_seeds`` is False) and the take's details say so
  (:data:`BATCH_SEED_NOTE`); a chunk or variant regenerated alone with its seed
  sounds different from its batched self.
* **Failures**: a child that dies mid-chunk fails that chunk with a clear
  :class:`GenerationError`; the next request restarts the child and reloads the model.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.engine.catalog import Checkpoint
from core.engine.interface import BatchItem, Capabilities, Engine
from core.engine.live_decoding import LiveAudio
from core.engine.mlx.supervisor import MlxProcess
from core.engine.model_manager import LoadedModel, ModelManager
from core.engine.model_store import ProgressCallback
from core.engine.remote.client import RemoteClient, RemoteFailure, wav_bytes
from core.engine.remote.config import RemoteServer
from core.errors import GenerationError, InvalidInput, ModelLoadError
from core.settings import EngineKind
from core.types import MODES, Mode, Sampling

log = logging.getLogger(__name__)

ENGINE_NAME = EngineKind.MLX.value
STREAM_INTERVAL_S = 0.5
MIN_PIECE_S = 0.16
MAX_BATCH = 8  # mlx-audio's published batch figure (5.45x real time at batch 8 on Apple Silicon)
BATCH_SEED_NOTE = (
    "MLX generated some chunks together (batch_generate): they share one random state, so their own "
    "seeds were not applied; the take's seed still makes this take again, but a chunk regenerated "
    "alone will sound different."
)


class MlxModel:
    """``LoadedModel.model`` for the MLX engine: a checkpoint folder the child has loaded."""

    def __init__(self, process: MlxProcess, path: Path):
        self.process = process
        self.path = Path(path)
        self.model_id = str(self.path)
        self.epoch = -1  # the child start this model was last loaded in
        config = _read_json(self.path / "config.json")
        talker = config.get("talker_config", {}) if isinstance(config.get("talker_config"), dict) else {}
        self._speakers = sorted(str(s) for s in (talker.get("spk_id") or {}))
        self._languages = ["auto"] + sorted(str(lang) for lang in (talker.get("codec_language_id") or {}))
        self._lock = threading.Lock()

    def ensure(self) -> str:
        """The child's URL, with this model loaded in the running child (after a restart too)."""
        with self._lock:
            url = self.process.ensure()
            if self.epoch != self.process.epoch or self.model_id not in self.process.loaded:
                self.process.load(self.model_id)
                self.epoch = self.process.epoch
            return url

    def get_supported_speakers(self) -> list[str]:
        return list(self._speakers)

    def get_supported_languages(self) -> list[str]:
        return list(self._languages)


class MlxEngine(Engine):
    name = ENGINE_NAME
    kind = EngineKind.MLX

    def __init__(self, manager: ModelManager, process: MlxProcess, *, timeout_s: float = 600.0):
        self.manager = manager
        self.process = process
        self.timeout_s = timeout_s
        self._clients: dict[str, RemoteClient] = {}
        self._refs = process.run_dir / "refs"
        self._take = threading.local()  # per take (one thread): whether a batch ran since load()
        # The shared manager loads MLX handles instead of qwen-tts models; one dtype, no smoke test.
        manager.loader = self._loader
        manager.verifier = None
        manager.on_release = self._free_unwanted  # unload and eviction free the child's memory too

    # --- load / unload --------------------------------------------------------

    def _loader(self, path: Path, device: str, dtype: Any) -> MlxModel:
        model = MlxModel(self.process, path)
        self._free_unwanted()  # the manager has just evicted what no longer fits
        model.ensure()
        return model

    def load(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> LoadedModel:
        self._take.batched = False  # every take loads first: its details start clean
        loaded = self.manager.get(checkpoint, progress)
        if isinstance(loaded.model, MlxModel):
            loaded.device = "mlx"
            loaded.dtype = self.weights
        return loaded

    def unload(self, key: str | None = None) -> list[str]:
        return self.manager.unload(key)  # its on_release stops the child when that frees memory

    def _free_unwanted(self) -> None:
        """Stops the child when it holds a model the manager no longer keeps (see the module notes)."""
        wanted = {m.model.model_id for m in self.manager.resident_models() if isinstance(m.model, MlxModel)}
        if self.process.loaded - wanted:
            log.info("event=mlx_engine_free models=%s", sorted(self.process.loaded - wanted))
            self.process.stop()

    # --- what it can do ---------------------------------------------------------

    def capabilities(self, loaded: LoadedModel | None = None) -> Capabilities:
        return Capabilities(
            engine=self.name,
            modes=MODES,
            batching=True,
            max_batch=MAX_BATCH,
            per_item_seeds=False,  # batched items share one random state (see the module notes)
            live_frames=True,
            clone_prompts=False,
        )

    def batch_size(self, loaded: LoadedModel, items: Sequence[BatchItem]) -> int:
        """The leading items that batch_generate can take in one call (1: go alone)."""
        first = items[0] if items else None
        if first is None or (first.prompt is not None and (first.prompt.x_vector_only or not first.prompt.ref_text)):
            return 1
        size = 0
        for item in items[:MAX_BATCH]:
            if item.language != first.language or item.prompt is not first.prompt:
                break  # one lang_code and one shared clip per call
            size += 1
        return max(1, size)

    def clones_from_clip(self, checkpoint: Checkpoint) -> bool:
        return True  # the child encodes the reference itself; takes still hold the device lock

    @property
    def weights(self) -> str:
        """How the child holds the weights: "as stored" (bf16) or the quantization (e.g. "4bit")."""
        quantize = self.process.quantize
        return "as stored" if quantize.bits is None else quantize.value

    def take_details(self, loaded: LoadedModel) -> tuple[str, list[str]]:
        # The take names the quantization (it changes the audio); bf16 keeps the plain name.
        quantize = self.process.quantize
        notes = [BATCH_SEED_NOTE] if getattr(self._take, "batched", False) else []
        return (self.name if quantize.bits is None else f"{self.name} {quantize.value}"), notes

    # --- generation ---------------------------------------------------------------

    def generate_one(
        self, loaded: LoadedModel, mode: Mode, item: BatchItem, sampling: Sampling, *, index: int = 0, total: int = 1
    ) -> Audio:
        client, payload = self._request(loaded, mode, item, sampling)
        try:
            audio, _headers = client.speech(payload)
        except RemoteFailure as exc:
            raise self._failure(exc, index, total) from None
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
        total = total or len(items)
        if len(items) == 1:
            return [self.generate_one(loaded, mode, items[0], sampling, index=first_index, total=total)]
        client, payload = self._request(loaded, mode, items[0], sampling)
        payload = {
            "model": payload["model"],
            "texts": [item.text for item in items],
            "lang_code": payload["lang_code"],
            "max_tokens": max(int(item.max_new_tokens) for item in items),  # one cap per call
            "seed": int(items[0].seed),  # one random state per call
            **{
                k: payload[k]
                for k in ("temperature", "top_k", "top_p", "repetition_penalty", "ref_audio", "ref_text")
                if k in payload
            },
        }
        if mode == Mode.CUSTOM_VOICE:
            payload["voices"] = [item.speaker for item in items]
            payload["instructs"] = [item.instruct or None for item in items]
        elif mode == Mode.VOICE_DESIGN:
            payload["instructs"] = [item.instruct or "" for item in items]
        where = f"chunks {first_index + 1}-{first_index + len(items)} of {total}"
        try:
            answer = client.post_json(client.server.url.removesuffix("/v1") + "/studio/batch", payload)
        except RemoteFailure as exc:
            raise self._failure(exc, first_index, total, where=where) from None
        try:
            rate = int(answer["sample_rate"])
            made = [np.frombuffer(base64.b64decode(b), dtype="<f4").astype(np.float32) for b in answer["items"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise GenerationError(
                f"The MLX engine answered {where} in a form the studio cannot read ({exc})."
            ) from None
        if len(made) != len(items) or any(not m.size for m in made):
            raise GenerationError(f"The MLX engine answered no audio for some of {where}.")
        self._take.batched = True
        return [Audio(m, rate) for m in made]

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
        if not live:
            yield self.generate_one(loaded, mode, item, sampling, index=index, total=total)
            return
        client, payload = self._request(loaded, mode, item, sampling)
        payload = {**payload, "response_format": "pcm", "streaming_interval": STREAM_INTERVAL_S}
        blocks: list[np.ndarray] = []
        waiting: list[np.ndarray] = []
        played = 0
        try:
            for samples, rate, _headers in client.speech_stream(payload):
                blocks.append(samples)
                waiting.append(samples)
                if sum(len(w) for w in waiting) >= MIN_PIECE_S * rate:
                    piece = np.concatenate(waiting)
                    yield LiveAudio(index, total, item.text, Audio(piece, rate), played / rate, exact=False)
                    played += len(piece)
                    waiting = []
        except RemoteFailure as exc:
            raise self._failure(exc, index, total) from None
        whole = np.concatenate(blocks).astype(np.float32, copy=False) if blocks else np.zeros(0, np.float32)
        if not whole.size:
            raise GenerationError(f"The MLX engine answered no audio for chunk {index + 1} of {total}.")
        if waiting:
            piece = np.concatenate(waiting)
            yield LiveAudio(
                index, total, item.text, Audio(piece, TARGET_SAMPLE_RATE), played / TARGET_SAMPLE_RATE, exact=True
            )
        yield Audio(whole, TARGET_SAMPLE_RATE)

    # --- internals ------------------------------------------------------------------

    def _request(
        self, loaded: LoadedModel, mode: Mode, item: BatchItem, sampling: Sampling
    ) -> tuple[RemoteClient, dict[str, Any]]:
        model = loaded.model
        if not isinstance(model, MlxModel):
            raise ModelLoadError(f"{loaded.checkpoint.label} was not loaded by the MLX engine.")
        url = model.ensure()
        client = self._clients.get(url)
        if client is None:
            for old in self._clients.values():
                old.close()
            self._clients = {url: RemoteClient(RemoteServer(url), timeout_s=self.timeout_s)}
            client = self._clients[url]
        return client, self._payload(model, mode, item, sampling)

    def _payload(self, model: MlxModel, mode: Mode, item: BatchItem, sampling: Sampling) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": model.model_id,
            "input": item.text,
            "lang_code": "auto" if item.language in ("", "auto") else item.language.lower(),
            "max_tokens": int(item.max_new_tokens),
            "response_format": "wav",
            "seed": int(item.seed),
        }
        for name in ("temperature", "top_k", "top_p", "repetition_penalty"):
            value = getattr(sampling, name)
            if value is not None:
                payload[name] = value
        if mode == Mode.CUSTOM_VOICE:
            payload["voice"] = item.speaker
            if item.instruct:
                payload["instruct"] = item.instruct
        elif mode == Mode.VOICE_DESIGN:
            payload["instruct"] = item.instruct or ""
        else:
            prompt = item.prompt
            if prompt is None or prompt.reference is None:
                raise InvalidInput("The MLX engine clones from the reference clip; add a clip or pick a library voice.")
            payload["ref_audio"] = str(self._reference_file(prompt.reference))
            if not prompt.x_vector_only and prompt.ref_text:
                payload["ref_text"] = prompt.ref_text
        return payload

    def _reference_file(self, reference: Audio) -> Path:
        """The clip as a WAV file the child can read, named by its content (written once)."""
        data = wav_bytes(reference)
        path = self._refs / f"{hashlib.sha256(data).hexdigest()[:24]}.wav"
        if not path.exists():
            self._refs.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{time.monotonic_ns()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    def _failure(self, exc: RemoteFailure, index: int, total: int, *, where: str = "") -> GenerationError:
        where = where or f"chunk {index + 1} of {total}"
        if exc.kind == "rejected":
            return GenerationError(f"The MLX engine refused {where}: {exc}")
        code = self.process.exit_code(wait_s=3.0)
        if code is not None:
            return GenerationError(
                f"The MLX engine stopped during {where} (exit code {code}); it restarts for the next take. "
                f"Its log: {self.process.log_path}"
            )
        return GenerationError(f"The MLX engine failed on {where}: {exc}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
