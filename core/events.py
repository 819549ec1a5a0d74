"""What happened in the engine and the stores, told to whoever listens (metrics, the audit log).

The synthesis service, the voice library, the model manager and the model store emit a typed
event where something happened (a generation finished, a voice was saved, a model was evicted)
into the app's one :class:`Events`. Nothing listens by default; the server subscribes its
metrics and audit log (``ServingContext.watch``). So what runs after a save can be read from
the code that saves, instead of from wrappers put around methods at start-up. Events carry ids,
names, keys and seconds, never text spoken or audio. Observers run in the emitting thread; one
that fails is logged and never fails the action it watches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

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


@dataclass
class Events:
    """Hands every event to the observers subscribed, in order (none until someone subscribes)."""

    _observers: list[Observer] = field(default_factory=list)

    def subscribe(self, observer: Observer) -> None:
        """At start-up, before any event (emitting reads the list without a lock)."""
        self._observers.append(observer)

    def emit(self, event: Event) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:  # noqa: BLE001 - an observer never fails the action it watches
                log.exception("event=observer_failed event=%s", type(event).__name__)
