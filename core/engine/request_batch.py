"""Several independent requests served together: their chunks share engine calls.

The Script tab hands over many small requests at once, and the take runner
(``core/takes/jobs.py``) serves here the whole takes that wait in its queue together
(the OpenAI batch endpoint, its variants, concurrent API calls, the CLI, Regenerate).
Requests that run on the same
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core import text as textlib
from core.audio.assembly import assemble
from core.audio.clip import Audio
from core.engine.cancel import CancelToken
from core.engine.catalog import DEMO_WARNING
from core.engine.interface import BatchItem
from core.engine.model_store import ProgressCallback
from core.errors import Stopped, StudioError
from core.types import Request, SynthesisResult, chunk_seeds

if TYPE_CHECKING:
    from core.engine.model_manager import LoadedModel
    from core.engine.synthesis import SynthesisService, _Job

log = logging.getLogger("core.engine.request_batch")

Outcome = SynthesisResult | StudioError
Finished = Callable[[int, Outcome], None]


@dataclass
class Member:
    """One request of a shared run: its prepared job, seed, chunks and the audio made so far."""

    position: int  # its place in the caller's list
    job: _Job
    seed: int
    chunks: list[str]
    pieces: dict[int, Audio] = field(default_factory=dict)
    error: StudioError | None = None
    failed_at: int | None = None  # the chunk that failed (None: failed before generating, or not at all)
    loaded: LoadedModel | None = None
    client: str | None = None
    token: CancelToken | None = None  # its job's Stop: it leaves the run before the next batch

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
    clients: Sequence[str | None] | None = None,
    tokens: Sequence[CancelToken | None] | None = None,
    finished: Finished | None = None,
) -> tuple[list[Outcome], int]:
    """One outcome per request, in order (a result or the error that request met),
    and the number of engine calls made. ``clients`` and ``tokens``: each request's own
    caller and Stop (the take runner's jobs); ``finished(position, outcome)`` is told as
    soon as a request is complete."""
    outcomes: list[Outcome | None] = [None] * len(requests)

    def done(position: int, outcome: Outcome) -> None:
        outcomes[position] = outcome
        if finished is not None:
            finished(position, outcome)

    groups: dict[tuple, list[Member]] = {}
    for position, request in enumerate(requests):
        try:
            job = service._prepare(request)
        except StudioError as exc:
            done(position, exc)
            continue
        seed = job.sampling.seed if job.sampling.seed is not None else secrets.randbelow(2**31)
        chunks = textlib.chunk_text(job.text, max_chars=service.chunk_chars)
        who = clients[position] if clients is not None else client
        token = tokens[position] if tokens is not None else None
        groups.setdefault(group_key(job), []).append(Member(position, job, seed, chunks, client=who, token=token))
    calls = 0
    for pending in groups.values():
        with service._device_for(pending[0].job.checkpoint):
            calls += run_group(
                service, pending, progress, lambda one: done(one.position, one.error or _result(service, one))
            )
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
    pending: list[Member],
    progress: ProgressCallback | None,
    finished: Callable[[Member], None] | None = None,
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
        for one in pending:  # a stopped request leaves before the next batch
            if one.error is None and one.token is not None and one.token.cancelled:
                one.error = Stopped("Stopped while it was made with other takes; nothing was kept.")
        # A request with a failed chunk needs no more of its chunks generated.
        work = [(k, one) for k, one in work if one.error is None]
        tell()
        if not work:
            break
        items = [_item(service, one, k) for k, one in work]
        size = max(1, engine.batch_size(loaded, items)) if service.batching else 1
        group, work = work[:size], work[size:]
        if progress:
            progress(done / (done + len(work) + len(group)), f"Generating items {done + 1}-{done + len(group)}")
        calls += _generate(loaded, service, group, items[:size])
        done += len(group)
    tell()
    return calls


def _item(service: SynthesisService, one: Member, k: int) -> BatchItem:
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


def _result(service: SynthesisService, one: Member) -> SynthesisResult:

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
