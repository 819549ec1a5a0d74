"""The audit log: one JSON line per sensitive action, in the data dir, rotated.

Sensitive actions are the ones an owner wants to be able to trace later:
library changes (voice save, rename, update, duplicate, delete, import,
export), authentication failures, model download / load / unload and
settings changed from the UI. Each line holds the time (UTC, ISO 8601), the
client (``user@address``, or ``local``), the action and the object it
touched, plus a few plain details (ids, names, model keys). Never the text
spoken, a transcript or audio: the log may be shared for a bug report.

Who the client is comes from the entry point: the HTTP routes set
:data:`current_client` for their request; the web server installs a
``client_resolver`` that reads it from the Gradio event being handled.
The library and model manager are watched at composition time
(:func:`watch_library`, :func:`watch_models`) rather than by calls sprinkled
through every tab, so an action is recorded whichever entry point made it.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import logging.handlers
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.engine.model_manager import ModelManager
    from core.engine.model_store import ModelStore
    from core.storage.library import VoiceLibrary

AUDIT_FILE = "audit.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5

current_client: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_client", default=None)


class AuditLog:
    _counter = 0
    _counter_lock = threading.Lock()

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.client_resolver: Callable[[], str | None] | None = None
        with AuditLog._counter_lock:  # one logger per log file, never shared between studios
            AuditLog._counter += 1
            name = f"qwen_tts_studio.audit.{AuditLog._counter}"
        self._logger = logging.getLogger(name)
        self._logger.propagate = False  # audit lines stay out of the console log
        self._logger.setLevel(logging.INFO)
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger.addHandler(self._handler)

    def client(self) -> str:
        client = current_client.get()
        if client is None and self.client_resolver is not None:
            try:
                client = self.client_resolver()
            except Exception:  # noqa: BLE001 - the log line matters more than who
                client = None
        return client or "local"

    def record(self, action: str, obj: str | None = None, *, client: str | None = None, **details: Any) -> None:
        line = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "client": client or self.client(),
            "action": action,
            "object": obj,
        }
        line.update({k: v for k, v in details.items() if v is not None})
        self._logger.info(json.dumps(line, ensure_ascii=False, default=str))

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        self._handler.close()


def _after(target: Any, name: str, on_success: Callable[..., None]) -> None:
    """Replaces ``target.name`` (on this instance only) with a wrapper that calls
    ``on_success(result, *args, **kwargs)`` once the original returned."""
    original = getattr(target, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        on_success(result, *args, **kwargs)
        return result

    setattr(target, name, wrapper)


def _arg(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    """A wrapped method's argument, whether it was passed by position or by name."""
    return args[index] if len(args) > index else kwargs.get(name)


def _voice_ref(value: Any) -> str:
    return str(getattr(value, "id", value))


def watch_library(library: VoiceLibrary, audit: AuditLog) -> None:
    """Records every change to the voice library (ids and names only)."""
    _after(library, "save", lambda v, *a, **k: audit.record("voice.save", v.id, name=v.name, kind=v.kind))
    _after(library, "rename", lambda v, *a, **k: audit.record("voice.rename", v.id, name=v.name))
    _after(
        library,
        "update",
        lambda v, *a, **k: audit.record(
            "voice.update", v.id, fields=sorted(name for name, value in k.items() if value is not None)
        ),
    )
    _after(
        library,
        "duplicate",
        lambda v, *a, **k: audit.record("voice.duplicate", v.id, source=_voice_ref(_arg(a, k, 0, "name_or_id"))),
    )
    _after(library, "delete", lambda _r, *a, **k: audit.record("voice.delete", _voice_ref(_arg(a, k, 0, "name_or_id"))))
    _after(
        library,
        "import_zip",
        lambda voices, *a, **k: audit.record("voice.import", ",".join(v.id for v in voices), count=len(voices)),
    )

    def exported(path: Any, *a: Any, **k: Any) -> None:
        which = _arg(a, k, 0, "names_or_ids")
        ids = which if isinstance(which, str) else ",".join(_voice_ref(v) for v in which)
        audit.record("voice.export", ids)

    _after(library, "export_zip", exported)


def watch_models(manager: ModelManager, store: ModelStore, audit: AuditLog) -> None:
    """Records model downloads, loads (not the cache hits) and unloads, and the
    resident-model limit changed from the UI."""
    original_get = manager.get

    @functools.wraps(original_get)
    def get(checkpoint: Any, *args: Any, **kwargs: Any) -> Any:
        before = set(manager.resident_keys())
        loaded = original_get(checkpoint, *args, **kwargs)
        if checkpoint.key not in before:
            # A load beyond --max-resident evicts the least recently used model first:
            # that is an unload too, and the log should say which and why.
            for key in sorted(before - set(manager.resident_keys())):
                audit.record("model.unload", key, reason="evicted", for_model=checkpoint.key)
            audit.record("model.load", checkpoint.key, seconds=round(loaded.load_seconds, 3), device=loaded.device)
        return loaded

    manager.get = get  # type: ignore[method-assign]

    def unloaded(keys: list[str], *a: Any, **k: Any) -> None:
        if keys:
            audit.record("model.unload", ",".join(keys))

    _after(manager, "unload", unloaded)
    original_set = manager.set_max_resident

    @functools.wraps(original_set)
    def set_max_resident(value: int) -> None:
        before = set(manager.resident_keys())
        original_set(value)
        audit.record("settings.change", "max_resident", value=value)
        for key in sorted(before - set(manager.resident_keys())):  # lowering the limit evicts
            audit.record("model.unload", key, reason="evicted")

    manager.set_max_resident = set_max_resident  # type: ignore[method-assign]
    _after(store, "download", lambda _p, *a, **k: audit.record("model.download", _arg(a, k, 0, "checkpoint").key))
    _after(store, "remove", lambda _n, *a, **k: audit.record("model.remove", _arg(a, k, 0, "checkpoint").key))
