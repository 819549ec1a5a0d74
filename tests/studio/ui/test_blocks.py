"""StudioBlocks: API inputs of the wrong JSON type are refused with the parameter's name.

The first test runs a small StudioBlocks app on a real server through gradio_client,
so a Gradio upgrade that stops calling the overridden methods fails here.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from studio.ui.blocks import StudioBlocks, expected_type, input_name, is_file_data, shown
from tests.conftest import free_port


def echo(text: str, seed: float, loud: bool, size: str) -> str:
    return f"{text}|{seed}|{loud}|{size}"


@pytest.fixture(scope="module")
def client():
    with StudioBlocks() as app:
        inputs = [gr.Textbox(), gr.Number(), gr.Checkbox(), gr.Radio(["0.6B", "1.7B"])]
        gr.Button().click(echo, inputs, gr.Textbox(), api_name="echo")
    app.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Client(app.local_url, verbose=False)
    finally:
        app.close()


def test_right_types_pass(client):
    assert client.predict("hi", 3, True, "0.6B", api_name="/echo") == "hi|3|True|0.6B"


@pytest.mark.parametrize(
    "args, message",
    [
        ((["a", "b"], 3, True, "0.6B"), "'text' must be text, not a list (['a', 'b'])."),
        (("hi", "3", True, "0.6B"), "'seed' must be a number, not text ('3')."),
        (("hi", True, True, "0.6B"), "'seed' must be a number, not true/false (True)."),
        (("hi", 3, "yes", "0.6B"), "'loud' must be true or false, not text ('yes')."),
        (("hi", 3, True, "3B"), "'size' must be one of 0.6B, 1.7B; not text ('3B')."),
    ],
)
def test_wrong_types_name_the_parameter(client, args, message):
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name="/echo")
    assert message in str(info.value)


def test_expected_types():
    assert expected_type(gr.Textbox(render=False)) == ((str,), "text")
    assert expected_type(gr.Slider(render=False)) == ((int, float), "a number")
    assert expected_type(gr.Checkbox(render=False)) == ((bool,), "true or false")
    assert expected_type(gr.Audio(render=False))[0] == (dict,)
    assert expected_type(gr.File(file_count="multiple", render=False)) is None
    assert expected_type(gr.JSON(render=False)) is None


def test_file_data_is_what_handle_file_sends():
    assert is_file_data({"path": "/tmp/a.wav", "meta": {"_type": "gradio.FileData"}})
    assert not is_file_data({"path": "/tmp/a.wav"})
    assert not is_file_data({"path": 3, "meta": {"_type": "gradio.FileData"}})


def test_input_name_prefers_the_parameter_then_the_label():
    block = gr.Textbox(label="Text", render=False)
    assert input_name(SimpleNamespace(fn=echo), 1, block) == "seed"
    assert input_name(SimpleNamespace(fn=echo), 9, block) == "Text"
    assert input_name(SimpleNamespace(fn=None), 0, block) == "Text"


def test_shown_values_are_short():
    assert shown("x" * 100) == "text ('" + "x" * 38 + "…)"
    assert shown({"a": 1}) == "an object ({'a': 1})"
    assert shown(3.5) == "3.5"
