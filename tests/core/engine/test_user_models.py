"""Voices trained here are found in the models dir by their marker, and only when complete."""

from __future__ import annotations

import json
import shutil

from core.engine.catalog import Catalog
from core.engine.model_store import ModelStore
from core.engine.speakers import find_speaker
from core.engine.user_models import MARKER, folder_name, scan, user_models_dir
from core.types import Mode
from tests.conftest import make_demo_settings


def test_a_trained_voice_is_listed_found_by_its_speaker_and_removed(tmp_path, demo_checkpoints):
    settings = make_demo_settings(tmp_path / "data", demo_checkpoints)
    root = user_models_dir(settings)
    assert root == tmp_path / "data" / "models"
    assert folder_name(" Anna Lee ") == "custom-anna-lee"
    half = root / "custom-half"  # a copy a crash interrupted: no marker, never listed
    shutil.copytree(demo_checkpoints["custom_voice"], half)
    voice = root / "custom-anna-lee"
    shutil.copytree(demo_checkpoints["custom_voice"], voice)
    record = {"speaker": "Anna Lee", "speaker_id": "anna_lee", "size": "0.6B", "base": "demo-0.6B-Base"}
    (voice / MARKER).write_text(json.dumps(record))
    assert [v.key for v in scan(root)] == ["custom-anna-lee"]

    catalog = Catalog(demo=True, user_dir=root)
    checkpoint = catalog.get("custom-anna-lee")
    assert checkpoint.mode == Mode.CUSTOM_VOICE and checkpoint.folder == voice and checkpoint.trained
    assert checkpoint.label == "0.6B Custom Voice: Anna Lee (trained here)"
    assert checkpoint not in list(catalog)  # a plain Custom Voice request never picks it
    assert catalog.resolve(Mode.CUSTOM_VOICE, None).folder is None
    trained = catalog.trained_speakers()
    assert find_speaker("anna lee", trained).id == "anna_lee"
    assert catalog.speaker_checkpoint("anna_lee") == checkpoint
    assert catalog.speaker_checkpoint("ryan") is None

    store = ModelStore(settings)
    assert store.local_path(checkpoint) == voice and store.download(checkpoint) == voice
    assert store.remove(checkpoint) > 0 and not voice.exists()
    assert catalog.trained() == () and half.exists()
