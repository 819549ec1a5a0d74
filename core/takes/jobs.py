"""The one take runner: every take is a job of the studio's :class:`JobRegistry`.

Whatever starts a take (a tab, the named API, the OpenAI route, the CLI, Regenerate, Resume,
a script) it becomes a :class:`~core.takes.job.Job`, made by a lane's one worker thread
through ``TakeService`` / ``SynthesisService``. The device lane serialises this machine's
device: anything else that needs it takes a turn there (:meth:`JobRegistry.device`,
installed as ``SynthesisService.device``); a remote take gets a lane of its own. Whole takes
(no live pieces) queued together on the same checkpoint, mode and sampling are served in
shared engine batches (``core/engine/request_batch.py``), each still its own job with its
own seeds and result, bit-identical to the take made alone. **Stop** sets a job's cancel
token (``core/engine/cancel.py``): the engine stops within a frame, the finished chunks are
kept as a partial take, and **Resume** finishes it with the same seeds. Finished jobs stay
listed a while ("Running & recent"); their takes are in History for good.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.engine import request_batch
from core.engine.cancel import cancellable
from core.engine.live_decoding import LiveAudio
from core.engine.synthesis import ChunkAudio, ChunkFailed, TakeStopped
from core.errors import InvalidInput, Stopped, StudioError
from core.takes.job import DEVICE, Job, JobState, TextPlan, Work, format_seconds, plan_text
from core.takes.script_jobs import script_work, stopped_script
from core.takes.service import KeptTake, TakeJob, TakeService
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Mode, SynthesisResult

__all__ = ["DEVICE", "Job", "JobRegistry", "JobState", "TextPlan", "format_seconds", "plan_text"]

log = logging.getLogger(__name__)

KEEP_FINISHED = 20
KEEP_FOR_S = 6 * 3600.0
IDLE_S = 60.0  # a lane's worker ends after this long without work
REQUEST_MODES = {DesignRequest: Mode.VOICE_DESIGN, CustomVoiceRequest: Mode.CUSTOM_VOICE, CloneRequest: Mode.BASE}


@dataclass
class WholeTake:
    """The work of a whole take (no live pieces): the worker may serve it with other queued ones
    of the same ``key`` (``request_batch.group_key``); alone, it is an ordinary take."""

    takes: TakeService
    take: TakeJob
    key: tuple
    client: str | None
    keep: bool = True  # False: the caller writes the audio itself (the CLI); History is left alone

    def __call__(self, job: Job) -> list[KeptTake]:
        stream = self.takes.synthesis.stream(self.take.request, job.report, client=self.client)
        with _keeping_partial(self.takes, self.take, job, self.keep):
            return _deliver(self.takes, self.take, job, stream, self.keep)


class JobRegistry:
    """Runs jobs in lanes (one worker each; see the module notes); keeps running and recent ones."""

    def __init__(self, takes: TakeService, *, keep_finished: int = KEEP_FINISHED, keep_for_s: float = KEEP_FOR_S):
        self.takes = takes
        self.keep_finished = keep_finished
        self.keep_for_s = keep_for_s
        self.batching = True  # False: queued whole takes are made one by one (bench's "alone" round)
        self.served = 0  # whole takes served in a shared run (2+ takes), for GET /metrics
        self.batches = 0  # shared runs
        self._jobs: dict[str, Job] = {}
        self._cond = threading.Condition()  # guards the jobs, the queues and the workers
        self._queues: dict[str, deque[tuple[Job, Work]]] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._ids = itertools.count(1)
        self._lanes = itertools.count(1)
        self._s_per_char: float | None = None  # the last finished take's wall time per character
        takes.synthesis.device.hold = self.device  # the engine's other device users take turns here

    # --- starting ---------------------------------------------------------------

    def submit(
        self,
        work: Work,
        *,
        kind: str,
        mode: str,
        text: str,
        owner: str = "",
        tab: str = "",
        chunks: int | None = None,
        client: str | None = None,
        lane: str = DEVICE,
        listed: bool = True,
    ) -> Job:
        """Queues ``work`` (called in its lane's worker with the job) and returns its job at once."""
        return self._enqueue([(self._job(kind, mode, text, owner, tab, chunks, client, lane), work)], listed)[0]

    def _job(
        self, kind: str, mode: str, text: str, owner: str, tab: str, chunks: int | None, client: str | None, lane: str
    ) -> Job:
        plan = plan_text(text, self.takes.synthesis.chunk_chars)
        summary = " ".join(text.split())
        return Job(
            id=f"job-{next(self._ids)}-{int(time.time())}",
            kind=kind,
            mode=mode,
            summary=summary if len(summary) <= 80 else summary[:79] + "…",
            owner=owner,
            client=client or "",
            tab=tab,
            chars=plan.chars,
            speech_s=plan.speech_s,
            chunks_total=plan.chunks if chunks is None else chunks,
            guess_s_per_char=self._s_per_char,
            lane=lane,
        )

    def _enqueue(self, entries: list[tuple[Job, Work]], listed: bool = True) -> list[Job]:
        """Queues every entry at once: a worker never takes the first before the last is queued."""
        with self._cond:
            for job, work in entries:
                if listed:
                    self._jobs[job.id] = job
                self._queues.setdefault(job.lane, deque()).append((job, work))
                worker = self._workers.get(job.lane)
                if worker is None or not worker.is_alive():
                    worker = threading.Thread(target=self._work_lane, args=(job.lane,), name=f"studio-{job.lane}")
                    self._workers[job.lane] = worker
                    worker.daemon = True
                    worker.start()
            self._prune()
            self._cond.notify_all()
        return [job for job, _ in entries]

    def start_take(
        self, take: TakeJob, *, client: str | None = None, owner: str = "", tab: str = "", live: bool = True
    ) -> Job:
        """One take (or ``take.variants`` of it) of a tab's or the API's request; ``live=False``:
        a whole take, which the worker may serve with other queued ones (see the module notes)."""
        if not live and take.variants == 1:
            return self.start_whole([take], client=client, owner=owner, tab=tab)[0]
        kind = "variants" if take.variants > 1 else "take"
        work = variants_work(self.takes, take, client) if take.variants > 1 else take_work(self.takes, take, client)
        return self.submit(
            work,
            kind=kind,
            mode=mode_name(take),
            text=take.request.text,
            owner=owner,
            tab=tab,
            client=client,
            lane=self.lane_of(take),
        )

    def start_whole(
        self, takes: list[TakeJob], *, client: str | None = None, owner: str = "", tab: str = "", keep: bool = True
    ) -> list[Job]:
        """Whole takes, queued together (the batch route: each is a job, served in shared batches)."""
        entries = []
        for take in takes:
            take = self.takes.pin_lexicon(take)
            try:
                key = request_batch.group_key(self.takes.synthesis._prepare(take.request))
            except StudioError:
                key = (id(take),)  # shared with none: its job says what is wrong
            job = self._job("take", mode_name(take), take.request.text, owner, tab, None, client, self.lane_of(take))
            entries.append((job, WholeTake(self.takes, take, key, client, keep)))
        return self._enqueue(entries)  # type: ignore[arg-type]

    def lane_of(self, take: TakeJob) -> str:
        """The device lane, or a lane of its own for a remote take (it never waits for the device)."""
        synthesis = self.takes.synthesis
        try:
            checkpoint = synthesis.checkpoint_for(REQUEST_MODES[type(take.request)], take.request.size)
        except (KeyError, StudioError):
            return DEVICE  # the job will say what is wrong
        return f"remote {checkpoint.key} {next(self._lanes)}" if synthesis.is_remote(checkpoint) else DEVICE

    def resume(self, take_id: str, *, client: str | None = None, owner: str = "", tab: str = "") -> Job:
        """A new job that finishes a stopped take (in History) from its first missing chunk."""
        take = self.takes.history.get(take_id)
        if not take.stopped:
            raise InvalidInput("This take is complete; only a stopped take can be resumed.")
        if take.mode == "script":  # its missing lines, with their own seeds (core/takes/script_jobs.py)
            plan, fmt, done = stopped_script(self.takes, take_id)
            work = script_work(self.takes, plan, fmt, done=done, replaces=take_id)
            return self.submit(
                work,
                kind="script",
                mode="Script",
                text=plan.text,
                owner=owner,
                tab=tab,
                chunks=len(plan.lines),
                client=client,
            )
        # The job that stopped it, while it is listed, holds the prepared request (a clone's
        # encoded reference included); after a restart the take's recipe and parts serve.
        old = next((j for j in self.all() if j.partial and j.partial.take.id == take_id and j.stopped), None)
        return self.submit(
            resume_work(self.takes, take_id, take.stopped_at or 0, old, client),
            kind="resume",
            mode=MODE_NAMES.get(take.mode, take.mode),
            text=take.request.get("text", take.text) if isinstance(take.request.get("text"), str) else take.text,
            owner=owner,
            tab=tab or (old.tab if old else ""),
            chunks=take.total_chunks,
            client=client,
        )

    def retry(
        self, take: TakeJob, failed: ChunkFailed, *, client: str | None = None, owner: str = "", tab: str = ""
    ) -> Job:
        """A new job that continues a take whose chunk failed, from that chunk (same seeds)."""
        takes = self.takes

        def work(job: Job) -> list[KeptTake]:
            with job._changed:
                job.chunks_done = failed.index
            stream = takes.synthesis.resume(failed, job.report, client=client, live=True)
            with _keeping_partial(takes, take, job):
                return _deliver(takes, take, job, stream)

        return self.submit(
            work,
            kind="retry",
            mode=mode_name(take),
            text=take.request.text,
            owner=owner,
            tab=tab,
            chunks=failed.total,
            client=client,
        )

    # --- reading and stopping -------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self._cond:
            job = self._jobs.get(job_id)
        if job is None:
            raise InvalidInput("That job is no longer listed; its take, if it made one, is in History.")
        return job

    def all(self) -> list[Job]:
        """Running and queued jobs first, then the finished ones, newest first."""
        with self._cond:
            self._prune()
            jobs = list(self._jobs.values())
        return sorted(jobs, key=lambda j: (j.finished, -j.created))

    def active(self, owner: str | None = None, tab: str | None = None) -> list[Job]:
        return [
            j
            for j in self.all()
            if not j.finished and (owner is None or j.owner == owner) and (tab is None or j.tab == tab)
        ]

    def latest(self, owner: str, tab: str) -> Job | None:
        mine = [j for j in self.all() if j.owner == owner and j.tab == tab]
        return max(mine, key=lambda j: j.created) if mine else None

    def stop(self, job_id: str) -> Job:
        """Stops a job: a queued one never starts, a running one stops within a frame."""
        job = self.get(job_id)
        job.token.cancel()
        with job._changed:
            job._changed.notify_all()
        return job

    def stop_all(self) -> None:
        """Stops every job, queued or running (the server's shutdown, once its grace time is over)."""
        with self._cond:
            jobs = [job for queue in self._queues.values() for job, _ in queue] + list(self._jobs.values())
        for job in jobs:
            job.token.cancel()

    def regenerate(self, take_id: str, *, client: str | None = None, owner: str = "", tab: str = "") -> Job:
        """History's "Regenerate with the same settings": the stored take made again, as a new take."""
        original = self.takes.history.get(take_id)
        takes = self.takes

        def work(job: Job) -> list[KeptTake]:
            return [takes.regenerate(take_id, job.report, client=client).kept]

        return self.submit(
            work,
            kind="regenerate",
            mode=MODE_NAMES.get(original.mode, original.mode),
            text=original.text,
            owner=owner,
            tab=tab,
            client=client,
        )

    @contextlib.contextmanager
    def device(self) -> Iterator[None]:
        """Holds this machine's device for a block run outside its lane (a transcription, a clone
        prompt, a remote take's local fallback): a job of the device lane that lasts as long as
        the block. In the device lane's own worker the block just runs (it holds the device)."""
        if threading.current_thread() is self._workers.get(DEVICE):
            yield
            return
        entered, left = threading.Event(), threading.Event()

        def hold(job: Job) -> list[KeptTake]:
            entered.set()
            left.wait()
            return []

        job = self.submit(hold, kind="device", mode="", text="", listed=False)
        try:
            while not entered.wait(0.5):
                if job.finished:  # stopped before its turn (shutdown)
                    raise job.error or Stopped("Stopped.")
            yield
        finally:
            left.set()

    def busy(self) -> bool:
        """True while a job runs on this machine's device (GET /metrics)."""
        with self._cond:
            return any(j.state is JobState.RUNNING and j.lane == DEVICE for j in self._jobs.values())

    def counts(self) -> tuple[int, int]:
        """(whole takes served together, shared runs), for GET /metrics."""
        return self.served, self.batches

    # --- the workers --------------------------------------------------------------------

    def _work_lane(self, lane: str) -> None:
        while True:
            with self._cond:
                queue = self._queues[lane]
                while not queue:
                    # Idle: the next job starts another worker (a remote take's lane serves one take).
                    if not self._cond.wait(IDLE_S if lane == DEVICE else 0) and not queue:
                        del self._workers[lane], self._queues[lane]
                        return
                job, work = queue.popleft()
                group = [(job, work)]
                if isinstance(work, WholeTake) and self.batching and not job.token.cancelled:
                    # Served together: every whole take queued behind it that can share its batches.
                    group += [
                        e
                        for e in queue
                        if isinstance(e[1], WholeTake) and e[1].key == work.key and not e[0].token.cancelled
                    ]
                    for entry in group[1:]:
                        queue.remove(entry)
            if len(group) == 1:
                self._run(job, work)
            else:
                self._run_together(group)  # type: ignore[arg-type]

    def _running(self, job: Job) -> None:
        with job._changed:
            job.state = JobState.RUNNING
            job.started = time.monotonic()
            job._changed.notify_all()

    def _run(self, job: Job, work: Work) -> None:
        if job.token.cancelled:
            job._finish(JobState.STOPPED, Stopped("Stopped before it started; nothing was made."))
            return
        self._running(job)
        error: StudioError | None = None
        try:
            with cancellable(job.token):
                job.kept = work(job)
        except TakeStopped as stopped:
            job.stopped = error = stopped
        except StudioError as exc:
            error = exc
        except Exception as exc:  # a bug: logged here, told to followers in plain words
            log.exception("job %s failed", job.id)
            error = StudioError(f"Something went wrong ({type(exc).__name__}); see the log.")
        self._end(job, error)

    def _end(self, job: Job, error: StudioError | None) -> None:
        """Logs the job's end, then tells its followers (who may read the log next)."""
        state = JobState.DONE if error is None else JobState.STOPPED if isinstance(error, Stopped) else JobState.FAILED
        log.info(
            "event=job id=%s kind=%s state=%s chunks=%d/%d wall_s=%.2f client=%s",
            job.id,
            job.kind,
            state.value,
            job.chunks_done,
            job.chunks_total,
            job.elapsed_s(),
            job.client or "local",
        )
        if state is JobState.DONE and job.chars:
            self._s_per_char = job.elapsed_s() / job.chars
        job._finish(state, error)

    def _run_together(self, group: list[tuple[Job, WholeTake]]) -> None:
        """Queued whole takes served in shared engine batches; each job gets its own result."""
        begun, begun_at = time.monotonic(), time.time()
        self.served += len(group)
        self.batches += 1
        for job, _ in group:
            self._running(job)
            job.message = f"Generating with {len(group) - 1} other take(s) in one batch"
        log.info(
            # Counts only, as every generation line: no text.
            "event=coalesce model=%s mode=%s requests=%d chunks=%d clients=%s",
            group[0][1].key[0],
            group[0][1].key[1],
            len(group),
            sum(job.chunks_total for job, _ in group),
            ",".join(sorted({job.client or "local" for job, _ in group})),
        )

        def finished(position: int, outcome: SynthesisResult | StudioError) -> None:
            job, whole = group[position]
            job.together = len(group)
            try:
                if isinstance(outcome, StudioError):
                    raise outcome
                total_s = time.monotonic() - begun
                outcome.timings |= {
                    "queued_s": max(0.0, begun_at - job.created),
                    "total_s": total_s,
                    "first_audio_s": total_s,
                    "served_together": float(len(group)),
                }
                job.result = outcome
                job.kept = [self.takes.keep(whole.take, outcome)] if whole.keep else []
                job.chunk_done(len(outcome.chunks) - 1, len(outcome.chunks))
                _log_served(job, outcome)
            except StudioError as exc:
                self._end(job, exc)
            else:
                self._end(job, None)

        wholes = [whole for _, whole in group]
        self.takes.synthesis.synthesize_many(
            [w.take.request for w in wholes],
            clients=[w.client for w in wholes],
            tokens=[job.token for job, _ in group],
            finished=finished,
        )
        for job, _ in group:  # a bug in the batch: no job is left running
            if not job.finished:
                self._end(job, StudioError("Something went wrong in a shared batch; see the log."))

    def _prune(self) -> None:
        """Drops finished jobs beyond the limits (called with the lock held)."""
        now = time.time()
        finished = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.created, reverse=True)
        for number, job in enumerate(finished):
            if number >= self.keep_finished or now - job.created > self.keep_for_s:
                del self._jobs[job.id]


def _log_served(job: Job, result: SynthesisResult) -> None:
    log.info(
        "event=generation mode=%s model=%s chars=%d chunks=%d batches=together audio_s=%.2f wall_s=%.2f "
        "rtf=%.2f client=%s together=%d",
        result.mode,
        result.model,
        len(result.text),
        len(result.chunks),
        result.audio.duration,
        result.timings["total_s"],
        result.timings.get("rtf", 0.0),
        job.client or "local",
        job.together,
    )


# --- the work of each kind of job -------------------------------------------------------


MODE_NAMES = {"voice_design": "Design", "custom_voice": "Custom", "base": "Clone", "script": "Script"}


def mode_name(take: TakeJob) -> str:
    mode = str(getattr(take.request, "mode", ""))
    return MODE_NAMES.get(mode, type(take.request).__name__.removesuffix("Request"))


def take_work(takes: TakeService, take: TakeJob, client: str | None) -> Work:
    """One take, streamed: live pieces for followers, a partial take when stopped."""

    def work(job: Job) -> list[KeptTake]:
        pinned = takes.pin_lexicon(take)
        stream = takes.synthesis.stream(pinned.request, job.report, live=True, client=client)
        with _keeping_partial(takes, pinned, job):
            return _deliver(takes, pinned, job, stream)

    return work


def resume_work(takes: TakeService, take_id: str, kept: int, old: Job | None, client: str | None) -> Work:
    """The rest of a stopped take; the complete take (or a longer partial one) replaces it in History."""

    def work(job: Job) -> list[KeptTake]:
        with job._changed:
            job.chunks_done = kept
        if old is not None and old.stopped is not None and old.take is not None:
            take = old.take
            stream = takes.synthesis.resume(old.stopped, job.report, client=client, live=True)
        else:
            take, stream = takes.resume_stored(take_id, job.report, client=client, live=True)
        try:
            with _keeping_partial(takes, take, job):
                made = _deliver(takes, take, job, stream)
        except TakeStopped:
            if job.partial is not None:
                _forget(takes, take_id)
            raise
        _forget(takes, take_id)
        return made

    return work


def _forget(takes: TakeService, take_id: str) -> None:
    """The stopped take a resume replaced: every chunk of it is in the new take."""
    with contextlib.suppress(StudioError):
        takes.history.delete(take_id)


def _deliver(takes: TakeService, take: TakeJob, job: Job, stream: Iterator[Any], keep: bool = True) -> list[KeptTake]:
    job.take = take
    for item in stream:  # TakeStopped and ChunkFailed go up to the registry
        if isinstance(item, SynthesisResult):
            job.result = item
            return [takes.keep(take, item)] if keep else []
        job.publish(item)
        if isinstance(item, ChunkAudio):
            job.chunk_done(item.index, item.total)
        elif isinstance(item, LiveAudio) and job.chunks_total != item.total:
            job.chunks_total = item.total  # the lexicon changed the text a little
    raise AssertionError("a stream always ends with a result")  # pragma: no cover


@contextlib.contextmanager
def _keeping_partial(takes: TakeService, take: TakeJob, job: Job, keep: bool = True) -> Iterator[None]:
    """A stopped take's finished chunks are kept in History as a partial take."""
    try:
        yield
    except TakeStopped as stopped:
        if stopped.completed and keep:
            job.partial = takes.keep_stopped(take, stopped)
        raise


def variants_work(takes: TakeService, take: TakeJob, client: str | None) -> Work:
    def work(job: Job) -> list[KeptTake]:
        def report(fraction: float, message: str) -> None:
            job.report(fraction, message)
            if job.chunks_total and fraction > 0:
                with job._changed:
                    job.chunks_done = max(job.chunks_done, min(job.chunks_total, round(fraction * job.chunks_total)))
                    if job.first_chunk_at is None:
                        job.first_chunk_at = time.monotonic()
                        job.first_done = job.chunks_done

        return takes.make_variants(take, report, client=client)

    return work
