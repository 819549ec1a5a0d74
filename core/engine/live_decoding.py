"""The studio's faster generation path: the stock qwen_tts call, audio long before the end.

``qwen_tts`` 0.1.1 generates every codec frame of a chunk and only then decodes
them all to audio, so nothing can play until the whole chunk is done. This
module runs that very same stock call (``Qwen3TTSModel.generate_*`` through the
studio's ``SynthesisService.generate_chunk``) in a worker thread and watches it:

* a forward hook on the talker receives each frame's 16 codes the moment they
  exist (the talker's step ``t`` outputs the codes of frame ``t - 1``);
* between two talker steps, in the generating thread, that hook decodes them
  in growing windows (2, 8, 32, 64, 64... frames, each with 25 frames of left
  context -- what the package's own chunked decode uses) and hands them to the
  calling thread, which yields them as :class:`LiveAudio` for live playback;
* the worker's stock call then decodes the whole code sequence exactly as it
  always does, and that result is the take. The last live piece is cut from it.

What the model says is unchanged by construction: codes come from the stock
generate loop with the stock seed, and the final audio from the stock decode.
Windowed decoding is NOT bit-exact -- even decoding a prefix alone differs
from the full decode by ~1e-5 because kernels reduce in shape-dependent order
-- which is why live pieces serve playback only and never end up in the take.

Threads: the worker runs with the caller's torch thread count, as the stock
call would, and decodes the live windows itself between two steps, so nothing
runs beside generation. An earlier design decoded in the calling thread while
generation ran on ``threads - 1``: on this project's 2 cores that left the
generation loop on one thread and made a live take 1.30x the stock call
(issue 26; docs/PERFORMANCE.md). Serial decoding costs the windows' own
decode time (the windows grow 4x so there are few of them) and nothing else.
``FastOptions(enabled=False)`` is the off switch: the stock call, unchanged.

Opt-in and lossy: :func:`quantize_int8` swaps the talker's and code predictor's
linear layers for int8 dynamic-quantised ones (about 4x less weight traffic per
frame on the CPU). It changes the codes; it is never applied by default.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.audio.clip import TARGET_SAMPLE_RATE, Audio

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = 1920  # 12.5 Hz codec at 24 kHz
_DONE = object()


@dataclass(frozen=True)
class FastOptions:
    enabled: bool = True  # False: the plain stock call in the calling thread
    live_first_frames: int = 2  # the first live piece after 2 frames (0.16 s of audio)
    live_growth: int = 4  # each window this many times the last: 2, 8, 32, 64, 64... frames
    live_max_frames: int = 64  # windows grow up to this many frames
    live_left_context: int = 25  # frames of context before each window (as qwen_tts' own chunked decode)
    # Threads of the generation loop (and of its live decoding, which runs between its steps);
    # None: the caller's torch thread count, as the stock call would have.
    generation_threads: int | None = None
    live_devices: tuple[str, ...] = ("cpu", "cuda")  # MPS is not used from two threads at once

    def generation_thread_count(self, caller_threads: int) -> int:
        if self.generation_threads is not None:
            return max(1, int(self.generation_threads))
        return max(1, caller_threads)


@dataclass(frozen=True)
class LiveAudio:
    """A piece of a chunk for live playback, yielded while the chunk still generates.

    The pieces of a chunk follow each other without gaps. All but the last are
    decoded from a window of codes (within ~1e-5 of the take, see the module
    notes); the last one (``exact``) is cut from the chunk's final audio.
    """

    index: int
    total: int
    text: str
    audio: Audio
    offset_s: float  # where the piece starts within its chunk
    exact: bool


@dataclass
class FastStats:
    """What the last :meth:`FastPath.run` did (for the bench and the logs)."""

    frames: int = 0
    live_pieces: int = 0
    first_live_s: float | None = None  # from the start of run() to the first live piece
    live_decode_s: float = 0.0
    generation_threads: int | None = None
    codes: torch.Tensor | None = None  # [frames, 16], the codes the talker produced
    mode: str = "stock"  # stock | fast


class _Cancelled(BaseException):
    """Raised inside the worker's generate loop when the consumer went away."""


class FastPath:
    def __init__(self, options: FastOptions | None = None):
        self.options = options or FastOptions()
        self.last = FastStats()

    def run(
        self,
        generate_chunk: Callable[..., Audio],
        loaded: Any,
        chunk: str,
        index: int,
        seed: int,
        sampling: Any,
        generate: Callable,
        total: int = 1,
        *,
        live: bool = False,
    ) -> Generator[LiveAudio | Audio, None, None]:
        """Yields :class:`LiveAudio` pieces (only with ``live``), then the chunk's final Audio.

        ``generate_chunk`` is ``SynthesisService.generate_chunk``; it is called
        with the other arguments exactly as the service would call it.
        """
        args = (loaded, chunk, index, seed, sampling, generate, total)
        model = getattr(loaded, "model", None)
        device = str(getattr(loaded, "device", "cpu")).split(":")[0]
        if not self.options.enabled or not _is_qwen_tts(model):
            self.last = FastStats()
            yield generate_chunk(*args)
            return
        live = live and device in self.options.live_devices
        yield from self._run(generate_chunk, args, model, chunk, index, total, live)

    def _run(self, generate_chunk, args, model, chunk, index, total, live) -> Iterator[LiveAudio | Audio]:
        opts = self.options
        started = time.perf_counter()
        stats = FastStats(mode="fast")
        self.last = stats
        threads = opts.generation_thread_count(torch.get_num_threads())
        stats.generation_threads = threads
        out: queue.Queue = queue.Queue()  # LiveAudio pieces, then _DONE
        cancel = threading.Event()
        outcome: dict[str, Any] = {}
        codes: list[torch.Tensor] = []
        window = Windows(opts, live)

        def worker() -> None:
            try:
                torch.set_num_threads(threads)  # the caller's: as the stock call in a server thread
                with torch.inference_mode():
                    outcome["audio"] = generate_chunk(*args)
            except BaseException as exc:  # handed to the calling thread
                outcome["error"] = exc
            finally:
                out.put(_DONE)

        def on_frame(frame: torch.Tensor, prefix: list) -> None:
            """In the worker, between two talker steps: a live piece once a window is full."""
            codes.append(frame)
            if not window.due(len(codes)):
                return
            t0 = time.perf_counter()
            samples = _decode_window(model, prefix, codes, window.emitted, len(codes), opts.live_left_context)
            stats.live_decode_s += time.perf_counter() - t0
            offset = window.emitted * SAMPLES_PER_FRAME / TARGET_SAMPLE_RATE
            window.advance(len(codes))
            out.put(LiveAudio(index, total, chunk, Audio(samples, TARGET_SAMPLE_RATE), offset, exact=False))

        thread = threading.Thread(target=worker, name="qwen-tts-generate", daemon=True)
        with _instrumented(model, on_frame, cancel):
            try:
                thread.start()
                while (item := out.get()) is not _DONE:
                    stats.live_pieces += 1
                    if stats.first_live_s is None:
                        stats.first_live_s = time.perf_counter() - started
                    yield item
                thread.join()
            finally:
                if thread.is_alive():  # the consumer stopped early: stop generating, then wait
                    cancel.set()
                    thread.join()
        stats.frames = len(codes)
        stats.codes = torch.stack(codes) if codes else None
        if "error" in outcome:
            raise outcome["error"]
        audio: Audio = outcome["audio"]
        if live:
            start = min(window.emitted * SAMPLES_PER_FRAME, len(audio))
            if start < len(audio):
                stats.live_pieces += 1
                if stats.first_live_s is None:
                    stats.first_live_s = time.perf_counter() - started
                yield LiveAudio(
                    index,
                    total,
                    chunk,
                    Audio(audio.samples[start:], audio.sample_rate),
                    start / audio.sample_rate,
                    exact=True,
                )
        yield audio


class Windows:
    """Which frames the next live piece covers: the first after ``live_first_frames``, then
    windows growing by ``live_growth`` up to ``live_max_frames`` (see FastOptions)."""

    def __init__(self, options: FastOptions, live: bool):
        self.live = live
        self.size = max(1, options.live_first_frames)
        self.growth = max(1, options.live_growth)
        self.most = max(1, options.live_max_frames)
        self.emitted = 0  # frames already sent as live pieces

    def due(self, frames: int) -> bool:
        return self.live and frames - self.emitted >= self.size

    def advance(self, frames: int) -> None:
        self.emitted = frames
        self.size = min(self.size * self.growth, self.most)


def _is_qwen_tts(model: Any) -> bool:
    """A loaded qwen_tts model with the parts the fast path hooks (anything else runs plainly)."""
    try:
        inner = model.model
        return isinstance(inner.talker, torch.nn.Module) and isinstance(
            inner.speech_tokenizer.model.decoder, torch.nn.Module
        )
    except AttributeError:
        return False


@contextlib.contextmanager
def _instrumented(
    model: Any, on_frame: Callable[[torch.Tensor, list], None], cancel: threading.Event
) -> Iterator[None]:
    """Hooks on the stock model for one call: each frame's codes to ``on_frame``, stop on cancel."""
    inner = model.model
    talker = inner.talker
    prefix: list[torch.Tensor] = []  # reference codes a clone decodes in front of its own

    def on_talker_step(_module, _args, output) -> None:
        if cancel.is_set():
            raise _Cancelled()
        step_codes = output.hidden_states[1] if isinstance(output.hidden_states, tuple) else None
        if step_codes is not None and step_codes.shape[0] == 1:
            on_frame(step_codes[0].detach().to("cpu", copy=True), prefix)

    original_generate = inner.generate

    def generate(*args, **kwargs):  # only reads the clone prompt's reference codes
        prompt = kwargs.get("voice_clone_prompt")
        try:
            ref = prompt["ref_code"][0] if prompt and prompt.get("icl_mode", [False])[0] else None
        except (KeyError, IndexError, TypeError):
            ref = None
        if ref is not None:
            prefix.append(ref.detach().to("cpu"))
        return original_generate(*args, **kwargs)

    handle = talker.register_forward_hook(on_talker_step)
    inner.generate = generate
    try:
        yield
    finally:
        handle.remove()
        with contextlib.suppress(AttributeError):
            del inner.generate  # the class's own method again


def _decode_window(
    model: Any, prefix: list, codes: list[torch.Tensor], start: int, end: int, left_context: int
) -> np.ndarray:
    """Audio of frames [start, end) decoded with up to ``left_context`` frames before them."""
    decoder = model.model.speech_tokenizer.model.decoder
    ref = prefix[0] if prefix else None
    ref_len = 0 if ref is None else int(ref.shape[0])
    context = min(left_context, start + ref_len)
    own_from = max(start - context, 0)
    parts = []
    if context > start and ref is not None:  # reach back into the clone reference
        parts.append(ref[ref_len - (context - start) :])
    parts.append(torch.stack(codes[own_from:end]))
    window = torch.cat(parts).clamp(min=0)  # [frames, 16]
    device = next(decoder.parameters()).device
    with torch.inference_mode():
        wav = decoder(window.T.unsqueeze(0).to(device))  # [1, 1, frames * 1920]
    samples = wav[0, 0, context * SAMPLES_PER_FRAME :].to(torch.float32).cpu().numpy()
    return samples


# --- opt-in, lossy ---------------------------------------------------------------


def quantize_int8(model: Any) -> int:
    """Opt-in, lossy: int8 dynamic quantisation of the talker's and code predictor's Linears (CPU).

    Weights become int8 with a per-output-channel scale, activations are
    quantised per call; embeddings, norms, the codec and the speaker encoder
    stay float32. Changes the codes (what the model says) -- never a default.
    Returns the number of layers replaced. Irreversible: reload the model to undo.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.ao.quantization import quantize_dynamic

    talker = model.model.talker
    before = sum(isinstance(m, torch.nn.Linear) for m in talker.modules())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(talker, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    after = sum(isinstance(m, torch.nn.Linear) for m in talker.modules())
    return before - after
