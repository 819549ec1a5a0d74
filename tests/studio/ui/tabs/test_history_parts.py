"""History's parts and subtitles through the named API (/take_parts, /part_redo, /subtitles) on a real server."""

from __future__ import annotations

import gradio_client
import numpy as np
import pytest

from core.audio.io import load_audio
from tests.conftest import free_port, make_demo_settings
from tests.core.storage.test_take_parts import LONG_TEXT

FAST = {"seed": 21, "max_seconds": 0.5}


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_checkpoints):
    from studio.server import serve

    settings = make_demo_settings(
        tmp_path_factory.mktemp("parts-api"), demo_checkpoints, port=free_port(), chunk_chars=50
    )
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx}
    finally:
        app.close()


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server["url"], verbose=False)


@pytest.fixture(scope="module")
def take(client):
    path, info = client.predict(text=LONG_TEXT, speaker="Ryan", size="0.6B", **FAST, api_name="/custom_voice")
    return path, info


def test_take_parts_lists_every_chunk_with_its_times(client, take):
    _, info = take
    parts = client.predict(take_id=info["take_id"], api_name="/take_parts")
    assert parts["take_id"] == info["take_id"] and len(parts["parts"]) == 3
    assert [p["seed"] for p in parts["parts"]] == [21, 22, 23]
    assert parts["parts"][-1]["end_s"] == pytest.approx(info["duration_s"], abs=0.002)


def test_part_redo_with_the_same_seed_gives_the_same_take_as_a_new_one(client, server, take):
    path, info = take
    new_path, details = client.predict(take_id=info["take_id"], part=1, action="same_seed", api_name="/part_redo")
    assert details["derived_from"] == info["take_id"] and details["take_id"] != info["take_id"]
    assert details["part"] == 1 and details["part_seed"] == 22
    np.testing.assert_array_equal(load_audio(new_path).samples, load_audio(path).samples)
    history = server["ctx"].app.history
    assert history.get(info["take_id"]).id == info["take_id"]  # the original stays


def test_part_redo_delete_and_bad_input(client, take):
    _, info = take
    _, details = client.predict(take_id=info["take_id"], part=2, action="delete", api_name="/part_redo")
    assert details["parts"] == 2 and details["duration_s"] < info["duration_s"]
    with pytest.raises(gradio_client.exceptions.AppError, match="there is no part 7"):
        client.predict(take_id=info["take_id"], part=7, action="delete", api_name="/part_redo")
    with pytest.raises(gradio_client.exceptions.AppError, match="Unknown part action"):
        client.predict(take_id=info["take_id"], part=0, action="louder", api_name="/part_redo")


@pytest.mark.parametrize("fmt, head", [("srt", "1\n00:00:00,000 --> "), ("vtt", "WEBVTT\n\n00:00:00.000 --> ")])
def test_subtitles_download_as_a_file(client, take, fmt, head):
    _, info = take
    path = client.predict(take_id=info["take_id"], format=fmt, api_name="/subtitles")
    assert path.endswith(f"{info['take_id']}.{fmt}")
    text = open(path, encoding="utf-8").read()
    assert text.startswith(head)
    assert "The second one is just as long as that." in text


def test_subtitles_for_an_unknown_take_is_a_sentence(client):
    with pytest.raises(gradio_client.exceptions.AppError, match="There is no take 20200101-000000-aaaaaa"):
        client.predict(take_id="20200101-000000-aaaaaa", format="srt", api_name="/subtitles")
