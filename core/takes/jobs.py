"""Takes as jobs: made in a worker thread the studio owns, not in a browser's request.

A take started from a tab (one take, several variants, a script) or from the named API
becomes a :class:`Job` in the :class:`JobRegistry`. The registry's one worker thread makes
jobs one at a time, in the order they came (the device makes one generation at a time
anyway), through the same ``TakeService`` / ``SynthesisService`` as everything else. So:

* a take keeps going when the browser tab that started it closes or reloads, and lands in
  History; the page, reopened, lists running and recent jobs and can follow one again;
* **Stop** sets the job's cancel token (``core/engine/cancel.py``): the engine stops within
  one frame, and the chunks already finished are kept as a partial take ("stopped at chunk
  k of n") that **Resume** finishes with the same per-chunk seeds;
* followers (the page that started the job, a reloaded page, an API call) read the job's
  progress -- chunk k of n, elapsed, an estimate of the time left -- and its live pieces.

Finished jobs are kept a while for the "Running & recent" list (at most ``keep_finished``,
and none longer than ``keep_for_s``); their takes are in History for good.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from core import text as textlib
from core.engine.cancel import CancelToken, cancellable
from core.engine.live_decoding import LiveAudio
from core.engine.synthesis import ChunkAudio, ChunkFailed, TakeStopped
from core.errors import InvalidInput, Stopped, StudioError
from core.takes import progress
from core.takes.script_jobs import script_work, stopped_script
from core.takes.service import KeptTake, TakeJob, TakeService
from core.types import SynthesisResult

log = logging.getLogger(__name__)

# Speaking rates for the estimate shown before a take is made (not the frame caps, which
# are generous upper bounds in core/text.py): about 150 words a minute in spaced scripts
# (~15 characters a second, spaces and punctuation included) and 5 characters a second in
# Chinese, Japanese and Korean.
SPACED_CHARS_PER_SECOND = 15.0
DENSE_CHARS_PER_SECOND = 5.0
KEEP_FINISHED = 20
KEEP_FOR_S = 6 * 3600.0


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.STOPPED)


@dataclass(frozen=True)
class TextPlan:
    """What a text will make, told before generating: characters, chunks, seconds of speech."""

    chars: int
    chunks: int
    speech_s: float

    def describe(self) -> str:
        if not self.chars:
            return ""
        return (
            f"{self.chars:,} characters · {self.chunks} chunk{'s' if self.chunks != 1 else ''} · "
            f"about {format_seconds(self.speech_s)} of speech"
        )


def plan_text(text: str, chunk_chars: int) -> TextPlan:
    """The plan of ``text`` as the service will cut it (the lexicon may change it a little)."""
    text = textlib.normalize_text(text or "")
    if not text:
        return TextPlan(0, 0, 0.0)
    dense = sum(1 for ch in text if textlib._is_cjk(ch))
    seconds = (len(text) - dense) / SPACED_CHARS_PER_SECOND + dense / DENSE_CHARS_PER_SECOND
    return TextPlan(len(text), len(textlib.chunk_text(text, max_chars=chunk_chars)), seconds)


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s"


Work = Callable[["Job"], list[KeptTake]]


@dataclass
class Job:
    """One take being made (or made): its state, progress, live pieces and result."""

    id: str
    kind: str  # "take", "variants", "script", "resume"
    mode: str  # the mode's plain name ("Design", "Custom", "Clone", "Script")
    summary: str  # the start of its text, for lists
    owner: str = ""  # the browser session (or API caller) that started it
    client: str = ""  # user@address: a reloaded page lists the jobs of its own client
    tab: str = ""  # the tab (parse function) that started it
    chars: int = 0
    speech_s: float = 0.0  # the text's expected seconds of speech (core/takes/progress.py)
    chunks_total: int = 0
    chunks_done: int = 0
    message: str = "Waiting for the device…"
    state: JobState = JobState.QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None  # monotonic
    first_chunk_at: float | None = None  # monotonic; rates are measured from here
    first_done: int = 0  # chunks done at first_chunk_at
    ended: float | None = None
    error: StudioError | None = None
    kept: list[KeptTake] = field(default_factory=list)
    partial: KeptTake | None = None  # a stopped take's finished chunks, in History
    stopped: TakeStopped | None = None  # what Resume continues (in this process)
    take: TakeJob | None = None  # the take being made, as kept (for Resume)
    token: CancelToken = field(default_factory=CancelToken)
    pieces: list[Any] = field(default_factory=list)  # LiveAudio / ChunkAudio / script lines, in order
    guess_s_per_char: float | None = None  # the last jobs' rate, for an ETA before any chunk is done
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    # --- what followers read ------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state.finished

    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    def eta_s(self) -> float | None:
        """Seconds left, from the chunks done so far (or the last jobs' rate before the first)."""
        if self.finished or self.started is None or not self.chunks_total:
            return None
        left = self.chunks_total - self.chunks_done
        if self.first_chunk_at is not None:
            # The first chunk this job made includes loading the model; the rest is measured
            # from its end. A resumed take starts with chunks it did not make (first_done - 1).
            since_first = self.chunks_done - self.first_done
            if since_first > 0:
                rate = (time.monotonic() - self.first_chunk_at) / since_first
            else:
                rate = self.first_chunk_at - self.started
            return rate * left
        if self.guess_s_per_char is not None:
            return max(0.0, self.guess_s_per_char * self.chars - self.elapsed_s())
        return None

    def progress_text(self) -> str:
        """ "Chunk 2 of 5 · 0:03 elapsed · about 6 s left" (or the final word on the job)."""
        if self.state is JobState.QUEUED:
            return "Queued: waiting for the take before it to finish."
        if self.state is JobState.DONE:
            return f"Done in {format_seconds(self.elapsed_s())}."
        if self.state is JobState.STOPPED:
            return self.error.args[0] if self.error else "Stopped."
        if self.state is JobState.FAILED:
            return f"Failed: {self.error}" if self.error else "Failed."
        # Audio made and time left from the model's frames, moving while a chunk is made.
        return progress.running_line(self, self.eta_s())

    def fraction(self) -> float:
        return self.chunks_done / self.chunks_total if self.chunks_total else 0.0

    def follow(self, start: int = 0, *, tick_s: float = 0.5) -> Iterator[tuple[list[Any], bool]]:
        """(new pieces, finished) now and then: at every new piece, at least every ``tick_s``
        (so elapsed time moves), and once more when the job is finished."""
        seen = start
        while True:
            with self._changed:
                if len(self.pieces) == seen and not self.finished:
                    self._changed.wait(tick_s)
                new = self.pieces[seen:]
                finished = self.finished
            seen += len(new)
            yield new, finished
            if finished:
                return

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until the job is finished (or ``timeout``); True when it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while not self.finished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # --- what the worker writes -----------------------------------------------

    def publish(self, piece: Any) -> None:
        with self._changed:
            self.pieces.append(piece)
            self._changed.notify_all()

    def report(self, fraction: float, message: str) -> None:
        """The engine's progress callback."""
        with self._changed:
            self.message = message
            self._changed.notify_all()

    def chunk_done(self, index: int, total: int) -> None:
        with self._changed:
            self.chunks_total = total
            self.chunks_done = max(self.chunks_done, index + 1)
            if self.first_chunk_at is None:
                self.first_chunk_at = time.monotonic()
                self.first_done = self.chunks_done
            self._changed.notify_all()

    def _finish(self, state: JobState, error: StudioError | None = None) -> None:
        with self._changed:
            self.state = state
            self.error = error
            self.ended = time.monotonic()
            self._changed.notify_all()


class JobRegistry:
    """Runs jobs one at a time in a worker thread; keeps running and recent ones for followers."""

    def __init__(self, takes: TakeService, *, keep_finished: int = KEEP_FINISHED, keep_for_s: float = KEEP_FOR_S):
        self.takes = takes
        self.keep_finished = keep_finished
        self.keep_for_s = keep_for_s
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Job, Work] | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._worker: threading.Thread | None = None
        self._s_per_char: float | None = None  # the last finished take's wall time per character

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
    ) -> Job:
        """Queues ``work`` (called in the worker thread with the job) and returns its job at once."""
        plan = plan_text(text, self.takes.synthesis.chunk_chars)
        summary = " ".join(text.split())
        job = Job(
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
        )
        with self._lock:
            self._jobs[job.id] = job
            self._prune()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run_forever, name="studio-jobs", daemon=True)
                self._worker.start()
        self._queue.put((job, work))
        return job

    def start_take(self, take: TakeJob, *, client: str | None = None, owner: str = "", tab: str = "") -> Job:
        """One take (or ``take.variants`` of it) of a tab's request."""
        kind = "variants" if take.variants > 1 else "take"
        work = variants_work(self.takes, take, client) if take.variants > 1 else take_work(self.takes, take, client)
        return self.submit(
            work, kind=kind, mode=mode_name(take), text=take.request.text, owner=owner, tab=tab, client=client
        )

    def resume(self, take_id: str, *, client: str | None = None, owner: str = "", tab: str = "") -> Job:
        """A new job that finishes a stopped take (in History) from its first missing chunk."""
        take = self.takes.history.get(take_id)
        if not take.stopped:
            raise InvalidInput("This take is complete; only a stopped take can be resumed.")
        if take.mode == "script":
            return self.resume_script(take_id, client=client, owner=owner, tab=tab)
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

    def resume_script(self, take_id: str, *, client: str | None = None, owner: str = "", tab: str = "") -> Job:
        """A new job that renders a stopped script's missing lines with their own seeds, reusing
        the lines it kept (core/takes/script_jobs.py); the complete take replaces it in History."""
        plan, fmt, done = stopped_script(self.takes, take_id)
        return self.submit(
            script_work(self.takes, plan, fmt, done=done, replaces=take_id),
            kind="script",
            mode="Script",
            text=plan.text,
            owner=owner,
            tab=tab,
            chunks=len(plan.lines),
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
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise InvalidInput("That job is no longer listed; its take, if it made one, is in History.")
        return job

    def all(self) -> list[Job]:
        """Running and queued jobs first, then the finished ones, newest first."""
        with self._lock:
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

    def close(self) -> None:
        """Stops every job and the worker (server shutdown)."""
        for job in self.all():
            job.token.cancel()
        self._queue.put(None)

    # --- the worker ---------------------------------------------------------------------

    def _run_forever(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            job, work = entry
            self._run(job, work)

    def _run(self, job: Job, work: Work) -> None:
        if job.token.cancelled:
            job._finish(JobState.STOPPED, Stopped("Stopped before it started; nothing was made."))
            return
        with job._changed:
            job.state = JobState.RUNNING
            job.started = time.monotonic()
            job._changed.notify_all()
        try:
            with cancellable(job.token):
                job.kept = work(job)
        except TakeStopped as stopped:
            job.stopped = stopped
            job._finish(JobState.STOPPED, stopped)
        except Stopped as stopped:
            job._finish(JobState.STOPPED, stopped)
        except StudioError as exc:
            job._finish(JobState.FAILED, exc)
        except Exception as exc:  # a bug: logged here, told to followers in plain words
            log.exception("job %s failed", job.id)
            job._finish(JobState.FAILED, StudioError(f"Something went wrong ({type(exc).__name__}); see the log."))
        else:
            job._finish(JobState.DONE)
            if job.chars:
                self._s_per_char = job.elapsed_s() / job.chars
        log.info(
            "event=job id=%s kind=%s state=%s chunks=%d/%d wall_s=%.2f",
            job.id,
            job.kind,
            job.state.value,
            job.chunks_done,
            job.chunks_total,
            job.elapsed_s(),
        )

    def _prune(self) -> None:
        """Drops finished jobs beyond the limits (called with the lock held)."""
        now = time.time()
        finished = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.created, reverse=True)
        for number, job in enumerate(finished):
            if number >= self.keep_finished or now - job.created > self.keep_for_s:
                del self._jobs[job.id]


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


def _deliver(takes: TakeService, take: TakeJob, job: Job, stream: Iterator[Any]) -> list[KeptTake]:
    job.take = take
    for item in stream:  # TakeStopped and ChunkFailed go up to the registry
        if isinstance(item, SynthesisResult):
            return [takes.keep(take, item)]
        job.publish(item)
        if isinstance(item, ChunkAudio):
            job.chunk_done(item.index, item.total)
        elif isinstance(item, LiveAudio) and job.chunks_total != item.total:
            job.chunks_total = item.total  # the lexicon changed the text a little
    raise AssertionError("a stream always ends with a result")  # pragma: no cover


@contextlib.contextmanager
def _keeping_partial(takes: TakeService, take: TakeJob, job: Job) -> Iterator[None]:
    """A stopped take's finished chunks are kept in History as a partial take."""
    try:
        yield
    except TakeStopped as stopped:
        if stopped.completed:
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
