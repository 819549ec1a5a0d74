"""Custom Voice: the nine built-in speakers, with optional style instructions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from core.engine.speakers import Speaker, find_speaker, speakers
from core.takes.requests import Ask, TakeJob, take_job
from core.takes.values import Options
from core.types import Mode
from studio.ui.advanced import advanced_accordion, with_advanced
from studio.ui.context import StudioContext
from studio.ui.handlers import wire_generate
from studio.ui.take_voice import save_voice_panel, wire_save_voice
from studio.ui.widgets import LANGUAGE_CHOICES, action_bar, demo_banner, take_players

INSTRUCT_HELP = "How to say it, e.g. 'Speak slowly and sadly, almost whispering.'"
INSTRUCT_DISABLED = "The 0.6B CustomVoice model ignores style instructions; choose 1.7B to use one."


def make_parse_custom_voice(ctx: StudioContext) -> Any:
    @with_advanced
    def parse_custom_voice(
        text: str,
        speaker: str = "Ryan",
        language: str = "Auto",
        instruct: str = "",
        size: str = "1.7B",
        advanced: Options = Options(),
    ) -> TakeJob:
        """Custom Voice: one of the nine built-in speakers (or a voice trained here), with an optional style instruction."""
        ask = Ask(Mode.CUSTOM_VOICE, text, language, size, speaker=speaker, instruct=instruct, options=advanced)
        # The synthesis service's catalog knows the voices trained here (Train a voice).
        return take_job(ask, ctx.app.library, ctx.app.synthesis)

    return parse_custom_voice


def speaker_card(speaker_id: str, trained: Sequence[Speaker] = ()) -> str:
    try:
        s = find_speaker(speaker_id, trained)
    except Exception:
        return ""
    if not s.gender:  # a voice trained here (Train a voice): no gender or native language to tell
        return f"**{s.name}** · {s.description}."
    return f"**{s.name}** · {s.gender} · native {s.native_language}\n\n{s.description}."


def speaker_choices(ctx: StudioContext) -> list[tuple[str, str]]:
    """The built-in speakers, then the voices trained here (found in the models dir now)."""
    built_in = [(f"{s.name} — {s.native_language}", s.name) for s in speakers()]
    return built_in + [(f"{s.name} — trained here", s.name) for s in ctx.app.catalog.trained_speakers()]


def build_custom_voice_tab(ctx: StudioContext) -> dict[str, Any]:
    sizes = ctx.app.catalog.sizes(Mode.CUSTOM_VOICE)
    default_size = ctx.app.settings.preferred_size if ctx.app.settings.preferred_size in sizes else sizes[0]
    with gr.Tab("Custom Voice", id="custom") as tab:
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
                        speaker_choices(ctx),
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
                widgets = advanced_accordion(takes=True)
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

    speaker.change(
        lambda s: speaker_card(s, ctx.app.catalog.trained_speakers()),
        speaker,
        card,
        api_visibility="private",
        queue=False,
    )
    # A voice trained (or removed) since the page opened is listed when the tab opens.
    tab.select(lambda: gr.update(choices=speaker_choices(ctx)), None, speaker, api_visibility="private", queue=False)
    size.change(
        lambda s: gr.update(interactive=s != "0.6B", info=INSTRUCT_DISABLED if s == "0.6B" else INSTRUCT_HELP),
        size,
        instruct,
        api_visibility="private",
        queue=False,
    )
    wire_generate(
        ctx,
        make_parse_custom_voice(ctx),
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
