"""History: every take, with what made it; play, download, delete, regenerate."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import gradio as gr
import numpy as np

from core.audio.io import load_audio
from core.engine.speakers import design_presets
from core.errors import InvalidInput, StudioError
from core.storage.history import Take
from core.takes.job import Job
from core.types import MODES as TAKE_MODES
from core.types import Mode
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import job_result, owner_of
from studio.ui.tabs.history_parts import PICK_LANE, build_parts_panel
from studio.ui.tabs.history_resume import wire_resume

# What a person looks for first (when, what was said, how long) comes first: on a phone the
# table showed only When, Mode and Voice before it had to be scrolled (issue 23).
COLUMNS = ["When", "Text", "Length", "Voice", "Mode", "Seed", "Model", "Format", "Take id"]
# Content-sized columns; on a phone the table scrolls sideways with "When" pinned, When and Text in view.
COLUMN_WIDTHS: list[str | int] = [130, 220, 70, 160, 80, 110, 170, 80, 200]


# Gradio 6.17's table only re-counts its rows on a scroll or resize, so a list that grows (a new
# take, a search cleared) would show only as many rows as it had before. A no-op scroll makes it
# look again; tests/e2e/test_creator_workflow.py fails without it.
def refresh_rows_js(elem_id: str) -> str:
    """The no-op scroll that makes the table with this elem_id count its rows again (see above)."""
    return f"""() => requestAnimationFrame(() => {{
  for (const v of document.querySelectorAll('#{elem_id} .virtual-table-viewport')) {{
    v.dispatchEvent(new Event('scroll'));
  }}
}})"""


REFRESH_ROWS_JS = refresh_rows_js("history-table")
SCRIPT = "script"
# The history filter: every mode, plus whole scripts, under the words a person reads.
MODE_CHOICES = [("All", "all"), *((mode.label, mode.value) for mode in TAKE_MODES), ("Script", SCRIPT)]
MODES = [value for _, value in MODE_CHOICES]


def mode_label(mode: str) -> str:
    """Design / Custom / Clone / Script: "base" and "voice_design" are internal words."""
    if mode == SCRIPT:
        return "Script"
    try:
        return Mode(mode).label
    except ValueError:
        return mode


def local_time(stamp: str, with_seconds: bool = False) -> str:
    """A stored UTC stamp in this machine's local time (the studio runs where its user sits)."""
    try:
        when = datetime.fromisoformat(stamp).astimezone()
    except (TypeError, ValueError):
        return stamp or ""
    return when.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def preview(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def voice_label(take: Take) -> str:
    """Who speaks: the speaker, the library voice, the design preset, or the description's start."""
    v = take.voice
    if v.get("speaker") or v.get("voice"):
        return str(v.get("speaker") or v.get("voice"))
    description = (v.get("description") or "").strip()
    for preset in design_presets():
        if description and preset.description.strip() == description:
            return f"{preset.name} (preset)"
    return preview(description, 32) if description else "–"


def take_rows(takes: list[Take], searched: bool = False) -> list[list[Any]]:
    if not takes:
        # One row that says so: Gradio 6.17's table keeps showing its old rows when given none.
        empty = "No take matches this search." if searched else "No takes yet: generate one in any tab."
        return [["", empty, "", "", "", "", "", "", ""]]
    return [
        [
            local_time(t.created_at),
            f"({t.status_label}) {preview(t.text)}" if t.stopped else preview(t.text),
            f"{t.duration_s:.1f} s",
            voice_label(t),
            mode_label(t.mode),
            t.seed,
            t.model,
            t.format,
            t.id,
        ]
        for t in takes
    ]


def take_choices(takes: list[Take]) -> list[tuple[str, str]]:
    return [(f"{local_time(t.created_at)[11:]} · {mode_label(t.mode)} · {preview(t.text, 40)}", t.id) for t in takes]


def details(take: Take) -> dict[str, Any]:
    """Everything stored with a take, as plain values (what the API returns for it)."""
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


def summary(take: Take) -> str:
    """A take's settings as a person reads them (the JSON stays in the API)."""
    s = take.sampling or {}
    t = take.timings or {}
    lines = [
        f"**{mode_label(take.mode)}** take · {local_time(take.created_at, with_seconds=True)}",
        f"**Voice:** {voice_label(take)}",
        f"**Text:** {preview(take.text, 300)}",
        f"**Language:** {(take.language or 'auto').capitalize()} · **Seed:** {take.seed} · **Model:** {take.model}"
        f" · **Engine:** {take.engine}",
        f"**Length:** {take.duration_s:.1f} s · {take.format.upper()} · {take.size_bytes / 1024:,.0f} KB",
    ]
    if take.stopped:  # a partial take: Resume (here, in its tab, or Running & recent) finishes it
        lines.insert(1, f"**Partial take, {take.status_label}**: the chunks before it are kept.")
    if take.voice.get("description") and voice_label(take) != take.voice.get("description"):
        lines.append(f"**Description:** {preview(take.voice['description'], 300)}")
    knobs = [
        f"{label} {s[key]}"
        for key, label in (
            ("temperature", "temperature"),
            ("top_k", "top-k"),
            ("top_p", "top-p"),
            ("repetition_penalty", "repetition penalty"),
        )
        if s.get(key) is not None
    ]
    if knobs:
        lines.append("**Sampling:** " + ", ".join(knobs))
    if t.get("generate_s") is not None:
        lines.append(f"**Made in** {t['generate_s']:.1f} s")
    edits = take.request.get("edits") or []
    if take.request.get("derived_from") and edits:
        done = ", ".join(
            f"part {e.get('part', 0) + 1} "
            + {"delete": "deleted", "new_seed": "new seed"}.get(str(e.get("action")), "redone")
            for e in edits
            if isinstance(e, dict)
        )
        lines.append(f"**Derived from** take {take.request['derived_from']} ({done})")
    lines.extend(f"⚠️ {w}" for w in take.warnings)
    return "\n\n".join(lines)


def build_history_tab(ctx: StudioContext) -> None:
    history = ctx.app.history
    settings = ctx.app.settings
    with gr.Tab("History", id="history") as tab:
        gr.Markdown(
            f"Every take is kept with its settings (up to {settings.history_max_takes} takes and "
            f"{settings.history_max_mb:,} MB; the oldest are pruned first). Click a row to pick a take."
        )
        with gr.Row():
            # min_width: on a phone the two share no line (the placeholder was cut off), each is full width.
            query = gr.Textbox(
                label="Search", placeholder="text, voice, model…", scale=3, min_width=240, elem_id="history-search"
            )
            mode = gr.Dropdown(MODE_CHOICES, value="all", label="Mode", scale=1, min_width=140, elem_id="history-mode")
        table = gr.Dataframe(
            headers=COLUMNS,
            interactive=False,
            wrap=True,
            column_widths=COLUMN_WIDTHS,
            pinned_columns=1,
            elem_id="history-table",
        )
        warnings = gr.Markdown()
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                # A custom value is allowed: a search replaces the choices while an event that carries
                # the old pick may still be on its way, and Gradio refused it with a traceback
                # ("Value … is not in the list of choices"). show() tells a take that is gone.
                picker = gr.Dropdown([], label="Take", allow_custom_value=True, elem_id="history-picker")
                player = gr.Audio(
                    label="Take audio",
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="history-audio",
                )
                with gr.Row():
                    regenerate = gr.Button(
                        "Regenerate with the same settings",
                        variant="primary",
                        interactive=False,
                        elem_id="history-regenerate",
                    )
                    # Enabled for a stopped take: makes the rest of it (studio/ui/tabs/history_resume.py).
                    resume = gr.Button("Resume", interactive=False, elem_id="history-resume")
                    confirm = gr.Checkbox(label="Yes, delete this take", value=False)
                    delete = gr.Button("Delete", variant="stop", interactive=False, elem_id="history-delete")
                message = gr.Markdown(elem_id="history-message")
            with gr.Column(scale=1):
                info = gr.Markdown(label="Settings of this take", elem_id="history-details")
        parts_panel = gr.Column()  # filled below, once listing() exists

    def listing(q, m, selected=None):
        takes = history.list(query=q or None, mode=None if m in (None, "all") else m)
        note = "\n\n".join(f"⚠️ {w}" for w in history.warnings)
        ids = [t.id for t in takes]
        value = selected if selected in ids else (ids[0] if ids else None)
        rows = take_rows(takes, searched=bool(q) or m not in (None, "all"))
        return rows, gr.update(choices=take_choices(takes), value=value), note

    @friendly_errors
    def show(take_id):
        if not take_id:
            nothing = gr.update(interactive=False)
            return None, "", nothing, nothing
        try:
            take = history.get(take_id)
        except StudioError:  # deleted or pruned since the list was shown
            nothing = gr.update(interactive=False)
            return None, "This take is no longer in the history.", nothing, nothing
        can = gr.update(interactive=True)
        return str(take.audio_path), summary(take), can, can

    def pick_row(evt: gr.SelectData):
        # The row's own id (its last column), not its index: a sorted table reorders rows.
        row = evt.row_value or []
        return gr.update(value=str(row[-1])) if row and row[-1] else gr.skip()

    @friendly_errors
    def remove(take_id, sure, q, m):
        if not take_id:
            raise InvalidInput("Pick a take to delete.")
        if not sure:
            raise InvalidInput("Tick 'Yes, delete this take' to confirm; deleted takes cannot be restored.")
        history.delete(take_id)
        return (*listing(q, m), False, f"Deleted take {take_id}.")

    @friendly_errors
    async def regenerate_take(take_id, q, m, progress=gr.Progress(), request: gr.Request | None = None):
        # Not named `replay`: a handler of that name shadowed core.takes.replay.replay and called itself.
        if not take_id:
            raise InvalidInput("Pick a take to regenerate.")
        # A job of the one take runner, as every take: listed in Running & recent, and Stop reaches it.
        job = await asyncio.to_thread(
            ctx.jobs.regenerate, take_id, client=client_id(request), owner=owner_of(request), tab="history"
        )
        path, _details = await job_result(ctx, job, progress)
        # Reading both takes and the listing: off the event loop, which serves every other page.
        return await asyncio.to_thread(regenerated, take_id, job, path, q, m)

    def regenerated(take_id: str, job: Job, path: str, q: str, m: str) -> tuple[Any, ...]:
        original, new_id = history.get(take_id), job.kept[0].take.id
        verdict = ""
        if original.format in ("wav", "flac"):
            same = np.array_equal(load_audio(original.audio_path).samples, load_audio(path).samples)
            verdict = (
                " ✓ Identical to the original."
                if same
                else " The audio differs from the original (another model or library voice version?)."
            )
        rows, choices, note = listing(q, m, new_id)
        message = f"Regenerated as take {new_id} with seed {job.kept[0].take.seed}.{verdict}"
        return rows, choices, note, path, summary(history.get(new_id)), message

    private: dict[str, Any] = {"api_visibility": "private"}
    list_outputs = [table, picker, warnings]
    with parts_panel:
        build_parts_panel(ctx, picker=picker, query=query, mode=mode, list_outputs=list_outputs, listing=listing)
        # Resume; its API twin's hidden inputs sit inside the tab (a loose one breaks the tab bar).
        wire_resume(
            ctx,
            button=resume,
            picker=picker,
            query=query,
            mode=mode,
            list_outputs=list_outputs,
            listing=listing,
            player=player,
            info=info,
            message=message,
            summary=summary,
        )
    # Search filters as you type, as the Library's does.
    for trigger in (tab.select, query.change, mode.change):
        trigger(listing, [query, mode], list_outputs, queue=False, **private)
    table.change(None, None, None, js=REFRESH_ROWS_JS, queue=False, **private)
    table.select(pick_row, None, picker, queue=False, **private)
    # What a pick shows, in the order of the picks: in Gradio's default lane (four at a time) a
    # slower answer for the previous pick could land last and leave its take in the players.
    picker.change(show, picker, [player, info, regenerate, delete], **PICK_LANE, **private)
    delete.click(remove, [picker, confirm, query, mode], [*list_outputs, confirm, message], **private)
    regenerate.click(
        lambda: "Regenerating the picked take with its seed and settings… (its progress is in Running & recent)",
        None,
        message,
        queue=False,
        **private,
    ).then(
        regenerate_take,
        [picker, query, mode],
        [*list_outputs, player, info, message],
        # The message line says it is running, and Running & recent shows its progress; the table,
        # picker and player stay usable (the default laid a grey overlay over the panel, issue 23).
        show_progress="hidden",
        **private,
    )
