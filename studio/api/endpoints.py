"""The named API, declared in one place: every endpoint scripts can call by name.

Gradio registers an endpoint where its widgets are built (a tab's Generate
button, a hidden trigger, ``gr.api``), so registration stays spread over the
tabs; this table is what they must agree with. ``declared()`` refuses, at
start-up, an endpoint that is missing here or served by a function other than
the one named here, and the tests check ``view_api()`` and docs/API.md's
endpoint table against ``NAMED_API``: adding an endpoint means adding a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    name: str  # the api_name, without the leading "/"
    handler: str  # the __name__ of the function that serves it
    module: str  # where it is wired up
    description: str  # what it does, in one line

    @property
    def path(self) -> str:
        """The name as scripts write it: ``client.predict(..., api_name="/design")``."""
        return f"/{self.name}"


_TABS = "studio.ui.tabs"
NAMED_API: tuple[Endpoint, ...] = (
    # Takes: the tabs' Generate buttons, through their hidden API twins.
    Endpoint("design", "parse_design", f"{_TABS}.design", "Speak text in a voice described in words."),
    Endpoint(
        "custom_voice",
        "parse_custom_voice",
        f"{_TABS}.custom_voice",
        "Speak text as one of the nine built-in speakers, with an optional style instruction.",
    ),
    Endpoint(
        "clone", "parse_clone", f"{_TABS}.clone", "Speak text in the voice of a reference clip or a library voice."
    ),
    Endpoint(
        "script",
        "script_render",
        f"{_TABS}.script",
        "Render a dialogue with a cast of voices: the scene, a zip of the lines and details.",
    ),
    # A kept take's parts and subtitles (History).
    Endpoint(
        "take_parts",
        "take_parts",
        f"{_TABS}.history_parts",
        "A take's parts (chunks or script lines) with their text, seed, speaker and times in the take.",
    ),
    Endpoint(
        "part_redo",
        "part_redo",
        f"{_TABS}.history_parts",
        "Redo one part of a take (same seed, new seed or delete); kept as a new take, the original stays.",
    ),
    Endpoint(
        "subtitles",
        "subtitles",
        f"{_TABS}.history_parts",
        "A take's subtitles as an SRT or WebVTT file, timed from its chunks or lines.",
    ),
    Endpoint(
        "resume",
        "resume_take",
        f"{_TABS}.history_resume",
        "Finish a stopped take from its kept chunks with the same seeds: the complete take's file and details.",
    ),
    # The engine: no widgets of their own.
    Endpoint("speakers", "list_speakers", "studio.api.named", "The built-in speakers."),
    Endpoint("languages", "list_languages", "studio.api.named", "The languages every mode accepts."),
    Endpoint("models", "list_models", "studio.api.named", "Every checkpoint with its state, device and dtype."),
    Endpoint("load_model", "load_model", "studio.api.named", "Load a checkpoint into memory."),
    Endpoint("unload_model", "unload_model", "studio.api.named", "Unload one checkpoint, or all of them."),
    Endpoint(
        "transcribe",
        "transcribe",
        "studio.ui.transcribe",
        "Transcribe a reference clip on this machine (optional start_s/end_s): text, language, seconds.",
    ),
    # The voice library.
    Endpoint("voices", "voices", f"{_TABS}.library", "Search and filter the library's voices."),
    Endpoint("voice_save", "voice_save", f"{_TABS}.clone", "Save a reference clip as a library voice."),
    Endpoint(
        "voice_design_save",
        "voice_design_save",
        f"{_TABS}.design",
        "Design a voice from a description and save the take as a library voice.",
    ),
    Endpoint("voice_rename", "voice_rename", f"{_TABS}.library", "Rename a library voice."),
    Endpoint("voice_update", "voice_update", f"{_TABS}.library", "Edit a library voice's details."),
    Endpoint("voice_delete", "voice_delete", f"{_TABS}.library", "Delete a library voice."),
    Endpoint("voice_export", "voice_export", f"{_TABS}.library", "A zip of library voices."),
    Endpoint("voice_import", "voice_import", f"{_TABS}.library", "Import the voices in an exported zip."),
    # Projects: a manuscript to a mastered M4B (core/projects/service.py).
    Endpoint("project_list", "project_list", f"{_TABS}.projects_api", "Every project with its counts of blocks."),
    Endpoint("project_get", "project_get", f"{_TABS}.projects_api", "A project: chapters, blocks, takes, QA verdicts."),
    Endpoint(
        "project_create",
        "project_create",
        f"{_TABS}.projects_api",
        "Make a project (title, author, narrator, cover), optionally from a manuscript.",
    ),
    Endpoint(
        "project_import",
        "project_import",
        f"{_TABS}.projects_api",
        "Import a manuscript (.txt, .md, .epub or pasted text) into a project as chapters of blocks.",
    ),
    Endpoint(
        "project_render",
        "project_render",
        f"{_TABS}.projects_api",
        "Render a project, a chapter or a block, checking every block by ear; cancel stops, again resumes.",
    ),
    Endpoint(
        "project_qa_report",
        "project_qa_report",
        f"{_TABS}.projects_api",
        "A project's QA report per chapter: checked and flagged blocks, with the reasons.",
    ),
    Endpoint(
        "project_export",
        "project_export",
        f"{_TABS}.projects_api",
        "Master and export: the M4B, a zip of every file, and the compliance report per chapter.",
    ),
    # Fine-tuning: datasets (studio/ui/tabs/train_dataset.py), training runs (train_run.py), evaluation (train_eval.py).
    Endpoint(
        "dataset_build",
        "dataset_build",
        f"{_TABS}.train_dataset",
        "Build a fine-tuning dataset from recordings: clips cut at pauses, transcribed and measured.",
    ),
    Endpoint("dataset_list", "dataset_list", f"{_TABS}.train_dataset", "Every fine-tuning dataset with its verdict."),
    Endpoint(
        "dataset_get",
        "dataset_get",
        f"{_TABS}.train_dataset",
        "A fine-tuning dataset with its clips, totals and go / no-go verdict.",
    ),
    Endpoint(
        "dataset_edit",
        "dataset_edit",
        f"{_TABS}.train_dataset",
        "Edit a dataset clip's transcript, or exclude it from training (or include it again).",
    ),
    Endpoint("dataset_export", "dataset_export", f"{_TABS}.train_dataset", "A zip of a fine-tuning dataset."),
    Endpoint("dataset_import", "dataset_import", f"{_TABS}.train_dataset", "Import a dataset zip made by export."),
    Endpoint(
        "train_start",
        "train_start",
        f"{_TABS}.train_run",
        "Start training a new speaker on a dataset (LoRA or full): the run, at once.",
    ),
    Endpoint(
        "train_status",
        "train_status",
        f"{_TABS}.train_run",
        "A training run's status, step, losses and, once done, its trained voice.",
    ),
    Endpoint("train_stop", "train_stop", f"{_TABS}.train_run", "Stop a training run; its last step is kept."),
    Endpoint("train_resume", "train_resume", f"{_TABS}.train_run", "Resume a stopped training run from its kept step."),
    Endpoint(
        "train_evaluate",
        "train_evaluate",
        f"{_TABS}.train_eval",
        "Evaluate a trained voice against a zero-shot clone: held-out sentences, WER and speaker similarity.",
    ),
    # The pronunciation lexicon (core/text_lexicon.py).
    Endpoint("lexicon", "lexicon_list", "studio.api.named", "The pronunciation lexicon's entries and version."),
    Endpoint(
        "lexicon_set",
        "lexicon_set",
        "studio.api.named",
        "Replace the pronunciation lexicon (word or regex → spoken form, per language).",
    ),
)
BY_NAME: dict[str, Endpoint] = {endpoint.name: endpoint for endpoint in NAMED_API}


def declared(api_name: str, fn: Callable[..., Any]) -> Endpoint:
    """The declaration of ``api_name``; raises if there is none or ``fn`` is not its handler."""
    endpoint = BY_NAME.get(api_name.lstrip("/"))
    if endpoint is None:
        raise LookupError(f"The API endpoint '{api_name}' is not declared in studio/api/endpoints.py.")
    if getattr(fn, "__name__", None) != endpoint.handler:
        raise LookupError(
            f"studio/api/endpoints.py declares {endpoint.path} as served by {endpoint.handler}(), "
            f"not {getattr(fn, '__name__', fn)!r}."
        )
    return endpoint
