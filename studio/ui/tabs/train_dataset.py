"""The Train tab's dataset section: what a dataset looks like on the page, its build job, its named API.

Thin over ``core.finetune.dataset_store.DatasetStore`` (``ctx.app.datasets``): every rule
(cutting, transcripts, the verdict, safe saves and imports) lives there. A build is a job of
the one take runner (``ctx.jobs``, kind "dataset"), so it has a progress line, appears in
"Running & recent", and Stop reaches it; a stopped or failed build leaves no dataset.

Named API (plain values, JSON results; ``dataset`` is an id or a name):

- ``/dataset_build`` (name, files) -> the new dataset (a cancelled call stops the build)
- ``/dataset_list`` () -> every dataset's summary
- ``/dataset_get`` (dataset) -> the dataset with its clips, totals and verdict
- ``/dataset_edit`` (dataset, clip, text, excluded) -> the dataset after the edit
- ``/dataset_export`` (dataset) -> a .zip file
- ``/dataset_import`` (file) -> the imported dataset
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.errors import InvalidInput
from core.finetune.checks import Verdict, VerdictLevel
from core.finetune.dataset import Dataset, Utterance, UtteranceEdit, clean_dataset_name
from core.takes.jobs import Job, JobState, format_seconds
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.handlers import STOP_WAIT_S, api_endpoint, api_function, owner_of
from studio.ui.progress import gradio_progress
from studio.ui.widgets import markdown_text

DATASET_TAB = "train-dataset"  # the jobs' tab: this section's Stop acts on its own builds
COLUMNS = ["Clip", "Start–end (s)", "Speech (s)", "Transcript", "Flags", "Excluded"]
LEVELS = {
    VerdictLevel.GO: "✔ **Go**",
    VerdictLevel.WEAK: "⚠️ **Trainable, with advice**",
    VerdictLevel.NO_GO: "✖ **No-go**",
}
NO_DATASET = "No dataset yet: give it a name, add a recording and press **Build dataset**."


# --- what a dataset looks like on the page -------------------------------------------------


def flags(dataset: Dataset, utterance: Utterance) -> str:
    """The clip's marks for the table: why training would skip it or learn something bad."""
    marks = []
    reference = dataset.reference()
    if reference is not None and reference.id == utterance.id:
        marks.append("★ reference")
    if not utterance.text.strip():
        marks.append("no transcript")
    if utterance.stats.clipped:
        marks.append("clipping")
    if utterance.stats.noisy:
        marks.append("noisy")
    if utterance.stats.seconds < dataset.options.min_s:
        marks.append("short")
    return ", ".join(marks)


def span(dataset: Dataset, utterance: Utterance) -> str:
    where = f"{utterance.start_s:.1f}–{utterance.end_s:.1f}"
    return f"#{utterance.source + 1} {where}" if len(dataset.sources) > 1 else where


def table(dataset: Dataset | None) -> pd.DataFrame:
    if dataset is None:
        return pd.DataFrame([], columns=COLUMNS)
    rows = [
        [
            u.id,
            span(dataset, u),
            round(u.stats.speech_s, 1),
            u.text or "—",
            flags(dataset, u),
            "excluded" if u.excluded else "",
        ]
        for u in dataset.utterances
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def verdict_text(verdict: Verdict) -> str:
    """The go / no-go verdict with its reasons, each a plain sentence, and the totals under them."""
    lines = [f"{LEVELS[verdict.level]} · {markdown_text(verdict.headline, 400)}"]
    lines += [f"- {markdown_text(reason, 400)}" for reason in verdict.reasons[1:]]
    totals = verdict.totals
    if totals is not None:
        lines.append(
            f"\n{totals.utterances} clips · **{totals.kept} kept** ({totals.kept_minutes:.1f} min, "
            f"{totals.kept_speech_s:.0f} s of speech) · {totals.excluded} excluded · "
            f"{totals.untranscribed} without a transcript"
        )
    return "\n".join(lines)


def summary_text(dataset: Dataset) -> str:
    sources = ", ".join(markdown_text(s.name, 60) for s in dataset.sources[:4])
    more = f" and {len(dataset.sources) - 4} more" if len(dataset.sources) > 4 else ""
    asr = (
        "transcribed by the demo model (random words: correct them)"
        if dataset.asr_demo
        else f"transcribed by {dataset.asr_model}"
        if dataset.asr_model
        else "not transcribed"
    )
    return f"### {markdown_text(dataset.name, 80)}\nFrom {sources}{more} · {asr} · id `{dataset.id}`"


def clip_text(dataset: Dataset, utterance: Utterance) -> str:
    """One clip's measures and note, under its player."""
    stats = utterance.stats
    reference = dataset.reference()
    parts = [
        f"**{utterance.id}** · {stats.seconds:.1f} s ({stats.speech_s:.1f} s speech)",
        f"peak {stats.peak_dbfs:.1f} dBFS · noise floor {stats.noise_floor_dbfs:.0f} dBFS · "
        f"clipped {stats.clipped_ratio * 100:.2f} %",
        "**Excluded:** training skips it."
        if utterance.excluded
        else "Included in training."
        if utterance.text.strip()
        else "Included, but without a transcript training skips it.",
    ]
    if reference is not None and reference.id == utterance.id:
        parts.append("★ The reference clip: the new speaker's embedding comes from it.")
    if utterance.note:
        parts.append(f"_{markdown_text(utterance.note, 300)}_")
    return "\n\n".join(parts)


def dataset_dict(dataset: Dataset, *, clips: bool = True) -> dict[str, Any]:
    """A dataset as the API returns it."""
    verdict = dataset.verdict()
    reference = dataset.reference()
    data: dict[str, Any] = {
        "id": dataset.id,
        "name": dataset.name,
        "created_at": dataset.created_at,
        "updated_at": dataset.updated_at,
        "language": dataset.language,
        "asr_model": dataset.asr_model,
        "asr_demo": dataset.asr_demo,
        "sources": [{"name": s.name, "seconds": round(s.seconds, 2)} for s in dataset.sources],
        "reference": reference.id if reference else None,
        "verdict": verdict.as_dict(),
    }
    if clips:
        data["clips"] = [u.as_dict() | {"trainable": u.trainable} for u in dataset.utterances]
    return data


# --- the build job ----------------------------------------------------------------------------


@dataclass
class Build:
    """A dataset build running as a job: its progress and, once done, the dataset."""

    job: Job
    name: str
    fraction: float = 0.0
    dataset: Dataset | None = None
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        """ "Transcribing clip 3 of 9 · 40 % · 12 s elapsed · about 18 s left" (or how it ended)."""
        job = self.job
        if job.state is JobState.QUEUED:
            return "Queued: waiting for the take or training before it to finish."
        if job.state is JobState.DONE and self.dataset is not None:
            count = len(self.dataset.utterances)
            return f"Built '{markdown_text(self.name, 80)}': {count} clips in {format_seconds(job.elapsed_s())}."
        if job.state is JobState.STOPPED:
            return "Stopped: nothing was saved (a build appears whole or not at all)."
        if job.state is JobState.FAILED:
            return f"Failed: {job.error}" if job.error else "Failed."
        parts = [job.message, f"{self.fraction * 100:.0f} %", f"{format_seconds(job.elapsed_s())} elapsed"]
        if self.fraction >= 0.05:
            parts.append(f"about {format_seconds(job.elapsed_s() * (1 - self.fraction) / self.fraction)} left")
        if job.token.cancelled:
            parts.insert(0, "Stopping…")
        return " · ".join(parts)


def source_paths(files: Any, recording: Any = None) -> list[str]:
    """The uploaded files (one path, a list of paths, or gradio file dicts) and the recording."""
    items = files if isinstance(files, (list, tuple)) else [files] if files else []
    paths = []
    for item in [*items, recording]:
        path = item.get("path") if isinstance(item, dict) else getattr(item, "name", item)
        if isinstance(path, str) and path:
            paths.append(path)
    return paths


def start_build(ctx: StudioContext, name: Any, files: Any, recording: Any = None, **who: Any) -> Build:
    """Checks the form, then queues the build in the device lane (the ASR runs there)."""
    clean = clean_dataset_name(name)
    sources = source_paths(files, recording)
    if not sources:
        raise InvalidInput("Add a recording: upload one long recording or several clips of the speaker (or record).")
    holder: dict[str, Build] = {}

    def work(job: Job) -> list[Any]:
        def progress(fraction: float, message: str) -> None:
            holder["build"].fraction = max(0.0, min(1.0, fraction))
            job.report(fraction, message)

        holder["build"].dataset = ctx.app.datasets.create(
            clean, sources, transcriber=ctx.app.transcriber, progress=progress
        )
        return []

    # No text: a take's speed per character must not be learnt from a build.
    job = ctx.jobs.submit(work, kind="dataset", mode="Dataset", text="", chunks=0, tab=DATASET_TAB, **who)
    job.summary = f"Building the dataset '{clean}' from {len(sources)} recording{'s' if len(sources) != 1 else ''}"
    job.report(0.0, "Waiting for the device…")
    build = holder["build"] = Build(job, clean)
    return build


async def await_build(ctx: StudioContext, build: Build, progress: Any) -> Dataset:
    """An API call's answer: waits for the build (reporting its progress); a cancelled call stops it."""
    report = gradio_progress(progress)
    try:
        while not build.job.finished:
            await asyncio.sleep(0.2)
            if report is not None:
                report(build.fraction, build.job.message)
    except asyncio.CancelledError:
        ctx.jobs.stop(build.job.id)
        await asyncio.get_running_loop().run_in_executor(None, build.job.wait, STOP_WAIT_S)
        raise
    if build.dataset is None:
        raise build.job.error or InvalidInput("The build was stopped; nothing was saved.")
    return build.dataset


def export_dataset(ctx: StudioContext, dataset: str) -> Path:
    """Writes the dataset's zip into a fresh folder under outputs_dir (named after the dataset)."""
    folder = Path(ctx.outputs_dir) / "exports" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    return ctx.app.datasets.export_zip(dataset or "", folder)


# --- the named API ----------------------------------------------------------------------------


def optional_bool(value: Any, what: str) -> bool | None:
    """True/False, or None for "leave it": scripts may also send "true"/"false" or ""."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput(f"'{what}' must be true or false (or left out to keep it as it is).")


def make_dataset_api(ctx: StudioContext) -> dict[str, Any]:
    store = ctx.app.datasets

    async def dataset_build(
        name: str, files: list[str] | None = None, progress: Any = gr.Progress(), request: gr.Request | None = None
    ) -> dict[str, Any]:
        """Builds a dataset from recordings (one long one or many clips): cut at pauses into 3-15 s
        clips, transcribed by the studio's ASR, measured. Returns it with its clips and verdict.
        Cancelling the call stops the build; nothing is saved then."""
        build = await asyncio.to_thread(
            start_build, ctx, name, files, owner=owner_of(request), client=client_id(request)
        )
        return dataset_dict(await await_build(ctx, build, progress))

    def dataset_list() -> list[dict[str, Any]]:
        """Every dataset, by name: id, name, sources, reference clip and verdict (with totals); no clips."""
        return [dataset_dict(d, clips=False) for d in store.list()]

    def dataset_get(dataset: str) -> dict[str, Any]:
        """One dataset (id or name) with every clip (times, transcript, measures, excluded), totals and verdict."""
        return dataset_dict(store.get(dataset or ""))

    def dataset_edit(
        dataset: str, clip: str, text: str | None = None, excluded: bool | str | None = None
    ) -> dict[str, Any]:
        """Edits one clip of a dataset: its transcript (`text`; omitted = unchanged, "" = none) and whether
        it is excluded from training (`excluded`; omitted = unchanged). Returns the dataset."""
        if not isinstance(clip, str) or not clip.strip():
            raise InvalidInput("Name the clip to edit, e.g. 'u0003' (see /dataset_get).")
        if text is not None and not isinstance(text, str):
            raise InvalidInput("'text' must be text (or left out to keep the transcript).")
        edit = UtteranceEdit(clip.strip(), text=text, excluded=optional_bool(excluded, "excluded"))
        return dataset_dict(store.edit(dataset or "", [edit]))

    def dataset_export(dataset: str) -> str:
        """A .zip of the dataset (dataset.json + audio/), for a backup or another machine's /dataset_import."""
        return str(export_dataset(ctx, dataset))

    def dataset_import(file: str | None = None) -> dict[str, Any]:
        """Imports a dataset .zip made by /dataset_export; a name already taken gets " (imported)"."""
        if not file:
            raise InvalidInput("Choose a dataset .zip made with Export to import.")
        return dataset_dict(store.import_zip(file))

    functions: dict[str, Callable[..., Any]] = {
        "dataset_build": dataset_build,
        "dataset_list": dataset_list,
        "dataset_get": dataset_get,
        "dataset_edit": dataset_edit,
        "dataset_export": dataset_export,
        "dataset_import": dataset_import,
    }
    return {name: friendly_errors(fn) for name, fn in functions.items()}


def register_dataset_api(api: dict[str, Any]) -> None:
    # Files travel through components so the client uploads and downloads them.
    build_name = gr.Textbox(visible=False)
    build_files = gr.File(visible=False, file_count="multiple", type="filepath")
    api_endpoint(api["dataset_build"], [build_name, build_files], gr.JSON(visible=False), "dataset_build")
    api_function(api["dataset_list"], "dataset_list", queue=False)
    api_function(api["dataset_get"], "dataset_get", queue=False)
    api_function(api["dataset_edit"], "dataset_edit")
    export_name = gr.Textbox(visible=False)
    api_endpoint(api["dataset_export"], [export_name], gr.File(visible=False), "dataset_export")
    import_file = gr.File(visible=False, type="filepath")
    api_endpoint(api["dataset_import"], [import_file], gr.JSON(visible=False), "dataset_import")
