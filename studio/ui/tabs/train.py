"""Train a voice: recordings -> a reviewed dataset -> a fine-tuned speaker in Custom Voice (issue 25).

Three sections over the core (``core/finetune/``), which holds every rule:

1. **Dataset** (studio/ui/tabs/train_dataset.py): build one from a long recording or many clips
   (a job with progress and Stop), review its clips (play, edit the transcript, exclude, choose
   the reference), read the go / no-go verdict, export, import, delete.
2. **Training** (studio/ui/tabs/train_run.py): LoRA or full fine-tuning of a Base model as a job
   (step k of n, loss, time left, a loss plot, Stop and Resume); the trained speaker appears in
   Custom Voice and Models.
3. **Evaluation** (studio/ui/tabs/train_eval.py): a finished run's voice and a zero-shot clone of
   its recordings say three held-out sentences, side by side, each with its word error rate and
   speaker similarity.

An action that can fail runs first with a gr.State as its only output, so a refusal is one
toast instead of an "Error" badge over every widget; only on success is the view redrawn.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import gradio as gr

from core.errors import InvalidInput, StudioError
from core.finetune.dataset import Dataset
from core.finetune.state import RunStatus
from core.takes.jobs import Job
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import STOP_WAIT_S, owner_of
from studio.ui.tabs.library import DOWNLOAD_JS
from studio.ui.tabs.train_dataset import (
    COLUMNS,
    DATASET_TAB,
    NO_DATASET,
    clip_text,
    export_dataset,
    make_dataset_api,
    register_dataset_api,
    start_build,
    summary_text,
    table,
    verdict_text,
)
from studio.ui.tabs.train_eval import build_eval_section
from studio.ui.tabs.train_run import (
    METHOD_CHOICES,
    SIZES,
    RunJobs,
    loss_frame,
    make_train_api,
    progress_line,
    register_train_api,
    result_text,
    run_choices,
    start_training,
    status_of,
    train_config,
)
from studio.ui.widgets import STARTS_HIDDEN, markdown_text

CONFIRM_LABEL = "Yes, delete this dataset and its clips"
INTRO = (
    "Turn a person's recordings into a voice of their own. **1.** Build a dataset: the studio cuts "
    "the recordings into 3-15 s clips at the pauses and transcribes each; review them and read the "
    "verdict. **2.** Train: a Base model learns the voice as a new speaker, listed in **Custom Voice** "
    "and **Models**. **3.** Evaluate: hear it beside a clone of the same recordings, with the numbers. "
    "Record 10 minutes or more for a steady voice."
)
TICK_S = 0.5


def plain(text: str, limit: int) -> str:
    """Text for a dropdown's label (shown as typed, no Markdown), cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


private: dict[str, Any] = {"api_visibility": "private"}


def build_train_tab(ctx: StudioContext) -> None:
    store = ctx.app.datasets
    runs = RunJobs()
    dataset_api = make_dataset_api(ctx)
    train_api = make_train_api(ctx, runs)
    initial = store.list()

    with gr.Tab("Train a voice", id="train", elem_id="train-tab") as tab:
        gr.Markdown(INTRO)
        gr.Markdown("## 1. Dataset", elem_classes=["section-title"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                name = gr.Textbox(label="New dataset's name", placeholder="e.g. Anna reads", elem_id="train-ds-name")
                files = gr.File(
                    label="Recordings: one long recording or many clips",
                    file_count="multiple",
                    file_types=["audio"],
                    type="filepath",
                    height=130,
                    elem_id="train-ds-files",
                )
                recording = gr.Audio(
                    label="…or record", sources=["microphone"], type="filepath", elem_id="train-ds-record"
                )
                with gr.Row():
                    build = gr.Button("Build dataset", variant="primary", elem_id="train-ds-build")
                    stop_build = gr.Button("Stop", variant="stop", visible=STARTS_HIDDEN, elem_id="train-ds-stop")
                build_progress = gr.Markdown(elem_id="train-ds-progress", elem_classes=["take-progress"])
            with gr.Column(scale=3, min_width=300):
                with gr.Row(equal_height=True):
                    picker = gr.Dropdown(
                        [(d.name, d.id) for d in initial],
                        value=initial[0].id if initial else None,
                        label="Dataset",
                        scale=3,
                        min_width=200,
                        elem_id="train-dataset",
                    )
                    reload = gr.Button("↻ Refresh", size="sm", scale=0, min_width=110, elem_id="train-ds-refresh")
                summary = gr.Markdown(NO_DATASET, elem_id="train-ds-summary")
                verdict = gr.Markdown(elem_id="train-ds-verdict")
        clips = gr.Dataframe(
            table(None),
            headers=COLUMNS,
            interactive=False,
            max_height=340,
            wrap=True,
            column_widths=[70, 110, 90, 640, 170, 90],
            pinned_columns=1,
            elem_id="train-ds-table",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                clip = gr.Dropdown([], label="Clip", info="Pick a clip, or click its row", elem_id="train-clip")
                player = gr.Audio(label="Clip", type="filepath", interactive=False, elem_id="train-clip-player")
                clip_details = gr.Markdown(elem_id="train-clip-details")
            with gr.Column(scale=3, min_width=300):
                transcript = gr.Textbox(
                    label="Transcript",
                    lines=3,
                    info="What the clip says, word for word: training reads it.",
                    elem_id="train-clip-text",
                )
                with gr.Row():
                    save_text = gr.Button("Save transcript", variant="primary", elem_id="train-clip-save")
                    exclude = gr.Button("Exclude from training", elem_id="train-clip-exclude")
                    reference = gr.Button("Make it the reference", elem_id="train-clip-reference")
                status = gr.Markdown(elem_id="train-ds-status")
                with gr.Accordion("Export, import or delete", open=False, elem_id="train-ds-transfer"):
                    export = gr.Button("Export dataset (.zip)", elem_id="train-ds-export")
                    # Never shown: an export downloads at once (DOWNLOAD_JS); the status line names the file.
                    exported = gr.File(interactive=False, visible=False, elem_id="train-ds-exported")
                    upload = gr.File(
                        label="Import a dataset .zip",
                        file_types=[".zip"],
                        type="filepath",
                        height=110,
                        elem_id="train-ds-import",
                    )
                    with gr.Group():
                        confirm = gr.Checkbox(value=False, label=CONFIRM_LABEL, elem_id="train-ds-confirm")
                        delete = gr.Button("Delete dataset", variant="stop", elem_id="train-ds-delete")

        gr.Markdown("## 2. Training", elem_classes=["section-title"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                speaker = gr.Textbox(
                    label="New speaker's name",
                    placeholder="e.g. Anna",
                    info="How Custom Voice lists the voice; a built-in speaker's name is refused.",
                    elem_id="train-speaker",
                )
                with gr.Row():
                    method = gr.Radio(METHOD_CHOICES, value="lora", label="Method", elem_id="train-method")
                    size = gr.Radio(SIZES, value="0.6B", label="Base model size", elem_id="train-size")
                with gr.Row():
                    epochs = gr.Number(3, label="Epochs", precision=0, minimum=1, elem_id="train-epochs")
                    max_steps = gr.Number(
                        0, label="Step limit (0 = all)", precision=0, minimum=0, elem_id="train-max-steps"
                    )
                with gr.Accordion("Advanced", open=False, elem_id="train-advanced"):
                    with gr.Row():
                        batch = gr.Number(2, label="Batch size", precision=0, minimum=1, elem_id="train-batch")
                        accum = gr.Number(
                            4, label="Gradient accumulation", precision=0, minimum=1, elem_id="train-accum"
                        )
                        save_every = gr.Number(
                            20, label="Keep a checkpoint every (steps)", precision=0, minimum=1, elem_id="train-save"
                        )
                    trial = gr.Checkbox(
                        value=False,
                        label="Trial run: train on whatever is kept, even when the verdict is no-go (2 clips or more)",
                        elem_id="train-trial",
                    )
                with gr.Row():
                    train = gr.Button("Train", variant="primary", elem_id="train-start")
                    stop = gr.Button("Stop", variant="stop", visible=STARTS_HIDDEN, elem_id="train-stop")
                    resume = gr.Button("Resume", visible=STARTS_HIDDEN, elem_id="train-resume")
            with gr.Column(scale=3, min_width=300):
                choices = run_choices(ctx, runs)
                run_pick = gr.Dropdown(
                    choices,
                    value=choices[0][1] if choices else None,
                    label="Training run",
                    elem_id="train-run",
                )
                progress = gr.Markdown(elem_id="train-progress", elem_classes=["take-progress"])
                plot = gr.LinePlot(
                    loss_frame(None, None),
                    x="step",
                    y="loss",
                    title="Training loss",
                    height=240,
                    elem_id="train-loss",
                )
                result = gr.Markdown(elem_id="train-result")
        build_eval_section(ctx, run_pick)
        outcome = gr.State()  # what the last dataset action did, for the step that redraws the view
        # Inside the tab: a stray child of gr.Tabs breaks the tab bar in the browser.
        register_dataset_api(dataset_api)
        register_train_api(train_api)

    # --- the dataset view -------------------------------------------------------------------

    clip_outputs = [clip, player, clip_details, transcript, exclude]
    view_outputs = [picker, summary, verdict, clips, *clip_outputs, confirm]

    def clip_values(dataset: Dataset | None, clip_id: str | None) -> tuple[Any, ...]:
        if dataset is None or not dataset.utterances:
            return gr.update(choices=[], value=None), None, "", "", gr.update(value="Exclude from training")
        chosen = next((u for u in dataset.utterances if u.id == clip_id), dataset.utterances[0])
        options = [(f"{u.id} · {plain(u.text, 40) or '(no transcript)'}", u.id) for u in dataset.utterances]
        return (
            gr.update(choices=options, value=chosen.id),
            str(dataset.audio_path(chosen)),
            clip_text(dataset, chosen),
            chosen.text,
            gr.update(value="Include in training" if chosen.excluded else "Exclude from training"),
        )

    def view(dataset_id: str | None, clip_id: str | None = None) -> tuple[Any, ...]:
        listed = store.list()
        dataset = next((d for d in listed if d.id == dataset_id), listed[0] if listed else None)
        picked = gr.update(choices=[(d.name, d.id) for d in listed], value=dataset.id if dataset else None)
        if dataset is None:
            return picked, NO_DATASET, "", table(None), *clip_values(None, None), False
        clip_id = clip_id if dataset.id == dataset_id else None
        return (
            picked,
            summary_text(dataset),
            verdict_text(dataset.verdict()),
            table(dataset),
            *clip_values(dataset, clip_id),
            False,
        )

    @friendly_errors
    def refresh(dataset_id: str | None, clip_id: str | None) -> tuple[Any, ...]:
        return view(dataset_id, clip_id)

    @friendly_errors
    def pick_dataset(dataset_id: str | None) -> tuple[Any, ...]:
        return view(dataset_id, None)  # another dataset starts at its first clip

    @friendly_errors
    def pick_clip(dataset_id: str | None, clip_id: str | None) -> tuple[Any, ...]:
        return clip_values(store.get(dataset_id or ""), clip_id)

    @friendly_errors
    def pick_row(dataset_id: str | None, evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.row_value or []
        if not row or not dataset_id:
            return tuple(gr.skip() for _ in clip_outputs)
        return clip_values(store.get(dataset_id), str(row[0]))

    # --- dataset actions (outcome first, then the view) -------------------------------------------

    def chosen(dataset_id: str | None, clip_id: str | None) -> tuple[Dataset, str]:
        if not dataset_id:
            raise InvalidInput("Build or import a dataset first.")
        if not clip_id:
            raise InvalidInput("Pick a clip first (click its row in the table).")
        return store.get(dataset_id), clip_id

    @friendly_errors
    def do_save_text(dataset_id: str | None, clip_id: str | None, text: str | None) -> dict[str, Any]:
        dataset, clip_id = chosen(dataset_id, clip_id)
        store.set_text(dataset, clip_id, text or "")
        return {"dataset": dataset.id, "clip": clip_id, "message": f"Saved the transcript of **{clip_id}**."}

    @friendly_errors
    def do_exclude(dataset_id: str | None, clip_id: str | None) -> dict[str, Any]:
        dataset, clip_id = chosen(dataset_id, clip_id)
        excluded = not dataset.utterance(clip_id).excluded
        store.set_excluded(dataset, clip_id, excluded)
        word = "Excluded" if excluded else "Included"
        where = "training skips it" if excluded else "training reads it when it has a transcript"
        return {"dataset": dataset.id, "clip": clip_id, "message": f"{word} **{clip_id}**: {where}."}

    @friendly_errors
    def do_reference(dataset_id: str | None, clip_id: str | None) -> dict[str, Any]:
        dataset, clip_id = chosen(dataset_id, clip_id)
        store.set_reference(dataset, clip_id)
        return {
            "dataset": dataset.id,
            "clip": clip_id,
            "message": f"**{clip_id}** is the reference clip: the new speaker's embedding comes from it.",
        }

    @friendly_errors
    def do_export(dataset_id: str | None) -> dict[str, Any]:
        dataset = store.get(dataset_id or "")
        path = export_dataset(ctx, dataset.id)
        return {"file": str(path), "message": f"Exported: the download of `{markdown_text(path.name)}` has started."}

    @friendly_errors
    def do_import(file: str | None) -> dict[str, Any]:
        if not file:
            raise InvalidInput("Choose a dataset .zip made with Export to import.")
        imported = store.import_zip(file)
        return {"dataset": imported.id, "message": f"Imported **{markdown_text(imported.name)}**."}

    @friendly_errors
    def do_delete(dataset_id: str | None, confirmed: bool) -> dict[str, Any]:
        dataset = store.get(dataset_id or "")
        if not confirmed:
            raise gr.Error(
                f"Tick “{CONFIRM_LABEL}” first, then press Delete again. Deleting removes the clips for good.",
                title="Please confirm",
            )
        store.delete(dataset)
        return {"dataset": None, "message": f"Deleted the dataset **{markdown_text(dataset.name)}**."}

    @friendly_errors
    def show_outcome(result: dict[str, Any] | None, dataset_id: str | None) -> tuple[Any, ...]:
        result = result or {}
        return (*view(result.get("dataset", dataset_id), result.get("clip")), result.get("message", ""))

    def action(trigger: Any, fn: Any, inputs: list[Any]) -> Any:
        event = trigger(fn, inputs, outcome, **private)
        event.success(show_outcome, [outcome, picker], [*view_outputs, status], **private)
        return event

    action(save_text.click, do_save_text, [picker, clip, transcript])
    action(transcript.submit, do_save_text, [picker, clip, transcript])
    action(exclude.click, do_exclude, [picker, clip])
    action(reference.click, do_reference, [picker, clip])
    action(delete.click, do_delete, [picker, confirm])
    imported = action(upload.upload, do_import, [upload])
    imported.then(lambda: None, None, upload, queue=False, **private)  # the same file can be chosen again
    export.click(do_export, picker, outcome, **private).success(
        lambda r: (gr.update(value=(r or {}).get("file"), visible=False), (r or {}).get("message", "")),
        outcome,
        [exported, status],
        **private,
    ).then(None, exported, None, js=DOWNLOAD_JS, **private)

    in_order: dict[str, Any] = {"concurrency_id": "train-view", "concurrency_limit": 1, "show_progress": "hidden"}
    picker.input(pick_dataset, picker, view_outputs, **in_order, **private)
    reload.click(refresh, [picker, clip], view_outputs, **in_order, **private)
    clip.input(pick_clip, [picker, clip], clip_outputs, **in_order, **private)
    clips.select(pick_row, picker, clip_outputs, **in_order, **private)
    for picked in (picker.input, clip.input, clips.select):
        picked(lambda: "", None, status, queue=False, **private)

    # --- building ------------------------------------------------------------------------------

    def run_build(
        dataset_name: str | None, sources: Any, recorded: Any, request: gr.Request | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """Follows the build job: its line, then the new dataset's view. A refusal is told on the line."""
        skips = tuple(gr.skip() for _ in range(len(view_outputs) + 2))  # the view, then the two inputs
        try:
            started = start_build(
                ctx, dataset_name, sources, recorded, owner=owner_of(request), client=client_id(request)
            )
        except StudioError as exc:
            yield f"⚠️ {markdown_text(str(exc), 400)}", *skips
            return
        while not started.job.wait(TICK_S):
            yield started.line(), *skips
        if started.dataset is None:
            yield f"⚠️ {markdown_text(started.line(), 400)}", *skips
            return
        yield started.line(), *view(started.dataset.id), gr.update(value=None), gr.update(value=None)

    def stop_building(request: gr.Request | None = None) -> str:
        jobs = ctx.jobs.active(owner_of(request), DATASET_TAB)
        for job in jobs:
            ctx.jobs.stop(job.id)
        return "Stopping…" if jobs else "No dataset is being built in this tab."

    building = build.click(
        lambda: (gr.update(interactive=False, value="Building…"), gr.update(visible=True)),
        None,
        [build, stop_build],
        queue=False,
        **private,
    ).then(
        friendly_errors(run_build),
        [name, files, recording],
        [build_progress, *view_outputs, files, recording],
        show_progress="hidden",
        **private,
    )
    building.then(
        lambda: (gr.update(interactive=True, value="Build dataset"), gr.update(visible=False)),
        None,
        [build, stop_build],
        queue=False,
        **private,
    )
    stop_build.click(stop_building, None, build_progress, queue=False, **private)

    # --- training ------------------------------------------------------------------------------

    train_outputs = [progress, plot, result, run_pick, stop, resume]

    def run_view(run_id: str | None, job: Job | None, *, plot_too: bool = True) -> tuple[Any, ...]:
        run = ctx.finetune.get(run_id) if run_id else None
        running = job is not None and not job.finished
        resumable = not running and run is not None and status_of(run, job) in (RunStatus.STOPPED, RunStatus.FAILED)
        choices = run_choices(ctx, runs)
        return (
            progress_line(run, job),
            loss_frame(run, job) if plot_too else gr.skip(),
            result_text(ctx, run, job),
            gr.update(choices=choices, value=run_id),
            gr.update(visible=running),
            gr.update(visible=resumable),
        )

    def follow(run_id: str, job: Job | None) -> Iterator[tuple[Any, ...]]:
        """The run's line and loss while its job runs (the plot only when a step was added), then its end."""
        steps = -1
        while job is not None and not job.finished:
            done = job.chunks_done
            yield run_view(run_id, job, plot_too=done != steps)
            steps = done
            job.wait(TICK_S)
        yield run_view(run_id, job)

    def inline(fn: Any) -> Any:
        """A training generator whose refusals are said on the progress line (and in a toast)."""

        def handler(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, ...]]:
            try:
                yield from fn(*args, **kwargs)
            except StudioError as exc:
                gr.Warning(str(exc), title="Could not train")
                yield f"⚠️ {markdown_text(str(exc), 400)}", *(gr.skip() for _ in train_outputs[1:])

        handler.__name__ = fn.__name__
        handler.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
        return friendly_errors(handler)

    def start_run(
        dataset_id: str | None,
        speaker_v: str | None,
        method_v: str,
        size_v: str,
        epochs_v: float | None,
        steps_v: float | None,
        batch_v: float | None,
        accum_v: float | None,
        save_v: float | None,
        trial_v: bool,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        config = train_config(speaker_v, method_v, epochs_v, steps_v, bool(trial_v), batch_v, accum_v, save_v)
        started = start_training(
            ctx,
            runs,
            dataset_id,
            config,
            size_v,
            trial=bool(trial_v),
            owner=owner_of(request),
            client=client_id(request),
        )
        yield from follow(started.run_id, started.job)

    def resume_run(run_id: str | None, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        if not run_id:
            raise InvalidInput("Pick the stopped run to resume.")
        started = runs.track(
            ctx.finetune.resume(run_id, owner=owner_of(request), tab="train", client=client_id(request))
        )
        yield from follow(started.run_id, started.job)

    def show_run(run_id: str | None) -> Iterator[tuple[Any, ...]]:
        if not run_id:
            yield "", loss_frame(None, None), "", gr.skip(), gr.update(visible=False), gr.update(visible=False)
            return
        yield from follow(run_id, runs.job(run_id))

    def stop_run(run_id: str | None) -> str:
        job = runs.job(run_id)
        if job is None or job.finished:
            return "This run is not training now."
        ctx.finetune.stop(job.id)
        return "Stopping… the last completed step is kept."

    def wait_stopped(run_id: str | None) -> tuple[Any, ...]:
        job = runs.job(run_id)
        if job is not None:
            job.wait(STOP_WAIT_S)
        return run_view(run_id, job)

    training_inputs = [picker, speaker, method, size, epochs, max_steps, batch, accum, save_every, trial]
    for trigger, fn, inputs in ((train, start_run, training_inputs), (resume, resume_run, [run_pick])):
        trigger.click(
            lambda: (gr.update(interactive=False), gr.update(visible=True), gr.update(visible=False)),
            None,
            [train, stop, resume],
            queue=False,
            **private,
        ).then(inline(fn), inputs, train_outputs, show_progress="hidden", **private).then(
            lambda: gr.update(interactive=True), None, train, queue=False, **private
        )
    stop.click(stop_run, run_pick, progress, queue=False, **private).then(
        wait_stopped, run_pick, train_outputs, concurrency_limit=None, show_progress="hidden", **private
    )
    run_pick.input(inline(show_run), run_pick, train_outputs, concurrency_limit=None, show_progress="hidden", **private)

    # Other windows and scripts build, import and train: show the truth whenever the tab opens.
    def on_open(dataset_id: str | None, clip_id: str | None, run_id: str | None) -> tuple[Any, ...]:
        choices = run_choices(ctx, runs)
        known = {value for _, value in choices}
        return (
            *view(dataset_id, clip_id),
            gr.update(choices=choices, value=run_id if run_id in known else (choices[0][1] if choices else None)),
        )

    tab.select(friendly_errors(on_open), [picker, clip, run_pick], [*view_outputs, run_pick], **in_order, **private)
