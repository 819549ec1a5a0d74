"""Transcribe buttons and the ``/transcribe`` endpoint: a reference's words and language, filled in.

One handler per place the studio transcribes (the Clone tab's reference with its
Start/End, a library voice's stored clip), each returning the values for the
transcript box, the language dropdown and a note under them; the note labels
demo output (random weights: the text is noise). ``fill_if_empty`` is the
``--auto-transcribe`` rule at generate and save time.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.engine.transcription import Transcript
from core.errors import InvalidInput
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint

DEMO_NOTE = (
    "⚠️ **Demo output:** the demo transcription model has random weights, so this text is noise, "
    "not what the clip says. Run without `--demo-models` for a real transcript."
)
OFFER_NOTE = (
    "ℹ️ No transcript: this uses the x-vector-only mode (lower fidelity). Press **Transcribe** to fill it "
    "from the clip, or start the studio with `--auto-transcribe` to fill it by itself."
)

AUTO_NOTE = (
    "ℹ️ No transcript: the clip is transcribed automatically (`--auto-transcribe`); the take's details "
    "show what was heard."
)


def note_for(result: Transcript, *, automatic: bool = False, language_line: str = "") -> str:
    """The line under the transcript: what was transcribed, by which model, the language heard
    (and what became of the Language field), and a demo label."""
    heard = result.language_label if result.language != "auto" else f"'{result.language_code or '?'}'"
    kept = "" if result.language != "auto" else " (not a studio language: the language field was left as it was)"
    how = "Filled in automatically" if automatic else "Transcribed"
    line = f"{how}: {result.seconds:.1f} s · heard {heard}{kept} · {result.model} in {result.elapsed_s:.1f} s."
    if language_line:
        line = f"{line}\n\n{language_line}"
    return f"{line}\n\n{DEMO_NOTE}" if result.demo else f"✓ {line} Check it against the clip."


def language_choice(result: Transcript, current: Any) -> tuple[str, str, Any]:
    """What Transcribe does to the Language field: (new value, the line that says so, the
    "Use <language>" offer).

    Auto (no choice made) takes the language heard, said next to the transcript; a language the
    user chose is never changed behind their back: the note says what was heard and the offer
    button switches only when pressed.
    """
    chosen = str(current or "Auto")
    hidden = gr.update(visible="hidden")
    if result.language == "auto" or result.language_label == chosen:
        return chosen, "", hidden
    if chosen == "Auto":
        return result.language_label, f"**Language** set to **{result.language_label}** (it was Auto).", hidden
    line = (
        f"⚠️ The clip sounds **{result.language_label}**, but **Language** is **{chosen}** (your choice, "
        f"left as it is). Press **Use {result.language_label}** to switch."
    )
    return chosen, line, gr.update(visible=True, value=f"Use {result.language_label}")


def use_heard_language(offer: Any) -> tuple[str, Any]:
    """The offer button pressed: the language it names, and the button hidden again."""
    return str(offer or "Use Auto").removeprefix("Use ").strip() or "Auto", gr.update(visible="hidden")


def make_transcribe(ctx: StudioContext):
    """The ``/transcribe`` named endpoint's handler."""

    @friendly_errors
    def transcribe(reference: str | None = None, start_s: float | None = None, end_s: float | None = None) -> dict:
        """Transcribes a reference clip on this machine (optionally only start_s..end_s): text,
        language (as the studio names it, "Auto" when not one it speaks), language_code, seconds, demo."""
        if not reference:
            raise InvalidInput("Add a reference clip to transcribe: upload a file or record one.")
        return ctx.app.transcriber.transcribe(reference, start_s=start_s, end_s=end_s).as_dict()

    return transcribe


def register_transcribe_api(ctx: StudioContext, inputs: list[Any], output: Any) -> None:
    """``/transcribe`` on the Clone tab's reference, Start and End: one device job at a time,
    like a take (loading Whisper may evict a TTS model)."""
    api_endpoint(make_transcribe(ctx), inputs, output, "transcribe")


def make_fill_transcript(ctx: StudioContext, *, automatic: bool = False):
    """The Clone tab's Transcribe (and Re-transcribe) action.

    ``fill_transcript(reference, start_s, end_s, language) -> (transcript, language, note, offer)``:
    transcribes the clip between Start and End, the part the model hears, and returns the
    new transcript, the Language field (see :func:`language_choice`), the note for under the
    field (``automatic``: the ``--auto-transcribe`` fill when a clip is loaded, said so in the
    note) and the "Use <language>" offer button.
    """

    @friendly_errors
    def fill_transcript(reference: str | None, start_s: Any, end_s: Any, language: Any) -> tuple[str, Any, str, Any]:
        if not reference:
            raise InvalidInput("Add a reference clip first: upload a file or record one, then press Transcribe.")
        result = ctx.app.transcriber.transcribe(reference, start_s=_seconds(start_s), end_s=_seconds(end_s))
        value, line, offer = language_choice(result, language)
        return result.text, value, note_for(result, automatic=automatic, language_line=line), offer

    return fill_transcript


def transcribe_clip(fill):
    """A Transcribe action for the Clone tab: ``fill``'s four values, then the language it set
    from Auto (kept, so a new clip can put Auto back) or a skip."""

    def run(ref, start, end, lang):
        text, value, note, offer = fill(ref, start, end, lang)
        return text, value, note, offer, (value if value != (lang or "Auto") else gr.skip())

    run.__name__ = getattr(fill, "__name__", "transcribe_clip")
    return run


def make_fill_library_transcript(ctx: StudioContext):
    """The Library edit form's Transcribe: the saved voice's own reference clip."""

    @friendly_errors
    def fill_library_transcript(voice_id: str | None, language: Any) -> tuple[str, Any, str, Any]:
        if not voice_id:
            raise InvalidInput("Pick a voice first, then press Transcribe.")
        audio = ctx.app.library.reference_audio(voice_id)
        result = ctx.app.transcriber.transcribe(audio)
        value, line, offer = language_choice(result, language)
        return result.text, value, note_for(result, language_line=line), offer

    return fill_library_transcript


def fill_if_empty(ctx: StudioContext, source: Any, transcript: str | None) -> tuple[str, Transcript | None]:
    """``--auto-transcribe``: an empty transcript becomes the transcription of ``source`` (the
    clip exactly as the model hears it).

    Returns the transcript to use and the transcription when one was made; with the
    setting off, or a transcript already written, the transcript as it was and None.
    """
    if (transcript or "").strip() or not ctx.app.settings.auto_transcribe or source is None:
        return transcript or "", None
    result = ctx.app.transcriber.transcribe(source)
    return result.text, result


def transcript_offer(ctx: StudioContext, reference: Any, voice: Any, transcript: Any) -> Any:
    """At generate and save time: with a clip, no library voice and no transcript, offer
    Transcribe (with --auto-transcribe: say the clip is being transcribed)."""
    if reference and not (voice or "").strip() and not (transcript or "").strip():
        return AUTO_NOTE if ctx.app.settings.auto_transcribe else OFFER_NOTE
    return gr.skip()


def library_transcript_offer(ctx: StudioContext, voice_id: Any, transcript: Any) -> Any:
    """Saving a library voice with no transcript: offer Transcribe (or say it was filled in)."""
    if voice_id and not (transcript or "").strip():
        if ctx.app.settings.auto_transcribe:
            return "ℹ️ No transcript: it was transcribed from the voice's clip (`--auto-transcribe`)."
        return OFFER_NOTE.replace("from the clip", "from the voice's clip")
    return ""


def _seconds(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value) or None
    except (TypeError, ValueError):
        raise InvalidInput("Start and End must be numbers of seconds.") from None
