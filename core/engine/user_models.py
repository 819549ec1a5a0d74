"""Checkpoints trained here (core/finetune/): found in the models dir, listed like built-in ones.

A trained voice is a complete custom_voice checkpoint folder with one speaker, plus a
``studio-voice.json`` marker written last (so a half-written folder is never listed). They
live in ``--models-dir`` when it is set, else in ``<data_dir>/models``. The catalog scans the
folder when asked (a few small files), so a voice trained a moment ago, or removed, is seen
at once by the Models tab, Custom Voice and the API.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "studio-voice.json"
PREFIX = "custom-"  # folder names (and keys) of trained voices
_SIZES = {"0b6": "0.6B", "1b7": "1.7B"}


def user_models_dir(settings: Any) -> Path:
    """Where trained voices are written and found."""
    return Path(settings.models_dir) if settings.models_dir is not None else Path(settings.data_dir) / "models"


def folder_name(speaker: str) -> str:
    """``custom-<slug>`` for a speaker name ("Anna Lee" -> "custom-anna-lee")."""
    slug = re.sub(r"[^a-z0-9]+", "-", speaker.strip().lower()).strip("-") or "voice"
    return PREFIX + slug


@dataclass(frozen=True)
class TrainedVoice:
    """What the marker says about a trained checkpoint."""

    key: str  # the folder name, also the checkpoint's key
    folder: Path
    speaker: str  # the name the user gave
    speaker_id: str  # the model's spk_id key (lower case)
    size: str  # 0.6B | 1.7B, from the Base it was trained from
    base: str  # the Base checkpoint's key
    method: str  # lora | full
    steps: int
    demo: bool  # trained from a random-weight demo Base: noise, like its Base
    created: float

    def as_record(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "speaker": self.speaker,
            "speaker_id": self.speaker_id,
            "size": self.size,
            "base": self.base,
            "method": self.method,
            "steps": self.steps,
            "demo": self.demo,
            "created": self.created,
        }


def size_label(tts_model_size: Any) -> str:
    return _SIZES.get(str(tts_model_size).lower(), str(tts_model_size or "?"))


def read_voice(folder: Path) -> TrainedVoice | None:
    """The trained voice in ``folder``, or None when it is not one (or not complete)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return TrainedVoice(
            key=folder.name,
            folder=folder,
            speaker=str(data["speaker"]),
            speaker_id=str(data["speaker_id"]),
            size=str(data["size"]),
            base=str(data.get("base", "")),
            method=str(data.get("method", "")),
            steps=int(data.get("steps", 0)),
            demo=bool(data.get("demo", False)),
            created=float(data.get("created", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def scan(root: Path | None) -> list[TrainedVoice]:
    """Every trained voice in ``root``, oldest first."""
    if root is None or not Path(root).is_dir():
        return []
    voices = []
    with contextlib.suppress(OSError):
        for folder in Path(root).iterdir():
            if folder.name.startswith(PREFIX) and folder.is_dir():
                voice = read_voice(folder)
                if voice is not None:
                    voices.append(voice)
    return sorted(voices, key=lambda v: (v.created, v.key))
