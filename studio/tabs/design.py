"""Voice Design: describe a voice in words and hear it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.speakers import design_presets
from core.synthesis import DesignRequest
from studio.ui_common import (
    LANGUAGE_CHOICES,
    StudioContext,
    TakeJob,
    demo_banner,
    language_value,
    output_format,
    sampling_from_values,
    sampling_widgets,
    take_players,
    wire_generate,
)


def parse_design(
    text: str,
    language: str = "Auto",
    description: str = "",
    seed: float | None = -1,
    temperature: float | None = None,
    top_k: float | None = None,
    top_p: float | None = None,
    repetition_penalty: float | None = None,
    max_seconds: float | None = 0,
    format: str = "wav",
) -> TakeJob:
    """Voice Design: speak `text` in a voice described in words."""
    request = DesignRequest(
        text=text or "",
        description=description or "",
        language=language_value(language),
        sampling=sampling_from_values(seed, temperature, top_k, top_p, repetition_penalty, max_seconds),
    )
    return TakeJob(request, output_format(format),
                   info={"description": request.description, "language": request.language.lower()})


def build_design_tab(ctx: StudioContext) -> dict[str, Any]:
    presets = design_presets()
    with gr.Tab("Voice Design", id="design"):
        demo_banner(ctx)
        gr.Markdown("Describe a voice in words — age, gender, timbre, pace, mood — and the 1.7B "
                    "VoiceDesign model speaks your text in it.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                text = gr.Textbox(label="Text", lines=5, max_length=ctx.app.settings.max_text_chars,
                                  placeholder="What should the voice say?", elem_id="design-text")
                with gr.Row():
                    preset = gr.Dropdown(
                        ["(custom)"] + [p.name for p in presets], value="(custom)",
                        label="Preset", scale=2, elem_id="design-preset",
                    )
                    language = gr.Dropdown(LANGUAGE_CHOICES, value="Auto", label="Language", allow_custom_value=True, scale=1)
                description = gr.Textbox(
                    label="Voice description", lines=3, elem_id="design-description",
                    placeholder="A warm, low male voice in his fifties, speaking slowly and calmly.",
                )
                widgets = sampling_widgets()
                generate = gr.Button("Generate", variant="primary", elem_id="design-generate")
            with gr.Column(scale=2):
                live, audio = take_players("design")
                summary = gr.Markdown(elem_id="design-summary")
                with gr.Accordion("Details", open=False):
                    info = gr.JSON(label="Take details")
                save_slot = gr.Column()

    by_name = {p.name: p.description for p in presets}
    preset.change(
        lambda name: gr.update(value=by_name[name]) if name in by_name else gr.update(),
        preset, description, api_visibility="private", queue=False,
    )
    wire_generate(ctx, parse_design, "design", generate, [text, language, description, *widgets.inputs],
                  live, audio, info, summary)
    return {"text": text, "language": language, "description": description, "audio": audio,
            "info": info, "save_slot": save_slot}

