"""Custom Voice: the nine built-in speakers, with optional style instructions."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.engine.speakers import find_speaker, speakers
from core.takes.service import TakeJob
from core.takes.values import (
    language_value,
    output_format,
    post_from_values,
    sampling_from_values,
)
from core.types import CustomVoiceRequest, Mode
from studio.ui.context import StudioContext
from studio.ui.handlers import wire_generate
from studio.ui.take_voice import save_voice_panel, wire_save_voice
from studio.ui.widgets import (
    LANGUAGE_CHOICES,
    action_bar,
    demo_banner,
    sampling_widgets,
    take_players,
)

INSTRUCT_HELP = "How to say it, e.g. 'Speak slowly and sadly, almost whispering.'"
INSTRUCT_DISABLED = "The 0.6B CustomVoice model ignores style instructions; choose 1.7B to use one."


def parse_custom_voice(
    text: str,
    speaker: str = "Ryan",
    language: str = "Auto",
    instruct: str = "",
    size: str = "1.7B",
    seed: float | None = None,  # None (or -1) = random; None keeps it optional in the API
    temperature: float | None = None,
    top_k: float | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
    max_seconds: float | None = 0,
    format: str = "wav",
    output_normalize: str = "none",
    output_fade_in_s: float = 0.0,
    output_fade_out_s: float = 0.0,
    output_trim_silence: bool = False,
    output_remove_dc: bool = False,
) -> TakeJob:
    """Custom Voice: one of the nine built-in speakers, with an optional style instruction."""
    request = CustomVoiceRequest(
        text=text or "",
        speaker=speaker or "",
        language=language_value(language),
        instruct=instruct or None,
        size=size or None,
        sampling=sampling_from_values(seed, temperature, top_k, top_p, repetition_penalty, max_seconds),
        post=post_from_values(
            output_normalize, output_fade_in_s, output_fade_out_s, output_trim_silence, output_remove_dc
        ),
    )
    fmt = output_format(format)
    return TakeJob(
        request, fmt, info={"speaker": find_speaker(request.speaker).name, "language": request.language.lower()}
    )


def speaker_card(speaker_id: str) -> str:
    try:
        s = find_speaker(speaker_id)
    except Exception:
        return ""
    return f"**{s.name}** · {s.gender} · native {s.native_language}\n\n{s.description}."


def build_custom_voice_tab(ctx: StudioContext) -> dict[str, Any]:
    sizes = ctx.app.catalog.sizes(Mode.CUSTOM_VOICE)
    default_size = ctx.app.settings.preferred_size if ctx.app.settings.preferred_size in sizes else sizes[0]
    with gr.Tab("Custom Voice", id="custom"):
        demo_banner(ctx)
        gr.Markdown("Cast one of the nine built-in speakers and direct them with a style instruction.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                text = gr.Textbox(
                    label="Text",
                    lines=5,
                    max_length=ctx.app.settings.max_text_chars,
                    placeholder="What should the speaker say?",
                    elem_id="custom-text",
                )
                with gr.Row():
                    speaker = gr.Dropdown(
                        [(f"{s.name} — {s.native_language}", s.name) for s in speakers()],
                        value="Ryan",
                        label="Speaker",
                        scale=2,
                        min_width=220,
                        elem_id="custom-speaker",
                        allow_custom_value=True,  # scripts may pass ids; the engine validates
                    )
                    language = gr.Dropdown(
                        LANGUAGE_CHOICES, value="Auto", label="Language", allow_custom_value=True, scale=1
                    )
                    size = gr.Radio(sizes, value=default_size, label="Model size", scale=1)
                card = gr.Markdown(speaker_card("Ryan"), elem_id="custom-speaker-card")
                supports = default_size != "0.6B"
                instruct = gr.Textbox(
                    "",
                    label="Style instruction (optional)",
                    lines=2,
                    interactive=supports,
                    info=INSTRUCT_HELP if supports else INSTRUCT_DISABLED,
                    elem_id="custom-instruct",
                )
                widgets = sampling_widgets(takes=True)
                # Generate, Stop, Resume and progress stay on screen (a sticky bar at the end of the column).
                bar = action_bar("custom")
                generate, status = bar.generate, bar.status
            with gr.Column(scale=2):
                players = take_players("custom", takes=widgets.takes)
                audio = players.take
                summary = gr.Markdown(elem_id="custom-summary")
                # The summary above reads the details; the JSON itself is the API's return value.
                info = gr.JSON(visible=False)
                save_panel = save_voice_panel(
                    "custom",
                    "Keep this take's voice as a library voice: the take becomes its reference and its "
                    "text the transcript. Clone it from the Voice Clone tab.",
                )

    speaker.change(speaker_card, speaker, card, api_visibility="private", queue=False)
    size.change(
        lambda s: gr.update(interactive=s != "0.6B", info=INSTRUCT_DISABLED if s == "0.6B" else INSTRUCT_HELP),
        size,
        instruct,
        api_visibility="private",
        queue=False,
    )
    wire_generate(
        ctx,
        parse_custom_voice,
        "custom_voice",
        generate,
        [text, speaker, language, instruct, size, *widgets.inputs],
        players,
        info,
        summary,
        status,
        text=text,
        bar=bar,
    )
    wire_save_voice(ctx, save_panel, info)
    return {"text": text, "speaker": speaker, "audio": audio, "info": info}
