"""A fine-tuning dataset: its utterances, their review state, and what training reads.

A dataset is one folder in ``<data_dir>/datasets/`` (see
:mod:`core.finetune.dataset_store`)::

    dataset.json        this module's record (schema 1)
    audio/<id>.wav      one utterance, 24 kHz mono PCM_16 (the recipe's rate)

Each :class:`Utterance` was cut from a source recording at its pauses
(:mod:`core.finetune.segment`), transcribed by the model manager's ASR, measured
(:mod:`core.finetune.checks`) and can then be reviewed: its transcript edited, the
clip excluded or included. What training reads is :meth:`Dataset.training_rows`: one
row per included clip with a transcript, in the official recipe's JSONL shape
(``audio``, ``text``, ``ref_audio``; ``prepare_data.py`` adds the audio codes). Every
row shares one reference clip, as the recipe advises: the speaker embedding written
into the new speaker's slot comes from it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import DatasetError, InvalidInput
from core.finetune.checks import Totals, UtteranceStats, Verdict, judge
from core.finetune.segment import SegmentOptions
from core.storage.durable import write_atomic
from core.storage.library.records import bad_char
from core.types import LANGUAGES

__all__ = [
    "AUDIO_DIR",
    "DATASET_FILE",
    "Dataset",
    "SourceInfo",
    "Utterance",
    "UtteranceEdit",
    "clean_dataset_name",
    "clean_transcript",
    "dataset_from_record",
]

SCHEMA_VERSION = 1
DATASET_FILE = "dataset.json"
AUDIO_DIR = "audio"
MAX_NAME_CHARS = 80
MAX_TEXT_CHARS = 2_000  # a 15 s clip holds a few hundred characters at most
MAX_UTTERANCES = 10_000  # about 25 hours of 9 s clips


@dataclass(frozen=True)
class SourceInfo:
    """A recording the dataset was cut from (only its name and length are kept)."""

    name: str
    seconds: float


@dataclass(frozen=True)
class Utterance:
    """One clip of the dataset."""

    id: str  # "u0001": also its file name, audio/u0001.wav
    source: int  # index into Dataset.sources
    start_s: float  # where it was cut from its source
    end_s: float
    text: str  # the transcript training reads ("" when there is none)
    asr_text: str  # what the ASR wrote, kept to tell an edited transcript from its output
    excluded: bool
    note: str  # why it is excluded or has no transcript, for the review table
    stats: UtteranceStats

    @property
    def file(self) -> str:
        return f"{AUDIO_DIR}/{self.id}.wav"

    @property
    def trainable(self) -> bool:
        """Included and transcribed: training reads it."""
        return not self.excluded and bool(self.text.strip())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "text": self.text,
            "asr_text": self.asr_text,
            "excluded": self.excluded,
            "note": self.note,
            "stats": self.stats.as_dict(),
        }


@dataclass(frozen=True)
class UtteranceEdit:
    """A change from the review table; None leaves a field as it is."""

    id: str
    text: str | None = None
    excluded: bool | None = None


@dataclass(frozen=True)
class Dataset:
    """One dataset as its ``dataset.json`` records it, and the folder it lives in."""

    id: str
    name: str
    folder: Path
    created_at: str
    updated_at: str
    utterances: tuple[Utterance, ...]
    sources: tuple[SourceInfo, ...]
    language: str  # a studio language ("english"), or "auto" when the ASR heard none
    asr_model: str | None  # the checkpoint that wrote the transcripts; None when none did
    asr_demo: bool  # the demo ASR (random weights) wrote them: they are noise
    reference_id: str | None  # the clip every row's ref_audio points at; None: chosen by reference()
    options: SegmentOptions

    def utterance(self, utterance_id: str) -> Utterance:
        for utterance in self.utterances:
            if utterance.id == utterance_id:
                return utterance
        raise InvalidInput(f"The dataset '{self.name}' has no clip '{utterance_id}'.")

    def audio_path(self, utterance: Utterance | str) -> Path:
        """The clip's WAV file, to play it or to train on it."""
        item = utterance if isinstance(utterance, Utterance) else self.utterance(utterance)
        return self.folder / item.file

    def totals(self) -> Totals:
        kept = [u for u in self.utterances if u.trainable]
        return Totals(
            utterances=len(self.utterances),
            excluded=sum(u.excluded for u in self.utterances),
            kept=len(kept),
            kept_seconds=sum(u.stats.seconds for u in kept),
            kept_speech_s=sum(u.stats.speech_s for u in kept),
            untranscribed=sum(not u.excluded and not u.text.strip() for u in self.utterances),
            clipped=tuple(u.id for u in kept if u.stats.clipped),
            noisy=tuple(u.id for u in kept if u.stats.noisy),
            demo_text=sum(self.asr_demo and u.text == u.asr_text for u in kept) if self.asr_demo else 0,
        )

    def verdict(self) -> Verdict:
        """Go / no-go with its reasons (:mod:`core.finetune.checks`)."""
        return judge(self.totals())

    def reference(self) -> Utterance | None:
        """The reference clip: the one chosen, while it is kept; else the kept clip with the
        most speech that neither clips nor is noisy (the cleanest, longest view of the voice)."""
        kept = [u for u in self.utterances if u.trainable]
        chosen = next((u for u in kept if u.id == self.reference_id), None)
        if chosen is not None or not kept:
            return chosen
        clean = [u for u in kept if not (u.stats.clipped or u.stats.noisy)] or kept
        return max(clean, key=lambda u: (u.stats.speech_s, u.id))

    def training_rows(self, *, require_go: bool = True) -> list[dict[str, str]]:
        """The rows training reads: ``{"audio", "text", "ref_audio"}`` with absolute paths,
        one per included clip with a transcript, in order. Excluded clips are never in it.

        A no-go dataset (too little speech, no transcripts) is refused with the verdict's
        reason; ``require_go=False`` lets a small trial run (tests, the tiny checkpoints)
        train on whatever is kept, but never on nothing.
        """
        reference = self.reference()
        verdict = self.verdict()
        if reference is None or (require_go and not verdict.go):
            raise InvalidInput(f"Nothing to train on in '{self.name}': {verdict.headline}")
        ref = str(self.audio_path(reference))
        return [
            {"audio": str(self.audio_path(u)), "text": u.text.strip(), "ref_audio": ref}
            for u in self.utterances
            if u.trainable
        ]

    def write_training_jsonl(self, dest: Path | str, *, require_go: bool = True) -> Path:
        """Writes :meth:`training_rows` as JSONL (atomically: the old file or the new one)."""
        rows = self.training_rows(require_go=require_go)
        path = Path(dest)
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        try:
            write_atomic(path, text.encode("utf-8"))
        except OSError as exc:
            raise DatasetError(f"Could not write the training list {path} ({exc.strerror or exc}).") from exc
        return path

    def with_edits(self, edits: list[UtteranceEdit]) -> Dataset:
        """A copy with ``edits`` applied (validated); unknown ids are refused."""
        by_id = {u.id: u for u in self.utterances}
        for edit in edits:
            current = by_id.get(edit.id)
            if current is None:
                raise InvalidInput(f"The dataset '{self.name}' has no clip '{edit.id}'.")
            changes: dict[str, Any] = {}
            if edit.text is not None:
                changes["text"] = clean_transcript(edit.text)
            if edit.excluded is not None:
                changes["excluded"] = bool(edit.excluded)
            by_id[edit.id] = replace(current, **changes)
        return replace(self, utterances=tuple(by_id[u.id] for u in self.utterances))

    def as_record(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "language": self.language,
            "asr_model": self.asr_model,
            "asr_demo": self.asr_demo,
            "reference_id": self.reference_id,
            "options": {
                "min_s": self.options.min_s,
                "max_s": self.options.max_s,
                "break_pause_s": self.options.break_pause_s,
                "merge_gap_s": self.options.merge_gap_s,
                "pad_s": self.options.pad_s,
            },
            "sources": [{"name": s.name, "seconds": round(s.seconds, 3)} for s in self.sources],
            "utterances": [u.as_dict() for u in self.utterances],
        }


def clean_dataset_name(value: Any) -> str:
    if not isinstance(value, str) or not unicodedata.normalize("NFC", value).strip():
        raise InvalidInput("Give the dataset a name.")
    name = unicodedata.normalize("NFC", value).strip()
    if bad_char(name, multiline=False):
        raise InvalidInput("The dataset name contains a control character (such as a line break); use plain text.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"The dataset name is {len(name)} characters long; keep it to {MAX_NAME_CHARS} or fewer.")
    return name


def clean_transcript(value: Any) -> str:
    """A transcript as stored: NFC, one line, trimmed; empty means "none yet"."""
    if not isinstance(value, str):
        raise InvalidInput("A transcript must be text.")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if bad_char(text, multiline=False):
        raise InvalidInput("The transcript contains a control character; use plain text.")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(
            f"The transcript is {len(text):,} characters long; a clip of 15 s or less needs far fewer "
            f"(at most {MAX_TEXT_CHARS:,})."
        )
    return text


def dataset_from_record(data: Any, folder: Path) -> Dataset:
    """A dataset from its parsed ``dataset.json``; raises :class:`DatasetError` naming what is wrong."""
    try:
        return _from_record(data, folder)
    except (KeyError, TypeError, ValueError, AttributeError, InvalidInput) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise DatasetError(f"its {DATASET_FILE} is damaged ({detail})") from None


def _from_record(data: Mapping[str, Any], folder: Path) -> Dataset:
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"schema {data.get('schema')!r}, this studio reads schema {SCHEMA_VERSION}")
    options = SegmentOptions(**{k: float(v) for k, v in dict(data["options"]).items()}).validated()
    sources = tuple(SourceInfo(str(s["name"]), float(s["seconds"])) for s in data["sources"])
    rows = list(data["utterances"])
    if len(rows) > MAX_UTTERANCES:
        raise ValueError(f"{len(rows)} clips, more than {MAX_UTTERANCES:,}")
    utterances: list[Utterance] = []
    for row in rows:
        uid = str(row["id"])
        if not utterance_id_ok(uid):
            raise ValueError(f"bad clip id {uid!r}")
        source = int(row["source"])
        if not 0 <= source < len(sources):
            raise ValueError(f"clip {uid} names source {source}, which is not listed")
        utterances.append(
            Utterance(
                id=uid,
                source=source,
                start_s=float(row["start_s"]),
                end_s=float(row["end_s"]),
                text=clean_transcript(row["text"]),
                asr_text=str(row.get("asr_text", "")),
                excluded=bool(row["excluded"]),
                note=str(row.get("note", "")),
                stats=UtteranceStats.from_dict(row["stats"]),
            )
        )
    if len({u.id for u in utterances}) != len(utterances):
        raise ValueError("a clip id is listed twice")
    language = str(data.get("language", "auto"))
    reference = data.get("reference_id")
    return Dataset(
        id=str(data["id"]),
        name=clean_dataset_name(data["name"]),
        folder=folder,
        created_at=str(data["created_at"]),
        updated_at=str(data["updated_at"]),
        utterances=tuple(utterances),
        sources=sources,
        language=language if language in LANGUAGES else "auto",
        asr_model=None if data.get("asr_model") is None else str(data["asr_model"]),
        asr_demo=bool(data.get("asr_demo", False)),
        reference_id=None if reference is None else str(reference),
        options=options,
    )


def utterance_id(number: int) -> str:
    return f"u{number:04d}"


def utterance_id_ok(value: str) -> bool:
    """Clip ids become file names: "u" and 4-5 digits, nothing that could climb out of audio/."""
    return len(value) in (5, 6) and value[0] == "u" and value[1:].isascii() and value[1:].isdigit()
