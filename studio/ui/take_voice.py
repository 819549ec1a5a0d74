"""'Save as voice' next to a take player (Design, Custom Voice, Clone): the take becomes a library voice.

The voice is saved from the take as History keeps it, found by the take id in the tab's
details, never from a file the page sends: so it is known model output, and skips the speech
check (which the demo models' noise would fail) the way a Voice Design take always has. The
take's text becomes the transcript; a designed take keeps its description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from core.audio.io import load_audio
from core.errors import InvalidInput, StudioError
from core.storage.history import Take
from core.storage.library.records import Voice
from core.types import Mode
from studio.ui.context import StudioContext

NO_TAKE = "Generate a take first; the take you hear becomes the voice."


@dataclass
class SaveVoicePanel:
    name: gr.Textbox
    tags: gr.Textbox
    button: gr.Button
    status: gr.Markdown


def save_voice_panel(prefix: str, intro: str, title: str = "Save this voice to the library") -> SaveVoicePanel:
    """The "Save as voice" accordion, laid out under the tab's take player."""
    with gr.Accordion(title, open=False, elem_id=f"{prefix}-save"):
        gr.Markdown(intro)
        name = gr.Textbox(label="Voice name", elem_id=f"{prefix}-save-name")
        tags = gr.Textbox("", label="Tags (comma separated)", elem_id=f"{prefix}-save-tags")
        button = gr.Button("Save as voice", elem_id=f"{prefix}-save-button")
        status = gr.Markdown(elem_id=f"{prefix}-save-status")
    return SaveVoicePanel(name, tags, button, status)


def save_take_as_voice(ctx: StudioContext, take_id: str, name: str, tags: str = "") -> Voice:
    """Saves the kept take ``take_id`` as a library voice (a designed take as a "design" voice)."""
    if not (take_id or "").strip():
        raise InvalidInput(NO_TAKE)
    take = ctx.app.history.get(take_id.strip())
    designed = take.mode == Mode.VOICE_DESIGN
    return ctx.app.library.save(
        name=name or "",
        kind="design" if designed else "clone",
        reference=load_audio(take.audio_path),
        transcript=take.text or None,
        language=(take.language or "auto").lower(),
        description=(take.voice.get("description") or None) if designed else None,
        tags=tags or (),
        notes=made_from(take),
        source_name=f"take {take.id}",
        model_output=True,
    )


def made_from(take: Take) -> str:
    """Where the voice came from, for the library's notes."""
    who = take.voice.get("speaker") or take.voice.get("voice")
    mode = Mode(take.mode).label if take.mode in {m.value for m in Mode} else take.mode
    return f"Saved from the studio's {mode} take {take.id}" + (f" ({who})." if who else ".")


def wire_save_voice(ctx: StudioContext, panel: SaveVoicePanel, info: gr.JSON) -> None:
    """The panel's button saves the take the tab shows (``info`` holds its details and take id).
    A refused save is told under the button in plain words; the player is left alone."""

    def save_take_voice(details: dict[str, Any] | None, name: str, tags: str) -> str:
        take_id = str((details or {}).get("take_id") or "")
        try:
            saved = save_take_as_voice(ctx, take_id, name, tags)
        except StudioError as exc:
            return f"⚠️ {exc}"
        return f"Saved **{saved.name}** to the Voice Library ({saved.reference_seconds:.1f} s)."

    panel.button.click(
        save_take_voice, [info, panel.name, panel.tags], panel.status, api_visibility="private", queue=False
    )
