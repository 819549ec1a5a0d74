"""Widgets more than one tab lays out: the take players, the action bar, the demo banner (the
Advanced accordion is built from its table in studio/ui/advanced.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import gradio as gr

from core.types import LANGUAGES
from studio.ui.context import StudioContext

LANGUAGE_CHOICES = [lang.capitalize() for lang in LANGUAGES]
MAX_TAKES = 8  # as core.engine.synthesis.MAX_VARIANTS


def demo_banner(ctx: StudioContext) -> None:
    if ctx.demo:
        gr.HTML(
            "<div class='demo-banner'>Demo models: outputs come from tiny random-weight models "
            "and sound like noise, not speech. Start without <code>--demo-models</code> to use "
            "the real Qwen3-TTS checkpoints.</div>"
        )


def summary_from_info(info: dict[str, Any] | None) -> str:
    """The readout under a take, built from the details the API also returns: one line of
    figures, then what the take is (text, voice, language, engine, id), then any warnings."""
    if not info:
        return ""
    t = info.get("timings", {})
    parts = [
        f"**{info.get('duration_s', 0):.1f} s** of audio",
        f"seed `{info.get('seed')}`",
        f"model `{info.get('model')}`",
    ]
    if "generate_s" in t:
        parts.append(f"generated in {t.get('generate_s', 0):.1f} s (RTF {t.get('rtf', 0):.2f})")
    if t.get("load_s", 0) > 0.5:
        parts.append(f"model load {t['load_s']:.1f} s")
    if info.get("chunks", 1) > 1:
        parts.append(f"{info['chunks']} chunks")
    lines = [" · ".join(parts)]
    if info.get("status") == "stopped":
        lines.append(
            f"**Stopped at chunk {info.get('stopped_at', 0) + 1} of {info.get('total_chunks', '?')}**: "
            "a partial take (press Resume to finish it)."
        )
    facts = []
    for key, label in DETAIL_LABELS:
        value = info.get(key)
        if value not in (None, "", [], {}):
            facts.append(f"- {label}: {markdown_text(str(value))}")
    if facts:
        lines.append("\n".join(facts))
    return "\n\n".join([*lines, *[f"⚠️ {w}" for w in info.get("warnings", [])]])


# What the readout lists from a take's details, in this order (the API's JSON has them all).
DETAIL_LABELS = (
    ("text", "Text"),
    ("description", "Voice description"),
    ("speaker", "Speaker"),
    ("instruct", "Style"),
    ("voice", "Library voice"),
    ("language", "Language"),
    ("engine", "Engine"),
    ("take_id", "Take"),
)


def markdown_text(text: str, limit: int = 300) -> str:
    """User text shown literally (no Markdown), cut to ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", text)


@dataclass
class TakeGallery:
    """Variants side by side: a player per take and a button that makes it the take."""

    row: gr.Row
    columns: list[gr.Column]  # one per take; shown for as many takes as were made
    players: list[gr.Audio]
    picks: list[gr.Button]
    details: gr.State  # the details dict of every variant, in order


# Controls that events show and hide start mounted but hidden, not visible=False. Gradio 6.17 mounts
# a visible=False component only when it is first shown, and that mount can re-apply an update it
# queued while unmounted: a Resume hidden by a run's progress updates and then shown by its end flicked
# back to hidden (seen in the training flow; fixed upstream in gradio-app/gradio#13553, Gradio 6.20,
# which needs huggingface_hub 1.x, and transformers 4.57, which qwen-tts pins, forbids that).
STARTS_HIDDEN: Literal["hidden"] = "hidden"


@dataclass
class ActionBar:
    """Generate, Stop, Resume and the progress line, in a bar that stays on screen (sticky)."""

    generate: gr.Button
    stop: gr.Button
    resume: gr.Button  # shown while this tab's last take was stopped part-way
    progress: gr.Markdown  # before: the text's characters, chunks and length; during: chunk k of n
    status: gr.Markdown  # why a take was refused or failed, in plain words


def action_bar(prefix: str, label: str = "Generate", *, button_id: str | None = None) -> ActionBar:
    """The tab's action bar, laid out where it is called (at the end of the settings column:
    CSS keeps it at the bottom of the window while the column runs past it, Advanced open or not)."""
    with gr.Column(elem_id=f"{prefix}-actions", elem_classes=["action-bar"]):
        with gr.Row(elem_classes=["action-buttons"]):
            generate = gr.Button(label, variant="primary", elem_id=button_id or f"{prefix}-generate", scale=3)
            stop = gr.Button(
                "Stop", variant="stop", visible=STARTS_HIDDEN, elem_id=f"{prefix}-stop", scale=1, min_width=80
            )
            resume = gr.Button("Resume", visible=STARTS_HIDDEN, elem_id=f"{prefix}-resume", scale=1, min_width=80)
        progress = gr.Markdown(elem_id=f"{prefix}-progress", elem_classes=["take-progress"])
        status = gr.Markdown(elem_id=f"{prefix}-status", elem_classes=["inline-status"])
    return ActionBar(generate, stop, resume, progress, status)


@dataclass
class TakePlayers:
    live: gr.Audio  # plays the take's pieces as they are made; the take replaces it when done
    take: gr.Audio  # the finished take, with download
    retry: gr.Button  # continues a take whose chunk failed
    takes: gr.Slider | None = None  # the Takes count from the Advanced accordion
    gallery: TakeGallery | None = None
    bar: ActionBar | None = None  # set by wire_generate from the tab's action_bar
    download_format: gr.Dropdown | None = None  # "Download as": the take converted on demand
    download: gr.DownloadButton | None = None
    srt: gr.DownloadButton | None = None  # the take's subtitles, timed from its chunks
    vtt: gr.DownloadButton | None = None


def take_gallery(prefix: str) -> TakeGallery:
    columns, players, picks = [], [], []
    with gr.Row(visible=STARTS_HIDDEN, elem_id=f"{prefix}-takes", elem_classes=["take-gallery"]) as row:
        for number in range(1, MAX_TAKES + 1):
            with gr.Column(min_width=160, visible=False) as column:
                columns.append(column)
                players.append(
                    gr.Audio(
                        label=f"Take {number}",
                        type="filepath",
                        interactive=False,
                        buttons=["download"],
                        elem_id=f"{prefix}-take-{number}",
                    )
                )
                picks.append(gr.Button(f"Use take {number}", size="sm", elem_id=f"{prefix}-pick-{number}"))
    return TakeGallery(row, columns, players, picks, gr.State([]))


def in_use_marks(details: dict[str, Any] | None, kept: list[dict[str, Any]] | None) -> list[Any]:
    """Each variant's button: "✓ In use" (primary) on the take the tab shows, "Use take n" on the rest."""
    in_use = details.get("take_id") if isinstance(details, dict) else None
    marks = []
    for number in range(1, MAX_TAKES + 1):
        shown = bool(kept) and number <= len(kept or []) and in_use is not None
        if shown and (kept or [])[number - 1].get("take_id") == in_use:
            marks.append(gr.update(value=f"✓ Take {number} in use", variant="primary"))
        else:
            marks.append(gr.update(value=f"Use take {number}", variant="secondary"))
    return marks


def wire_gallery(
    gallery: TakeGallery, takes: gr.Slider | None, take: gr.Audio, info: gr.JSON, summary: gr.Markdown
) -> None:
    """A pick makes its variant the take; the take in use is marked; Takes back to 1 hides the grid.

    (Only one player plays at a time: assets/studio.js pauses the others.)
    """
    private: dict[str, Any] = dict(api_visibility="private", queue=False)
    for number, pick in enumerate(gallery.picks):
        pick.click(
            lambda kept, n=number: (kept[n]["path"], kept[n]) if n < len(kept) else (gr.skip(), gr.skip()),
            gallery.details,
            [take, info],
            **private,
        ).success(summary_from_info, info, summary, **private)
    info.change(in_use_marks, [info, gallery.details], gallery.picks, show_progress="hidden", **private)
    if takes is not None:
        takes.change(lambda n: gr.update(visible=False) if (n or 1) <= 1 else gr.skip(), takes, gallery.row, **private)


def take_players(prefix: str, takes: gr.Slider | None = None) -> TakePlayers:
    """One player per take: the live one while it is made, then the take in its place
    (no autoplay of the finished take, no Share button: the files are local)."""
    live = gr.Audio(
        label="Take (playing as it is made)",
        streaming=True,
        autoplay=True,  # only ever plays what Generate (or Resume) was just pressed for
        interactive=False,
        visible="hidden",
        buttons=[],
        elem_id=f"{prefix}-live",
    )
    take = gr.Audio(
        label="Take",
        type="filepath",
        interactive=False,
        autoplay=False,
        buttons=[],  # one way to download a take: "Download as" below (the player's own button made three)
        elem_id=f"{prefix}-audio",
    )
    # Next to the player: the take, in the format chosen, ready to save in one click.
    with gr.Row(equal_height=True, elem_classes=["take-download"]):
        download_format = gr.Dropdown(
            DOWNLOAD_FORMATS,
            value="wav",
            label="Download as",
            scale=1,
            min_width=110,
            elem_id=f"{prefix}-download-format",
        )
        download = gr.DownloadButton(
            "Download", value=None, interactive=False, scale=1, min_width=110, elem_id=f"{prefix}-download"
        )
    # Its subtitles (SRT, WebVTT), timed from the take's chunks: enabled once a take exists.
    with gr.Row(equal_height=True, elem_classes=["take-subtitles"]):
        srt = gr.DownloadButton(
            "Subtitles (.srt)", value=None, interactive=False, size="sm", min_width=110, elem_id=f"{prefix}-srt"
        )
        vtt = gr.DownloadButton(
            "Subtitles (.vtt)", value=None, interactive=False, size="sm", min_width=110, elem_id=f"{prefix}-vtt"
        )
    # Shown only while this session has a failed take in this tab to continue.
    retry = gr.Button(
        "Retry failed chunk", size="sm", variant="secondary", visible=STARTS_HIDDEN, elem_id=f"{prefix}-retry"
    )
    gallery = take_gallery(prefix) if takes is not None else None
    return TakePlayers(
        live, take, retry, takes, gallery, download_format=download_format, download=download, srt=srt, vtt=vtt
    )


DOWNLOAD_FORMATS = ["wav", "flac", "mp3", "ogg"]
