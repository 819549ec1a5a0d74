"""Batched generation figures: a long take and variants, the studio's way against the stock way.

* ``long_take``: a take of ``chunks`` chunks made by ``SynthesisService.stream``
  (first chunk alone with live decoding, the rest batched by the engine)
  against the same chunks made one by one with the stock
  ``Qwen3TTSModel.generate_*`` call, seeded as the studio seeds them (seed + index),
  with the same frame cap per chunk. ``ratio`` = studio wall / stock wall (goal <= 0.5).
  ``same_audio`` says whether every chunk came out bit-identical to its stock twin.
* ``variants``: ``count`` takes of one line in one batched call
  (``SynthesisService.variants``) against one take of it; ``ratio`` = wall of
  all / wall of one (goal <= 2.0).

Both run in the calling thread, alternating which goes first per round, and
report medians. Random-weight models never stop on their own, so every chunk
runs to its cap and both sides do the same number of frames.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.context import AppContext
from core.engine.device import seed_everything
from core.engine.interface import BatchItem
from core.engine.synthesis import ChunkAudio
from core.tools.bench.common import BenchError
from core.types import FRAMES_PER_SECOND, CustomVoiceRequest, Mode, Sampling, SynthesisResult

GOAL_LONG_RATIO = 0.5
DEFAULT_FRAMES = 6  # per chunk: 16 chunks x 6 frames is ~8 s of audio
GOAL_VARIANTS_RATIO = 2.0
SENTENCES = (
    "The morning light crept slowly over the hills.",
    "A small boat drifted near the old stone harbour.",
    "Somebody had left the lantern burning all night.",
    "We counted seventeen gulls on the broken pier.",
)


@dataclass
class LongFigures:
    chunks: int
    frames_per_chunk: int
    runs: int
    studio_s: float
    stock_s: float
    batches: str
    same_audio: bool
    variants: int
    one_take_s: float
    variants_s: float
    variants_same_as_alone: bool

    def as_json(self) -> dict[str, Any]:
        long_ratio = self.studio_s / self.stock_s
        var_ratio = self.variants_s / self.one_take_s
        audio_s = self.chunks * self.frames_per_chunk / FRAMES_PER_SECOND
        return {
            "long_take": {
                "chunks": self.chunks,
                "frames_per_chunk": self.frames_per_chunk,
                "runs": self.runs,
                "studio_s": round(self.studio_s, 3),
                "stock_s": round(self.stock_s, 3),
                "studio_rtf": round(self.studio_s / audio_s, 3),
                "stock_rtf": round(self.stock_s / audio_s, 3),
                "batches": self.batches,
                "ratio": round(long_ratio, 3),
                "goal": GOAL_LONG_RATIO,
                "goal_met": long_ratio <= GOAL_LONG_RATIO,
                "same_audio": self.same_audio,
            },
            "variants": {
                "count": self.variants,
                "frames": self.frames_per_chunk,
                "one_take_s": round(self.one_take_s, 3),
                "variants_s": round(self.variants_s, 3),
                "ratio": round(var_ratio, 3),
                "goal": GOAL_VARIANTS_RATIO,
                "goal_met": var_ratio <= GOAL_VARIANTS_RATIO,
                "same_as_alone": self.variants_same_as_alone,
            },
        }


def long_text(chunks: int) -> str:
    """``chunks`` sentences; with ``chunk_chars`` below two sentences each becomes one chunk."""
    return " ".join(SENTENCES[i % len(SENTENCES)] for i in range(chunks))


def measure_long(
    context: AppContext,
    *,
    chunks: int = 16,
    frames: int = 6,
    variants: int = 4,
    runs: int = 1,
    seed: int = 1234,
    progress: Callable[[str], None] | None = None,
) -> LongFigures:
    synthesis = context.synthesis
    if synthesis.chunk_chars >= 2 * min(len(s) for s in SENTENCES) or synthesis.chunk_chars < max(
        len(s) for s in SENTENCES
    ):
        synthesis.chunk_chars = max(len(s) for s in SENTENCES) + 2
    text = long_text(chunks)
    # A cap of N new tokens gives N - 1 frames (see core/engine/torch_engine.py).
    sampling = Sampling(seed=seed, max_new_tokens=frames + 1)
    speaker = _speaker(context)
    request = CustomVoiceRequest(text=text, speaker=speaker, language="english", sampling=sampling)
    checkpoint = synthesis.checkpoint_for(Mode.CUSTOM_VOICE, None)
    loaded = synthesis.engine.load(checkpoint)
    say = progress or (lambda _m: None)

    def studio() -> tuple[float, list[np.ndarray], SynthesisResult]:
        pieces: list[np.ndarray] = []
        start = time.perf_counter()
        result = None
        for item in synthesis.stream(request):
            if isinstance(item, ChunkAudio):
                pieces.append(item.audio.samples)
            elif isinstance(item, SynthesisResult):
                result = item
        assert result is not None
        return time.perf_counter() - start, pieces, result

    def stock() -> tuple[float, list[np.ndarray]]:
        made = []
        start = time.perf_counter()
        for index, chunk in enumerate(result_chunks):
            seed_everything(seed + index)
            wavs, _sr = loaded.model.generate_custom_voice(
                text=chunk, language="english", speaker=speaker, max_new_tokens=frames + 1, **sampling.generate_kwargs()
            )
            made.append(np.asarray(wavs[0], dtype=np.float32))
        return time.perf_counter() - start, made

    say(f"long take: warm-up, {chunks} chunks x {frames} frames")
    warm = synthesis.variants(CustomVoiceRequest(text=SENTENCES[0], speaker=speaker, sampling=sampling), 2)
    del warm
    result_chunks = _chunks(synthesis, text)
    if len(result_chunks) != chunks:
        raise BenchError(f"the long text split into {len(result_chunks)} chunks, not {chunks}")
    studio_times, stock_times, same = [], [], True
    batches = ""
    for round_ in range(runs):
        order = ("studio", "stock") if round_ % 2 == 0 else ("stock", "studio")
        studio_pieces: list[np.ndarray] = []
        stock_pieces: list[np.ndarray] = []
        for which in order:
            say(f"long take round {round_ + 1}/{runs}: {which}")
            if which == "studio":
                wall, studio_pieces, _result = studio()
                studio_times.append(wall)
            else:
                wall, stock_pieces = stock()
                stock_times.append(wall)
        same = same and all(np.array_equal(a, b) for a, b in zip(studio_pieces, stock_pieces, strict=True))
    batches = _batches_of(synthesis, loaded, chunks, frames + 1)

    line = CustomVoiceRequest(text=SENTENCES[0], speaker=speaker, language="english", sampling=sampling)
    one_times, var_times, var_same = [], [], True
    for round_ in range(runs):
        order = ("one", "many") if round_ % 2 == 0 else ("many", "one")
        for which in order:
            say(f"variants round {round_ + 1}/{runs}: {'1 take' if which == 'one' else f'{variants} takes'}")
            start = time.perf_counter()
            if which == "one":
                alone = synthesis.synthesize(line)
                one_times.append(time.perf_counter() - start)
            else:
                takes = synthesis.variants(line, variants)
                var_times.append(time.perf_counter() - start)
        var_same = var_same and np.array_equal(takes[0].audio.samples, alone.audio.samples)
    return LongFigures(
        chunks=chunks,
        frames_per_chunk=frames,
        runs=runs,
        studio_s=statistics.median(studio_times),
        stock_s=statistics.median(stock_times),
        batches=batches,
        same_audio=same,
        variants=variants,
        one_take_s=statistics.median(one_times),
        variants_s=statistics.median(var_times),
        variants_same_as_alone=var_same,
    )


def _chunks(synthesis: Any, text: str) -> list[str]:
    from core import text as textlib

    return textlib.chunk_text(text, max_chars=synthesis.chunk_chars)


def _batches_of(synthesis: Any, loaded: Any, chunks: int, cap: int) -> str:
    """How the studio split the take: the first chunk alone, then the engine's batches."""
    sizes, left = [1], chunks - 1
    while left > 0 and synthesis.batching:
        items = [BatchItem("x", seed=0, max_new_tokens=cap)] * left
        size = max(1, synthesis.engine.batch_size(loaded, items))
        sizes.append(size)
        left -= size
    return "+".join(map(str, sizes))


def _speaker(context: AppContext) -> str:
    loaded = context.synthesis.engine.load(context.synthesis.checkpoint_for(Mode.CUSTOM_VOICE, None))
    supported = [s.lower() for s in loaded.speakers]
    return "ryan" if not supported or "ryan" in supported else supported[0]
