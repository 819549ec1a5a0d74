"""History: the parts of the picked take (chunks or script lines) and its subtitles.

Each part can be played, made again with its own seed (it sounds as it did) or a
new one, or deleted; the take is re-assembled and kept as a new take derived
from the original, which stays (core/takes/part_edit.py). Subtitles (SRT and
WebVTT) are written for the picked take and offered as downloads
(core/takes/subtitles.py). The named API's twins: /take_parts, /part_redo,
/subtitles.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from core.errors import InvalidInput, StudioError
from core.storage.history import Take
from core.takes.part_edit import PartAction, edit_part
from core.takes.subtitles import SubtitleFormat, write_subtitles
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, api_function
from studio.ui.progress import gradio_progress

PART_COLUMNS = ["#", "Text", "Time", "Seed"]
# Shares of the width, so every column shows on a phone too (the text wraps).
PART_WIDTHS: list[str | int] = ["8%", "52%", "19%", "21%"]
NO_PARTS = "This take was kept before takes stored their chunks and lines; Regenerate remakes it whole."
ACTION_WORDS = {
    PartAction.SAME_SEED: "made again with its own seed",
    PartAction.NEW_SEED: "made again with a new seed",
    PartAction.DELETE: "deleted",
}


# One queue lane for what a History pick shows (the take player, its parts, the part player).
PICK_LANE: dict[str, Any] = {"concurrency_id": "history-pick", "concurrency_limit": 1}


def part_rows(take: Take | None) -> list[list[Any]]:
    if take is None or not take.parts:
        # One row that says so: Gradio's table keeps showing old rows when given none.
        return [["", NO_PARTS if take is not None else "Pick a take to see its parts.", "", ""]]
    return [
        [
            p.index + 1,
            f"{p.speaker}: {p.text}" if p.speaker else p.text,
            f"{p.start_s:.1f}–{p.end_s:.1f} s",  # where it plays in the take
            p.seed,
        ]
        for p in take.parts
    ]


def part_choices(take: Take | None) -> list[tuple[str, str]]:
    """(label, index as text): the page's dropdowns carry text values."""
    if take is None:
        return []
    label = "Line" if take.mode == "script" else "Chunk"
    return [
        (f"{label} {p.index + 1}" + (f" · {p.speaker}" if p.speaker else "") + f" · {_short(p.text)}", str(p.index))
        for p in take.parts
    ]


def part_summary(take: Take) -> dict[str, Any]:
    """A take's parts as plain values (what /take_parts returns)."""
    return {
        "take_id": take.id,
        "mode": take.mode,
        "duration_s": take.duration_s,
        "pause_s": take.parts_pause_s,
        "parts": [
            {
                "index": p.index,
                "text": p.text,
                "seed": p.seed,
                "start_s": round(p.start_s, 3),
                "end_s": round(p.end_s, 3),
                "speaker": p.speaker,
                "voice": p.voice,
            }
            for p in take.parts
        ],
    }


def _short(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_parts_panel(
    ctx: StudioContext,
    *,
    picker: gr.Dropdown,
    query: gr.Textbox,
    mode: gr.Dropdown,
    list_outputs: list[Any],
    listing: Callable[..., tuple[Any, ...]],
) -> None:
    """The parts list and subtitle downloads under History's take player, and their API twins."""
    history = ctx.app.history
    subtitles_dir = Path(ctx.outputs_dir) / "subtitles"

    with gr.Row(elem_id="history-subtitles"):
        srt = gr.DownloadButton("Subtitles (.srt)", value=None, interactive=False, size="sm", elem_id="history-srt")
        vtt = gr.DownloadButton("Subtitles (.vtt)", value=None, interactive=False, size="sm", elem_id="history-vtt")
    with gr.Accordion("Parts: redo one chunk or line", open=True, elem_id="history-parts-panel"):
        gr.Markdown(
            "Each chunk of a long take, or each line of a script, is kept on its own. Redo one with its "
            "own seed (it sounds as it did) or a new seed, or delete it: the take is put together again "
            "and kept as a **new take**; the original stays.",
            elem_id="history-parts-help",
        )
        table = gr.Dataframe(
            headers=PART_COLUMNS,
            interactive=False,
            wrap=True,
            column_widths=PART_WIDTHS,
            elem_id="history-parts",
        )
        with gr.Row(equal_height=False):
            # allow_custom_value: as History's take picker (a new take replaces the choices under an event).
            part = gr.Dropdown([], label="Part", scale=2, allow_custom_value=True, elem_id="history-part-picker")
            audio = gr.Audio(
                label="Part audio", interactive=False, buttons=["download"], scale=3, elem_id="history-part-audio"
            )
        with gr.Row():
            same = gr.Button("Redo (same seed)", interactive=False, size="sm", elem_id="history-part-same")
            new = gr.Button("Redo (new seed)", interactive=False, size="sm", elem_id="history-part-new")
            drop = gr.Button("Delete part", interactive=False, size="sm", variant="stop", elem_id="history-part-delete")
        message = gr.Markdown(elem_id="history-part-message")

    def subtitle_files(take: Take) -> tuple[str, str]:
        return (
            str(write_subtitles(take, subtitles_dir, SubtitleFormat.SRT)),
            str(write_subtitles(take, subtitles_dir, SubtitleFormat.VTT)),
        )

    @friendly_errors
    def show_parts(take_id):
        take = picked_take(take_id)
        if take is None:
            off = gr.update(value=None, interactive=False)
            return part_rows(None), gr.update(choices=[], value=None), off, off, *part_player(None, None)
        first = str(take.parts[0].index) if take.parts else None
        srt_path, vtt_path = subtitle_files(take)
        return (
            part_rows(take),
            gr.update(choices=part_choices(take), value=first),
            gr.update(value=srt_path, interactive=True),
            gr.update(value=vtt_path, interactive=True),
            # The part player is filled here, not only by the part picker's change: the new take's
            # first part has the same value ("0") as the old one's, so no change event would come
            # and the player kept the previous take's part.
            *part_player(take, first),
        )

    def picked_take(take_id) -> Take | None:
        """The picked take, or None when nothing is picked or it is gone (deleted, pruned)."""
        if not take_id:
            return None
        try:
            return history.get(take_id)
        except StudioError:
            return None

    @friendly_errors
    def play_part(take_id, index):
        return part_player(picked_take(take_id), index)

    def part_player(take: Take | None, index) -> tuple[Any, ...]:
        """The part's audio and its three buttons (off when there is no such part)."""
        if take is None or index is None or index == "":
            off = gr.update(interactive=False)
            return None, off, off, off
        parts = {p.index: p for p in take.parts}
        if not str(index).isdigit() or int(index) not in parts:
            off = gr.update(interactive=False)
            return None, off, off, off
        clip = parts[int(index)].load()
        on = gr.update(interactive=True)
        pcm = (np.clip(clip.samples, -1.0, 1.0) * 32767).astype(np.int16)
        # A lone part cannot be deleted: the take would be empty (delete the take instead).
        return (clip.sample_rate, pcm), on, on, gr.update(interactive=len(take.parts) > 1)

    def redo(action: PartAction):
        @friendly_errors
        def run(take_id, index, q, m, progress=gr.Progress()):
            if not take_id:
                raise InvalidInput("Pick a take first.")
            if index is None or index == "":
                raise InvalidInput("Pick a part of the take first.")
            edit = edit_part(ctx.takes, take_id, index, action, progress=gradio_progress(progress))
            new_id = edit.kept.take.id
            verdict = ""
            if action == PartAction.SAME_SEED and edit.part_audio is not None:
                before = edit.original.parts[edit.index].load().samples
                same_audio = np.array_equal(before, edit.part_audio.samples)
                verdict = " ✓ Identical to the original part." if same_audio else " It differs from the original part."
            seed = f" (seed {edit.seed})" if edit.seed is not None else ""
            note = (
                f"Part {edit.index + 1} {ACTION_WORDS[action]}{seed}; kept as the new take {new_id}, "
                f"and the original {take_id} stays.{verdict}"
            )
            return (*listing(q, m, new_id), note)

        return run

    inputs = [picker, part, query, mode]
    outputs = [*list_outputs, message]
    private: dict[str, Any] = {"api_visibility": "private"}
    # In the take player's lane (history.py): the part player follows the picks in order.
    picker.change(show_parts, picker, [table, part, srt, vtt, audio, same, new, drop], **PICK_LANE, **private)
    part.change(play_part, [picker, part], [audio, same, new, drop], **PICK_LANE, **private)
    for button, action in ((same, PartAction.SAME_SEED), (new, PartAction.NEW_SEED), (drop, PartAction.DELETE)):
        button.click(redo(action), inputs, outputs, **private)

    _register_api(ctx, subtitle_files)


def _register_api(ctx: StudioContext, subtitle_files: Callable[[Take], tuple[str, str]]) -> None:
    history = ctx.app.history

    @friendly_errors
    def take_parts(take_id: str) -> dict[str, Any]:
        """A take's parts (chunks or script lines): index, text, seed, start_s/end_s in the take, speaker."""
        return part_summary(history.get((take_id or "").strip()))

    @friendly_errors
    def subtitles(take_id: str, format: str = "srt") -> str:
        """A take's subtitles as a file: format "srt" or "vtt" (WebVTT), timed from its chunks or lines."""
        take = history.get((take_id or "").strip())
        srt_path, vtt_path = subtitle_files(take)
        return vtt_path if SubtitleFormat.from_user(format) == SubtitleFormat.VTT else srt_path

    @friendly_errors
    def part_redo(
        take_id: str, part: float, action: str = "same_seed", seed: float | None = None, progress=gr.Progress()
    ) -> tuple[str, dict[str, Any]]:
        """Redo one part of a take: action "same_seed", "new_seed" (optional seed) or "delete". The take is
        re-assembled and kept as a new take (the original stays); returns its audio and details."""
        if seed is not None and (isinstance(seed, bool) or float(seed) != int(seed)):
            raise InvalidInput("The part's seed must be a whole number.")
        edit = edit_part(
            ctx.takes,
            (take_id or "").strip(),
            part,
            action,
            seed=None if seed is None or int(seed) < 0 else int(seed),
            progress=gradio_progress(progress),
        )
        return edit.kept.path, edit.kept.details

    api_function(take_parts, "take_parts", queue=False)
    take_box = gr.Textbox(visible=False)
    format_box = gr.Textbox(visible=False)
    api_endpoint(subtitles, [take_box, format_box], gr.File(visible=False), "subtitles")
    part_box = gr.Number(visible=False)
    action_box = gr.Textbox(visible=False)
    seed_box = gr.Number(visible=False)
    api_endpoint(
        part_redo,
        [take_box, part_box, action_box, seed_box],
        [gr.Audio(visible=False, type="filepath"), gr.JSON(visible=False)],
        "part_redo",
    )
