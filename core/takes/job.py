"""A take being made (core/takes/jobs.py runs it): its state, progress, live pieces and result,
as followers (a page, an API response, "Running & recent") read them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from core import text as textlib
from core.engine.cancel import CancelToken
from core.engine.synthesis import TakeStopped
from core.errors import StudioError
from core.takes import progress
from core.takes.progress import format_seconds  # re-exported: the tabs and the API format durations with it
from core.takes.service import KeptTake, TakeJob
from core.types import SynthesisResult

DEVICE = "device"  # the lane of this machine's device (a remote checkpoint's takes get a lane of their own)


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
    seconds = textlib.speech_seconds(text)
    return TextPlan(len(text), len(textlib.chunk_text(text, max_chars=chunk_chars)), seconds)


Work = Callable[["Job"], list[KeptTake]]
MAX_SAID = 500  # progress messages a job keeps for said_since


@dataclass
class Job:
    """One take being made (or made): its state, progress, live pieces and result."""

    id: str
    kind: str  # "take", "variants", "script", "resume", "retry", "regenerate", "device", "train", "evaluate" (core/finetune/)
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
    result: SynthesisResult | None = None  # what the engine made (a whole take's caller encodes it)
    lane: str = DEVICE  # the worker that makes it: this machine's device, or a remote checkpoint's
    together: int = 1  # how many queued whole takes were served with it in one engine batch
    pieces: list[Any] = field(default_factory=list)  # LiveAudio / ChunkAudio / script lines, in order
    guess_s_per_char: float | None = None  # the last jobs' rate, for an ETA before any chunk is done
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    # Each new progress message, in order (the last MAX_SAID): a log that polls misses none, however
    # fast a step goes (the CLI printed no block line for a render that ended between two polls).
    _said: list[str] = field(default_factory=list, repr=False)
    _said_dropped: int = field(default=0, repr=False)

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

    def said_since(self, seen: int) -> tuple[list[str], int]:
        """The progress messages reported after the first ``seen``, and how many there have been."""
        with self._changed:
            return self._said[max(0, seen - self._said_dropped) :], self._said_dropped + len(self._said)

    def report(self, fraction: float, message: str) -> None:
        """The engine's progress callback."""
        with self._changed:
            if message != self.message:
                self._said.append(message)
                if len(self._said) > 2 * MAX_SAID:
                    self._said_dropped += len(self._said) - MAX_SAID
                    del self._said[:-MAX_SAID]
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
