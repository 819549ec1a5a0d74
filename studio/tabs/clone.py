"""Voice Clone: upload or record a reference, trim it, and speak in that voice."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.reference import PreparedReference, ReferenceOptions, prepare_reference
from core.synthesis import CloneRequest
from studio.ui_common import (
    LANGUAGE_CHOICES,
    StudioContext,
    TakeJob,
    demo_banner,
    friendly_errors,
    language_value,
    output_format,
    sampling_from_values,
    sampling_widgets,
    take_players,
    wire_generate,
)
from core.errors import InvalidInput

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
    line = (f"**{r.duration_s:.1f} s** · peak {r.peak_dbfs:.1f} dBFS · RMS {r.rms_dbfs:.1f} dBFS · "
            f"{r.silence_ratio:.0%} silence")
    if not r.warnings:
        return line + "\n\n✅ Looks good for cloning."
    return "\n\n".join([line, *[f"⚠️ {w}" for w in r.warnings]])


def parse_clone(
    reference: str | None = None,
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
) -> TakeJob:
    """Voice Clone: speak `text` in the voice of a reference clip (trimmed as given)."""
    fmt = output_format(format)
    sampling = sampling_from_values(seed, temperature, top_k, top_p, repetition_penalty, max_seconds)
    if not reference:
        raise InvalidInput("Add a reference clip: upload a file or record one with the microphone.")
    prepared = prepare_reference(reference, reference_options(start_s, end_s, trim_silence, normalize))
    request = CloneRequest(
        text=text or "",
        language=language_value(language),
        reference=prepared.audio,
        reference_text=transcript or None,
        size=size or None,
        sampling=sampling,
    )
    return TakeJob(request, fmt, info={"language": request.language.lower(),
                                       "reference_s": round(prepared.audio.duration, 3)},
                   warnings=list(prepared.report.warnings))


def build_clone_tab(ctx: StudioContext) -> dict[str, Any]:
    sizes = ctx.app.catalog.sizes("base")
    default_size = ctx.app.settings.preferred_size if ctx.app.settings.preferred_size in sizes else sizes[0]
    with gr.Tab("Voice Clone", id="clone"):
        demo_banner(ctx)
        gr.Markdown("Clone a voice from 3–30 seconds of clear speech. Trim the clip with the waveform's "
                    "scissors or the start/end fields; the preview is exactly what the model hears.")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                reference = gr.Audio(label="Reference (upload or record)", sources=["upload", "microphone"],
                                     type="filepath", editable=True, elem_id="clone-reference")
                with gr.Row():
                    start_s = gr.Number(label="Start (s)", value=None, minimum=0, elem_id="clone-start")
                    end_s = gr.Number(label="End (s)", value=None, minimum=0, elem_id="clone-end")
                    trim_silence = gr.Checkbox(value=True, label="Trim silence")
                    normalize = gr.Checkbox(value=True, label="Normalise level")
                preview = gr.Audio(label="Clip that will be used", interactive=False, elem_id="clone-preview")
                check = gr.Markdown(elem_id="clone-readout")
                transcript = gr.Textbox("", label="Reference transcript (optional)", lines=2, info=TRANSCRIPT_HELP,
                                        elem_id="clone-transcript")
                text = gr.Textbox(label="Text to speak", lines=4, max_length=ctx.app.settings.max_text_chars,
                                  elem_id="clone-text")
                with gr.Row():
                    language = gr.Dropdown(LANGUAGE_CHOICES, value="Auto", label="Language", allow_custom_value=True)
                    size = gr.Radio(sizes, value=default_size, label="Model size")
                widgets = sampling_widgets()
                generate = gr.Button("Generate", variant="primary", elem_id="clone-generate")
            with gr.Column(scale=2):
                live, audio = take_players("clone")
                summary = gr.Markdown(elem_id="clone-summary")
                with gr.Accordion("Details", open=False):
                    info = gr.JSON(label="Take details")
                save_slot = gr.Column()

    @friendly_errors
    def refresh_preview(ref, start, end, silence, norm):
        if not ref:
            return None, ""
        prepared = prepare_reference(ref, reference_options(start, end, silence, norm))
        return (prepared.audio.sample_rate, prepared.audio.samples), readout(prepared)

    preview_inputs = [reference, start_s, end_s, trim_silence, normalize]
    for trigger in (reference.change, start_s.submit, end_s.submit, start_s.blur, end_s.blur,
                    trim_silence.change, normalize.change):
        trigger(refresh_preview, preview_inputs, [preview, check], api_visibility="private")

    wire_generate(ctx, parse_clone, "clone", generate,
                  [reference, transcript, text, language, size, start_s, end_s, trim_silence, normalize,
                   *widgets.inputs], live, audio, info, summary)
    return {"reference": reference, "transcript": transcript, "start_s": start_s, "end_s": end_s,
            "trim_silence": trim_silence, "normalize": normalize, "text": text, "language": language,
            "audio": audio, "info": info, "save_slot": save_slot}
