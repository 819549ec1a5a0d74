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
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from core.errors import Stopped


class CancelToken:
    """Set once by Stop; read by the engine on every frame (an Event: cheap to check, thread-safe).

    The same per-frame call counts the frames made (summed over a batch's rows), so a job's
    progress moves with the model and not only when a whole chunk is done
    (core/takes/progress.py reads ``frames`` and ``first_frame_at``).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self.frames = 0  # codec frames made so far (80 ms of audio each), every row of a batch
        self.first_frame_at: float | None = None  # monotonic time of the first one (model loaded)
        self.rows = 0  # the widest batch seen (variants: one row per take)

    def step(self, rows: int = 1) -> None:
        """One talker step: ``rows`` frames made; raises :class:`Stopped` once cancelled."""
        self.check("Stopped while generating.")
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        self.rows = max(self.rows, rows)
        self.frames += rows  # one writer (the generating thread); readers only need a recent value

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

    def before_step(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        token.step(_rows(args, kwargs))

    handle = talker.register_forward_pre_hook(before_step, with_kwargs=True)
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


def _rows(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The batch size of a talker step: the first dimension of its first tensor input."""
    for value in (*args, *kwargs.values()):
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) >= 2:
            return int(shape[0])
    return 1
