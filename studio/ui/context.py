"""The context every tab builder receives: the serving context plus browser-session state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from core.engine.synthesis import ChunkFailed
from core.serving.context import ServingContext, client_key
from core.takes.service import TakeJob


@dataclass
class StudioContext(ServingContext):
    """The app context plus what only the web UI needs."""

    # Takes whose chunk failed, per browser session and tab, so "Retry failed
    # chunk" can continue them. Bounded: the oldest are dropped.
    failed: dict[str, tuple[TakeJob, ChunkFailed]] = field(default_factory=dict)
    # "Running & recent"'s gr.State of the job it last saw finish: each tab listens, so the tab
    # that stopped a take stops saying "Press Resume" once it is resumed there (issue 23).
    panel_resumed: Any = None

    def check_request_rate(self, request: gr.Request | None) -> None:
        """Counts one generation against the calling client's per-minute limit."""
        self.check_rate(client_id(request))


def client_id(request: gr.Request | None) -> str:
    """user@address of the caller, for rate limits and logs."""
    host = getattr(getattr(request, "client", None), "host", None)
    return client_key(host, getattr(request, "username", None))
