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
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from core import text as textlib
from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.edit import PostProcessing, concat, fade, post_process
from core.engine.catalog import Catalog, Checkpoint
from core.engine.device import seed_everything
from core.engine.live_decoding import (  # the faster path (docs/PERFORMANCE.md)
    FastPath,
    LiveAudio,
)
from core.engine.model_manager import LoadedModel, ModelManager
from core.engine.model_store import ProgressCallback
from core.engine.speakers import find_speaker
from core.errors import GenerationError, InvalidInput, StudioError
from core.types import (
    MAX_SEED,
    ClonePrompt,
    CloneRequest,
    CustomVoiceRequest,
    DesignRequest,
    Mode,
    Request,
    Sampling,
    SynthesisResult,
    check_reference,
    normalize_language,
)

log = logging.getLogger(__name__)

DEMO_WARNING = "Made with a random-weight demo model: this is noise-like test audio, not speech."
ChunkGenerator = Callable[["LoadedModel", str, dict], np.ndarray]


class ChunkFailed(GenerationError):
    """One chunk of a long take failed; the chunks before it are kept so that a
    retry regenerates only the failed one (and those after it)."""

    def __init__(
        self, message: str, *, job: _Job, seed: int, index: int, text: str, completed: list[Audio], total: int
    ):
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

    mode: Mode
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
        self,
        request: Request,
        progress: ProgressCallback | None = None,
        *,
        client: str | None = None,
        live: bool = False,
    ) -> Iterator[ChunkAudio | LiveAudio | SynthesisResult]:
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
        checkpoint = self.catalog.resolve(Mode.VOICE_DESIGN, request.size, self.preferred_size)

        def generate(loaded: LoadedModel, chunk: str, kwargs: dict) -> np.ndarray:
            wavs, sr = loaded.model.generate_voice_design(text=chunk, language=language, instruct=description, **kwargs)
            return _single(wavs, sr)

        return _Job(Mode.VOICE_DESIGN, checkpoint, text, sampling, generate, [])

    def _custom_voice_job(self, request: CustomVoiceRequest) -> _Job:
        text = textlib.validate_text(request.text, max_chars=self.max_text_chars)
        language = normalize_language(request.language)
        speaker = find_speaker(request.speaker)
        sampling = request.sampling.validated()
        checkpoint = self.catalog.resolve(Mode.CUSTOM_VOICE, request.size, self.preferred_size)
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
                    f"The loaded model has no speaker '{speaker.name}'. It offers: {', '.join(sorted(supported))}."
                )
            wavs, sr = loaded.model.generate_custom_voice(
                text=chunk, language=language, speaker=speaker.id, instruct=instruct, **kwargs
            )
            return _single(wavs, sr)

        return _Job(Mode.CUSTOM_VOICE, checkpoint, text, sampling, generate, warnings)

    def _clone_job(self, request: CloneRequest) -> _Job:
        text = textlib.validate_text(request.text, max_chars=self.max_text_chars)
        language = normalize_language(request.language)
        sampling = request.sampling.validated()
        checkpoint = self.catalog.resolve(Mode.BASE, request.size, self.preferred_size)
        warnings: list[str] = []
        prompt = request.prompt
        if prompt is not None and prompt.checkpoint_key != checkpoint.key:
            raise InvalidInput(
                f"This voice prompt was made with {prompt.checkpoint_key}, not {checkpoint.key}; "
                "rebuild it for the chosen model size."
            )
        if prompt is None and request.reference is None:
            raise InvalidInput("Add a reference clip (upload or record one) or pick a voice from the library.")
        if prompt is None:
            check_reference(request.reference)
        x_vector_only = request.x_vector_only or not (request.reference_text or "").strip()
        if prompt is None and x_vector_only and not request.x_vector_only:
            warnings.append(
                "No reference transcript: used x-vector-only mode, which keeps the timbre but "
                "less of the speaking style. Add the transcript for a closer clone."
            )
        job = _Job(Mode.BASE, checkpoint, text, sampling, None, warnings)  # type: ignore[arg-type]

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
        checkpoint = self.catalog.resolve(Mode.BASE, size, self.preferred_size)
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
        check_reference(reference)
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
        self, failed: ChunkFailed, progress: ProgressCallback | None = None, *, client: str | None = None
    ) -> Iterator[ChunkAudio | LiveAudio | SynthesisResult]:
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
                    with contextlib.closing(
                        self.fast.run(
                            self.generate_chunk,
                            loaded,
                            chunk,
                            index,
                            seed,
                            job.sampling,
                            job.generate,
                            len(chunks),
                            live=live,
                        )
                    ) as run:
                        for item in run:  # closing(): a consumer that stops early stops the worker too
                            if isinstance(item, LiveAudio):
                                if first_audio_s is None:
                                    first_audio_s = time.perf_counter() - started
                                yield item
                            else:
                                piece = item
                except GenerationError as exc:
                    raise ChunkFailed(
                        str(exc), job=job, seed=seed, index=index, text=chunk, completed=list(pieces), total=len(chunks)
                    ) from exc
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
            job.mode,
            job.checkpoint.key,
            len(job.text),
            len(chunks),
            audio.duration,
            total_s,
            timings["rtf"],
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
                f'Generation failed on chunk {index + 1} of {total} ("{_preview(chunk)}"): {_first_line(exc)}'
            ) from exc
        if samples.size == 0 or not np.all(np.isfinite(samples)):
            raise GenerationError(
                f'The model returned unusable audio for chunk {index + 1} of {total} ("{_preview(chunk)}"). '
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
    faded = [
        fade(p, in_s=edge_s if i else 0.0, out_s=edge_s if i < len(pieces) - 1 else 0.0) for i, p in enumerate(pieces)
    ]
    return concat(faded, pause_s=pause_s)


def _single(wavs: Sequence[np.ndarray], sr: int) -> np.ndarray:
    if sr != TARGET_SAMPLE_RATE:
        import librosa

        return librosa.resample(np.asarray(wavs[0], dtype=np.float32), orig_sr=sr, target_sr=TARGET_SAMPLE_RATE)
    return np.asarray(wavs[0], dtype=np.float32)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _preview(chunk: str, limit: int = 60) -> str:
    return chunk if len(chunk) <= limit else chunk[: limit - 1] + "…"
