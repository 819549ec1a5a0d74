"""The built-in CustomVoice speakers and the voice-design presets.

Both live as JSON in the ``voices`` package so that people can read and extend
them without touching code; the engine checks speakers against the loaded
model's own list at generation time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from core.errors import InvalidInput


@dataclass(frozen=True)
class Speaker:
    id: str  # what the model expects, lower case
    name: str
    gender: str
    description: str
    native_language: str

    @property
    def label(self) -> str:
        return f"{self.name} — {self.description} ({self.native_language})"


@dataclass(frozen=True)
class DesignPreset:
    name: str
    description: str


def _load(name: str) -> dict:
    return json.loads(resources.files("voices").joinpath(name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def speakers() -> tuple[Speaker, ...]:
    return tuple(Speaker(**row) for row in _load("speakers.json")["speakers"])


@lru_cache(maxsize=1)
def design_presets() -> tuple[DesignPreset, ...]:
    return tuple(DesignPreset(**row) for row in _load("design_presets.json")["presets"])


def _key(value: str) -> str:
    return value.strip().lower().replace(" ", "_").replace("-", "_")


def find_speaker(name: str | None, trained: Sequence[Speaker] = ()) -> Speaker:
    """The built-in speaker, or one of ``trained`` (the voices trained here, from the catalog), by name or id."""
    if name is not None and not isinstance(name, str):
        raise InvalidInput("Name the speaker as text, e.g. 'Ryan'.")
    if not name or not name.strip():
        raise InvalidInput("Pick a speaker.")
    wanted = _key(name)
    for speaker in (*speakers(), *trained):
        if wanted in (speaker.id, _key(speaker.name)):
            return speaker
    names = ", ".join(s.name for s in (*speakers(), *trained))
    raise InvalidInput(f"Unknown speaker '{name}'. Choose one of: {names}.")
