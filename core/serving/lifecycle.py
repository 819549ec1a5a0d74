"""The server's life: taking work, draining it on shutdown, cancelling what is left.

Every generation — a UI take, a named-API call, an HTTP request — is admitted
by the synthesis service's ``lifecycle`` (the server's, once it has called
``ServingContext.watch``), which asks :meth:`Lifecycle.work` for
admission and counts itself in flight. On SIGTERM/SIGINT the server calls
:meth:`begin_drain` (new work is refused with :class:`ShuttingDown`), waits for
the in-flight count to reach zero up to ``--shutdown-timeout``, then stops
every job through the take runner (``JobRegistry.stop_all``, core/takes/jobs.py):
each stops within a frame, as Stop does. Takes and voices are written to a
staging folder and renamed into place, so nothing half-written is left either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.errors import StudioError


class ShuttingDown(StudioError):
    """The studio is shutting down and takes no new work."""


@dataclass
class Lifecycle:
    started_at: float = field(default_factory=time.time)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _in_flight: int = 0
    _draining: bool = False

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def admit(self) -> None:
        """Raises ShuttingDown once draining has begun."""
        if self._draining:
            raise ShuttingDown("The studio is shutting down and takes no new work; try again when it is back.")

    @contextmanager
    def work(self) -> Iterator[None]:
        """Counts one generation in flight for as long as the block runs."""
        with self._cond:
            self.admit()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def begin_drain(self) -> None:
        with self._cond:
            self._draining = True

    def wait_idle(self, timeout: float) -> bool:
        """Waits until nothing is in flight; False when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True
