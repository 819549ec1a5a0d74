"""Variants ("Generate N takes") through the named API, with the real gradio_client."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.io import load_audio


def test_design_variants_returns_every_take_with_its_seed(client, studio_server):
    history = studio_server["ctx"].app.history
    path, info = client.predict(
        text="Pick the best one.",
        description="A calm, low voice.",
        seed=50,
        max_seconds=1,
        variants=3,
        api_name="/design",
    )
    assert info["engine"] == "torch"
    assert info["variant"] == 1 and info["variants"] == 3
    takes = info["takes"]
    assert [t["seed"] for t in takes] == [50, 51, 52]
    stored = [history.get(t["take_id"]) for t in takes]
    assert [s.seed for s in stored] == [50, 51, 52]
    audios = [load_audio(s.audio_path).samples for s in stored]
    assert np.array_equal(load_audio(path).samples, audios[0])
    assert not np.array_equal(audios[0], audios[1])
    # A variant is an ordinary take: the same seed alone gives the same audio.
    again, again_info = client.predict(
        text="Pick the best one.", description="A calm, low voice.", seed=51, max_seconds=1, api_name="/design"
    )
    assert again_info["seed"] == 51 and "takes" not in again_info
    assert np.array_equal(load_audio(again).samples, audios[1])


def test_custom_voice_variants(client):
    _path, info = client.predict(
        text="Two takes please.", speaker="Ryan", seed=5, max_seconds=1, variants=2, api_name="/custom_voice"
    )
    assert [t["seed"] for t in info["takes"]] == [5, 6]


@pytest.mark.parametrize("variants", [9, 0, 2.5])
def test_bad_variants_count_is_a_clear_error(client, variants):
    # Gradio checks the Takes slider's range itself; the studio's own check covers the rest.
    with pytest.raises(Exception, match="Takes must be a whole number from 1 to 8|maximum value 8|minimum value 1"):
        client.predict(text="Hi.", description="Calm.", variants=variants, api_name="/design")
