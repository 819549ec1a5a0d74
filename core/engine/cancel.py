"""What the take runner (core/takes/jobs.py) hands the engine: a job's cancel token, and the
device's turn.

**Stop.**
A take runs in a job's worker thread (``core/takes/jobs.py``); Stop sets the job's
:class:`CancelToken`. The token reaches the engine without widening its protocol: the
worker makes it *current* (a context variable, so each thread and task sees its own),
and the code that runs the model reads it:

* ``SynthesisService`` checks it before every chunk (every engine, the remote one too);
* the torch engine checks it on every talker step -- one step per codec frame, 80 ms of
  audio -- through a forward hook that raises :class:`~core.errors.Stopped`, so the
  stock ``generate`` call unwinds within one frame, batched or alone. The live-decoding
  worker thread does not inherit context variables, so the token is read in the calling
  thread and handed to the hook there (:func:`stop_on_cancel` takes it explicitly).

**The device's turn** (:class:`DeviceTurn`): code that needs the device outside a take (a
transcription, a clone prompt, a remote take's local fallback) runs in ``with service.device:``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from core.errors import Stopped


class CancelToken:
    """Set once by Stop; read by the engine on every frame (an Event: cheap to check, thread-safe)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self, message: str = "Stopped.") -> None:
        if self._event.is_set():
            raise Stopped(message)


_current: ContextVar[CancelToken | None] = ContextVar("studio_cancel_token", default=None)


def current() -> CancelToken | None:
    """The token of the take this thread is making, if it can be stopped."""
    return _current.get()


@contextlib.contextmanager
def cancellable(token: CancelToken | None) -> Iterator[None]:
    """Within this block (in this thread), the engine stops when ``token`` is cancelled."""
    reset = _current.set(token)
    try:
        yield
    finally:
        _current.reset(reset)


def check_current(message: str = "Stopped.") -> None:
    """Raises :class:`Stopped` when the current take was stopped (a no-op outside a job)."""
    token = _current.get()
    if token is not None:
        token.check(message)


@contextlib.contextmanager
def stop_on_cancel(model: Any, token: CancelToken | None) -> Iterator[None]:
    """While the block runs, the talker's next step raises :class:`Stopped` once ``token`` is set.

    Every codec frame is one talker forward (with or without a batch), so generation stops
    within one frame. A model without a torch talker (not qwen-tts) is left alone: the
    service still stops between chunks.
    """
    talker = getattr(getattr(model, "model", None), "talker", None)
    if token is None or talker is None or not hasattr(talker, "register_forward_pre_hook"):
        yield
        return

    def before_step(_module: Any, _args: Any) -> None:
        token.check("Stopped while generating.")

    handle = talker.register_forward_pre_hook(before_step)
    try:
        yield
    finally:
        handle.remove()


class DeviceTurn:
    """``with turn:`` runs its block while nothing else uses this machine's device: ``hold`` is
    the runner's ``JobRegistry.device`` (without a runner the block just runs). Re-entrant."""

    def __init__(self) -> None:
        self.hold: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
        self._held = threading.local()

    def __enter__(self) -> DeviceTurn:
        stack = self._held.__dict__.setdefault("stack", [])
        turn = self.hold()
        turn.__enter__()
        stack.append(turn)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._held.stack.pop().__exit__(*exc)
