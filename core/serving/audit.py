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
The library, the model manager and the model store emit an event for each
change (core/events.py) and the server subscribes :meth:`AuditLog.observe`,
so an action is recorded whichever entry point made it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import logging.handlers
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.events import Event, MaxResidentChanged, ModelChanged, VoiceChanged

AUDIT_FILE = "audit.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5

current_client: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_client", default=None)


class AuditLog:
    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.client_resolver: Callable[[], str | None] | None = None
        # Its own rotating file, written directly: no logger, so audit lines never reach the
        # console log and two studios in one process (the tests) never share a file.
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )

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
        message = json.dumps(line, ensure_ascii=False, default=str)
        self._handler.handle(logging.makeLogRecord({"msg": message, "levelno": logging.INFO}))

    def observe(self, event: Event) -> None:
        """Records the library and model changes the stores tell of (core/events.py)."""
        if isinstance(event, (VoiceChanged, ModelChanged)):
            details: dict[str, Any] = dataclasses.asdict(event)  # the Nones are left out of the line
            self.record(details.pop("action").value, details.pop("subject"), **details)
        elif isinstance(event, MaxResidentChanged):
            self.record("settings.change", "max_resident", value=event.value)

    def close(self) -> None:
        self._handler.close()
