"""Voice Clone: upload or record a reference, trim it, and speak in that voice."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gradio as gr

from core.audio.io import load_audio
from core.audio.reference import MAX_REFERENCE_UPLOAD_S, PreparedReference, ReferenceOptions, prepare_reference
from core.errors import InvalidInput, StudioError
from core.takes.recipes import clone_request_for_voice
from core.takes.service import TakeJob
from core.takes.values import (
    language_value,
    output_format,
    post_from_values,
    sampling_from_values,
)
from core.text import validate_text
from core.types import CloneRequest, Mode
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, wire_generate
from studio.ui.widgets import (
    LANGUAGE_CHOICES,
    demo_banner,
    sampling_widgets,
    take_players,
)

TRANSCRIPT_HELP = (
    "What the reference says, word for word. Without it the x-vector-only mode is used: "
    "the timbre is kept but less of the speaking style, so fidelity drops."
)


def reference_options(start_s: Any, end_s: Any, trim_silence: Any, normalize: Any) -> ReferenceOptions:
    def seconds(value: Any, name: str) -> float | None:
        if value is None or value == "":
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} must be a number of seconds.") from None
        return number or None

    return ReferenceOptions(
        start_s=seconds(start_s, "Start"),
        end_s=seconds(end_s, "End"),
        trim_silence=bool(trim_silence),
        normalize=bool(normalize),
    )


def readout(prepared: PreparedReference) -> str:
    r = prepared.report
    line = (
        f"**{r.duration_s:.1f} s** · peak {r.peak_dbfs:.1f} dBFS · RMS {r.rms_dbfs:.1f} dBFS · "
        f"{r.silence_ratio:.0%} silence" + ("" if r.speech_s is None else f" · **speech {r.speech_s:.1f} s**")
    )
    if not r.warnings:
        return line + "\n\n✓ Looks good for cloning."
    return "\n\n".join([line, *[f"⚠️ {w}" for w in r.warnings]])


NO_VOICE = ""


def library_choices(ctx: StudioContext) -> list[tuple[str, str]]:
    return [("(none: use the reference clip)", NO_VOICE)] + [
        (f"{v.name} ({v.kind}, {v.reference_seconds:.1f} s)", v.name) for v in ctx.app.library.list()
    ]


def make_parse_clone(ctx: StudioContext):
    def parse_clone(
        reference: str | None = None,
        voice: str = "",
        transcript: str = "",
        text: str = "",
        language: str = "Auto",
        size: str = "1.7B",
        start_s: float | None = None,
        end_s: float | None = None,
        trim_silence: bool = True,
        normalize: bool = True,
        seed: float | None = -1,
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
        """Voice Clone: speak `text` in the voice of a library voice (by name or id) or of a
        reference clip (trimmed as given)."""
        fmt = output_format(format)
        sampling = sampling_from_values(seed, temperature, top_k, top_p, repetition_penalty, max_seconds)
        post = post_from_values(
            output_normalize, output_fade_in_s, output_fade_out_s, output_trim_silence, output_remove_dc
        )
        if voice and voice.strip():
            # Validate the text before the (possibly slow) prompt encoding.
            validate_text(text, max_chars=ctx.app.settings.max_text_chars)
            entry = ctx.app.library.get(voice.strip())
            request, cached = clone_request_for_voice(
                ctx.app.library,
                ctx.app.synthesis,
                entry.id,
                text=text or "",
                language=language_value(language),
                size=size or None,
                sampling=sampling,
            )
            request = replace(request, post=post)
            return TakeJob(
                request,
                fmt,
                voice_id=entry.id,
                voice_name=entry.name,
                info={
                    "language": request.language.lower(),
                    "voice": entry.name,
                    "prompt_cached": cached,
                    "reference_s": entry.reference_seconds,
                },
            )
        if not reference:
            raise InvalidInput("Add a reference clip (upload or record one) or pick a voice from the library.")
        prepared = prepare_reference(reference, reference_options(start_s, end_s, trim_silence, normalize))
        request = CloneRequest(
            text=text or "",
            language=language_value(language),
            reference=prepared.audio,
            reference_text=transcript or None,
            size=size or None,
            sampling=sampling,
            post=post,
        )
        return TakeJob(
            request,
            fmt,
            info={"language": request.language.lower(), "reference_s": round(prepared.audio.duration, 3)},
            warnings=list(prepared.report.warnings),
        )

    return parse_clone


def make_voice_save(ctx: StudioContext):
    @friendly_errors
    def voice_save(
        reference: str | None = None,
        transcript: str = "",
        name: str = "",
        start_s: float | None = None,
        end_s: float | None = None,
        trim_silence: bool = True,
        normalize: bool = True,
        language: str = "Auto",
        tags: str = "",
        notes: str = "",
        consent: str = "",
    ) -> dict[str, Any]:
        """Saves a reference clip (trimmed as given) with its transcript as a library voice."""
        if not reference:
            raise InvalidInput("Add a reference clip to save: upload a file or record one.")
        options = reference_options(start_s, end_s, trim_silence, normalize)
        prepared = prepare_reference(reference, options)
        voice = ctx.app.library.save(
            name=name or "",
            kind="clone",
            reference=prepared.audio,
            transcript=transcript or None,
            language=language_value(language).lower(),
            tags=tags or (),
            notes=notes or "",
            source_name=prepared.source_name,
            consent=consent or "",
            trim=options,
        )
        return voice.as_dict()

    return voice_save


def build_clone_tab(ctx: StudioContext) -> dict[str, Any]:
    sizes = ctx.app.catalog.sizes(Mode.BASE)
    default_size = ctx.app.settings.preferred_size if ctx.app.settings.preferred_size in sizes else sizes[0]
    with gr.Tab("Voice Clone", id="clone"):
        demo_banner(ctx)
        gr.Markdown(
            "Clone a voice from 3–30 seconds of clear speech. Trim the clip with the Start and End "
            "fields; the preview below is exactly what the model hears."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Row(equal_height=False):
                    reference = gr.Audio(
                        label="Reference (upload or record)",
                        sources=["upload", "microphone"],
                        type="filepath",
                        # Not editable: the waveform's scissors replaced the clip in place (4.3 s
                        # became 1.1 s, renamed audio.wav) while Start/End still read 0. Start/End
                        # are the one trim, and the preview shows its result.
                        editable=False,
                        elem_id="clone-reference",
                        elem_classes=["audio-upload"],  # assets/studio.js refuses a non-audio file
                        scale=3,
                    )
                    voice = gr.Dropdown(
                        library_choices(ctx),
                        value=NO_VOICE,
                        label="…or a library voice",
                        allow_custom_value=True,
                        elem_id="clone-voice",
                        scale=2,
                        info="A saved voice skips the reference and reuses its cached prompt",
                    )
                # Why an upload was refused (not audio, damaged), in plain words, under the clip.
                upload_status = gr.Markdown(elem_id="clone-reference-status", elem_classes=["inline-status"])
                with gr.Row():
                    start_s = gr.Number(label="Start (s)", value=None, minimum=0, elem_id="clone-start")
                    end_s = gr.Number(label="End (s)", value=None, minimum=0, elem_id="clone-end")
                    trim_silence = gr.Checkbox(value=True, label="Trim silence")
                    normalize = gr.Checkbox(value=True, label="Normalise level")
                preview = gr.Audio(label="Clip that will be used", interactive=False, elem_id="clone-preview")
                check = gr.Markdown(elem_id="clone-readout")
                transcript = gr.Textbox(
                    "",
                    label="Reference transcript (optional)",
                    lines=2,
                    info=TRANSCRIPT_HELP,
                    elem_id="clone-transcript",
                )
                text = gr.Textbox(
                    label="Text to speak", lines=4, max_length=ctx.app.settings.max_text_chars, elem_id="clone-text"
                )
                with gr.Row():
                    language = gr.Dropdown(LANGUAGE_CHOICES, value="Auto", label="Language", allow_custom_value=True)
                    size = gr.Radio(sizes, value=default_size, label="Model size")
                widgets = sampling_widgets(takes=True)
                generate = gr.Button("Generate", variant="primary", elem_id="clone-generate")
                # Why a take was refused or failed, in plain words, next to the button.
                status = gr.Markdown(elem_id="clone-status", elem_classes=["inline-status"])
            with gr.Column(scale=2):
                players = take_players("clone", takes=widgets.takes)
                audio = players.take
                summary = gr.Markdown(elem_id="clone-summary")
                with gr.Accordion("Details", open=False):
                    info = gr.JSON(label="Take details")
                with gr.Accordion("Save the reference to the library", open=False, elem_id="clone-save"):
                    save_name = gr.Textbox(label="Voice name", elem_id="clone-save-name")
                    save_tags = gr.Textbox("", label="Tags (comma separated)")
                    save_notes = gr.Textbox("", label="Notes", lines=2)
                    save_consent = gr.Textbox(
                        "",
                        label="Consent / licence note",
                        lines=2,
                        placeholder="e.g. My own voice; or: recorded with permission of …",
                    )
                    save = gr.Button("Save to library", elem_id="clone-save-button")
                    save_status = gr.Markdown(elem_id="clone-save-status")
                    save_result = gr.JSON(visible=False)

    def check_upload(ref: str | None) -> tuple[Any, str]:
        """A file that is not readable audio is taken off the player (it showed an empty 0:00
        clip) and the reason is said under it."""
        if not ref:
            return gr.skip(), ""
        try:
            load_audio(ref, max_seconds=MAX_REFERENCE_UPLOAD_S)
        except StudioError as exc:
            return None, f"⚠️ {exc}"  # the message names the file
        return gr.skip(), ""

    reference.upload(check_upload, reference, [reference, upload_status], api_visibility="private")

    def refresh_preview(ref, start, end, silence, norm):
        if not ref:
            return None, ""
        try:
            load_audio(ref, max_seconds=MAX_REFERENCE_UPLOAD_S)
        except StudioError:
            return None, ""  # check_upload says why, under the clip
        try:
            prepared = prepare_reference(ref, reference_options(start, end, silence, norm))
        except StudioError as exc:  # e.g. a trim past the clip's end: said inline, the clip stays
            return None, f"⚠️ {exc}"
        return (prepared.audio.sample_rate, prepared.audio.samples), readout(prepared)

    preview_inputs = [reference, start_s, end_s, trim_silence, normalize]
    for trigger in (
        reference.change,
        start_s.submit,
        end_s.submit,
        start_s.blur,
        end_s.blur,
        trim_silence.change,
        normalize.change,
    ):
        trigger(refresh_preview, preview_inputs, [preview, check], api_visibility="private")

    wire_generate(
        ctx,
        make_parse_clone(ctx),
        "clone",
        generate,
        [reference, voice, transcript, text, language, size, start_s, end_s, trim_silence, normalize, *widgets.inputs],
        players,
        info,
        summary,
        status,
    )

    voice_save = make_voice_save(ctx)
    save_inputs = [
        reference,
        transcript,
        save_name,
        start_s,
        end_s,
        trim_silence,
        normalize,
        language,
        save_tags,
        save_notes,
        save_consent,
    ]
    api_endpoint(voice_save, save_inputs, save_result, "voice_save")

    def save_from_ui(*values):
        saved = voice_save(*values)
        return (
            f"Saved **{saved['name']}** ({saved['reference_seconds']:.1f} s). It is now in the "
            "Voice Library and in the picker above.",
            gr.update(choices=library_choices(ctx), value=saved["name"]),
        )

    save.click(friendly_errors(save_from_ui), save_inputs, [save_status, voice], api_visibility="private")
    # The library changes from other tabs and scripts: refresh the picker when it is opened.
    voice.focus(
        lambda v: gr.update(choices=library_choices(ctx), value=v), voice, voice, api_visibility="private", queue=False
    )
    return {
        "reference": reference,
        "voice": voice,
        "transcript": transcript,
        "text": text,
        "audio": audio,
        "info": info,
    }
