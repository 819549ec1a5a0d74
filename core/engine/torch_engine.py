"""The in-process qwen-tts engine: the reference implementation of core/engine/interface.py.

One item alone goes through the stock ``Qwen3TTSModel.generate_*`` call (via
the live-decoding fast path, so its codes and take are the stock ones). A
batch goes through the same stock call with lists -- qwen-tts pads the
prompts on the left and generates all items in lockstep -- with three
additions that keep every item what it would have been alone:

* **per-item seeds**: while a batch generates, ``torch.multinomial`` draws
  each row from that item's own ``torch.Generator`` (seeded with the item's
  seed) instead of the one global generator. A CPU/CUDA generator seeded
  with ``s`` draws what ``torch.manual_seed(s)`` followed by the same draws
  would, and every sampling step of the talker and the code predictor draws
  once per row, so row *k* consumes its generator exactly as the item alone
  consumes the global one. Only the calling thread is affected (thread-local);
* **per-item frame caps**: the call runs to the largest cap and each item's
  codes are cut to the frames its own cap gives alone (``cap - 1``, measured);
* **per-item decode**: each item's codes are decoded on their own, as the
  stock single call decodes them (a padded batch decode differs by float noise).

What remains different is the float arithmetic of a padded batch (other
matrix shapes, other kernels): on the tiny test models greedy and sampled
codes were identical per item (``tests/core/engine/test_torch_engine.py``);
docs/PERFORMANCE.md records what was measured at full size.

**Pre-packed weights on the CPU** (batches only): torch's fp32 GEMM for a
few rows (2-16, a batch's decode step) repacks the weight matrix on every
call, which made a batch of 8 cost ~4.7x one item. While a batch generates,
the talker's and code predictor's Linears run oneDNN's linear on weights
packed once (``torch.ops.mkldnn._linear_pointwise``); single rows -- every
step of a take made alone -- keep the stock kernel, so the exact path is
untouched. The packed copy costs the Linears' weight bytes once more
(~2.1 GB at 0.6B); it is skipped when memory is short, with ``--quantize
int8``, or with ``TorchEngine(prepack=False)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from core import text as textlib
from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.engine.cancel import cancellable, current, stop_on_cancel
from core.engine.catalog import Checkpoint
from core.engine.device import seed_everything
from core.engine.interface import BatchItem, Capabilities, Engine
from core.engine.live_decoding import FastPath, LiveAudio, quantize_int8
from core.engine.model_manager import LoadedModel, ModelManager
from core.engine.model_store import ProgressCallback
from core.engine.static_decode import DECODE_CHOICES, static_decoding
from core.errors import GenerationError, InvalidInput, StudioError
from core.settings import EngineKind
from core.types import MAX_SEED, MODES, ClonePrompt, Mode, Sampling

log = logging.getLogger(__name__)

ENGINE_NAME = EngineKind.TORCH.value
QUANTIZE_CHOICES = ("none", "int8")
# Batch ceilings per device when memory allows. On this project's 2-core CPU a
# batch of 8 gave 1.5x the throughput of one item (docs/PERFORMANCE.md); more
# items only lengthen the wait for the batch's first audio.
MAX_BATCH = {"cpu": 8, "cuda": 16, "mps": 4}
# Frames the stock call returns for a cap of N new tokens: the first step only
# primes the talker, so N tokens give N - 1 frames (measured on qwen-tts 0.1.1).
FRAMES_PER_CAP_OFFSET = 1


class TorchEngine(Engine):
    """qwen-tts in this process (see the module notes)."""

    kind = EngineKind.TORCH

    def __init__(
        self,
        manager: ModelManager,
        *,
        fast: FastPath | None = None,
        quantize: str = "none",
        max_batch: int | None = None,
        prepack: bool = True,
        decode: str = "stock",
    ):
        if quantize not in QUANTIZE_CHOICES:
            raise InvalidInput(f"Unknown quantization '{quantize}'; choose one of: {', '.join(QUANTIZE_CHOICES)}.")
        if decode not in DECODE_CHOICES:
            raise InvalidInput(f"Unknown decode loop '{decode}'; choose one of: {', '.join(DECODE_CHOICES)}.")
        # stock: qwen_tts' own generate(); static: the same codes through the manual loop over
        # pre-allocated caches (core/engine/static_decode.py), one item at a time.
        self.decode = decode
        self.manager = manager
        self.fast = fast or FastPath()
        self.quantize = quantize
        # Takes name the engine; a quantized one says so ("torch+int8"), since it sounds different.
        self.name = ENGINE_NAME if quantize == "none" else f"{ENGINE_NAME}+{quantize}"
        self.max_batch = max_batch  # None: the device's ceiling (MAX_BATCH), limited by free memory
        self._quantized: set[int] = set()
        self.prepack = prepack and quantize == "none"

    # --- load / unload --------------------------------------------------------

    def load(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> LoadedModel:
        loaded = self.manager.get(checkpoint, progress)
        if self.quantize == "int8" and id(loaded.model) not in self._quantized:
            if str(loaded.device).split(":")[0] != "cpu":
                raise InvalidInput("--quantize int8 works on the CPU only; use --quantize none on this device.")
            if loaded.dtype != "float32":
                raise InvalidInput("--quantize int8 needs float32 weights; use --dtype float32 (or auto on the CPU).")
            count = quantize_int8(loaded.model)
            self._quantized.add(id(loaded.model))
            log.info("event=quantize model=%s kind=int8 linears=%d", checkpoint.key, count)
        return loaded

    def unload(self, key: str | None = None) -> list[str]:
        return self.manager.unload(key)

    # --- what it can do -------------------------------------------------------

    def capabilities(self, loaded: LoadedModel | None = None) -> Capabilities:
        device = str(loaded.device if loaded else self.manager.device).split(":")[0]
        return Capabilities(
            engine=self.name,
            modes=MODES,
            batching=True,
            max_batch=self._ceiling(device),
            per_item_seeds=True,
            live_frames=device in self.fast.options.live_devices,
            clone_prompts=True,
            quantize=QUANTIZE_CHOICES if device == "cpu" else ("none",),
        )

    def batch_size(self, loaded: LoadedModel, items: Sequence[BatchItem]) -> int:
        """The device's ceiling, lowered so the batch's KV caches fit in a quarter of free memory."""
        device = str(loaded.device).split(":")[0]
        ceiling = min(len(items), self._ceiling(device))
        if ceiling <= 1:
            return max(1, ceiling)
        per_item = _kv_bytes_per_frame(loaded.model) * (max(i.max_new_tokens for i in items) + 512)
        free = _free_bytes(device, str(loaded.device))
        if per_item > 0 and free is not None:
            ceiling = min(ceiling, max(1, int(free // 4 // per_item)))
        return ceiling

    def _ceiling(self, device: str) -> int:
        if self.max_batch is not None:
            return max(1, int(self.max_batch))
        return MAX_BATCH.get(device, 1)

    # --- generation -----------------------------------------------------------

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
        """The stock single call (same codes as qwen-tts alone), with live pieces when asked."""

        # The live path generates in its own thread, which does not inherit the caller's
        # cancel token (core/engine/cancel.py): it is handed over here.
        token = current()

        def one(loaded: LoadedModel, _chunk: str, index: int, _seed: int, _sampling: Any, _gen: Any, total: int):
            with cancellable(token):
                return self.generate_one(loaded, mode, item, sampling, index=index, total=total)

        # FastPath hands ``one`` its usual arguments (the generate slot included) and runs it as is.
        return self.fast.run(one, loaded, item.text, index, item.seed, sampling, one, total, live=live)

    def generate_one(
        self, loaded: LoadedModel, mode: Mode, item: BatchItem, sampling: Sampling, *, index: int = 0, total: int = 1
    ) -> Audio:
        """One item through the stock call, seeded the way a script seeds it (``torch.manual_seed``)."""
        kwargs = {**sampling.generate_kwargs(), "max_new_tokens": item.max_new_tokens}
        seed_everything(item.seed % (MAX_SEED + 1))
        with (
            _errors(loaded, f"chunk {index + 1} of {total}", item.text),
            stop_on_cancel(loaded.model, current()),
            static_decoding(loaded.model) if self.decode == "static" else contextlib.nullcontext(),
        ):
            samples = self._stock_call(loaded, mode, [item], kwargs)[0]
        return _checked(samples, f"chunk {index + 1} of {total}", item.text)

    def generate_batch(
        self,
        loaded: LoadedModel,
        mode: Mode,
        items: Sequence[BatchItem],
        sampling: Sampling,
        *,
        first_index: int = 0,
        total: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> list[Audio]:
        """All items in one stock call with lists; each item seeded, capped and decoded as if alone.

        ``extra`` passes more generate kwargs (e.g. ``do_sample=False`` for the exactness tests).
        """
        if not items:
            return []
        total = total or len(items)
        label = f"chunks {first_index + 1}-{first_index + len(items)} of {total}"
        caps = [int(i.max_new_tokens) for i in items]
        kwargs = {**sampling.generate_kwargs(), **(extra or {}), "max_new_tokens": max(caps)}
        generators = [_generator(loaded.device, i.seed % (MAX_SEED + 1)) for i in items]
        with (
            _errors(loaded, label, items[0].text),
            stop_on_cancel(loaded.model, current()),  # Stop: every row stops at the next frame
            torch.inference_mode(),
            self._packed(loaded),
            per_row_sampling(generators),
            _per_item_codes(loaded.model, [c - FRAMES_PER_CAP_OFFSET for c in caps]),
        ):
            wavs = self._stock_call(loaded, mode, items, kwargs)
        return [
            _checked(np.asarray(w, dtype=np.float32), f"chunk {first_index + k + 1} of {total}", items[k].text)
            for k, w in enumerate(wavs)
        ]

    def _packed(self, loaded: LoadedModel) -> contextlib.AbstractContextManager[Any]:
        """Pre-packed Linears for this batch (CPU), when enabled and memory allows; else nothing."""
        if not self.prepack or str(loaded.device).split(":")[0] != "cpu":
            return contextlib.nullcontext()
        if not prepack_linears(loaded.model):
            return contextlib.nullcontext()
        return packed_rows()

    def _stock_call(self, loaded: LoadedModel, mode: Mode, items: Sequence[BatchItem], kwargs: dict) -> list:
        model = loaded.model
        batched = len(items) > 1
        texts: Any = [i.text for i in items] if batched else items[0].text
        languages: Any = [i.language for i in items] if batched else items[0].language
        if mode == Mode.VOICE_DESIGN:
            instructs: Any = [i.instruct or "" for i in items] if batched else items[0].instruct
            wavs, sr = model.generate_voice_design(text=texts, language=languages, instruct=instructs, **kwargs)
        elif mode == Mode.CUSTOM_VOICE:
            speakers: Any = [i.speaker for i in items] if batched else items[0].speaker
            if batched:
                # qwen-tts treats "" as no instruction per item; None only works for the whole call.
                instructs = [i.instruct or "" for i in items]
            else:
                instructs = items[0].instruct
            wavs, sr = model.generate_custom_voice(
                text=texts, language=languages, speaker=speakers, instruct=instructs, **kwargs
            )
        elif mode == Mode.BASE:
            prompts = []
            for i in items:
                if i.prompt is None:
                    raise InvalidInput("Add a reference clip (upload or record one) or pick a voice from the library.")
                prompts.extend(i.prompt.to_qwen())
            wavs, sr = model.generate_voice_clone(text=texts, language=languages, voice_clone_prompt=prompts, **kwargs)
        else:
            raise TypeError(f"not a mode: {mode!r}")
        return [_resampled(w, sr) for w in wavs]

    # --- clone prompts ----------------------------------------------------------

    def create_clone_prompt(
        self, loaded: LoadedModel, reference: Audio, reference_text: str | None, x_vector_only: bool
    ) -> ClonePrompt:
        if reference.sample_rate != TARGET_SAMPLE_RATE:
            raise InvalidInput("The reference must be resampled to 24 kHz before cloning.")
        ref_text = None if x_vector_only else textlib.normalize_text(reference_text or "")
        try:
            items = loaded.model.create_voice_clone_prompt(
                ref_audio=(reference.samples, reference.sample_rate),
                ref_text=ref_text,
                x_vector_only_mode=x_vector_only,
            )
        except StudioError:
            raise
        except Exception as exc:
            raise GenerationError(f"Could not encode the reference clip: {_first_line(exc)}") from exc
        item = items[0]
        return ClonePrompt(
            checkpoint_key=loaded.checkpoint.key,
            speaker_embedding=item.ref_spk_embedding.detach().cpu(),
            ref_code=None if item.ref_code is None else item.ref_code.detach().cpu(),
            ref_text=item.ref_text,
            x_vector_only=bool(item.x_vector_only_mode),
        )


# --- per-row sampling ---------------------------------------------------------

_rows = threading.local()
_stock_multinomial = torch.multinomial
_install_lock = threading.Lock()


def _multinomial(input: torch.Tensor, num_samples: int, replacement: bool = False, *, generator=None, out=None):
    generators = getattr(_rows, "generators", None)
    if generators is None or generator is not None or out is not None or input.dim() != 2:
        return _stock_multinomial(input, num_samples, replacement, generator=generator, out=out)
    if input.shape[0] != len(generators):
        raise GenerationError(
            f"Internal error: a sampling step drew {input.shape[0]} rows for a batch of {len(generators)}."
        )
    return torch.cat(
        [_stock_multinomial(input[k : k + 1], num_samples, replacement, generator=g) for k, g in enumerate(generators)]
    )


@contextlib.contextmanager
def per_row_sampling(generators: Sequence[torch.Generator]) -> Iterator[None]:
    """Within this block, in this thread, row k of every 2-D ``torch.multinomial`` draws from ``generators[k]``.

    transformers samples with ``torch.multinomial(probs, 1)`` (looked up on the
    torch module at call time), so one wrapper installed once covers the
    talker and the code predictor; other threads and other calls are untouched.
    """
    with _install_lock:
        if torch.multinomial is not _multinomial:
            torch.multinomial = _multinomial  # type: ignore[assignment]
    previous = getattr(_rows, "generators", None)
    _rows.generators = list(generators)
    try:
        yield
    finally:
        _rows.generators = previous


def _generator(device: str, seed: int) -> torch.Generator:
    kind = str(device).split(":")[0]
    generator = torch.Generator(device=str(device) if kind in ("cuda", "mps") else "cpu")
    generator.manual_seed(seed)
    return generator


@contextlib.contextmanager
def _per_item_codes(model: Any, frames: Sequence[int]) -> Iterator[None]:
    """Cuts each item's codes to its own cap and decodes every item on its own (see the module notes)."""
    inner = model.model
    tokenizer = inner.speech_tokenizer
    had_generate = "generate" in vars(inner)
    had_decode = "decode" in vars(tokenizer)
    inner_generate = inner.generate
    stock_decode = tokenizer.decode

    def generate(*args, **kwargs):
        codes, hidden = inner_generate(*args, **kwargs)
        return [c[: max(0, n)] for c, n in zip(codes, frames, strict=True)], hidden

    def decode(encoded):
        if isinstance(encoded, list) and len(encoded) > 1:
            wavs: list = []
            rate = TARGET_SAMPLE_RATE
            for one in encoded:
                out, rate = stock_decode([one])
                wavs.extend(out)
            return wavs, rate
        return stock_decode(encoded)

    inner.generate = generate
    tokenizer.decode = decode
    try:
        yield
    finally:
        _restore(inner, "generate", had_generate, inner_generate)
        _restore(tokenizer, "decode", had_decode, stock_decode)


def _restore(obj: Any, name: str, had: bool, value: Callable) -> None:
    if had:
        setattr(obj, name, value)
    else:
        with contextlib.suppress(AttributeError):
            delattr(obj, name)


# --- pre-packed Linears (CPU batches) ---------------------------------------------

_packing = threading.local()


class PackedLinear(torch.nn.Module):
    """A Linear that, inside :func:`packed_rows` in this thread and for 2+ rows, uses oneDNN on
    weights packed once; otherwise it is the original Linear, unchanged."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.linear = linear
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if getattr(_packing, "on", False) and x.dtype == torch.float32 and x.numel() >= 2 * x.shape[-1]:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.linear.bias, "none", [], "")
        return self.linear(x)


@contextlib.contextmanager
def packed_rows() -> Iterator[None]:
    previous = getattr(_packing, "on", False)
    _packing.on = True
    try:
        yield
    finally:
        _packing.on = previous


def prepack_linears(model: Any) -> bool:
    """Wraps the talker's (and its code predictor's) fp32 Linears once; False where it cannot."""
    talker = getattr(getattr(model, "model", None), "talker", None)
    if not isinstance(talker, torch.nn.Module):
        return False
    if getattr(talker, "_studio_prepacked", None) is not None:
        return bool(talker._studio_prepacked)
    linears = [m for m in talker.modules() if type(m) is torch.nn.Linear and m.weight.dtype == torch.float32]
    needed = sum(m.weight.numel() * m.weight.element_size() for m in linears)
    free = _free_bytes("cpu", "cpu")
    usable = (
        bool(linears)
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and (free is None or free > 2 * needed)
    )
    if usable:
        try:
            _wrap_linears(talker)
        except RuntimeError as exc:  # a torch build without the oneDNN ops: batches run unpacked
            log.warning("pre-packing the Linears failed, batches run without it: %s", exc)
            usable = False
    object.__setattr__(talker, "_studio_prepacked", usable)  # a plain attribute, not a submodule
    log.info("event=prepack linears=%d bytes=%d used=%s", len(linears), needed, usable)
    return usable


def _wrap_linears(module: torch.nn.Module) -> None:
    for name, child in list(module.named_children()):
        if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32:
            setattr(module, name, PackedLinear(child))
        elif not isinstance(child, PackedLinear):
            _wrap_linears(child)


# --- helpers ----------------------------------------------------------------------


@contextlib.contextmanager
def _errors(loaded: LoadedModel, label: str, text: str) -> Iterator[None]:
    """The engine's failures as the studio's errors, naming the chunk(s)."""
    try:
        yield
    except StudioError:
        raise
    except torch.OutOfMemoryError:
        raise GenerationError(
            f"Out of memory on {loaded.device} while generating {label}. "
            "Unload other models, use the 0.6B size, or shorten the chunk size."
        ) from None
    except Exception as exc:
        log.exception("generation failed")
        raise GenerationError(f'Generation failed on {label} ("{_preview(text)}"): {_first_line(exc)}') from exc


def _checked(samples: np.ndarray, label: str, text: str) -> Audio:
    if samples.size == 0 or not np.all(np.isfinite(samples)):
        raise GenerationError(
            f'The model returned unusable audio for {label} ("{_preview(text)}"). Try again with another seed.'
        )
    return Audio(samples.astype(np.float32, copy=False), TARGET_SAMPLE_RATE)


def _resampled(wav: Any, sr: int) -> np.ndarray:
    if sr != TARGET_SAMPLE_RATE:
        import librosa

        return librosa.resample(np.asarray(wav, dtype=np.float32), orig_sr=sr, target_sr=TARGET_SAMPLE_RATE)
    return np.asarray(wav, dtype=np.float32)


def _kv_bytes_per_frame(model: Any) -> int:
    """Bytes of talker KV cache one item adds per frame (0 when the config cannot tell)."""
    try:
        cfg = model.model.config.talker_config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        element = next(model.model.talker.parameters()).element_size()
        return int(2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * element)
    except (AttributeError, StopIteration, TypeError):
        return 0


def _free_bytes(kind: str, device: str) -> int | None:
    try:
        if kind == "cuda":
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        if kind == "cpu":
            import psutil

            return int(psutil.virtual_memory().available)
    except Exception:  # no figure: rely on the ceiling
        return None
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _preview(chunk: str, limit: int = 60) -> str:
    return chunk if len(chunk) <= limit else chunk[: limit - 1] + "…"
