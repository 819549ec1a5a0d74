"""What a fine-tuning run is asked to do: its settings and its training rows.

The settings follow the official recipe (QwenLM/Qwen3-TTS ``finetuning/sft_12hz.py``): AdamW
with weight decay 0.01, gradient clipping at 1.0, batch 2 with gradient accumulation 4, 3
epochs, and a loss of the talker's codebook-0 cross-entropy plus 0.3 x the code predictor's.
The recipe's learning rate (2e-5) is for full fine-tuning; a LoRA adapter starts at zero and
needs a larger step to move in a few hundred updates, so LoRA defaults to 1e-4 (docs/FINETUNING.md).

Training rows are the recipe's JSONL: one ``{"audio", "text", "ref_audio"}`` object a line
(the dataset builder, ``core/finetune/dataset.py``, writes exactly that).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

from core.errors import InvalidInput

SPEAKER_ID = 3000  # the codec-embedding row the recipe gives the new speaker
MIN_ROWS = 10  # about a minute of 3-15 s utterances: fewer cannot teach a voice
NAME_MAX = 40
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _\-']*$")


class TrainMethod(str, Enum):
    LORA = "lora"  # low-rank adapters on the talker's linear layers, merged at the end
    FULL = "full"  # every talker weight but the text-embedding table

    @property
    def label(self) -> str:
        return "LoRA" if self is TrainMethod.LORA else "Full fine-tuning"


# The recipe's rate for full fine-tuning; LoRA's own (see the module notes).
DEFAULT_LR = {TrainMethod.FULL: 2e-5, TrainMethod.LORA: 1e-4}


@dataclass(frozen=True)
class TrainConfig:
    """One run's settings. ``speaker`` is the name the user gives the new voice."""

    speaker: str
    method: TrainMethod = TrainMethod.LORA
    epochs: int = 3
    batch_size: int = 2
    grad_accum: int = 4
    lr: float | None = None  # None: DEFAULT_LR of the method
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    sub_talker_weight: float = 0.3
    lora_rank: int = 16
    lora_alpha: int = 32
    save_every: int = 20  # optimizer steps between kept checkpoints (and at Stop, and at the end)
    seed: int = 0
    min_rows: int = MIN_ROWS
    max_steps: int | None = None  # a cap on optimizer steps (benchmarks, quick trials)
    device: str = "auto"  # auto: the model manager's device (CUDA, then MPS, then CPU)
    dtype: str = "auto"  # auto: bf16 on CUDA (and MPS for LoRA), fp32 elsewhere

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def speaker_id(self) -> str:
        """What the model's ``spk_id`` maps (the generate code lower-cases speaker names)."""
        return speaker_key(self.speaker)

    def validated(self) -> TrainConfig:
        """A copy with a clean name and a known method; InvalidInput says what is wrong."""
        name = clean_speaker_name(self.speaker)
        try:
            method = TrainMethod(self.method)
        except ValueError:
            raise InvalidInput(f"Unknown training method '{self.method}'; choose lora or full.") from None
        for label, value, low in (
            ("epochs", self.epochs, 1),
            ("batch size", self.batch_size, 1),
            ("gradient accumulation", self.grad_accum, 1),
            ("checkpoint interval", self.save_every, 1),
            ("LoRA rank", self.lora_rank, 1),
            ("minimum rows", self.min_rows, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidInput(f"The {label} must be a whole number of at least {low}.")
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise InvalidInput("The step limit must be a whole number of at least 1.")
        if self.lr is not None and not 0 < self.lr < 1:
            raise InvalidInput("The learning rate must be between 0 and 1 (the recipe uses 2e-5).")
        return replace(self, speaker=name, method=method)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["method"] = TrainMethod(self.method).value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["method"] = TrainMethod(values.get("method", TrainMethod.LORA))
        return cls(**values)


def speaker_key(name: str) -> str:
    """The lower-case id of a speaker name, as ``core/engine/speakers.py`` compares them."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def clean_speaker_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Give the new voice a name, e.g. 'Anna'.")
    name = " ".join(value.split())
    if len(name) > NAME_MAX:
        raise InvalidInput(f"The voice name is over {NAME_MAX} characters; keep it short.")
    if not _NAME.match(name):
        raise InvalidInput(
            "Use letters, digits, spaces, '-', '_' or an apostrophe in the voice name (it becomes the speaker name)."
        )
    return name


def check_name_free(name: str, taken: Iterable[str]) -> None:
    """Refuses a name that a built-in speaker or another trained voice already has."""
    wanted = speaker_key(name)
    for other in taken:
        if speaker_key(other) == wanted:
            raise InvalidInput(
                f"'{name}' is already a speaker's name ({other}); give the new voice another name, "
                "or remove the other trained voice in Models first."
            )


@dataclass(frozen=True)
class TrainRow:
    """One utterance: its recording, its transcript and the reference the speaker embedding comes from."""

    audio: str
    text: str
    ref_audio: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # other keys, kept as read

    def as_dict(self) -> dict[str, Any]:
        return {**self.extra, "audio": self.audio, "text": self.text, "ref_audio": self.ref_audio}


RowSource = str | Path | Iterable[Mapping[str, Any] | TrainRow]


def load_rows(source: RowSource, *, min_rows: int = MIN_ROWS) -> list[TrainRow]:
    """The rows of a JSONL file (relative paths are read from its folder) or of a list of dicts.

    Raises InvalidInput naming the line of a bad row, a missing file, or too few rows.
    """
    base: Path | None = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise InvalidInput(f"The training file {path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"Cannot read the training file {path}: {exc}.") from None
        base = path.parent
        items: list[tuple[int, Any]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                items.append((number, json.loads(line)))
            except ValueError:
                raise InvalidInput(f"Line {number} of {path.name} is not JSON.") from None
        where = f"line {{}} of {path.name}"
    else:
        items = list(enumerate(source, 1))
        where = "row {}"
    rows = [_row(value, where.format(number), base) for number, value in items]
    if len(rows) < min_rows:
        raise InvalidInput(
            f"Training needs at least {min_rows} utterances; this dataset has {len(rows)}. "
            "Record more speech (10 minutes or more is recommended)."
        )
    return rows


def _row(value: Any, where: str, base: Path | None) -> TrainRow:
    if isinstance(value, TrainRow):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput(f"The {where} is not an object with audio, text and ref_audio.")
    missing = [k for k in ("audio", "text", "ref_audio") if not isinstance(value.get(k), str) or not value[k].strip()]
    if missing:
        raise InvalidInput(f"The {where} has no {' and no '.join(missing)}.")
    paths = {}
    for key in ("audio", "ref_audio"):
        path = Path(value[key])
        if base is not None and not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise InvalidInput(f"The {where} names {key} {path}, which does not exist.")
        paths[key] = str(path)
    extra = {k: v for k, v in value.items() if k not in ("audio", "text", "ref_audio")}
    return TrainRow(paths["audio"], " ".join(value["text"].split()), paths["ref_audio"], extra)


def rows_jsonl(rows: Sequence[TrainRow]) -> str:
    return "".join(json.dumps(r.as_dict(), ensure_ascii=False) + "\n" for r in rows)
