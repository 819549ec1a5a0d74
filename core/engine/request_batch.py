"""Several independent requests served together: their chunks share engine calls.

The OpenAI batch endpoint (``POST /v1/audio/speech/batch``), its variants and the
Script tab hand over many small requests at once. Requests that run on the same
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core import text as textlib
from core.audio.clip import Audio
from core.audio.edit import post_process
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
    loaded: LoadedModel | None = None


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
        groups.setdefault(group_key(job), []).append(_Pending(position, job, seed, chunks))
    calls = 0
    for pending in groups.values():
        calls += _run_group(service, pending, progress)
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


def _run_group(service: SynthesisService, pending: list[_Pending], progress: ProgressCallback | None) -> int:
    """Generates every chunk of every request in ``pending`` (one checkpoint); returns the engine calls."""
    engine = service.engine
    calls = 0
    started = time.perf_counter()
    with service._device_lock:
        try:
            loaded = engine.load(pending[0].job.checkpoint, progress)
        except StudioError as exc:  # e.g. the model is not downloaded: every request of the group says so
            for one in pending:
                one.error = exc
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
        gen_s = time.perf_counter() - started - load_s
    for one in pending:
        # Each request's share of the group's generation time, so sums over requests stay true.
        one.job.extra_timings["generate_s"] = gen_s / len(pending)
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
        try:
            one.pieces[k] = engine.generate_one(
                loaded, one.job.mode, item, one.job.sampling, index=k, total=len(one.chunks)
            )
        except StudioError as exc:
            one.error = exc
    return len(items) + (1 if len(items) > 1 else 0)


def _result(service: SynthesisService, one: _Pending) -> SynthesisResult:
    from core.engine.synthesis import DEMO_WARNING, join_chunks

    job = one.job
    audio = post_process(join_chunks([one.pieces[k] for k in range(len(one.chunks))], service.pause_s), job.post)
    warnings = [DEMO_WARNING, *job.warnings] if job.checkpoint.demo else list(job.warnings)
    assert one.loaded is not None
    engine_name, notes = service._take_details(one.loaded)
    generate_s = job.extra_timings.get("generate_s", 0.0)
    return job.result(
        audio,
        seed=one.seed,
        chunks=one.chunks,
        timings={**job.extra_timings, "rtf": generate_s / max(audio.duration, 1e-6)},
        warnings=warnings + notes,
        engine=engine_name,
    )
