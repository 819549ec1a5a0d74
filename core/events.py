"""What happened in the engine and the stores, told to whoever listens (metrics, the audit log).

The synthesis service, the voice library, the model manager and the model store each
hold an :class:`Events` and emit a typed event at the point where something happened:
a generation finished or failed, a voice was saved, a model was loaded or evicted. Nothing
listens by default; the server subscribes its metrics and its audit log at start-up
(``core/serving/observers.py``). So what runs after a save is in the code that saves, and
whoever reads it can follow the call to the subscribers, instead of wrappers put around
methods at start-up.

An event is a frozen dataclass of plain values (ids, names, keys, seconds), never text
spoken, a transcript or audio. Observers run in the emitting thread and must be quick; one
that fails is logged and the others still run, so a full disk under the audit log never
fails a save.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationStarted:
    mode: str  # a Mode value


@dataclass(frozen=True)
class GenerationFinished:
    mode: str
    generate_s: float
    audio_s: float


@dataclass(frozen=True)
class GenerationFailed:
    mode: str


class VoiceAction(str, Enum):
    """A change to the voice library; the value is the audit log's action."""

    SAVE = "voice.save"
    RENAME = "voice.rename"
    UPDATE = "voice.update"
    DUPLICATE = "voice.duplicate"
    DELETE = "voice.delete"
    IMPORT = "voice.import"
    EXPORT = "voice.export"


@dataclass(frozen=True)
class VoiceChanged:
    action: VoiceAction
    subject: str  # the voice's id (several joined by commas for import and export)
    name: str | None = None
    kind: str | None = None
    fields: tuple[str, ...] | None = None  # update: the fields given
    source: str | None = None  # duplicate: the voice copied
    count: int | None = None  # import: how many voices


class ModelAction(str, Enum):
    """A change to the models in memory or on disk; the value is the audit log's action."""

    LOAD = "model.load"
    UNLOAD = "model.unload"
    DOWNLOAD = "model.download"
    REMOVE = "model.remove"


@dataclass(frozen=True)
class ModelChanged:
    action: ModelAction
    subject: str  # the checkpoint key (several joined by commas for an unload of all)
    seconds: float | None = None  # load: how long it took
    device: str | None = None  # load: where it went
    reason: str | None = None  # unload: "evicted" when the resident limit made room
    for_model: str | None = None  # eviction: the model that needed the room


@dataclass(frozen=True)
class MaxResidentChanged:
    value: int


Event = GenerationStarted | GenerationFinished | GenerationFailed | VoiceChanged | ModelChanged | MaxResidentChanged
Observer = Callable[[Event], None]


class Admission(Protocol):
    """Whether a generation may start and how long it runs: unlike an observer, it can refuse
    (the server's lifecycle while shutting down, core/serving/lifecycle.py, raises ShuttingDown
    or Cancelled), so the synthesis service calls it, not an observer."""

    def admit(self) -> None: ...

    def work(self) -> contextlib.AbstractContextManager[None]: ...

    def check_cancelled(self) -> None: ...


class AlwaysAdmit:
    """The admission of a studio with no server around it (scripts, the CLI, tests)."""

    def admit(self) -> None:
        pass

    def work(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def check_cancelled(self) -> None:
        pass


@dataclass
class Events:
    """Hands every event to the observers subscribed, in order (none until someone subscribes)."""

    _observers: list[Observer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def subscribe(self, observer: Observer) -> None:
        with self._lock:
            self._observers = [*self._observers, observer]

    def emit(self, event: Event) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:  # noqa: BLE001 - an observer never fails the action it watches
                log.exception("event=observer_failed event=%s", type(event).__name__)
