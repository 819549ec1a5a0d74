"""Storage must stay light: listing voices or takes never loads torch, the model code or the UI.

Each import runs in a fresh interpreter, since this test process has long
since imported torch through other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "qwen_tts", "gradio", "transformers")


def loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module", ["core.types", "core.storage.library", "core.storage.history", "core.storage.folder_store"]
)
def test_importing_storage_loads_no_heavy_package(module):
    assert loaded_after(f"import {module}") == dict.fromkeys(HEAVY, False)


def test_listing_and_editing_voices_and_takes_loads_no_heavy_package(tmp_path, speech_wav):
    """Not just the import: saving (with its speech check), listing, renaming and deleting stay torch-free too."""
    code = f"""
from core.audio.io import load_audio
from core.storage.history import History
from core.storage.library import VoiceLibrary
from core.types import SynthesisResult

clip = load_audio({str(speech_wav)!r})
library = VoiceLibrary({str(tmp_path / "voices")!r})
voice = library.save(name="Anna", kind="clone", reference=clip, transcript="Hello.")
library.rename(voice, "Anna B")
assert [v.name for v in library.list()] == ["Anna B"]
assert library.cached_prompt(voice, "demo-0.6B-Base") is None
library.delete(voice)
history = History({str(tmp_path / "history")!r})
result = SynthesisResult(audio=clip, mode="base", model="demo", seed=1, demo=True, text="Hi.",
                         chunks=["Hi."], timings={{}})
take = history.add(result, request={{"text": "Hi."}})
assert [t.id for t in history.list()] == [take.id]
"""
    assert loaded_after(code) == dict.fromkeys(HEAVY, False)
