"""Starting the studio's web server, and stopping it gracefully.

On SIGTERM or SIGINT (Ctrl-C) the server stops taking new work (503 with
Retry-After, /health says "draining"), lets the takes in flight finish for up
to ``--shutdown-timeout`` seconds, then cancels what is left at its next chunk
or live piece and closes. Takes and voices are written to a staging folder and
renamed into place, so a shutdown at any moment leaves nothing half-written.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from starlette.middleware import Middleware

from core.context import AppContext, build_context
from core.serving.access import check_serving
from core.settings import Settings
from studio.api.guard import StudioGuard
from studio.api.mcp_tools import mcp_routes
from studio.api.openai_routes import openai_routes
from studio.api.ops_routes import ops_routes
from studio.ui.app import build_app, studio_css, studio_head, studio_theme
from studio.ui.context import StudioContext, client_id

log = logging.getLogger(__name__)
CANCEL_GRACE_S = 10.0  # after cancelling, how long a running chunk may take to notice


def prepare(settings: Settings) -> StudioContext:
    app_context: AppContext = build_context(settings)
    if settings.demo_models:
        from core.engine.demo_models.build import build_demo_checkpoints

        # Built up front (seconds, cached) so the Models tab shows them as on disk.
        build_demo_checkpoints(settings.demo_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ctx = StudioContext(app=app_context)
    ctx.watch()  # metrics and audit observe the app's events; the lifecycle admits generations
    ctx.audit.client_resolver = _gradio_client
    return ctx


def _gradio_client() -> str | None:
    """The client of the Gradio event being handled (UI or named API), for the audit log."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return client_id(request) if request is not None else None


def _install_guard(fastapi_app: Any, ctx: StudioContext, auth: list[tuple[str, str]], tls: bool) -> None:
    """Puts StudioGuard outside every Gradio middleware (Gradio adds its own CORS layer
    after the app is created, outside anything passed in app_kwargs), then rebuilds the
    stack; the server has answered only Gradio's own start-up check at this point."""
    fastapi_app.user_middleware.insert(0, Middleware(StudioGuard, ctx=ctx, credentials=auth, tls=tls))
    fastapi_app.middleware_stack = fastapi_app.build_middleware_stack()


def serve(settings: Settings, *, share: bool = False, block: bool = True):
    # Checked before anything heavy happens, so a refusal is instant.
    auth = check_serving(settings)
    ctx = prepare(settings)
    app = build_app(ctx)
    tls = bool(settings.ssl_certfile)
    routes = [*ops_routes(ctx, auth), *openai_routes(ctx, auth)]  # ahead of Gradio's routes
    if settings.mcp_server:  # our own MCP server (studio/api/mcp_tools.py), not Gradio's
        routes += mcp_routes(ctx)
    stop = threading.Event()
    # Installed before the server starts answering: a SIGTERM that came between the first take and
    # the end of start-up (a busy CI machine sent one) killed the process instead of draining it.
    previous = _stop_on_signals(ctx, stop) if block else {}
    try:
        launched = app.launch(
            server_name=settings.host,
            server_port=settings.port,
            share=share,
            auth=auth or None,
            auth_message="Qwen TTS Studio: sign in with the user and password the owner set (--auth).",
            ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            ssl_verify=False,  # self-signed LAN certificates are the common case
            max_file_size=f"{settings.max_upload_mb}mb",
            # Gradio keeps ~0.5 MB of state per browser session, up to 10,000 by
            # default (GBs); a home studio never has more than a few hundred.
            state_session_capacity=200,
            theme=studio_theme(),
            css=studio_css(),
            head=studio_head(),
            footer_links=["api", "settings"],
            # The projects' takes and exports (core/projects/store.py keeps them under the data dir).
            # The datasets' clips: the Train tab plays them from there.
            allowed_paths=[
                str(ctx.outputs_dir),
                str(settings.history_dir),
                str(settings.voices_dir),
                str(settings.data_dir / "projects"),
                str(settings.datasets_dir),
            ],
            prevent_thread_lock=True,
            quiet=True,
            show_error=True,
            mcp_server=False,  # Gradio's names tools after Python handlers; ours is mounted above
            app_kwargs={"routes": routes},
        )
    except BaseException:
        _restore_signals(previous)
        raise
    fastapi_app, local_url, share_url = launched
    _install_guard(fastapi_app, ctx, auth, tls)
    ctx.audit.record("server.start", local_url, client="local", demo=settings.demo_models)
    print(f"Qwen TTS Studio is running at {local_url}", flush=True)
    if share_url:
        print(f"Public share link: {share_url}", flush=True)
    if settings.mcp_server:
        print(f"MCP server (streamable HTTP): {local_url}mcp", flush=True)
    if settings.demo_models:
        print("Demo models: outputs are random-weight test audio, not speech.", flush=True)
    if not block:
        return app, ctx
    try:
        while not stop.wait(0.2) and app.is_running:
            pass
        drain(ctx, settings.shutdown_timeout)
    finally:
        _restore_signals(previous)
        app.close()
        ctx.audit.record("server.stop", local_url, client="local")
        ctx.audit.close()
    print("Qwen TTS Studio stopped.", flush=True)
    return 0


def _stop_on_signals(ctx: StudioContext, stop: threading.Event) -> dict[int, Any]:
    """SIGTERM and Ctrl-C set ``stop`` (the server then drains); a second one stops the takes in
    flight. Returns the handlers they replace."""

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second Ctrl-C: stop waiting for the takes in flight
            ctx.jobs.stop_all()
        stop.set()

    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def drain(ctx: StudioContext, timeout: float) -> bool:
    """Refuses new work, waits for the work in flight, cancels it after ``timeout``;
    True when everything finished on its own."""
    lifecycle = ctx.lifecycle
    lifecycle.begin_drain()
    started = time.monotonic()
    if lifecycle.in_flight:
        print(
            f"Shutting down: waiting up to {timeout:.0f} s for {lifecycle.in_flight} take(s) in progress...", flush=True
        )
    finished = lifecycle.wait_idle(timeout)
    if not finished:
        print(f"Shutting down: cancelling {lifecycle.in_flight} take(s) still in progress.", flush=True)
        ctx.jobs.stop_all()
        if not lifecycle.wait_idle(CANCEL_GRACE_S):
            log.warning("event=shutdown_cancel_timeout in_flight=%d", lifecycle.in_flight)
    log.info("event=shutdown drained=%s wait_s=%.1f", finished, time.monotonic() - started)
    return finished
