"""Voice Clone: upload or record a reference, trim it, and speak in that voice."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gradio as gr

from core.audio.cleanup import HIGHPASS_DEFAULT_HZ
from core.audio.io import load_audio
from core.audio.reference import MAX_REFERENCE_UPLOAD_S, PreparedReference, ReferenceOptions, prepare_reference
from core.errors import InvalidInput, StudioError
from core.takes.requests import Ask, TakeJob, take_job
from core.takes.values import Options, language_value
from core.types import Mode
from studio.ui.advanced import advanced_accordion, with_advanced
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, wire_generate
from studio.ui.tabs import clone_trim as trims
from studio.ui.take_voice import save_voice_panel, wire_save_voice
from studio.ui.transcribe import (
    fill_if_empty,
    make_fill_transcript,
    register_transcribe_api,
    transcribe_clip,
    transcript_offer,
    use_heard_language,
)
from studio.ui.trim_wave import trim_wave, wave_value
from studio.ui.widgets import (
    LANGUAGE_CHOICES,
    STARTS_HIDDEN,
    action_bar,
    demo_banner,
    take_players,
)

TRANSCRIPT_HELP = (
    "What the reference says, word for word. Without it the x-vector-only mode is used: "
    "the timbre is kept but less of the speaking style, so fidelity drops."
)


def _seconds(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number of seconds.") from None
    return number or None


def _highpass_hz(value: Any) -> float | None:
    """The high-pass option: true for the default cut-off, a number of Hz, or off."""
    if value is None or value is False or value == "" or value == 0:
        return None
    if value is True:
        return HIGHPASS_DEFAULT_HZ
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput("highpass must be true, false or a cut-off in Hz (e.g. 80).") from None


def reference_options(
    start_s: Any, end_s: Any, trim_silence: Any, normalize: Any, highpass: Any = False, denoise: Any = False
) -> ReferenceOptions:
    return ReferenceOptions(
        start_s=_seconds(start_s, "Start"),
        end_s=_seconds(end_s, "End"),
        trim_silence=bool(trim_silence),
        normalize=bool(normalize),
        highpass_hz=_highpass_hz(highpass),
        denoise=bool(denoise),
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
    @with_advanced
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
        advanced: Options = Options(),
        highpass: bool | float = False,
        denoise: bool = False,
    ) -> TakeJob:
        """Voice Clone: speak `text` in the voice of a library voice (by name or id) or of a
        reference clip (trimmed as given; `highpass` true or a cut-off in Hz and `denoise` clean it
        before the model hears it)."""
        ask = Ask(Mode.BASE, text, language, size, voice=voice, options=advanced)
        if voice and voice.strip():
            return take_job(ask, ctx.app.library, ctx.app.synthesis)
        if not reference:
            raise InvalidInput("Add a reference clip (upload or record one) or pick a voice from the library.")
        options = reference_options(start_s, end_s, trim_silence, normalize, highpass, denoise)
        prepared = prepare_reference(reference, options)
        # --auto-transcribe: an empty transcript becomes what the model hears, transcribed.
        transcript, heard = fill_if_empty(ctx, prepared.audio, transcript)
        job = take_job(
            replace(ask, reference=prepared.audio, reference_text=transcript, reference_options=options.as_dict())
        )
        job.info |= {"transcription": heard.as_dict()} if heard else {}
        job.warnings = list(prepared.report.warnings)
        return job

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
        highpass: bool | float = False,
        denoise: bool = False,
    ) -> dict[str, Any]:
        """Saves a reference clip (trimmed and cleaned as given) with its transcript as a library voice."""
        if not reference:
            raise InvalidInput("Add a reference clip to save: upload a file or record one.")
        options = reference_options(start_s, end_s, trim_silence, normalize, highpass, denoise)
        prepared = prepare_reference(reference, options)
        transcript, _ = fill_if_empty(ctx, prepared.audio, transcript)  # --auto-transcribe
        return save_prepared(ctx, prepared, options, transcript, name, language, tags, notes, consent)

    return voice_save


def save_prepared(
    ctx: StudioContext,
    prepared: PreparedReference,
    options: ReferenceOptions,
    transcript: str,
    name: str,
    language: str,
    tags: str,
    notes: str,
    consent: str,
) -> dict[str, Any]:
    """Keeps an already prepared reference as a library voice (its options recorded as its trim)."""
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


def voice_view(ctx: StudioContext, name: str | None) -> tuple[Any, ...]:
    """With a library voice chosen: its clip and transcript shown, the manual reference hidden."""
    entry = None
    if name and name.strip():
        try:
            entry = ctx.app.library.get(name.strip())
        except StudioError:
            entry = None
    chosen = bool(name and name.strip())
    if entry is None:
        card = "⚠️ No voice of that name in the library; pick one from the list." if chosen else ""
        return (gr.update(visible=not chosen), gr.update(visible=chosen), None, card, gr.update(visible=not chosen))
    transcript = entry.transcript or "_No transcript: this voice clones in the x-vector-only mode (lower fidelity)._"
    card = (
        f"**{entry.name}** · {entry.kind.capitalize()} · {entry.reference_seconds:.1f} s · "
        f"{(entry.language or 'auto').capitalize()}\n\n**Transcript:** {transcript}"
    )
    return (
        gr.update(visible=False),
        gr.update(visible=True),
        str(entry.reference_path),
        card,
        gr.update(visible=False),
    )


def build_clone_tab(ctx: StudioContext) -> dict[str, Any]:
    sizes = ctx.app.catalog.sizes(Mode.BASE)
    default_size = ctx.app.settings.preferred_size if ctx.app.settings.preferred_size in sizes else sizes[0]
    with gr.Tab("Voice Clone", id="clone"):
        demo_banner(ctx)
        gr.Markdown(
            "Clone a voice from 3–30 seconds of clear speech. Trim the clip by dragging on its waveform "
            "or with the Start and End fields; the preview below is exactly what the model hears."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                voice = gr.Dropdown(
                    library_choices(ctx),
                    value=NO_VOICE,
                    label="Library voice",
                    allow_custom_value=True,
                    elem_id="clone-voice",
                    info="A saved voice replaces the reference below and reuses its cached prompt",
                )
                # A library voice: its own clip and transcript, instead of the manual controls.
                with gr.Column(visible=STARTS_HIDDEN, elem_id="clone-voice-panel") as voice_panel:
                    voice_player = gr.Audio(
                        label="The voice's reference clip",
                        type="filepath",
                        interactive=False,
                        buttons=["download"],
                        elem_id="clone-voice-player",
                    )
                    voice_card = gr.Markdown(elem_id="clone-voice-card")
                with gr.Column(elem_id="clone-manual") as manual:
                    reference = gr.Audio(
                        label="Reference (upload or record)",
                        sources=["upload", "microphone"],
                        type="filepath",
                        # Not editable: the waveform's scissors replaced the clip in place (4.3 s
                        # became 1.1 s, renamed audio.wav) while Start/End still read 0. The trim
                        # waveform below drives Start/End instead, and the clip is never cut.
                        editable=False,
                        elem_id="clone-reference",
                        elem_classes=["audio-upload"],  # assets/studio.js refuses a non-audio file
                    )
                    # Why an upload was refused (not audio, damaged), in plain words, under the clip.
                    upload_status = gr.Markdown(elem_id="clone-reference-status", elem_classes=["inline-status"])
                    wave = trim_wave("clone-trim-wave")
                    clip_length = gr.Markdown(elem_id="clone-clip-length")
                    with gr.Row(equal_height=True):
                        start_s = gr.Number(
                            label="Start (s)", value=None, minimum=0, elem_id="clone-start", min_width=100
                        )
                        end_s = gr.Number(label="End (s)", value=None, minimum=0, elem_id="clone-end", min_width=100)
                        undo = gr.Button(
                            "↶ Undo trim", size="sm", interactive=False, scale=0, min_width=110, elem_id="clone-undo"
                        )
                    with gr.Row():
                        trim_silence = gr.Checkbox(value=True, label="Trim silence", min_width=160)
                        normalize = gr.Checkbox(value=True, label="Normalise level", min_width=160)
                    # The clean-up pair on its own row: four checkboxes in one were cut off on a phone.
                    with gr.Row():
                        highpass = gr.Checkbox(
                            value=False,
                            label=f"High-pass ({HIGHPASS_DEFAULT_HZ:.0f} Hz)",
                            info="Removes rumble and hum below the voice",
                            min_width=160,
                            elem_id="clone-highpass",
                        )
                        denoise = gr.Checkbox(
                            value=False,
                            label="Reduce noise",
                            info="For hiss; it can smear speech, so listen to the preview",
                            min_width=160,
                            elem_id="clone-denoise",
                        )
                    preview = gr.Audio(label="Clip that will be used", interactive=False, elem_id="clone-preview")
                    check = gr.Markdown(elem_id="clone-readout")
                    transcript = gr.Textbox(
                        "",
                        label="Reference transcript (optional)",
                        lines=2,
                        info=TRANSCRIPT_HELP,
                        elem_id="clone-transcript",
                    )
                    # Transcribe fills the transcript and the language from the clip between Start and End.
                    transcribe = gr.Button("Transcribe", size="sm", scale=0, min_width=130, elem_id="clone-transcribe")
                    transcribe_note = gr.Markdown(elem_id="clone-transcribe-note")
                    # Transcribe heard another language than the one chosen: switching is offered, never done.
                    use_language = gr.Button(
                        "Use the language heard", size="sm", visible="hidden", elem_id="clone-use-language"
                    )
                    # The clip was trimmed after its transcript was written: it may no longer match.
                    transcript_warning = gr.Markdown(elem_id="clone-transcript-warning")
                    retranscribe = gr.Button(
                        "Re-transcribe the trimmed clip", size="sm", visible="hidden", elem_id="clone-retranscribe"
                    )
                text = gr.Textbox(
                    label="Text to speak", lines=4, max_length=ctx.app.settings.max_text_chars, elem_id="clone-text"
                )
                with gr.Row():
                    language = gr.Dropdown(
                        LANGUAGE_CHOICES,
                        value="Auto",
                        label="Language",
                        allow_custom_value=True,
                        elem_id="clone-language",
                    )
                    size = gr.Radio(sizes, value=default_size, label="Model size")
                widgets = advanced_accordion(takes=True)
                # Generate, Stop, Resume and progress stay on screen (a sticky bar at the end of the column).
                bar = action_bar("clone")
                generate, status = bar.generate, bar.status
            with gr.Column(scale=2):
                players = take_players("clone", takes=widgets.takes)
                audio = players.take
                summary = gr.Markdown(elem_id="clone-summary")
                # The summary above reads the details; the JSON itself is the API's return value.
                info = gr.JSON(visible=False)
                # The take (not the reference) as a voice: shared with Design and Custom Voice.
                take_save = save_voice_panel(
                    "clone-take",
                    "Keep this take as a library voice: the take becomes its reference and its text the transcript.",
                    title="Save this take as a voice",
                )
                with gr.Accordion("Save the reference to the library", open=False, elem_id="clone-save") as save_box:
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
                    # Shown only when the clip has under 3 s of speech (clone_trim.save_question).
                    save_anyway = gr.Button(
                        "Save anyway", visible="hidden", variant="stop", elem_id="clone-save-anyway"
                    )
                    save_result = gr.JSON(visible=False)
                    transcribe_result = gr.JSON(visible=False)
        trim_state = gr.State(trims.new_state())
        # The Language value a transcription set (from Auto): a new clip puts Auto back.
        heard_language = gr.State(None)

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

    def view(ref, start, end, silence, norm, hp, dn, state, script) -> tuple[Any, ...]:
        """Everything the trim shows: fields, preview, readout, waveform, length, undo, warning."""
        state = state or trims.new_state(script or "")
        undo_ready = gr.update(interactive=bool(state["stack"]))
        if not ref:
            return (start, end, None, "", None, state, "", undo_ready, "", gr.update(visible="hidden"))
        try:
            clip = load_audio(ref, max_seconds=MAX_REFERENCE_UPLOAD_S)
        except StudioError:
            return (start, end, None, "", None, state, "", undo_ready, "", gr.update(visible="hidden"))  # check_upload
        duration = clip.duration
        warning = trims.transcript_warning(state, script or "", duration)
        # "hidden", not False: a Button toggled False → True here stayed hidden (Gradio 6.17).
        offer = gr.update(visible=True if warning else "hidden")
        shown = (wave_value(clip, _seconds(start, "Start"), _seconds(end, "End")), state)
        length = trims.length_line(duration, start, end)
        try:
            prepared = prepare_reference(ref, reference_options(start, end, silence, norm, hp, dn))
        except StudioError as exc:  # e.g. a trim past the clip's end: said inline, the clip stays
            return (start, end, None, f"⚠️ {exc}", *shown, length, undo_ready, warning, offer)
        return (
            start,
            end,
            (prepared.audio.sample_rate, prepared.audio.samples),
            readout(prepared),
            *shown,
            length,
            undo_ready,
            warning,
            offer,
        )

    trim_outputs = [start_s, end_s, preview, check, wave, trim_state, clip_length, undo]
    trim_outputs += [transcript_warning, retranscribe]
    cleanup = [trim_silence, normalize, highpass, denoise]
    private: dict[str, Any] = dict(api_visibility="private")
    # Every trim change runs in the order it was made: a field's blur on the way to Undo must not
    # finish after the undo and put the undone trim back.
    in_order: dict[str, Any] = dict(concurrency_id="clone-trim", concurrency_limit=1, **private)

    def new_clip(ref, silence, norm, hp, dn, script, state=None, lang=None, heard=None):
        """A new clip (uploaded, recorded or cleared) starts untrimmed, with nothing to undo; one that
        replaces another clears what was written for that one (transcript, language heard, name)."""
        if not trims.replaces_clip(state, ref):
            kept = (gr.skip(),) * len(replaced_outputs)
            return (*view(ref, None, None, silence, norm, hp, dn, trims.new_state(script or "", ref), script), *kept)
        shown = view(ref, None, None, silence, norm, hp, dn, trims.new_state("", ref), "")
        language_back = "Auto" if heard and lang == heard else gr.skip()
        hidden = gr.update(visible="hidden")
        return (*shown, "", trims.REPLACED_NOTE, "", "", hidden, language_back, None, hidden)

    def from_field(index: int):
        """Start (0) or End (1) was edited: only that field's value is taken, the other comes from
        the last trim. The two requests of a blur and a click on Undo can reach the server in either
        order; a field that was not edited then cannot put a stale value back over the undo."""

        def handler(ref, value, silence, norm, hp, dn, state, script):
            state = state or trims.new_state(script or "")
            start, end = state["last"]
            start, end = (value, end) if index == 0 else (start, value)
            if trims.commit(state, start, end) == state:  # unchanged (e.g. a blur without an edit)
                return tuple(gr.skip() for _ in trim_outputs)
            return view(ref, start, end, silence, norm, hp, dn, trims.commit(state, start, end), script)

        return handler

    def from_region(region, ref, silence, norm, hp, dn, state, script):
        region = region if isinstance(region, dict) else {}
        start, end = region.get("start"), region.get("end")
        return view(ref, start, end, silence, norm, hp, dn, trims.commit(state, start, end), script)

    def undo_trim(ref, silence, norm, hp, dn, state, script):
        state, start, end = trims.undo(state)
        return view(ref, start, end, silence, norm, hp, dn, state, script)

    def same_trim(ref, start, end, silence, norm, hp, dn, state, script):
        return view(ref, start, end, silence, norm, hp, dn, state, script)

    rest = [*cleanup, trim_state, transcript]
    replaced_outputs = [transcript, transcribe_note, save_name, save_status, save_anyway, language, heard_language]
    replaced_outputs.append(use_language)
    clip_changed = reference.change(
        new_clip,
        [reference, *cleanup, transcript, trim_state, language, heard_language],
        [*trim_outputs, *replaced_outputs],
        **in_order,
    )
    for index, box in enumerate((start_s, end_s)):
        for trigger in (box.submit, box.blur):
            trigger(from_field(index), [reference, box, *rest], trim_outputs, **in_order)
    wave.input(from_region, [wave, reference, *rest], trim_outputs, **in_order)
    undo.click(undo_trim, [reference, *rest], trim_outputs, **in_order)
    for option in cleanup:
        option.change(same_trim, [reference, start_s, end_s, *rest], trim_outputs, **in_order)

    def transcript_changed(state, script):
        return trims.transcript_written(state, script or ""), ""

    # Typed or filled in (e.g. by a transcription): the transcript now belongs to the current trim.
    # (.change, not .input: Gradio 6.17 did not fire the Textbox's input event for typed text here.)
    transcript.change(
        lambda state, script: (*transcript_changed(state, script), gr.update(visible="hidden")),
        [trim_state, transcript],
        [trim_state, transcript_warning, retranscribe],
        **in_order,
    )
    # The warning's offer: transcribe the trimmed clip (helper studio/ui/transcribe.py), then the
    # transcript belongs to the current trim again.
    transcribed = [transcript, language, transcribe_note, use_language, heard_language]
    retranscribe.click(
        transcribe_clip(make_fill_transcript(ctx)),
        [reference, start_s, end_s, language],
        transcribed,
        **private,
    ).success(
        lambda state, script: (trims.transcript_written(state, script or ""), "", gr.update(visible="hidden")),
        [trim_state, transcript],
        [trim_state, transcript_warning, retranscribe],
        **private,
    )

    # Transcription (studio/ui/transcribe.py): the button, its named twin /transcribe, and
    # with --auto-transcribe a new clip fills an empty transcript by itself. A filled-in
    # transcript belongs to the current trim, as a typed one does.
    transcribe.click(
        transcribe_clip(make_fill_transcript(ctx)),
        [reference, start_s, end_s, language],
        transcribed,
        **private,
    ).success(transcript_changed, [trim_state, transcript], [trim_state, transcript_warning], **private)
    register_transcribe_api(ctx, [reference, start_s, end_s], transcribe_result)
    if ctx.app.settings.auto_transcribe:
        fill_automatically = transcribe_clip(make_fill_transcript(ctx, automatic=True))

        def auto_fill(ref, script, lang):
            if not ref or (script or "").strip():
                return (gr.skip(),) * len(transcribed)
            try:
                return fill_automatically(ref, None, None, lang)
            except gr.Error as exc:  # no speech, model missing offline: said under the field, no toast
                skips = (gr.skip(),) * (len(transcribed) - 3)
                return gr.skip(), gr.skip(), f"⚠️ Not transcribed automatically: {exc.message}", *skips

        clip_changed.then(auto_fill, [reference, transcript, language], transcribed, **private).success(
            transcript_changed, [trim_state, transcript], [trim_state, transcript_warning], **private
        )

    use_language.click(use_heard_language, use_language, [language, use_language], queue=False, **private)
    # Chosen by hand: a new clip leaves it alone, and an offer to switch is moot.
    language.input(lambda: (None, gr.update(visible="hidden")), None, [heard_language, use_language], **private)

    voice.change(
        lambda name: voice_view(ctx, name),
        voice,
        [manual, voice_panel, voice_player, voice_card, save_box],
        queue=False,
        **private,
    )

    generate_inputs = [reference, voice, transcript, text, language, size, start_s, end_s, trim_silence, normalize]
    # No transcript at generate or save time: offer Transcribe (or say it will be filled).
    for trigger in (generate.click, save.click):
        trigger(
            lambda r, v, t: transcript_offer(ctx, r, v, t),
            [reference, voice, transcript],
            transcribe_note,
            queue=False,
            **private,
        )
    wire_generate(
        ctx,
        make_parse_clone(ctx),
        "clone",
        generate,
        [*generate_inputs, *widgets.inputs, highpass, denoise],
        players,
        info,
        summary,
        status,
        text=text,
        bar=bar,
    )
    wire_save_voice(ctx, take_save, info)

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
        highpass,
        denoise,
    ]
    api_endpoint(voice_save, save_inputs, save_result, "voice_save")

    def save_from_ui(confirmed, ref, script, name, start, end, silence, norm, lang, tags, notes, consent, hp, dn):
        if not ref:
            raise InvalidInput("Add a reference clip to save: upload a file or record one.")
        options = reference_options(start, end, silence, norm, hp, dn)
        prepared = prepare_reference(ref, options)
        script, _ = fill_if_empty(ctx, prepared.audio, script)  # --auto-transcribe
        question = "" if confirmed else trims.save_question(prepared.report.speech_s)
        if question:
            return question, gr.skip(), gr.update(visible=True)  # "hidden" ↔ True: see `offer` above
        saved = save_prepared(ctx, prepared, options, script, name, lang, tags, notes, consent)
        return (
            f"Saved **{saved['name']}** ({saved['reference_seconds']:.1f} s). It is now in the "
            "Voice Library; pick it under **Library voice** above to clone with its cached prompt.",
            # Not selected: choosing a library voice puts the clip just trimmed out of sight.
            gr.update(choices=library_choices(ctx)),
            gr.update(visible="hidden"),
        )

    save_outputs = [save_status, voice, save_anyway]

    def save_clicked(*values):  # may first ask about a clip with under 3 s of speech
        return save_from_ui(False, *values)

    def save_confirmed(*values):  # "Save anyway"
        return save_from_ui(True, *values)

    # A new attempt starts clean: no question or "Save anyway" left from the last one.
    save.click(
        lambda: ("", gr.update(visible="hidden")), None, [save_status, save_anyway], queue=False, **private
    ).then(friendly_errors(save_clicked), save_inputs, save_outputs, **private)
    save_anyway.click(friendly_errors(save_confirmed), save_inputs, save_outputs, **private)
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
        "start": start_s,
        "end": end_s,
        "trim_state": trim_state,
        "transcript_warning": transcript_warning,
        "transcribe": transcribe,
        "transcribe_note": transcribe_note,
    }
