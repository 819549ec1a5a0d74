"""Waiting for the device: the device lock, and requests served together while they wait.

One generation runs on this machine's device at a time (``DeviceLock``). A take
that finds the device free starts at once, exactly as before -- a lone
request's first audio is never later. A take that finds it busy joins the
queue with every other waiting take *that could share a batch with it*: the
same checkpoint, mode and sampling options (seeds and frame caps are per item;
``request_batch.group_key``). When the device frees, the first take of a group
(its leader) takes the lock and, if others joined meanwhile, serves the whole
group through ``request_batch.run_group``: their chunks go through the model
together (chunk 0 of every take first, in batches the engine sizes), each
take with its own seeds, so each result equals the take made alone. A group of
one runs the ordinary single-take path.

Only whole takes are coalesced (``SynthesisService.synthesize``: the OpenAI
route without ``stream``, the CLI, History's Regenerate, /voice_design_save).
Live takes (the UI's Generate, ``stream: true``), resumed takes and stoppable
jobs (core/takes/jobs.py: the tabs' takes and the named API's /design,
/custom_voice, /clone) keep their own path and wait for the lock in line:
their first audio comes from live pieces of their own first chunk, which a
shared batch would not give.

``Coalescer.served`` / ``.batches`` count what was served together (GET /metrics:
``qwen_tts_studio_requests_served_together_total``), and each shared run logs
``event=coalesce``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.errors import StudioError

if TYPE_CHECKING:
    from core.engine.request_batch import _Pending

log = logging.getLogger(__name__)


class DeviceLock:
    """The one-generation-at-a-time lock of this machine's device.

    Re-entrant for the thread that holds it: a remote take that falls back to the
    local model takes it inside the engine router, and must not deadlock when the
    service already holds it for the same take. ``locked()`` tells the metrics
    whether a generation holds the device.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0  # changed only by the holder, under the lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking, timeout):
            self._depth += 1
            return True
        return False

    def release(self) -> None:
        self._depth -= 1
        self._lock.release()

    def locked(self) -> bool:
        return self._depth > 0

    def held(self) -> contextlib.AbstractContextManager[object]:
        """For a caller that already acquired the lock: a block that releases it at the end."""
        return _Release(self)

    def __enter__(self) -> DeviceLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


class _Release:
    def __init__(self, lock: DeviceLock):
        self.lock = lock

    def __enter__(self) -> DeviceLock:
        return self.lock

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


@dataclass
class _Group:
    """Takes waiting for the device that can share batches; the first one leads."""

    key: tuple
    members: list[_Pending] = field(default_factory=list)
    closed: bool = False  # the leader took it: later arrivals start a new group


@dataclass
class Ticket:
    """One waiting take: its prepared work, and what it was served (set by its group's leader)."""

    pending: _Pending
    done: threading.Event = field(default_factory=threading.Event)
    together: int = 1  # how many takes its group served
    queued_s: float = 0.0


class Coalescer:
    """Groups takes that wait for ``lock`` (see the module notes)."""

    def __init__(self, lock: DeviceLock):
        self.lock = lock
        self.enabled = True  # False: every take waits for the lock alone (the old way)
        self.served = 0  # takes served in a shared run (2+ takes)
        self.batches = 0  # shared runs
        self._mutex = threading.Lock()
        self._open: dict[tuple, _Group] = {}
        self._tickets: dict[int, Ticket] = {}

    def waiting(self) -> int:
        """Takes queued in open groups (their leader has not taken the device yet)."""
        with self._mutex:
            return sum(len(g.members) for g in self._open.values())

    def counts(self) -> tuple[int, int]:
        """(takes served together, shared runs), for GET /metrics."""
        with self._mutex:
            return self.served, self.batches

    def wait(
        self,
        key: tuple,
        pending: _Pending,
        run: Callable[[list[_Pending], Callable[[_Pending], None]], None],
    ) -> Ticket | None:
        """Blocks until this take may run or was served.

        Returns None when the caller holds the lock and should make its take alone
        (the device was free, or nobody joined its group); it must release the lock.
        Otherwise the take was served with others: ``ticket.pending`` holds its
        pieces or its error. ``run(members, finished)`` generates a group while the
        lock is held and calls ``finished(member)`` as soon as a member is complete.
        """
        if not self.enabled or self.lock.acquire(blocking=False):
            if not self.enabled:
                self.lock.acquire()
            return None
        started = time.perf_counter()
        ticket = Ticket(pending)
        with self._mutex:
            group = self._open.get(key)
            leader = group is None
            if group is None:
                group = self._open[key] = _Group(key)
            group.members.append(pending)
            self._tickets[id(pending)] = ticket
        if not leader:
            ticket.done.wait()
            return ticket
        self.lock.acquire()
        with self._mutex:
            group.closed = True
            if self._open.get(key) is group:
                del self._open[key]
            members = list(group.members)
            tickets = [self._tickets.pop(id(m)) for m in members]
        queued_s = time.perf_counter() - started
        if len(members) == 1:
            return None  # nobody joined: the ordinary path, lock held
        for one in tickets:
            one.together = len(members)
            one.queued_s = queued_s
        by_id = {id(t.pending): t for t in tickets}

        def finished(member: _Pending) -> None:
            if member is not pending:  # the leader reads its own outcome after the run
                by_id[id(member)].done.set()

        try:
            run(members, finished)
        except StudioError as exc:  # e.g. the model could not load: every member says so
            for member in members:
                member.error = member.error or exc
        except BaseException as exc:  # noqa: BLE001 - never leave a member waiting forever
            for member in members:
                member.error = member.error or _internal(exc)
            raise
        finally:
            self.lock.release()
            with self._mutex:
                self.served += len(members)
                self.batches += 1
            for one in tickets:
                one.done.set()
        return ticket


def _internal(exc: BaseException) -> StudioError:
    from core.errors import GenerationError

    return GenerationError(f"Generation failed for a request served with others: {type(exc).__name__}: {exc}")
