"""The remote servers, per checkpoint: balancing, health, a circuit breaker and retries.

* **Balancing:** each call goes to the server for the checkpoint with the
  fewest requests in flight (ties: the one that has had fewer), so a batch of
  chunks spreads over every server and a slow server gets less.
* **Circuit breaker** per server: ``failures`` failures in a row open it, and
  no request is sent there for ``cooldown_s``; then one request (or the health
  check) is let through as a probe (half-open). Success closes it, failure
  opens it again for another cool-down. An open server costs nothing, so with
  every server down a take fails at once instead of waiting on timeouts.
* **Retry:** a chunk that fails on one server for a server reason (refused,
  reset, timeout, 5xx) is sent to the next server that has not failed it;
  a rejection (4xx) is the request's fault and is reported as it is.
* **Health checks:** a background thread calls ``GET /models`` on every
  server each cool-down; that also discovers servers that were down at start.

Every error names the servers and their failures; none holds a key.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.engine.catalog import Catalog
from core.engine.remote.client import RemoteClient, RemoteFailure
from core.engine.remote.config import RemoteServer
from core.engine.remote.discovery import Discovery, ServerKind, discover
from core.errors import GenerationError, RemoteEngineError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Health:
    """A server's state as the Models tab and /health show it."""

    UP = "up"  # closed circuit: takes work
    DOWN = "down"  # open circuit: skipped until the cool-down ends
    PROBING = "probing"  # half-open: the next request (or health check) decides
    UNKNOWN = "unknown"  # never reached yet: what it serves is not known


@dataclass
class ServerState:
    server: RemoteServer
    client: RemoteClient
    discovery: Discovery | None = None
    in_flight: int = 0
    requests: int = 0  # calls sent, all told
    errors: int = 0  # calls failed, all told
    failures: int = 0  # failures in a row (the breaker's count)
    opened_at: float | None = None  # when the circuit opened (None: closed)
    probing: bool = False  # a half-open probe is under way
    last_error: str | None = None
    checked_at: float | None = None
    streams: bool = True  # False once it refused ``stream: true``: later chunks ask for whole files
    models: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.server.label


class Pool:
    def __init__(
        self,
        servers: list[RemoteServer],
        catalog: Catalog,
        *,
        timeout_s: float = 300.0,
        failures: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.catalog = catalog
        self.failures = max(1, int(failures))
        self.cooldown_s = float(cooldown_s)
        self.clock = clock
        self.states = [ServerState(s, RemoteClient(s, timeout_s=timeout_s)) for s in servers]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # --- discovery and health ---------------------------------------------------

    def check(self) -> None:
        """One health check of every server at once (``GET /models``, which also re-discovers)."""
        if not self.states:
            return
        with ThreadPoolExecutor(max_workers=len(self.states)) as pool:
            list(pool.map(self._check_one, self.states))

    def _check_one(self, state: ServerState) -> None:
        try:
            listing = state.client.list_models()
        except RemoteFailure as exc:
            self._failed(state, str(exc), counted=False)
            log.warning("event=remote_health server=%s ok=false error=%s", state.label, exc)
            return
        found = discover(listing, self.catalog)
        with self._lock:
            state.discovery = found
            state.models = dict(found.models)
            state.checked_at = self.clock()
            self._closed(state)
        log.info(
            "event=remote_health server=%s ok=true kind=%s serves=%s",
            state.label,
            found.kind,
            ",".join(found.models) or "-",
        )

    def start_monitor(self, interval_s: float | None = None) -> None:
        """Health checks in a daemon thread every ``interval_s`` (default: the cool-down)."""
        if self._monitor is not None or not self.states:
            return
        interval = float(interval_s or self.cooldown_s)

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.check()
                except Exception:  # a monitor that dies silently would leave servers down forever
                    log.exception("remote health check failed")

        self._monitor = threading.Thread(target=run, name="remote-health", daemon=True)
        self._monitor.start()

    def close(self) -> None:
        self._stop.set()
        for state in self.states:
            state.client.close()

    # --- routing ------------------------------------------------------------------

    def servers_for(self, key: str) -> list[ServerState]:
        with self._lock:
            return [s for s in self.states if key in s.models]

    def serves(self, key: str) -> bool:
        return bool(self.servers_for(key))

    def undiscovered(self) -> list[ServerState]:
        with self._lock:
            return [s for s in self.states if s.discovery is None]

    def kind(self, state: ServerState) -> ServerKind:
        return state.discovery.kind if state.discovery else ServerKind.OPENAI

    def available(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            return any(self._may_send(s, now) for s in self.states if key in s.models)

    def _may_send(self, state: ServerState, now: float) -> bool:
        if state.opened_at is None:
            return True
        return not state.probing and now - state.opened_at >= self.cooldown_s

    def _acquire(self, key: str, tried: set[int]) -> ServerState | None:
        now = self.clock()
        with self._lock:
            candidates = [s for s in self.states if key in s.models and id(s) not in tried and self._may_send(s, now)]
            if not candidates:
                return None
            state = min(candidates, key=lambda s: (s.in_flight, s.requests))
            if state.opened_at is not None:
                state.probing = True  # half-open: this request is the probe
                log.info("event=remote_probe server=%s", state.label)
            state.in_flight += 1
            state.requests += 1
            return state

    def call(self, key: str, what: str, fn: Callable[[ServerState], T]) -> tuple[T, ServerState]:
        """``fn`` on the best server for ``key``, retried on the others while they fail for server reasons."""
        tried: set[int] = set()
        failures: list[str] = []
        while True:
            state = self._acquire(key, tried)
            if state is None:
                raise self.down_error(key, what, failures)
            tried.add(id(state))
            try:
                result = fn(state)
            except RemoteFailure as exc:
                self._attempt_failed(state, exc, what, failures)
                continue
            except BaseException:
                self._released(state)
                raise
            with self._lock:
                state.in_flight -= 1
                self._closed(state)
            return result, state

    def stream(self, key: str, what: str, fn: Callable[[ServerState], Iterator[T]]) -> Iterator[tuple[T, ServerState]]:
        """``fn``'s items from the best server for ``key`` as they arrive, each with its server.

        A server that fails for a server reason is left for the next one, whose items
        then start again from the first (the caller sees the server change). Closing
        this generator closes ``fn``'s and counts the request as finished.
        """
        tried: set[int] = set()
        failures: list[str] = []
        while True:
            state = self._acquire(key, tried)
            if state is None:
                raise self.down_error(key, what, failures)
            tried.add(id(state))
            try:
                with contextlib.closing(fn(state)) as items:  # type: ignore[type-var]
                    for item in items:
                        yield item, state
            except RemoteFailure as exc:
                self._attempt_failed(state, exc, what, failures)
                continue
            except BaseException:
                self._released(state)
                raise
            with self._lock:
                state.in_flight -= 1
                self._closed(state)
            return

    def _released(self, state: ServerState) -> None:
        with self._lock:
            state.in_flight -= 1
            state.probing = False

    def _attempt_failed(self, state: ServerState, exc: RemoteFailure, what: str, failures: list[str]) -> None:
        """A failed call: a rejection goes back to the user; a server failure counts, and the caller retries."""
        self._released(state)
        if not exc.retryable:
            with self._lock:
                self._closed(state)  # the server answered: it is healthy
            raise GenerationError(f"The remote engine {state.label} refused {what}: {exc}") from None
        self._failed(state, str(exc))
        failures.append(f"{state.label} ({exc})")
        log.warning("event=remote_retry server=%s what=%r error=%s", state.label, what, exc)

    def _closed(self, state: ServerState) -> None:
        """Success: the breaker closes (caller holds the lock)."""
        if state.opened_at is not None:
            log.info("event=remote_circuit server=%s state=closed", state.label)
        state.failures = 0
        state.opened_at = None
        state.probing = False
        state.last_error = None

    def _failed(self, state: ServerState, error: str, *, counted: bool = True) -> None:
        with self._lock:
            state.failures += 1
            state.errors += 1 if counted else 0
            state.last_error = error
            state.probing = False
            if state.opened_at is not None or state.failures >= self.failures:
                # A failed probe (or the N-th failure in a row) opens it for another cool-down.
                if state.opened_at is None:
                    log.warning("event=remote_circuit server=%s state=open failures=%d", state.label, state.failures)
                state.opened_at = self.clock()

    def down_error(self, key: str, what: str, failures: list[str] | None = None) -> RemoteEngineError:
        """The clear error when no server for ``key`` can take ``what``: every server and why."""
        now = self.clock()
        reasons = list(failures or [])
        named = {r.split(" ", 1)[0] for r in reasons}
        with self._lock:
            for s in self.states:
                if s.label in named or (key not in s.models and s.discovery is not None):
                    continue
                if s.discovery is None:
                    reasons.append(f"{s.label} (not reached yet: {s.last_error or 'never answered GET /models'})")
                elif s.opened_at is not None:
                    wait = max(0.0, self.cooldown_s - (now - s.opened_at))
                    reasons.append(
                        f"{s.label} (down after {s.failures} failure(s): {s.last_error}; probed again in {wait:.0f} s)"
                    )
        listed = "; ".join(reasons) or "no server serves it"
        return RemoteEngineError(
            f"No remote engine could generate {what} with {key}: {listed}. Start the server(s), or run the "
            "studio with --engine-fallback local to use the local model meanwhile."
        )

    # --- what the Models tab and /health show ------------------------------------------

    def health(self, state: ServerState) -> str:
        if state.discovery is None:
            return Health.UNKNOWN
        if state.opened_at is None:
            return Health.UP
        return Health.PROBING if state.probing or self.clock() - state.opened_at >= self.cooldown_s else Health.DOWN

    def rows(self) -> list[dict[str, Any]]:
        """One row per server and checkpoint (a server not yet reached gets one row); never a key."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for s in self.states:
                common = {
                    "server": s.label,
                    "kind": str(s.discovery.kind) if s.discovery else None,
                    "health": self.health(s),
                    "in_flight": s.in_flight,
                    "requests": s.requests,
                    "errors": s.errors,
                    "last_error": s.last_error,
                }
                if not s.models:
                    out.append({"key": None, "remote_model": None, **common})
                for key, remote_id in s.models.items():
                    out.append({"key": key, "remote_model": remote_id, **common})
        return out
