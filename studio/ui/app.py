"""Assembles the studio: one gr.Blocks with a tab per job, over one app context."""

from __future__ import annotations

from importlib import resources

import gradio as gr

from studio.api.named import register_api
from studio.ui.blocks import StudioBlocks
from studio.ui.context import StudioContext
from studio.ui.file_cache import install_atomic_file_cache
from studio.ui.jobs_panel import build_jobs_panel
from studio.ui.tabs.clone import build_clone_tab
from studio.ui.tabs.custom_voice import build_custom_voice_tab
from studio.ui.tabs.design import build_design_tab
from studio.ui.tabs.history import build_history_tab
from studio.ui.tabs.library import build_library_tab
from studio.ui.tabs.models import build_models_tab
from studio.ui.tabs.projects import build_projects_tab
from studio.ui.tabs.script import build_script_tab
from studio.ui.tabs.train import build_train_tab

TITLE = "Qwen TTS Studio"


def studio_css() -> str:
    return resources.files("assets").joinpath("studio.css").read_text(encoding="utf-8")


def studio_head() -> str:
    """A script for the page's <head> (launch(head=...)): small fixes Gradio has no option for.

    Gradio 6.17's launch(js=...) did not run it (checked in the browser), so it goes in the head.
    """
    folder = resources.files("assets")
    # studio.js: small fixes; restore.js: a reload keeps the open tab and the text typed.
    scripts = [folder.joinpath(name).read_text(encoding="utf-8").strip() for name in ("studio.js", "restore.js")]
    # Gradio may add the head after the document has loaded: then run it at once.
    return (
        # Phone: Gradio hides "Use via API" there, which left a stray "· Settings" in the footer.
        # In the head: studio.css is scoped to .gradio-container, and the footer is outside it.
        "<style>@media (max-width: 640px) { footer .divider { display: none !important; } }"
        # The sticky action bar (studio.css .action-bar) needs the page as its scroller: Gradio's
        # container clips with overflow: hidden, which makes it a scroll container; clip does not.
        " .gradio-container { overflow: clip !important; }</style>"
        + "".join(
            f"<script>(f => document.readyState === 'loading' ? "
            f"addEventListener('DOMContentLoaded', f) : f())({js});</script>"
            for js in scripts
        )
    )


def studio_theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", neutral_hue="slate")


def build_app(ctx: StudioContext) -> gr.Blocks:
    install_atomic_file_cache()  # two requests caching one take must not truncate it
    with StudioBlocks(title=TITLE) as app:
        with gr.Row(elem_id="studio-header"):
            gr.Markdown(f"# {TITLE}\nDesign, cast, clone and keep voices on your own machine.")
        # Takes being made survive a reload: the page lists them and can follow one again.
        build_jobs_panel(ctx, app)
        with gr.Tabs() as tabs:
            build_design_tab(ctx)
            build_custom_voice_tab(ctx)
            clone = build_clone_tab(ctx)
            build_library_tab(ctx, clone_voice=clone["voice"], tabs=tabs)
            build_train_tab(ctx)
            build_script_tab(ctx)
            build_projects_tab(ctx)
            build_models_tab(ctx)
            build_history_tab(ctx)
        register_api(ctx)
    # A callable initial value (the Seed fields start empty this way) runs as a page-load event
    # that Gradio names "lambda_N" and makes public; it is not part of the named API, which
    # studio/api/endpoints.py declares, so it stays private (the page still runs it).
    for fn in app.fns.values():
        if (fn.api_name or "").startswith("lambda"):
            fn.api_visibility = "private"
    app.queue(default_concurrency_limit=4)
    return app
