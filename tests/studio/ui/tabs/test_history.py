"""History's "Regenerate with the same settings", through the handler wired to the button, on a real server."""

from __future__ import annotations

import asyncio

import gradio as gr
import numpy as np
import pytest

from core.audio.io import load_audio
from tests.studio.conftest import wired_handler

FAST = {"seed": 21, "max_seconds": 0.5}


@pytest.fixture(scope="module")
def regenerate(studio_server):
    # The handler is async (Regenerate is a job of the one take runner): run it to its answer.
    handler = wired_handler(studio_server["app"], "regenerate_take")
    return lambda *args: asyncio.run(handler(*args))


def test_regenerate_a_take_gives_the_same_audio_as_a_new_take(client, studio_server, regenerate):
    path, info = client.predict(text="Regenerate me.", description="Calm.", **FAST, api_name="/design")
    rows, picker, note, new_path, summary, message = regenerate(info["take_id"], "", "all")

    history = studio_server["ctx"].app.history
    new_id = picker["value"]
    assert new_id != info["take_id"]
    assert message == f"Regenerated as take {new_id} with seed 21. ✓ Identical to the original."
    assert np.array_equal(load_audio(new_path).samples, load_audio(path).samples)
    original, again = history.get(info["take_id"]), history.get(new_id)
    assert again.request == original.request and again.voice == original.voice and again.format == "wav"
    assert again.mode == "voice_design" and again.seed == 21
    # The readable summary, not a JSON tree: plain mode name, seed, model.
    assert summary.startswith("**Design** take") and "**Seed:** 21" in summary, summary
    assert rows[0][-1] == new_id and rows[0][5] == 21 and rows[0][4] == "Design"  # listed first, selected
    assert rows[0][1] == "Regenerate me." and rows[0][2].endswith(" s")  # When, Text, Length first


def test_regenerate_a_script_take(client, studio_server, regenerate):
    merged, _, info = client.predict(
        script="A: One.\nB: Two.", casting="A = Ryan\nB = Sohee", size="0.6B", format="flac", **FAST, api_name="/script"
    )
    _, picker, _, new_path, summary, message = regenerate(info["take_id"], "", "script")
    again = studio_server["ctx"].app.history.get(picker["value"])
    assert again.mode == "script" and again.format == "flac"
    assert summary.startswith("**Script** take") and "FLAC" in summary, summary
    assert message.endswith("with seed 21. ✓ Identical to the original.")
    assert np.array_equal(load_audio(new_path).samples, load_audio(merged).samples)


def test_regenerate_needs_a_take(regenerate):
    with pytest.raises(gr.Error, match="Pick a take to regenerate."):
        regenerate(None, "", "all")
    with pytest.raises(gr.Error):
        regenerate("no-such-take", "", "all")
