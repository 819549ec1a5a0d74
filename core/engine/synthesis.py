"""The synthesis service: typed requests in, audio results out.

Validation happens *before* a model is loaded, so a typo in a speaker name
costs milliseconds, not a multi-gigabyte load. Long text is split into
sentence-aware chunks; each chunk gets its own seed (seed + index) and its
own frame cap derived from its text, so one runaway chunk cannot append
minutes of noise and any single chunk can be regenerated on its own.

Everything that touches a model goes through an engine (core/engine/interface.py;
the in-process qwen-tts one is core/engine/torch_engine.py). A long take's
first chunk goes alone (with live pieces, so first audio stays early); the
rest go through the model together in batches the engine sizes from the
device and its free memory. Each batched chunk keeps its own seed, cap and
decode, so it sounds as it would alone (see torch_engine's notes).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core import text as textlib
from core.audio.assembly import assemble
from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.edit import PostProcessing
from core.audio.speech_check import require_speech
from core.engine import request_batch
from core.engine.cancel import DeviceTurn, check_current
from core.engine.catalog import DEMO_WARNING, Catalog, Checkpoint
from core.engine.interface import BatchItem, Engine
from core.engine.live_decoding import (  # the faster path (docs/PERFORMANCE.md)
    LiveAudio,
)
from core.engine.model_manager import LoadedModel, ModelManager
from core.engine.model_store import ProgressCallback
from core.engine.speakers import find_speaker
from core.engine.torch_engine import TorchEngine
from core.errors import GenerationError, InvalidInput, Stopped, StudioError
from core.events import Events, GenerationFailed, GenerationFinished, GenerationStarted
from core.serving.lifecycle import Lifecycle
from core.text_lexicon import LexiconStore
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
    chunk_seeds,
    normalize_language,
)

log = logging.getLogger(__name__)

MAX_VARIANTS = 8


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


class TakeStopped(Stopped):
    """The user stopped a take (``core/engine/cancel.py``): the chunks made before it are kept,
    so the take can be stored as a partial one and resumed from chunk ``index`` with the same seeds."""

    def __init__(self, *, job: _Job, seed: int, index: int, completed: list[Audio], total: int):
        super().__init__(f"Stopped at chunk {index + 1} of {total}; {index} chunk(s) were finished and are kept.")
        self.job = job
        self.seed = seed
        self.index = index  # the first chunk not made (= the number kept)
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
    warnings: list[str]
    language: str = "auto"
    speaker: str | None = None
    instruct: str | None = None
    prompt: ClonePrompt | None = None
    # Runs once the model is loaded, before the first chunk: checks the loaded
    # model supports the request and encodes a clone's reference (sets ``prompt``).
    ready: Callable[[LoadedModel, _Job], None] | None = None
    post: PostProcessing = field(default_factory=PostProcessing)
    extra_timings: dict[str, float] = field(default_factory=dict)

    def result(
        self,
        audio: Audio,
        *,
        seed: int,
        chunks: list[str],
        timings: dict[str, float],
        warnings: list[str],
        engine: str,
    ) -> SynthesisResult:
        """The take this job made: one place for what every path (stream, variants, batch) records."""
        return SynthesisResult(
            audio=audio,
            mode=self.mode,
            model=self.checkpoint.key,
            seed=seed,
            demo=self.checkpoint.demo,
            text=self.text,
            chunks=chunks,
            timings=timings,
            warnings=warnings,
            engine=engine,
        )

    def item(self, text: str, seed: int, cap: int) -> BatchItem:
        return BatchItem(
            text=text,
            seed=seed % (MAX_SEED + 1),
            max_new_tokens=cap,
            language=self.language,
            speaker=self.speaker,
            instruct=self.instruct,
            prompt=self.prompt,
        )


def mode_of(request: Request) -> str:
    if isinstance(request, CustomVoiceRequest):
        return Mode.CUSTOM_VOICE.value
    return Mode.BASE.value if isinstance(request, CloneRequest) else Mode.VOICE_DESIGN.value


class SynthesisService:
    def __init__(
        self,
        manager: ModelManager,
        *,
        max_text_chars: int = 50_000,
        chunk_chars: int = 300,
        preferred_size: str = "1.7B",
        pause_s: float = 0.3,
        quantize: str = "none",
        events: Events | None = None,
        decode: str = "stock",
    ):
        self.manager = manager
        # Every generation is told to the observers (metrics) and admitted by the lifecycle
        # (the server's, once it runs: refused while shutting down), whatever started it.
        self.events = events or Events()
        self.lifecycle = Lifecycle()
        self.catalog: Catalog = manager.catalog
        self.max_text_chars = max_text_chars
        self.chunk_chars = chunk_chars
        self.preferred_size = preferred_size
        self.pause_s = pause_s
        # One generation at a time per device: two models generating at once would double
        # peak memory and each run slower anyway. The take runner's device lane makes the
        # turns (core/takes/jobs.py); takes made on a remote server never take one (_device_for).
        self.device = DeviceTurn()
        # The engine (core/engine/interface.py); the torch one runs qwen-tts in this process.
        self.engine: Engine = TorchEngine(manager, quantize=quantize, decode=decode)
        # Batching of long takes: False sends every chunk alone (the stock way).
        self.batching = True
        # The pronunciation lexicon (core/text_lexicon.py), applied in _prepare; None: none.
        self.lexicon: LexiconStore | None = None

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
        self.lifecycle.admit()
        mode = mode_of(request)
        # Observers see the caller's context (its client, its HTTP endpoint) even when the take
        # is consumed from another thread.
        caller = contextvars.copy_context()
        caller.run(self.events.emit, GenerationStarted(mode))
        job = self._prepare(request)  # validates: bad input raises here
        return self._observed(self._execute(job, progress, client=client, live=live), mode, caller)

    def _observed(
        self, items: Iterator[ChunkAudio | LiveAudio | SynthesisResult], mode: str, caller: contextvars.Context
    ) -> Iterator[ChunkAudio | LiveAudio | SynthesisResult]:
        """A take's items, counted as work in flight (a shutdown waits for it, or stops it at
        its next chunk or live piece) and told to the observers when it ends."""
        # closing(): stopping early stops the engine too (the take is a generator).
        with self.lifecycle.work(), contextlib.closing(items):  # type: ignore[type-var]
            try:
                for item in items:
                    if isinstance(item, SynthesisResult):
                        finished = GenerationFinished(mode, item.timings.get("generate_s", 0.0), item.duration)
                        caller.run(self.events.emit, finished)
                    yield item
            except GeneratorExit:
                raise
            except BaseException:
                caller.run(self.events.emit, GenerationFailed(mode))
                raise

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
        if self.lexicon is not None:
            # The one place the lexicon applies: every mode, tab, API and the CLI, before chunking.
            job.text, _version = self.lexicon.apply(job.text, job.language, request.lexicon_version)
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
        return _Job(Mode.VOICE_DESIGN, checkpoint, text, sampling, [], language=language, instruct=description)

    def _custom_voice_job(self, request: CustomVoiceRequest) -> _Job:
        text = textlib.validate_text(request.text, max_chars=self.max_text_chars)
        language = normalize_language(request.language)
        speaker = find_speaker(request.speaker, self.catalog.trained_speakers())
        sampling = request.sampling.validated()
        # A voice trained here speaks from its own checkpoint, whatever size was asked.
        checkpoint = self.catalog.speaker_checkpoint(speaker.id) or self.catalog.resolve(
            Mode.CUSTOM_VOICE, request.size, self.preferred_size
        )
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

        def ready(loaded: LoadedModel, _job: _Job) -> None:
            supported = {s.lower() for s in self.engine.speakers(loaded)}
            if supported and speaker.id not in supported:
                raise InvalidInput(
                    f"The loaded model has no speaker '{speaker.name}'. It offers: {', '.join(sorted(supported))}."
                )

        return _Job(
            Mode.CUSTOM_VOICE,
            checkpoint,
            text,
            sampling,
            warnings,
            language=language,
            speaker=speaker.id,
            instruct=instruct,
            ready=ready,
        )

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
            # A raw clip (upload, recording, API) must hold a voice; library voices
            # come as prompts and were checked when saved (design voices skip it).
            require_speech(check_reference(request.reference))
        x_vector_only = request.x_vector_only or not (request.reference_text or "").strip()
        if prompt is None and x_vector_only and not request.x_vector_only:
            warnings.append(
                "No reference transcript: used x-vector-only mode, which keeps the timbre but "
                "less of the speaking style. Add the transcript for a closer clone."
            )

        def ready(loaded: LoadedModel, job: _Job) -> None:
            if job.prompt is None:
                start = time.perf_counter()
                job.prompt = self._encode_prompt(loaded, request.reference, request.reference_text, x_vector_only)
                job.extra_timings["prompt_s"] = time.perf_counter() - start

        return _Job(Mode.BASE, checkpoint, text, sampling, warnings, language=language, prompt=prompt, ready=ready)

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
        with self._device_for(checkpoint):
            loaded = self.engine.load(checkpoint, progress)
            return self._encode_prompt(loaded, reference, reference_text, x_vector_only)

    def _device_for(self, checkpoint: Checkpoint) -> contextlib.AbstractContextManager[object]:
        """What a take of ``checkpoint`` holds while it runs: this machine's device turn, or
        nothing when a remote server makes it (so it never queues behind a local take, and
        takes on different servers run at once; a local fallback takes the turn in the router)."""
        return contextlib.nullcontext() if self.is_remote(checkpoint) else self.device

    def is_remote(self, checkpoint: Checkpoint) -> bool:
        """True when takes of ``checkpoint`` are made by a remote server (core/engine/remote/)."""
        return self.engine.routes_remote(checkpoint)

    def clones_from_clip(self, checkpoint: Checkpoint) -> bool:
        """True when the engine for ``checkpoint`` clones from the reference clip itself (a remote
        server, the MLX engine), so a library voice's cached local prompt is of no use there."""
        return self.engine.clones_from_clip(checkpoint)

    def _take_details(self, loaded: LoadedModel) -> tuple[str, list[str]]:
        """The engine a take's details name (e.g. "remote http://gpu:8000/v1") and the engine's notes."""
        return self.engine.take_details(loaded)

    def _dtype_details(self, loaded: LoadedModel, engine_name: str) -> str:
        """The in-process torch engine's precision and why (core/engine/device.py); others say their own."""
        if engine_name.split("+")[0] != "torch":
            return ""
        return self.manager.dtype_details(loaded)

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
        return self.engine.create_clone_prompt(loaded, reference, reference_text, x_vector_only)

    def resume(
        self,
        failed: ChunkFailed | TakeStopped,
        progress: ProgressCallback | None = None,
        *,
        client: str | None = None,
        live: bool = False,
    ) -> Iterator[ChunkAudio | LiveAudio | SynthesisResult]:
        """Continues a take whose chunk failed or that was stopped: chunks already made are
        kept, and generation restarts at the next chunk with the same seeds (seed + i)."""
        return self._execute(
            failed.job, progress, seed=failed.seed, done=list(failed.completed), client=client, live=live
        )

    def continue_take(
        self,
        request: Request,
        seed: int,
        done: Sequence[Audio],
        progress: ProgressCallback | None = None,
        *,
        client: str | None = None,
        live: bool = False,
    ) -> Iterator[ChunkAudio | LiveAudio | SynthesisResult]:
        """A stored partial take finished: ``done`` are its first chunks (as made with ``seed``);
        the rest are made with seed + i, as if the take had never stopped."""
        job = self._prepare(request)
        return self._execute(job, progress, seed=seed, done=list(done), client=client, live=live)

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
        batches: list[int] = []
        with self._device_for(job.checkpoint):
            loaded = self.engine.load(job.checkpoint, progress)
            load_s = time.perf_counter() - started
            if job.ready:
                job.ready(loaded, job)
            gen_start = time.perf_counter()
            first_audio_s = None
            index = len(pieces)
            while index < len(chunks):
                items = [
                    job.item(chunks[i], seed + i, self._cap(chunks[i], job.sampling)) for i in range(index, len(chunks))
                ]
                # The first chunk of a take goes alone, with live pieces, so first audio stays early.
                size = 1 if index == 0 or not self.batching else self.engine.batch_size(loaded, items)
                if progress:
                    last = index + size
                    together = "" if size == 1 else f" (chunks {index + 1}-{last} together)"
                    progress(index / len(chunks), f"Generating chunk {index + 1} of {len(chunks)}{together}")
                try:
                    check_current()  # Stop, between chunks (every engine; torch also checks every frame)
                    if size == 1:
                        made: list[Audio] = []
                        # The fast path runs the stock call (same codes) and yields live pieces
                        # first when asked to; its last item is the chunk.
                        with contextlib.closing(
                            self.engine.stream_chunk(
                                loaded, job.mode, items[0], job.sampling, index=index, total=len(chunks), live=live
                            )
                        ) as run:
                            for item in run:  # closing(): a consumer that stops early stops the worker too
                                if isinstance(item, LiveAudio):
                                    if first_audio_s is None:
                                        first_audio_s = time.perf_counter() - started
                                    yield item
                                else:
                                    made.append(item)
                    else:
                        made = self._batch(loaded, job, items[:size], first_index=index, total=len(chunks))
                        batches.append(size)
                except Stopped as exc:
                    raise TakeStopped(
                        job=job, seed=seed, index=len(pieces), completed=list(pieces), total=len(chunks)
                    ) from exc
                except GenerationError as exc:
                    raise ChunkFailed(
                        str(exc),
                        job=job,
                        seed=seed,
                        index=index,
                        text=chunks[index],
                        completed=list(pieces),
                        total=len(chunks),
                    ) from exc
                for piece in made:
                    pieces.append(piece)
                    if first_audio_s is None:
                        first_audio_s = time.perf_counter() - started
                    yield ChunkAudio(index=index, total=len(chunks), text=chunks[index], audio=piece)
                    index += 1
            generate_s = time.perf_counter() - gen_start
        assembled = assemble(pieces, self.pause_s, job.post)
        audio = assembled.audio
        parts = assembled.parts(pieces, chunks, chunk_seeds(seed, len(chunks)))
        warnings = [DEMO_WARNING, *job.warnings] if job.checkpoint.demo else list(job.warnings)
        engine_name, engine_notes = self._take_details(loaded)
        warnings += engine_notes
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
            "event=generation mode=%s model=%s chars=%d chunks=%d batches=%s audio_s=%.2f wall_s=%.2f rtf=%.2f client=%s",
            job.mode,
            job.checkpoint.key,
            len(job.text),
            len(chunks),
            ",".join(map(str, batches)) or "-",
            audio.duration,
            total_s,
            timings["rtf"],
            client or "local",
        )
        if progress:
            progress(1.0, f"Done: {audio.duration:.1f} s of audio")
        result = job.result(audio, seed=seed, chunks=chunks, timings=timings, warnings=warnings, engine=engine_name)
        result.parts, result.pause_s = parts, self.pause_s
        result.dtype = self._dtype_details(loaded, engine_name)
        yield result

    def _batch(
        self, loaded: LoadedModel, job: _Job, items: list[BatchItem], *, first_index: int, total: int
    ) -> list[Audio]:
        """Items generated together, in one engine call."""
        return self.engine.generate_batch(loaded, job.mode, items, job.sampling, first_index=first_index, total=total)

    @staticmethod
    def _cap(chunk: str, sampling: Sampling) -> int:
        cap = textlib.estimate_max_new_tokens(chunk)
        if sampling.max_new_tokens is not None:
            cap = min(cap, int(sampling.max_new_tokens))
        return cap

    def synthesize_many(
        self,
        requests: Sequence[Request],
        progress: ProgressCallback | None = None,
        *,
        client: str | None = None,
        **each: Any,
    ) -> list[SynthesisResult | StudioError]:
        """Independent requests with their chunks batched together where they share a model
        (``core/engine/request_batch.py``, which says what ``each`` may hold); one result or
        error per request, in order."""
        # Admitted and counted in flight (a shutdown waits for a running batch to finish).
        self.lifecycle.admit()
        with self.lifecycle.work():
            outcomes = request_batch.synthesize_many(self, requests, progress, client=client, **each)[0]
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, SynthesisResult):
                mode = mode_of(request)
                self.events.emit(GenerationFinished(mode, outcome.timings.get("generate_s", 0.0), outcome.duration))
        return outcomes

    # --- variants ------------------------------------------------------------

    def variants(
        self, request: Request, count: int, progress: ProgressCallback | None = None, *, client: str | None = None
    ) -> list[SynthesisResult]:
        """``count`` takes of the same request with different seeds, their chunks generated together.

        Take k uses seed ``s + k`` (``s``: the request's seed, or a random one), so each
        variant is an ordinary take: regenerating it alone with its seed makes it again.
        """
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_VARIANTS:
            raise InvalidInput(f"Takes must be a whole number from 1 to {MAX_VARIANTS}.")
        job = self._prepare(request)
        base = job.sampling.seed if job.sampling.seed is not None else secrets.randbelow(2**31)
        seeds = [(base + k) % (MAX_SEED + 1) for k in range(count)]
        chunks = textlib.chunk_text(job.text, max_chars=self.chunk_chars)
        started = time.perf_counter()
        pieces: list[list[Audio]] = [[] for _ in seeds]
        with self._device_for(job.checkpoint):
            loaded = self.engine.load(job.checkpoint, progress)
            load_s = time.perf_counter() - started
            if job.ready:
                job.ready(loaded, job)
            gen_start = time.perf_counter()
            for index, chunk in enumerate(chunks):
                check_current()  # Stop (variants keep nothing: each take would be partial)
                items = [job.item(chunk, s + index, self._cap(chunk, job.sampling)) for s in seeds]
                step = max(1, self.engine.batch_size(loaded, items) if self.batching else 1)
                for start in range(0, len(items), step):
                    if progress:
                        progress(index / len(chunks), f"Generating {count} takes: chunk {index + 1} of {len(chunks)}")
                    group = items[start : start + step]
                    if len(group) == 1:
                        made = [
                            self.engine.generate_one(
                                loaded, job.mode, group[0], job.sampling, index=index, total=len(chunks)
                            )
                        ]
                    else:
                        made = self._batch(loaded, job, group, first_index=index, total=len(chunks))
                    for k, piece in enumerate(made):
                        pieces[start + k].append(piece)
            generate_s = time.perf_counter() - gen_start
        warnings = [DEMO_WARNING, *job.warnings] if job.checkpoint.demo else list(job.warnings)
        engine_name, engine_notes = self._take_details(loaded)
        warnings += engine_notes
        takes = [assemble(parts, self.pause_s, job.post) for parts in pieces]
        audio_s = sum(t.audio.duration for t in takes)
        results = []
        for seed, finished, parts in zip(seeds, takes, pieces, strict=True):
            audio = finished.audio
            results.append(
                job.result(
                    audio,
                    seed=seed,
                    chunks=chunks,
                    timings={
                        "load_s": load_s,
                        "generate_s": generate_s,
                        "total_s": time.perf_counter() - started,
                        "rtf": generate_s / max(audio_s, 1e-6),  # all the takes' audio together
                        **job.extra_timings,
                    },
                    warnings=list(warnings),
                    engine=engine_name,
                )
            )
            results[-1].parts = finished.parts(parts, chunks, chunk_seeds(seed, len(chunks)))
            results[-1].pause_s = self.pause_s
            results[-1].dtype = self._dtype_details(loaded, engine_name)
        log.info(
            "event=variants mode=%s model=%s chars=%d chunks=%d takes=%d wall_s=%.2f client=%s",
            job.mode,
            job.checkpoint.key,
            len(job.text),
            len(chunks),
            count,
            time.perf_counter() - started,
            client or "local",
        )
        if progress:
            progress(1.0, f"Done: {count} takes")
        return results
