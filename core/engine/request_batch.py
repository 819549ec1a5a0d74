"""Several independent requests served together: their chunks share engine calls.

The OpenAI batch endpoint (``POST /v1/audio/speech/batch``), its variants and the
Script tab hand over many small requests at once; takes that queue for a busy
device are gathered by ``core/engine/coalescer.py`` and served here too
(:func:`wait_turn`). Requests that run on the same
checkpoint, in the same mode, with the same sampling options (seeds and frame caps
aside, which are per item) are grouped, and the chunks of a whole group go through
:meth:`~core.engine.interface.Engine.generate_batch` together, each item with its
own text, speaker / instruction / clone prompt, seed and cap.

Every request keeps its own seed (chunk *k* of a request uses ``seed + k``, as in
:meth:`SynthesisService.synthesize`), and the engine makes a batched item exactly
as it makes it alone (``Capabilities.per_item_seeds``), so each result equals the
same request synthesized on its own. A request that cannot be prepared, or whose
chunk fails, gets its own error; the others still come back.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import text as textlib
from core.audio.assembly import assemble
from core.audio.clip import Audio
from core.engine.interface import BatchItem
from core.engine.model_store import ProgressCallback
from core.errors import StudioError
from core.types import Request, SynthesisResult

if TYPE_CHECKING:
    from core.engine.model_manager import LoadedModel
    from core.engine.synthesis import SynthesisService, _Job

log = logging.getLogger("core.engine.request_batch")

Outcome = SynthesisResult | StudioError


@dataclass
class _Pending:
    """One request on its way: its prepared job, seed, chunks and the audio made so far."""

    position: int  # its place in the caller's list
    job: _Job
    seed: int
    chunks: list[str]
    pieces: dict[int, Audio] = field(default_factory=dict)
    error: StudioError | None = None
    failed_at: int | None = None  # the chunk that failed (None: failed before generating, or not at all)
    loaded: LoadedModel | None = None
    client: str | None = None

    @property
    def complete(self) -> bool:
        return self.error is not None or len(self.pieces) == len(self.chunks)


def group_key(job: _Job) -> tuple:
    """Jobs with equal keys can share a generate_batch call (one mode, model and sampling)."""
    kwargs = job.sampling.generate_kwargs()
    kwargs.pop("max_new_tokens", None)  # the cap is per item
    return (job.checkpoint.key, str(job.mode), tuple(sorted(kwargs.items())))


def synthesize_many(
    service: SynthesisService,
    requests: Sequence[Request],
    progress: ProgressCallback | None = None,
    *,
    client: str | None = None,
) -> tuple[list[Outcome], int]:
    """One outcome per request, in order (a result or the error that request met),
    and the number of engine calls made."""
    outcomes: list[Outcome | None] = [None] * len(requests)
    groups: dict[tuple, list[_Pending]] = {}
    for position, request in enumerate(requests):
        try:
            job = service._prepare(request)
        except StudioError as exc:
            outcomes[position] = exc
            continue
        seed = job.sampling.seed if job.sampling.seed is not None else secrets.randbelow(2**31)
        chunks = textlib.chunk_text(job.text, max_chars=service.chunk_chars)
        groups.setdefault(group_key(job), []).append(_Pending(position, job, seed, chunks, client=client))
    calls = 0
    for pending in groups.values():
        with service._device_for(pending[0].job.checkpoint):
            calls += run_group(service, pending, progress)
        for one in pending:
            outcomes[one.position] = one.error or _result(service, one)
    log.info(
        "event=request_batch requests=%d groups=%d engine_calls=%d client=%s",
        len(requests),
        len(groups),
        calls,
        client or "local",
    )
    return [o for o in outcomes if o is not None], calls


def run_group(
    service: SynthesisService,
    pending: list[_Pending],
    progress: ProgressCallback | None,
    finished: Callable[[_Pending], None] | None = None,
) -> int:
    """Generates every chunk of every request in ``pending`` (one checkpoint); returns the engine calls.

    The caller holds the device (or the checkpoint is made remotely). ``finished(one)``
    is called as soon as a request has all its chunks (or its error), so a short
    request served with a long one need not wait for the long one's last chunk.
    """
    engine = service.engine
    calls = 0
    started = time.perf_counter()
    told: set[int] = set()

    def tell() -> None:
        now = time.perf_counter()
        for one in pending:
            if one.complete and id(one) not in told:
                told.add(id(one))
                # Each request's share of the group's generation time, so sums over requests stay true.
                one.job.extra_timings["generate_s"] = (now - gen_start) / len(pending)
                if finished is not None:
                    finished(one)

    try:
        loaded = engine.load(pending[0].job.checkpoint, progress)
    except StudioError as exc:  # e.g. the model is not downloaded: every request of the group says so
        for one in pending:
            one.error = exc
        gen_start = time.perf_counter()
        tell()
        return 0
    load_s = time.perf_counter() - started
    for number, one in enumerate(pending):
        one.loaded = loaded
        one.job.extra_timings["load_s"] = load_s if number == 0 else 0.0  # loaded once, for the first
        if one.job.ready:
            try:
                one.job.ready(loaded, one.job)
            except StudioError as exc:
                one.error = exc
    gen_start = time.perf_counter()
    tell()  # requests that failed to get ready are done already
    # Chunk 0 of every request first, then chunk 1...: a batch holds equal-length work.
    work = sorted(
        ((k, one) for one in pending if one.error is None for k in range(len(one.chunks))),
        key=lambda pair: pair[0],
    )
    done = 0
    while work:
        items = [_item(service, one, k) for k, one in work]
        size = max(1, engine.batch_size(loaded, items)) if service.batching else 1
        group, work = work[:size], work[size:]
        if progress:
            progress(done / (done + len(work) + len(group)), f"Generating items {done + 1}-{done + len(group)}")
        calls += _generate(loaded, service, group, items[:size])
        done += len(group)
        # A request with a failed chunk needs no more of its chunks generated.
        work = [(k, one) for k, one in work if one.error is None]
        tell()
    tell()
    return calls


def _item(service: SynthesisService, one: _Pending, k: int) -> BatchItem:
    chunk = one.chunks[k]
    return one.job.item(chunk, one.seed + k, service._cap(chunk, one.job.sampling))


def _generate(loaded: LoadedModel, service: SynthesisService, group: list, items: list[BatchItem]) -> int:
    """One engine call for the group; when it fails, each item alone, so the error is the right item's."""
    engine = service.engine
    job = group[0][1].job
    if len(items) > 1:
        try:
            made = engine.generate_batch(loaded, job.mode, items, job.sampling)
        except StudioError:  # which item? each alone says
            log.info("event=request_batch_retry_alone items=%d", len(items))
        else:
            for (k, one), audio in zip(group, made, strict=True):
                one.pieces[k] = audio
            return 1
    for (k, one), item in zip(group, items, strict=True):
        if one.error is not None:
            continue  # an earlier chunk of this request failed in this very group
        try:
            one.pieces[k] = engine.generate_one(
                loaded, one.job.mode, item, one.job.sampling, index=k, total=len(one.chunks)
            )
        except StudioError as exc:
            one.error = exc
            one.failed_at = k
    return len(items) + (1 if len(items) > 1 else 0)


def _result(service: SynthesisService, one: _Pending) -> SynthesisResult:
    from core.engine.synthesis import DEMO_WARNING, chunk_seeds

    job = one.job
    pieces = [one.pieces[k] for k in range(len(one.chunks))]
    made = assemble(pieces, service.pause_s, job.post)
    audio = made.audio
    warnings = [DEMO_WARNING, *job.warnings] if job.checkpoint.demo else list(job.warnings)
    assert one.loaded is not None
    engine_name, notes = service._take_details(one.loaded)
    generate_s = job.extra_timings.get("generate_s", 0.0)
    result = job.result(
        audio,
        seed=one.seed,
        chunks=one.chunks,
        timings={**job.extra_timings, "rtf": generate_s / max(audio.duration, 1e-6)},
        warnings=warnings + notes,
        engine=engine_name,
    )
    # Where each chunk landed in the take (History's per-chunk redo), as the single-take path records.
    result.parts = made.parts(pieces, one.chunks, chunk_seeds(one.seed, len(one.chunks)))
    result.pause_s = service.pause_s
    return result


# --- takes that queue for the device (core/engine/coalescer.py) ----------------------------


def wait_turn(
    service: SynthesisService,
    job: _Job,
    seed: int,
    chunks: list[str],
    progress: ProgressCallback | None,
    *,
    client: str | None = None,
) -> Iterator[Any] | None:
    """Waits for the device. None: the caller now holds the device lock and makes its take
    the ordinary way (it releases the lock). Otherwise the take was served together with
    other queued takes, and the iterator yields what ``SynthesisService.stream`` yields."""
    started = time.perf_counter()
    coalescer = service.coalescer
    pending = _Pending(0, job, seed, chunks, client=client)
    if not service.batching:
        service._device_lock.acquire()
        return None

    def run(members: list[_Pending], finished: Callable[[_Pending], None]) -> None:
        begun = time.perf_counter()
        calls = run_group(service, members, progress, finished)
        log.info(
            # Counts only, as every generation line: no text.
            "event=coalesce model=%s mode=%s requests=%d chunks=%d engine_calls=%d wall_s=%.2f clients=%s",
            job.checkpoint.key,
            job.mode,
            len(members),
            sum(len(m.chunks) for m in members),
            calls,
            time.perf_counter() - begun,
            ",".join(sorted({m.client or "local" for m in members})),
        )

    if progress and service._device_lock.locked():
        progress(0.0, "Waiting for the device (another take is generating)")
    ticket = coalescer.wait(group_key(job), pending, run)
    if ticket is None:
        return None
    return _served(service, pending, together=ticket.together, queued_s=ticket.queued_s, started=started)


def _served(
    service: SynthesisService, one: _Pending, *, together: int, queued_s: float, started: float
) -> Iterator[Any]:
    """A take served with others, replayed as the single-take path yields it (chunks, then the take)."""
    from core.engine.synthesis import ChunkAudio, ChunkFailed

    total = len(one.chunks)
    end = one.failed_at if one.error is not None and one.failed_at is not None else total
    if one.error is not None and one.failed_at is None:
        raise one.error  # failed before any chunk (e.g. the loaded model lacks the speaker)
    for k in range(end):
        yield ChunkAudio(index=k, total=total, text=one.chunks[k], audio=one.pieces[k])
    if one.error is not None:
        raise ChunkFailed(
            str(one.error),
            job=one.job,
            seed=one.seed,
            index=end,
            text=one.chunks[end],
            completed=[one.pieces[k] for k in range(end)],
            total=total,
        ) from one.error
    total_s = time.perf_counter() - started
    one.job.extra_timings.update(
        {"queued_s": queued_s, "total_s": total_s, "first_audio_s": total_s, "served_together": float(together)}
    )
    result = _result(service, one)
    log.info(
        "event=generation mode=%s model=%s chars=%d chunks=%d batches=together audio_s=%.2f wall_s=%.2f "
        "rtf=%.2f client=%s together=%d",
        one.job.mode,
        one.job.checkpoint.key,
        len(one.job.text),
        total,
        result.audio.duration,
        total_s,
        result.timings["rtf"],
        one.client or "local",
        together,
    )
    yield result
