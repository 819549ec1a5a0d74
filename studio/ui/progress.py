"""Gradio's progress bar as the engine's progress callback."""

from __future__ import annotations

import gradio as gr

from core.engine.model_store import ProgressCallback


def gradio_progress(progress: gr.Progress | None) -> ProgressCallback | None:
    """Reports the engine's (fraction, message) on ``progress``; None when there is none."""
    if progress is None:
        return None

    def report(fraction: float, message: str) -> None:
        try:
            progress(fraction, desc=message)
        except Exception:  # progress is best effort; never fail a take over it
            pass

    return report
