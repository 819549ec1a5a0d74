"""History: every take, with what made it; play, download, delete, regenerate."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from core.audio.io import load_audio
from core.errors import InvalidInput
from core.storage.history import Take
from core.types import MODES as TAKE_MODES
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import DEVICE_QUEUE
from studio.ui.progress import gradio_progress

COLUMNS = ["When (UTC)", "Mode", "Voice", "Text", "Length", "Seed", "Model", "Format"]
# The history filter: every mode, plus whole scripts (plain strings for the dropdown).
MODES = ["all", *(mode.value for mode in TAKE_MODES), "script"]


def voice_label(take: Take) -> str:
    v = take.voice
    return v.get("speaker") or v.get("voice") or (v.get("description") or "")[:40] or "–"


def preview(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def take_rows(takes: list[Take]) -> list[list[Any]]:
    return [
        [
            t.created_at[:19].replace("T", " "),
            t.mode,
            voice_label(t),
            preview(t.text),
            f"{t.duration_s:.1f} s",
            t.seed,
            t.model,
            t.format,
        ]
        for t in takes
    ]


def take_choices(takes: list[Take]) -> list[tuple[str, str]]:
    return [(f"{t.created_at[11:19]} · {t.mode} · {preview(t.text, 40)}", t.id) for t in takes]


def details(take: Take) -> dict[str, Any]:
    return {
        "id": take.id,
        "created_at": take.created_at,
        "mode": take.mode,
        "model": take.model,
        "seed": take.seed,
        "demo": take.demo,
        "text": take.text,
        "voice": take.voice,
        "language": take.language,
        "sampling": take.sampling,
        "timings": take.timings,
        "warnings": take.warnings,
        "duration_s": take.duration_s,
        "format": take.format,
        "size_bytes": take.size_bytes,
    }


def build_history_tab(ctx: StudioContext) -> None:
    history = ctx.app.history
    settings = ctx.app.settings
    with gr.Tab("History", id="history") as tab:
        gr.Markdown(
            f"Every take is kept with its settings (up to {settings.history_max_takes} takes and "
            f"{settings.history_max_mb:,} MB; the oldest are pruned first)."
        )
        with gr.Row():
            query = gr.Textbox(label="Search", placeholder="text, voice, model…", scale=3)
            mode = gr.Dropdown(MODES, value="all", label="Mode", scale=1)
        table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="history-table")
        warnings = gr.Markdown()
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                picker = gr.Dropdown([], label="Take", elem_id="history-picker")
                player = gr.Audio(
                    label="Take audio",
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="history-audio",
                )
                with gr.Row():
                    regenerate = gr.Button(
                        "Regenerate with the same settings", variant="primary", elem_id="history-regenerate"
                    )
                    confirm = gr.Checkbox(label="Yes, delete this take", value=False)
                    delete = gr.Button("Delete", variant="stop", elem_id="history-delete")
                message = gr.Markdown(elem_id="history-message")
            with gr.Column(scale=1):
                info = gr.JSON(label="Settings of this take")

    def listing(q, m, selected=None):
        takes = history.list(query=q or None, mode=None if m in (None, "all") else m)
        note = "\n\n".join(f"⚠️ {w}" for w in history.warnings)
        ids = [t.id for t in takes]
        value = selected if selected in ids else (ids[0] if ids else None)
        return take_rows(takes), gr.update(choices=take_choices(takes), value=value), note

    @friendly_errors
    def show(take_id):
        if not take_id:
            return None, None
        take = history.get(take_id)
        return str(take.audio_path), details(take)

    @friendly_errors
    def remove(take_id, sure, q, m):
        if not take_id:
            raise InvalidInput("Pick a take to delete.")
        if not sure:
            raise InvalidInput("Tick 'Yes, delete this take' to confirm; deleted takes cannot be restored.")
        history.delete(take_id)
        return (*listing(q, m), False, f"Deleted take {take_id}.")

    @friendly_errors
    def regenerate_take(take_id, q, m, progress=gr.Progress()):
        # Not named `replay`: a handler of that name shadowed core.takes.replay.replay and called itself.
        if not take_id:
            raise InvalidInput("Pick a take to regenerate.")
        again = ctx.takes.regenerate(take_id, gradio_progress(progress))
        original, path, new_id = again.original, again.kept.path, again.kept.take.id
        verdict = ""
        if original.format in ("wav", "flac"):
            same = np.array_equal(load_audio(original.audio_path).samples, load_audio(path).samples)
            verdict = (
                " ✓ Identical to the original."
                if same
                else " The audio differs from the original (another model or library voice version?)."
            )
        rows, choices, note = listing(q, m, new_id)
        message = f"Regenerated as take {new_id} with seed {again.seed}.{verdict}"
        return rows, choices, note, path, details(history.get(new_id)), message

    list_outputs = [table, picker, warnings]
    for trigger in (tab.select, query.submit, mode.change):
        trigger(listing, [query, mode], list_outputs, api_visibility="private")
    picker.change(show, picker, [player, info], api_visibility="private")
    delete.click(remove, [picker, confirm, query, mode], [*list_outputs, confirm, message], api_visibility="private")
    regenerate.click(
        regenerate_take,
        [picker, query, mode],
        [*list_outputs, player, info, message],
        api_visibility="private",
        concurrency_id=DEVICE_QUEUE,
        concurrency_limit=1,
    )
