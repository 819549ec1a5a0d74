"""Voice Design: describe a voice in words and hear it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.engine.speakers import design_presets
from core.errors import InvalidInput, VoiceNotFound
from core.takes.requests import Ask, TakeJob, take_job
from core.takes.values import Options
from core.types import DesignRequest, Mode
from studio.ui.advanced import advanced_accordion, with_advanced
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, wire_generate
from studio.ui.progress import gradio_progress
from studio.ui.take_voice import save_voice_panel, wire_save_voice
from studio.ui.widgets import LANGUAGE_CHOICES, action_bar, demo_banner, take_players


@with_advanced
def parse_design(text: str, language: str = "Auto", description: str = "", advanced: Options = Options()) -> TakeJob:
    """Voice Design: speak `text` in a voice described in words."""
    return take_job(Ask(Mode.VOICE_DESIGN, text, language, description=description, options=advanced))


def build_design_tab(ctx: StudioContext) -> dict[str, Any]:
    presets = design_presets()
    with gr.Tab("Voice Design", id="design"):
        demo_banner(ctx)
        gr.Markdown(
            "Describe a voice in words — age, gender, timbre, pace, mood — and the 1.7B "
            "VoiceDesign model speaks your text in it."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                text = gr.Textbox(
                    label="Text",
                    lines=5,
                    max_length=ctx.app.settings.max_text_chars,
                    placeholder="What should the voice say?",
                    elem_id="design-text",
                )
                with gr.Row():
                    preset = gr.Dropdown(
                        ["(custom)"] + [p.name for p in presets],
                        value="(custom)",
                        label="Preset",
                        scale=2,
                        elem_id="design-preset",
                    )
                    language = gr.Dropdown(
                        LANGUAGE_CHOICES, value="Auto", label="Language", allow_custom_value=True, scale=1
                    )
                description = gr.Textbox(
                    label="Voice description",
                    lines=3,
                    elem_id="design-description",
                    placeholder="A warm, low male voice in his fifties, speaking slowly and calmly.",
                )
                widgets = advanced_accordion(takes=True)
                # Generate, Stop, Resume and progress stay on screen (a sticky bar at the end of the column).
                bar = action_bar("design")
                generate, status = bar.generate, bar.status
            with gr.Column(scale=2):
                players = take_players("design", takes=widgets.takes)
                audio = players.take
                summary = gr.Markdown(elem_id="design-summary")
                # The summary above reads the details; the JSON itself is the API's return value.
                info = gr.JSON(visible=False)
                # "Save as voice" next to the player, shared with Custom Voice and Clone (studio/ui/take_voice.py).
                save_panel = save_voice_panel(
                    "design",
                    "Design, then clone: the take becomes the voice's reference, its text the "
                    "transcript, and the description is kept. Use it from the Voice Clone tab.",
                )
                save_name, save_tags = save_panel.name, save_panel.tags
                save_result = gr.JSON(visible=False)

    by_name = {p.name: p.description for p in presets}
    preset.change(
        lambda name: gr.update(value=by_name[name]) if name in by_name else gr.update(),
        preset,
        description,
        api_visibility="private",
        queue=False,
    )
    wire_generate(
        ctx,
        parse_design,
        "design",
        generate,
        [text, language, description, *widgets.inputs],
        players,
        info,
        summary,
        status,
        text=text,
        bar=bar,
    )

    wire_save_voice(ctx, save_panel, info)

    @friendly_errors
    def voice_design_save(
        text: str,
        language: str = "Auto",
        description: str = "",
        name: str = "",
        seed: float | None = None,  # None (or -1) = random; None keeps it optional in the API
        tags: str = "",
        progress=gr.Progress(),
    ) -> dict[str, Any]:
        """Design then clone: generates `text` in the described voice and saves the take as a
        library voice (its text becomes the transcript, the description is kept)."""
        check_voice_name(ctx, name)
        request = parse_design(text, language, description, seed).request
        assert isinstance(request, DesignRequest)  # what parse_design always makes
        result = ctx.app.synthesis.synthesize(request, gradio_progress(progress))
        saved = save_designed_voice(ctx, result.audio, result.text, request.description, request.language, name, tags)
        return saved | {"seed": result.seed, "model": result.model}

    api_endpoint(
        voice_design_save,
        [text, language, description, save_name, widgets.seed, save_tags],
        save_result,
        "voice_design_save",
    )
    return {"text": text, "language": language, "description": description, "audio": audio, "info": info}


def check_voice_name(ctx: StudioContext, name: str) -> None:
    """Fails before a generation that could not be saved under this name."""
    if not (name or "").strip():
        raise InvalidInput("Give the voice a name.")
    try:
        existing = ctx.app.library.get(name.strip())
    except VoiceNotFound:
        return
    raise InvalidInput(f"A voice named '{existing.name}' already exists; choose another name or rename it first.")


def save_designed_voice(
    ctx: StudioContext, audio, text: str, description: str, language: str, name: str, tags: str
) -> dict[str, Any]:
    voice = ctx.app.library.save(
        name=name or "",
        kind="design",
        reference=audio,
        transcript=text or None,
        language=(language or "auto").lower(),
        description=description or None,
        tags=tags or (),
    )
    return voice.as_dict()
