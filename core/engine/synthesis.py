"""The synthesis service: typed requests in, audio results out.

Validation happens *before* a model is loaded, so a typo in a speaker name
costs milliseconds, not a multi-gigabyte load. Long text is split into
sentence-aware chunks; each chunk gets its own seed (seed + index) and its
own frame cap derived from its text, so one runaway chunk cannot append
minutes of noise and any single chunk can be regenerated on its own.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np
import torch

from core import text as textlib
from core.audio import TARGET_SAMPLE_RATE, Audio, PostProcessing, concat, fade, post_process
from core.engine.catalog import Catalog, Checkpoint
from core.engine.device import seed_everything
from core.errors import GenerationError, InvalidInput, StudioError
from core.engine.live_decoding import FastPath, LiveAudio  # the faster path (docs/PERFORMANCE.md)
from core.engine.model_manager import LoadedModel, ModelManager
from core.engine.model_store import ProgressCallback
from core.engine.speakers import find_speaker

log = logging.getLogger(__name__)

LANGUAGES = (
    "auto", "chinese", "english", "japanese", "korean", "german",
    "french", "russian", "portuguese", "spanish", "italian",
)
MAX_SEED = 2**32 - 1
# A clone reference, as the encoder gets it: below half a second there is no
# voice to hear (and a few samples crash the encoder); above a minute every
# encode takes ages for no gain. The voice library keeps the same limits, and
# refuses pure silence too.
MIN_REFERENCE_SECONDS = 0.5
MAX_REFERENCE_SECONDS = 60.0
DEMO_WARNING = "Made with a random-weight demo model: this is noise-like test audio, not speech."


@dataclass(frozen=True)
class Sampling:
    """Sampling options; None means the checkpoint's own default."""

    seed: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    # An upper bound on codec frames per chunk; the engine also derives one from the text.
    max_new_tokens: int | None = None

    def validated(self) -> "Sampling":
        def check(name: str, value: Any, low: float, high: float, hint: str) -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInput(f"{name} must be a number ({hint}).")
            if not low <= value <= high:
                raise InvalidInput(f"{name} is {value}; it must be {hint}.")

        check("Seed", self.seed, 0, MAX_SEED, f"a whole number from 0 to {MAX_SEED}")
        check("Temperature", self.temperature, 0.05, 2.0, "between 0.05 and 2.0")
        check("Top-k", self.top_k, 1, 1000, "between 1 and 1000")
        check("Top-p", self.top_p, 0.01, 1.0, "between 0.01 and 1.0")
        check("Repetition penalty", self.repetition_penalty, 1.0, 2.0, "between 1.0 and 2.0")
        check("Max length", self.max_new_tokens, 1, 4096, "between 1 and 4096 frames (12.5 per second)")
        for name, value in (("Seed", self.seed), ("Top-k", self.top_k), ("Max length", self.max_new_tokens)):
            if value is not None and int(value) != value:
                raise InvalidInput(f"{name} must be a whole number.")
        return self

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.temperature is not None:
            kwargs["temperature"] = float(self.temperature)
            kwargs["subtalker_temperature"] = float(self.temperature)
        if self.top_k is not None:
            kwargs["top_k"] = int(self.top_k)
        if self.top_p is not None:
            kwargs["top_p"] = float(self.top_p)
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = float(self.repetition_penalty)
        return kwargs


@dataclass(frozen=True)
class DesignRequest:
    text: str
    description: str
    language: str = "auto"
    size: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    post: PostProcessing = field(default_factory=PostProcessing)


@dataclass(frozen=True)
class CustomVoiceRequest:
    text: str
    speaker: str
    language: str = "auto"
    instruct: str | None = None
    size: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    post: PostProcessing = field(default_factory=PostProcessing)


@dataclass(frozen=True)
class ClonePrompt:
    """A reusable encoding of a reference voice for one Base checkpoint.

    ``ref_code`` (speech-tokenizer codes) is the same for every Base size,
    but ``speaker_embedding`` comes from the checkpoint's own speaker encoder,
    so a prompt is only valid for the checkpoint it was made with.
    """

    checkpoint_key: str
    speaker_embedding: torch.Tensor
    ref_code: torch.Tensor | None
    ref_text: str | None
    x_vector_only: bool

    def to_qwen(self) -> list[Any]:
        from qwen_tts.inference.qwen3_tts_model import VoiceClonePromptItem

        return [
            VoiceClonePromptItem(
                ref_code=self.ref_code,
                ref_spk_embedding=self.speaker_embedding,
                x_vector_only_mode=self.x_vector_only,
                icl_mode=not self.x_vector_only,
                ref_text=self.ref_text,
            )
        ]


@dataclass(frozen=True)
class CloneRequest:
    text: str
    language: str = "auto"
    reference: Audio | None = None
    reference_text: str | None = None
    x_vector_only: bool = False
    prompt: ClonePrompt | None = None
    size: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    post: PostProcessing = field(default_factory=PostProcessing)


@dataclass
class SynthesisResult:
    audio: Audio
    mode: str
    model: str
    seed: int
    demo: bool
    text: str
    chunks: list[str]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def duration(self) -> float:
        return self.audio.duration

    def info(self) -> dict[str, Any]:
        """The JSON-friendly summary returned to the UI and scripts."""
        return {
            "mode": self.mode,
            "model": self.model,
            "demo": self.demo,
            "seed": self.seed,
            "duration_s": round(self.duration, 3),
            "sample_rate": self.sample_rate,
            "chunks": len(self.chunks),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
        }


def normalize_language(language: str | None) -> str:
    value = (language or "auto").strip().lower()
    if value not in LANGUAGES:
        raise InvalidInput(
            f"Language '{language}' is not supported. Choose one of: "
            + ", ".join(lang.capitalize() for lang in LANGUAGES) + "."
        )
    return value


Request = Union[DesignRequest, CustomVoiceRequest, CloneRequest]
ChunkGenerator = Callable[["LoadedModel", str, dict], np.ndarray]


class ChunkFailed(GenerationError):
    """One chunk of a long take failed; the chunks before it are kept so that a
    retry regenerates only the failed one (and those after it)."""

    def __init__(self, message: str, *, job: "_Job", seed: int, index: int, text: str,
                 completed: list[Audio], total: int):
        super().__init__(message)
        self.job = job
        self.seed = seed
        self.index = index
        self.text = text
        self.completed = completed
        self.total = total


@dataclass(frozen=True)
class ChunkAudio:
    """One generated chunk, yielded while the rest of a long take is still generating."""

    index: int
    total: int
    text: str
    audio: Audio


@dataclass
class _Job:
    """A validated request, ready to run: what to generate and how."""

    mode: str
    checkpoint: Checkpoint
    text: str
    sampling: Sampling
    generate: ChunkGenerator
    warnings: list[str]
    post: PostProcessing = field(default_factory=PostProcessing)
    extra_timings: dict[str, float] = field(default_factory=dict)


class SynthesisService:
    def __init__(
        self,
        manager: ModelManager,
        *,
        max_text_chars: int = 50_000,
        chunk_chars: int = 300,
        preferred_size: str = "1.7B",
        pause_s: float = 0.3,
    ):
        self.manager = manager
        self.catalog: Catalog = manager.catalog
        self.max_text_chars = max_text_chars
        self.chunk_chars = chunk_chars
        self.preferred_size = preferred_size
        self.pause_s = pause_s
        # One generation at a time per device: two models generating at once
        # would double peak memory and each run slower anyway.
        self._device_lock = threading.Lock()
        # Faster path (core/engine/live_decoding.py): runs the same stock call, so the codes and the
        # take are the stock ones; with stream(live=True) it also yields LiveAudio pieces
        # while a chunk is still generating. FastPath(FastOptions(enabled=False)) turns it off.
        self.fast = FastPath()

    # --- public API ----------------------------------------------------------

    def design(self, request: DesignRequest, progress: ProgressCallback | None = None) -> SynthesisResult:
        return self.synthesize(request, progress)

    def custom_voice(self, request: CustomVoiceRequest, progress: ProgressCallback | None = None) -> SynthesisResult:
        return self.synthesize(request, progress)

    def clone(self, request: CloneRequest, progress: ProgressCallback | None = None) -> SynthesisResult:
        return self.synthesize(request, progress)

    def synthesize(
        self, request: Request, progress: ProgressCallback | None = None, *, client: str | None = None
    ) -> SynthesisResult:
        """The whole take at once."""
        for item in self.stream(request, progress, client=client):
            if isinstance(item, SynthesisResult):
                return item
        raise AssertionError("stream() always ends with a result")  # pragma: no cover

    def stream(
        self, request: Request, progress: ProgressCallback | None = None, *, client: str | None = None,
        live: bool = False,
    ) -> Iterator[ChunkAudio | SynthesisResult]:
        """Yields each chunk's audio as soon as it exists, then the joined result.

        Validation happens here, before the first yield's model load, so bad
        input fails fast; consumers may stop early (the device lock is released).
        With ``live``, :class:`~core.engine.live_decoding.LiveAudio` pieces of each chunk
        come first, while it generates (a player plays those and skips the
        chunk's ChunkAudio, which follows with the exact chunk audio as before).
        """
        job = self._prepare(request)
        return self._execute(job, progress, client=client, live=live)

    def _prepare(self, request: Request) -> _Job:
        if isinstance(request, DesignRequest):
            job = self._design_job(request)
        elif isinstance(request, CustomVoiceRequest):
            job = self._custom_voice_job(request)
        elif isinstance(request, CloneRequest):
            job = self._clone_job(request)
        else:
            raise TypeError(f"not a synthesis request: {type(request).__name__}")
        job.post = request.post.validated()
        return job

    def _design_job(self, request: DesignRequest) -> _Job:
        text = textlib.validate_text(request.text, max_chars=self.max_text_chars)
        description = (request.description or "").strip()
        if not description:
            raise InvalidInput(
                "Describe the voice you want, e.g. 'A warm, low male voice, speaking slowly and calmly.'"
            )
        if len(description) > 2000:
            raise InvalidInput("The voice description is over 2,000 characters; keep it to a few sentences.")
        language = normalize_language(request.language)
        sampling = request.sampling.validated()
        checkpoint = self.catalog.resolve("voice_design", request.size, self.preferred_size)

        def generate(loaded: LoadedModel, chunk: str, kwargs: dict) -> np.ndarray:
            wavs, sr = loaded.model.generate_voice_design(
                text=chunk, language=language, instruct=description, **kwargs
            )
            return _single(wavs, sr)

        return _Job("voice_design", checkpoint, text, sampling, generate, [])

    def _custom_voice_job(self, request: CustomVoiceRequest) -> _Job:
        text = textlib.validate_text(request.text, max_chars=self.max_text_chars)
        language = normalize_language(request.language)
        speaker = find_speaker(request.speaker)
        sampling = request.sampling.validated()
        checkpoint = self.catalog.resolve("custom_voice", request.size, self.preferred_size)
        instruct = (request.instruct or "").strip() or None
        warnings: list[str] = []
        if instruct and not checkpoint.supports_instruct:
            warnings.append(
                f"The {checkpoint.size} CustomVoice model ignores style instructions; "
                "the instruction was not applied. Choose 1.7B to use it."
            )
            instruct = None
        if instruct and len(instruct) > 1000:
            raise InvalidInput("The style instruction is over 1,000 characters; keep it short.")

        def generate(loaded: LoadedModel, chunk: str, kwargs: dict) -> np.ndarray:
            supported = {s.lower() for s in loaded.speakers}
            if supported and speaker.id not in supported:
                raise InvalidInput(
                    f"The loaded model has no speaker '{speaker.name}'. "
                    f"It offers: {', '.join(sorted(supported))}."
                )
            wavs, sr = loaded.model.generate_custom_voice(
                text=chunk, language=language, speaker=speaker.id, instruct=instruct, **kwargs
            )
            return _single(wavs, sr)

        return _Job("custom_voice", checkpoint, text, sampling, generate, warnings)

    def _clone_job(self, request: CloneRequest) -> _Job:
        text = textlib.validate_text(request.text, max_chars=self.max_text_chars)
        language = normalize_language(request.language)
        sampling = request.sampling.validated()
        checkpoint = self.catalog.resolve("base", request.size, self.preferred_size)
        warnings: list[str] = []
        prompt = request.prompt
        if prompt is not None and prompt.checkpoint_key != checkpoint.key:
            raise InvalidInput(
                f"This voice prompt was made with {prompt.checkpoint_key}, not {checkpoint.key}; "
                "rebuild it for the chosen model size."
            )
        if prompt is None and request.reference is None:
            raise InvalidInput(
                "Add a reference clip (upload or record one) or pick a voice from the library."
            )
        if prompt is None:
            _check_reference(request.reference)
        x_vector_only = request.x_vector_only or not (request.reference_text or "").strip()
        if prompt is None and x_vector_only and not request.x_vector_only:
            warnings.append(
                "No reference transcript: used x-vector-only mode, which keeps the timbre but "
                "less of the speaking style. Add the transcript for a closer clone."
            )
        job = _Job("base", checkpoint, text, sampling, None, warnings)  # type: ignore[arg-type]

        def generate(loaded: LoadedModel, chunk: str, kwargs: dict) -> np.ndarray:
            nonlocal prompt
            if prompt is None:
                start = time.perf_counter()
                prompt = self._encode_prompt(loaded, request.reference, request.reference_text, x_vector_only)
                job.extra_timings["prompt_s"] = time.perf_counter() - start
            wavs, sr = loaded.model.generate_voice_clone(
                text=chunk, language=language, voice_clone_prompt=prompt.to_qwen(), **kwargs
            )
            return _single(wavs, sr)

        job.generate = generate
        return job

    def create_clone_prompt(
        self,
        reference: Audio,
        reference_text: str | None,
        *,
        x_vector_only: bool = False,
        size: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ClonePrompt:
        """Encodes a reference once so later generations can skip the encoder."""
        checkpoint = self.catalog.resolve("base", size, self.preferred_size)
        x_vector_only = x_vector_only or not (reference_text or "").strip()
        with self._device_lock:
            loaded = self.manager.get(checkpoint, progress)
            return self._encode_prompt(loaded, reference, reference_text, x_vector_only)

    def checkpoint_for(self, mode: str, size: str | None) -> Checkpoint:
        return self.catalog.resolve(mode, size, self.preferred_size)

    # --- internals ---------------------------------------------------------

    def _encode_prompt(
        self, loaded: LoadedModel, reference: Audio | None, reference_text: str | None, x_vector_only: bool
    ) -> ClonePrompt:
        if reference is None:
            raise InvalidInput("Add a reference clip (upload or record one) or pick a voice from the library.")
        if reference.sample_rate != TARGET_SAMPLE_RATE:
            raise InvalidInput("The reference must be resampled to 24 kHz before cloning.")
        _check_reference(reference)
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

    def resume(
        self, failed: "ChunkFailed", progress: ProgressCallback | None = None, *, client: str | None = None
    ) -> Iterator[ChunkAudio | SynthesisResult]:
        """Continues a take whose chunk failed: chunks already made are kept,
        and generation restarts at the failed chunk with the same seed."""
        return self._execute(failed.job, progress, seed=failed.seed, done=list(failed.completed), client=client)

    def _execute(
        self,
        job: _Job,
        progress: ProgressCallback | None,
        *,
        seed: int | None = None,
        done: list[Audio] | None = None,
        client: str | None = None,
        live: bool = False,
    ) -> Iterator[ChunkAudio | LiveAudio | SynthesisResult]:
        chunks = textlib.chunk_text(job.text, max_chars=self.chunk_chars)
        if seed is None:
            seed = job.sampling.seed if job.sampling.seed is not None else secrets.randbelow(2**31)
        started = time.perf_counter()
        pieces: list[Audio] = list(done or [])
        with self._device_lock:
            loaded = self.manager.get(job.checkpoint, progress)
            load_s = time.perf_counter() - started
            gen_start = time.perf_counter()
            first_audio_s = None
            for index in range(len(pieces), len(chunks)):
                chunk = chunks[index]
                if progress:
                    progress(index / len(chunks), f"Generating chunk {index + 1} of {len(chunks)}")
                try:
                    # The fast path runs generate_chunk itself (same call, same codes) and
                    # yields live pieces first when asked to; its last item is the chunk.
                    with contextlib.closing(self.fast.run(self.generate_chunk, loaded, chunk, index, seed,
                                                          job.sampling, job.generate, len(chunks), live=live)) as run:
                        for item in run:  # closing(): a consumer that stops early stops the worker too
                            if isinstance(item, LiveAudio):
                                if first_audio_s is None:
                                    first_audio_s = time.perf_counter() - started
                                yield item
                            else:
                                piece = item
                except GenerationError as exc:
                    raise ChunkFailed(str(exc), job=job, seed=seed, index=index, text=chunk,
                                      completed=list(pieces), total=len(chunks)) from exc
                pieces.append(piece)
                if first_audio_s is None:
                    first_audio_s = time.perf_counter() - started
                yield ChunkAudio(index=index, total=len(chunks), text=chunk, audio=piece)
            generate_s = time.perf_counter() - gen_start
        audio = post_process(join_chunks(pieces, self.pause_s), job.post)
        warnings = [DEMO_WARNING, *job.warnings] if job.checkpoint.demo else list(job.warnings)
        total_s = time.perf_counter() - started
        timings = {
            "load_s": load_s,
            "generate_s": generate_s,
            "first_audio_s": first_audio_s or total_s,
            "total_s": total_s,
            "rtf": generate_s / max(audio.duration, 1e-6),
            **job.extra_timings,
        }
        log.info(
            # Counts only: text and audio never reach the log (see --log-level debug for more).
            "event=generation mode=%s model=%s chars=%d chunks=%d audio_s=%.2f wall_s=%.2f rtf=%.2f client=%s",
            job.mode, job.checkpoint.key, len(job.text), len(chunks), audio.duration, total_s, timings["rtf"],
            client or "local",
        )
        if progress:
            progress(1.0, f"Done: {audio.duration:.1f} s of audio")
        yield SynthesisResult(
            audio=audio,
            mode=job.mode,
            model=job.checkpoint.key,
            seed=seed,
            demo=job.checkpoint.demo,
            text=job.text,
            chunks=chunks,
            timings=timings,
            warnings=warnings,
        )

    def generate_chunk(
        self,
        loaded: LoadedModel,
        chunk: str,
        index: int,
        seed: int,
        sampling: Sampling,
        generate: Callable[[LoadedModel, str, dict], np.ndarray],
        total: int = 1,
    ) -> Audio:
        cap = textlib.estimate_max_new_tokens(chunk)
        if sampling.max_new_tokens is not None:
            cap = min(cap, int(sampling.max_new_tokens))
        kwargs = {**sampling.generate_kwargs(), "max_new_tokens": cap}
        # Per-chunk seeds make every chunk reproducible on its own.
        seed_everything((seed + index) % (MAX_SEED + 1))
        try:
            samples = generate(loaded, chunk, kwargs)
        except StudioError:
            raise
        except torch.OutOfMemoryError:
            raise GenerationError(
                f"Out of memory on {loaded.device} while generating chunk {index + 1} of {total}. "
                "Unload other models, use the 0.6B size, or shorten the chunk size."
            ) from None
        except Exception as exc:
            log.exception("generation failed")
            raise GenerationError(
                f"Generation failed on chunk {index + 1} of {total} (\"{_preview(chunk)}\"): {_first_line(exc)}"
            ) from exc
        if samples.size == 0 or not np.all(np.isfinite(samples)):
            raise GenerationError(
                f"The model returned unusable audio for chunk {index + 1} of {total} (\"{_preview(chunk)}\"). "
                "Try again with another seed."
            )
        return Audio(samples.astype(np.float32, copy=False), TARGET_SAMPLE_RATE)


def join_chunks(pieces: Sequence[Audio], pause_s: float, edge_s: float = 0.01) -> Audio:
    """Chunks joined by a pause with short fades at the cut edges (no clicks),
    or, with no pause, by a short crossfade."""
    if len(pieces) == 1:
        return pieces[0]
    if pause_s <= 0:
        return concat(pieces, crossfade_s=edge_s)
    faded = [fade(p, in_s=edge_s if i else 0.0, out_s=edge_s if i < len(pieces) - 1 else 0.0)
             for i, p in enumerate(pieces)]
    return concat(faded, pause_s=pause_s)


def _single(wavs: Sequence[np.ndarray], sr: int) -> np.ndarray:
    if sr != TARGET_SAMPLE_RATE:
        import librosa

        return librosa.resample(np.asarray(wavs[0], dtype=np.float32), orig_sr=sr, target_sr=TARGET_SAMPLE_RATE)
    return np.asarray(wavs[0], dtype=np.float32)


def _check_reference(reference: Audio) -> None:
    seconds = reference.duration
    if seconds < MIN_REFERENCE_SECONDS:
        raise InvalidInput(
            f"The reference is only {seconds:.2f} s long; cloning needs at least "
            f"{MIN_REFERENCE_SECONDS:.1f} s of speech (3-30 s clones best)."
        )
    if seconds > MAX_REFERENCE_SECONDS:
        raise InvalidInput(
            f"The reference is {seconds:.1f} s long; cloning uses at most {MAX_REFERENCE_SECONDS:.0f} s. "
            "Set the start and end (start_s/end_s) to the cleanest 3-30 s."
        )
    if not np.any(reference.samples):
        raise InvalidInput("The reference is completely silent; choose a clip with speech in it.")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _preview(chunk: str, limit: int = 60) -> str:
    return chunk if len(chunk) <= limit else chunk[: limit - 1] + "…"

