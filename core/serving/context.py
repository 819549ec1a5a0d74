"""What a network entry point needs beyond the AppContext.

The web UI and the OpenAI-compatible HTTP routes both hand out files (from a
folder of their own) and count every generation against the calling client's
per-minute limit. That lives here, free of any web framework, so the HTTP
routes depend on ``core`` alone; the Gradio UI extends it with what only a
browser session needs (studio/ui/context.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core.context import AppContext
from core.finetune.service import FineTuning
from core.projects.service import ProjectService
from core.serving.audit import AUDIT_FILE, AuditLog
from core.serving.lifecycle import Lifecycle
from core.serving.metrics import Metrics
from core.serving.rate_limit import RateLimiter
from core.takes.jobs import JobRegistry
from core.takes.service import TakeService


@dataclass
class ServingContext:
    app: AppContext
    # Files made for download (script lines, exports); Gradio is allowed to serve this folder.
    outputs_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="qwen-tts-studio-")))
    # One limiter for every entry point, so a client cannot double its share by using both.
    limiter: RateLimiter = field(init=False)
    # Operations (core/serving/lifecycle.py, metrics.py, audit.py); the server connects them
    # to the app's events and the synthesis service with watch().
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    metrics: Metrics = field(init=False)
    audit: AuditLog = field(init=False)
    # The one take runner: every take, whatever starts it, is a job here (core/takes/jobs.py).
    jobs: JobRegistry = field(init=False)
    # Audiobook and podcast projects (core/projects/service.py); their renders are jobs above.
    projects: ProjectService = field(init=False)
    # Fine-tuning runs, trained as jobs of the take runner's device lane (core/finetune/service.py).
    finetune: FineTuning = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.app.settings.rate_limit_per_minute)
        self.jobs = JobRegistry(self.takes)
        self.projects = ProjectService(self.app, self.jobs, self.takes, outputs_dir=self.outputs_dir)
        self.finetune = FineTuning(self.app, self.jobs)
        # A job on the device: what is in flight beyond it is queued.
        self.metrics = Metrics(self.app.models, self.lifecycle, self.jobs.busy, self.jobs.counts)
        self.audit = AuditLog(self.app.settings.data_dir / AUDIT_FILE)  # opened at the first line

    def watch(self) -> None:
        """Subscribes the metrics and the audit log to the app's events (core/events.py) and
        makes the lifecycle admit every generation (refused while shutting down). The server
        calls it once, at start-up."""
        self.app.events.subscribe(self.metrics.observe)
        self.app.events.subscribe(self.audit.observe)
        self.app.synthesis.lifecycle = self.lifecycle

    @property
    def demo(self) -> bool:
        return self.app.settings.demo_models

    @property
    def takes(self) -> TakeService:
        """Makes and keeps takes over this context's engine and history."""
        return TakeService.for_app(self.app)

    def check_rate(self, client: str) -> None:
        """Counts one generation against ``client``'s per-minute limit (raises RateLimited)."""
        self.limiter.check(client)


def client_key(host: str | None, user: str | None) -> str:
    """``user@host`` (or the host alone) of a caller: the key of its rate limit and its log lines."""
    host = host or "local"
    return f"{user}@{host}" if user else host
