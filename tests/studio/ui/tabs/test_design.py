"""Design then clone, and every take landing in the history, through the real API."""

from __future__ import annotations

import pytest
import soundfile as sf
from gradio_client.exceptions import AppError


def test_design_then_clone_round_trip(client, studio_server):
    saved = client.predict(
        text="This designed voice becomes a library voice.",
        language="English",
        description="A bright, fast young voice.",
        name="Designed Dana",
        seed=9,
        api_name="/voice_design_save",
    )
    assert saved["kind"] == "design" and saved["name"] == "Designed Dana"
    assert saved["transcript"] == "This designed voice becomes a library voice."
    assert saved["description"] == "A bright, fast young voice." and saved["seed"] == 9
    library = studio_server["ctx"].app.library
    assert library.get("Designed Dana").reference_path.is_file()

    path, info = client.predict(
        voice="Designed Dana",
        text="Now cloned from the design.",
        size="0.6B",
        seed=1,
        max_seconds=0.5,
        api_name="/clone",
    )
    assert sf.info(path).samplerate == 24_000
    assert info["voice"] == "Designed Dana" and info["prompt_cached"] is False
    _, again = client.predict(
        voice="designed dana", text="Again.", size="0.6B", seed=1, max_seconds=0.5, api_name="/clone"
    )
    assert again["prompt_cached"] is True


def test_design_save_refuses_a_taken_name_before_generating(client, studio_server):
    client.predict(text="First.", description="Calm.", name="Taken Name", seed=1, api_name="/voice_design_save")
    history = studio_server["ctx"].app.history
    before = len(history.list())
    with pytest.raises(AppError, match="already exists"):
        client.predict(text="Second.", description="Calm.", name="taken name", api_name="/voice_design_save")
    with pytest.raises(AppError, match="Give the voice a name"):
        client.predict(text="Third.", description="Calm.", name="  ", api_name="/voice_design_save")
    assert len(history.list()) == before


def test_every_take_is_kept_in_the_history_with_its_recipe(client, studio_server):
    path, info = client.predict(
        text="Keep me.",
        speaker="Serena",
        instruct="Softly",
        size="1.7B",
        seed=21,
        max_seconds=0.5,
        format="flac",
        api_name="/custom_voice",
    )
    take = studio_server["ctx"].app.history.get(info["take_id"])
    assert take.mode == "custom_voice" and take.seed == 21 and take.format == "flac"
    assert take.request["kind"] == "custom_voice" and take.request["speaker"] == "Serena"
    assert take.request["instruct"] == "Softly" and take.voice == {"kind": "speaker", "speaker": "Serena"}
    assert take.audio_path.is_file() and take.text == "Keep me."
