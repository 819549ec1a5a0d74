"""A take's parts on disk: the chunks of a take, or the lines of a script, each kept on its own.

Every take the studio makes keeps its parts beside its audio, so one part can
be played, redone or removed later (core/takes/part_edit.py), a stopped take
resumed from the parts it has, and subtitles timed (core/takes/subtitles.py)::

    <take-id>/take.json          "parts": [ {index, text, seed, start_s, end_s, audio, size_bytes,
                                             speaker?, voice?}, … ], "parts_pause_s": 0.3
    <take-id>/parts/000.wav      part 0, 32-bit float WAV (lossless: exactly what was joined)
    <take-id>/parts/001.wav      …

The API, for whoever needs a take's parts:

- ``take.parts`` (:class:`TakePart`, in order; empty for takes saved before
  parts were kept) and ``take.parts_pause_s`` (the pause the join put between
  them; None without parts);
- ``part.load()`` -> :class:`~core.audio.clip.Audio`, the part as it went into
  the join (before the take's finishing: pauses, fades, levels, silence trim);
- ``part.seed`` makes that part again on its own: chunk ``i`` of a take uses
  the take's seed + ``i``, script line ``k`` the script's seed + 1000·``k``;
- ``part.start_s`` / ``part.end_s``: where it sits in the finished take,
  after the join's pauses and any silence trim (core/audio/assembly.py).

Parts are written by :meth:`core.storage.history.History.add` into the same
staging folder as the take, so they appear and disappear with it in one
rename (crash-safe). Their files are named from the part's index only, never
from the record, so a record cannot point outside its folder. A part file that
has gone missing makes :meth:`TakePart.load` raise a sentence; the take still
lists and plays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from core.audio.clip import Audio
from core.errors import InvalidInput
from core.storage.durable import fsync_file
from core.types import PartAudio

__all__ = ["PARTS_DIR", "TakePart", "parts_from_record", "write_parts"]

PARTS_DIR = "parts"
_PART_NAME = re.compile(r"parts/[0-9]{3,5}\.wav")


@dataclass(frozen=True)
class TakePart:
    """One stored part of a take."""

    index: int  # its place in the take, from 0
    text: str  # what it says (a chunk's text, or a script line's)
    seed: int  # makes it again on its own
    start_s: float  # where it starts in the finished take
    end_s: float
    audio_path: Path  # parts/NNN.wav in the take's folder
    size_bytes: int
    speaker: str | None = None  # a script line's name ("Anna"); None for chunks
    voice: str | None = None  # a script line's voice label ("Ryan (calm)")

    @property
    def duration_s(self) -> float:
        """Its length in the finished take."""
        return max(0.0, self.end_s - self.start_s)

    def load(self) -> Audio:
        """The part's audio as it was joined; InvalidInput when its file is gone or damaged."""
        try:
            samples, rate = sf.read(self.audio_path, dtype="float32", always_2d=False)
        except (OSError, RuntimeError, sf.LibsndfileError):
            raise InvalidInput(
                f"Part {self.index + 1} of this take has lost its audio file ({self.audio_path.name}); "
                "regenerate the whole take instead."
            ) from None
        return Audio(np.ascontiguousarray(samples, dtype=np.float32).reshape(-1), int(rate))

    def as_dict(self) -> dict[str, Any]:
        """Its entry in ``take.json``."""
        row: dict[str, Any] = {
            "index": self.index,
            "text": self.text,
            "seed": self.seed,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "audio": f"{PARTS_DIR}/{self.audio_path.name}",
            "size_bytes": self.size_bytes,
        }
        if self.speaker is not None:
            row["speaker"] = self.speaker
        if self.voice is not None:
            row["voice"] = self.voice
        return row


def part_name(index: int) -> str:
    return f"{PARTS_DIR}/{index:03d}.wav"


def write_parts(folder: Path, parts: Sequence[PartAudio]) -> list[dict[str, Any]]:
    """Writes each part's audio into ``folder/parts/`` (fsynced); returns their ``take.json`` entries."""
    if not parts:
        return []
    (folder / PARTS_DIR).mkdir()
    rows: list[dict[str, Any]] = []
    for position, part in enumerate(parts):
        name = part_name(position)
        path = folder / name
        sf.write(path, part.audio.samples, part.audio.sample_rate, format="WAV", subtype="FLOAT")
        fsync_file(path)
        row: dict[str, Any] = {
            "index": position,
            "text": str(part.text),
            "seed": int(part.seed),
            "start_s": round(float(part.start_s), 6),
            "end_s": round(float(part.end_s), 6),
            "audio": name,
            "size_bytes": path.stat().st_size,
        }
        if part.speaker is not None:
            row["speaker"] = str(part.speaker)
        if part.voice is not None:
            row["voice"] = str(part.voice)
        rows.append(row)
    return rows


class BadParts(ValueError):
    """The record's parts are not what this module writes; the message names the field."""


def parts_from_record(value: Any, folder: Path) -> list[TakePart]:
    """The parts of a parsed record (an absent field: none, as in takes from before parts)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadParts("'parts' is not a list")
    parts: list[TakePart] = []
    for position, row in enumerate(value):
        if not isinstance(row, dict):
            raise BadParts(f"part {position} is not a record")
        audio = row.get("audio")
        if not isinstance(audio, str) or not _PART_NAME.fullmatch(audio) or audio != part_name(position):
            raise BadParts(f"part {position} names an unexpected audio file")
        numbers = [row.get(k) for k in ("start_s", "end_s")]
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n) for n in numbers):
            raise BadParts(f"part {position} has invalid times")
        seed, size = row.get("seed"), row.get("size_bytes")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (seed, size)):
            raise BadParts(f"part {position} has an invalid seed or size")
        text = row.get("text")
        speaker, voice = row.get("speaker"), row.get("voice")
        if not isinstance(text, str) or not all(v is None or isinstance(v, str) for v in (speaker, voice)):
            raise BadParts(f"part {position} has an invalid text, speaker or voice")
        parts.append(
            TakePart(
                index=position,
                text=text,
                seed=int(seed),  # type: ignore[arg-type]
                start_s=float(numbers[0]),  # type: ignore[arg-type]
                end_s=float(numbers[1]),  # type: ignore[arg-type]
                audio_path=folder / audio,
                size_bytes=int(size),  # type: ignore[arg-type]
                speaker=speaker,
                voice=voice,
            )
        )
    return parts
