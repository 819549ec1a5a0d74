"""Helpers for the quality suite: hostile test data, snapshots of the data dir,
and checks that an error is a sentence for a person rather than a crash dump.

Every file is made with real tools (numpy + soundfile, espeak-ng through the
shared ``speech_wav`` fixture, zipfile) in pytest's temporary folders.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# A lock file is bookkeeping, not library or history content: filelock creates
# it on the first locked operation whatever the outcome.
IGNORED_NAMES = {".lock"}

# What a message must never look like: a crash dump or a bare exception type.
_TYPE_PREFIX = re.compile(
    r"\b[A-Z][A-Za-z]*(Error|Exception|Warning|Exit|Interrupt)\s*:|\b(Traceback|Exception)\b|"
    r"File \"[^\"]+\", line \d+"
)


def tree_snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` as relative path -> SHA-256 of its bytes ("<dir>" for folders)."""
    snap: dict[str, str] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            for d in dirnames:
                snap[str((here / d).relative_to(root.parent))] = "<dir>"
            for f in filenames:
                if f in IGNORED_NAMES:
                    continue
                path = here / f
                snap[str(path.relative_to(root.parent))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


def assert_human_message(message: str) -> None:
    """A sentence for a person: not empty, no traceback, no "ValueError:"-style type prefix."""
    text = (message or "").strip()
    assert text, "the error message is empty"
    assert len(text) >= 12 and " " in text, f"not a sentence: {text!r}"
    assert not _TYPE_PREFIX.search(text), f"looks like a crash dump, not a sentence: {text!r}"
    assert "Something went wrong" not in text, f"an unexpected error reached the user: {text!r}"
    assert "\n  File " not in text and "<class " not in text, text


# --- audio -----------------------------------------------------------------


def tone(seconds: float, sr: int = 24_000, channels: int = 1, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    """Real espeak-ng speech (it passes the studio's speech check), ``seconds`` long at ``sr``,
    peak-scaled to ``amplitude``; several channels get the same speech at different levels."""
    import librosa

    from tests.conftest import spoken

    n = int(round(seconds * sr))
    mono = spoken(seconds + 0.1, seed).samples.astype(np.float64)
    if sr != 24_000:
        mono = librosa.resample(mono, orig_sr=24_000, target_sr=sr)
    mono = np.resize(mono, n)  # exact length; short clips repeat the speech
    mono = (amplitude * mono / max(float(np.max(np.abs(mono))), 1e-9)).astype(np.float32)
    if channels == 1:
        return mono
    return np.stack([mono * (0.5 + 0.5 * c / channels) for c in range(channels)], axis=1)


def write_wav(path: Path, samples: np.ndarray, sr: int = 24_000, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, sr, subtype=subtype, format="WAV")
    return path


def truncated_wav(path: Path, source: Path, keep: float = 0.5) -> Path:
    """A WAV whose header promises more data than the file holds (a cut-off download)."""
    data = source.read_bytes()
    path.write_bytes(data[: max(60, int(len(data) * keep))])
    return path


# --- voice archives --------------------------------------------------------


def voice_record(voice_id: str, name: str, wav: bytes) -> dict:
    info = sf.info(io.BytesIO(wav))
    return {
        "schema": 1,
        "id": voice_id,
        "name": name,
        "kind": "clone",
        "language": "english",
        "transcript": "The quick brown fox.",
        "description": None,
        "tags": ["test"],
        "notes": "",
        "source_name": None,
        "consent": "my own voice",
        "trim": None,
        "reference_sha256": hashlib.sha256(wav).hexdigest(),
        "reference_seconds": round(info.frames / info.samplerate, 6),
        "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": "2025-01-01T00:00:00+00:00",
    }


def wav_bytes(seconds: float = 2.0, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(seconds, seed=seed), 24_000, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def voice_zip(path: Path, voices: list[tuple[str, str]], seconds: float = 2.0) -> Path:
    """A well-formed export holding ``voices`` as (id, name) pairs."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i, (voice_id, name) in enumerate(voices):
            wav = wav_bytes(seconds, seed=i)
            archive.writestr(f"{voice_id}/voice.json", json.dumps(voice_record(voice_id, name, wav)))
            archive.writestr(f"{voice_id}/reference.wav", wav)
    return path


def copy_demo_models(demo_checkpoints: dict[str, Path], data_dir: Path) -> None:
    """Seeds ``data_dir/demo-models`` with the session's build so a server starts without rebuilding."""
    source = Path(next(iter(demo_checkpoints.values()))).parent
    target = data_dir / "demo-models"
    if not target.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock", ".lock"))


@pytest.fixture(scope="session")
def quality_audio(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quality-audio")
