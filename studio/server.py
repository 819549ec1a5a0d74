"""Starting the studio's web server."""

from __future__ import annotations

import logging

from core.context import AppContext, build_context
from core.serving.access import check_serving
from core.settings import Settings
from studio.api.openai_routes import openai_routes
from studio.ui.app import build_app, studio_css, studio_theme
from studio.ui.context import StudioContext

log = logging.getLogger(__name__)


def prepare(settings: Settings) -> StudioContext:
    app_context: AppContext = build_context(settings)
    if settings.demo_models:
        from core.engine.demo_models.build import build_demo_checkpoints

        # Built up front (seconds, cached) so the Models tab shows them as on disk.
        build_demo_checkpoints(settings.demo_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return StudioContext(app=app_context)


def serve(settings: Settings, *, share: bool = False, block: bool = True):
    # Checked before anything heavy happens, so a refusal is instant.
    auth = check_serving(settings)
    ctx = prepare(settings)
    app = build_app(ctx)
    _, local_url, share_url = app.launch(
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
        footer_links=["api", "settings"],
        allowed_paths=[str(ctx.outputs_dir), str(settings.history_dir), str(settings.voices_dir)],
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
        app_kwargs={"routes": openai_routes(ctx, auth)},  # OpenAI-compatible /v1, ahead of Gradio's routes
    )
    print(f"Qwen TTS Studio is running at {local_url}", flush=True)
    if share_url:
        print(f"Public share link: {share_url}", flush=True)
    if settings.demo_models:
        print("Demo models: outputs are random-weight test audio, not speech.", flush=True)
    if not block:
        return app, ctx
    try:
        app.block_thread()
    finally:
        app.close()
    return 0
