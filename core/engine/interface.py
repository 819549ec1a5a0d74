"""What the synthesis service needs from a backend: the engine protocol.

The studio's synthesis service (``core/engine/synthesis.py``) validates
requests, splits text into chunks, picks seeds, joins and keeps takes. It asks
an *engine* for everything that touches a model:

* load and unload a checkpoint;
* generate a **batch** of chunks for one mode, each item with its own text,
  speaker / instruction / clone prompt, seed and frame cap, under one set of
  sampling options (:meth:`Engine.generate_batch`);
* generate one chunk with live frames for streaming (:meth:`Engine.stream_chunk`);
* encode a reference clip into a reusable clone prompt;
* say which speakers and languages a loaded model supports, what it can do
  (:class:`Capabilities`) and how many items it should batch at once.

The in-process qwen-tts engine (``core/engine/torch_engine.py``) is the
reference implementation; the MLX engine, the remote engine and the router that
sends each checkpoint to remote servers or the local engine implement the same
protocol. Each of them subclasses :class:`Engine` explicitly, so mypy checks
every signature against it and refuses to build one that lacks a member (the
conformance check CI runs); everything that holds an engine types it ``Engine``.
What differs between engines is data the protocol asks for (``kind``,
``routes_remote``, ``clones_from_clip``, ``take_details``, ``weights``), never
an attribute looked up by name. Which engine runs is chosen and switched in
``core/engine/selection.py``. Every take names the engine that made it
(``SynthesisResult.engine``).

Seeds are per item: an engine that batches must make item *k* of a batch
reproducible on its own (the same seed, text and settings give the same
codes whether the item was generated alone or in a batch), or say it cannot
(``Capabilities.per_item_seeds = False``) so the studio can tell the user.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from core.settings import EngineKind
from core.types import ClonePrompt, Mode, Sampling

if TYPE_CHECKING:
    from core.audio.clip import Audio
    from core.engine.catalog import Checkpoint
    from core.engine.live_decoding import LiveAudio
    from core.engine.model_manager import LoadedModel
    from core.engine.model_store import ProgressCallback


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do on the device it runs on."""

    engine: str  # the name every take's details carry, e.g. "torch"
    modes: tuple[Mode, ...]
    batching: bool  # generate_batch takes more than one item per call
    max_batch: int  # the most items it will put in one call
    per_item_seeds: bool  # a batched item sounds as it does when generated alone
    live_frames: bool  # stream_chunk yields audio while the chunk generates
    clone_prompts: bool  # create_clone_prompt works (Base checkpoints)
    quantize: tuple[str, ...] = ("none",)  # the --quantize values this engine and device accept

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "modes": [str(m) for m in self.modes], "quantize": list(self.quantize)}


@dataclass(frozen=True)
class BatchItem:
    """One chunk of a batch: everything that may differ between items of one call."""

    text: str
    seed: int  # the item's own seed (a take's chunk k uses seed + k)
    max_new_tokens: int  # the item's own frame cap
    language: str = "auto"
    speaker: str | None = None  # custom voice: a speaker id
    instruct: str | None = None  # voice design: the description; custom voice: the style
    prompt: ClonePrompt | None = None  # clone: the encoded reference


class Engine(Protocol):
    """A backend that turns batches of chunks into audio (see the module notes).

    Engines subclass it explicitly: the members with a body are the defaults of a local
    engine that holds its own models (torch), the others every engine must define."""

    name: str  # what takes name, e.g. "torch+int8"
    kind: EngineKind  # which engine this is (TORCH, MLX, REMOTE)

    def routes_remote(self, checkpoint: Checkpoint) -> bool:
        """True when takes of ``checkpoint`` are made on a remote server: they then hold no
        lock on this machine's device (core/engine/synthesis.py)."""
        return False

    def clones_from_clip(self, checkpoint: Checkpoint) -> bool:
        """True when this engine clones from the reference clip itself (a remote server, the
        MLX child), so a library voice's cached local clone prompt is of no use to it."""
        return self.routes_remote(checkpoint)

    def take_details(self, loaded: LoadedModel) -> tuple[str, list[str]]:
        """(the engine as a take's details name it, notes for the take's warnings)."""
        return self.name, []

    @property
    def weights(self) -> str | None:
        """How the engine holds the weights when that is its own choice (MLX: "as stored" or
        "4bit"); None when the dtype policy of the model manager decides (torch, remote)."""
        return None

    def load(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> LoadedModel:
        """The checkpoint, loaded (or already resident) and ready to generate."""
        ...

    def unload(self, key: str | None = None) -> list[str]:
        """Unloads one checkpoint by key, or all; returns the keys unloaded."""
        ...

    def capabilities(self, loaded: LoadedModel | None = None) -> Capabilities: ...

    def batch_size(self, loaded: LoadedModel, items: Sequence[BatchItem]) -> int:
        """How many of ``items`` to generate in one call on this device, now (1 = no batching)."""
        ...

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
        """24 kHz audio for every item, in order, generated together (``first_index`` and
        ``total`` only word the errors: "chunks 3-8 of 16").

        Raises :class:`~core.errors.GenerationError` (or a subclass) on failure.
        """
        ...

    def generate_one(
        self, loaded: LoadedModel, mode: Mode, item: BatchItem, sampling: Sampling, *, index: int = 0, total: int = 1
    ) -> Audio:
        """One item alone, seeded as a plain script seeds it."""
        ...

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
        """One item alone: live pieces while it generates (when supported), then its Audio."""
        ...

    def create_clone_prompt(
        self, loaded: LoadedModel, reference: Audio, reference_text: str | None, x_vector_only: bool
    ) -> ClonePrompt:
        """The reference encoded for cloning. By default nothing is encoded here: the prompt
        carries the clip, for an engine that clones from it (MLX, remote; torch encodes)."""
        import torch

        return ClonePrompt(
            checkpoint_key=loaded.checkpoint.key,
            speaker_embedding=torch.zeros(0),
            ref_code=None,
            ref_text=None if x_vector_only else (reference_text or "").strip() or None,
            x_vector_only=x_vector_only,
            reference=reference,
        )

    def speakers(self, loaded: LoadedModel) -> list[str]:
        return loaded.speakers  # what the loaded model says (a remote server checks them itself)

    def languages(self, loaded: LoadedModel) -> list[str]:
        return loaded.languages
