"""The one table of the Advanced fields: its widgets, and the parameters it gives a tab's handler."""

from __future__ import annotations

import asyncio
import inspect

import gradio as gr
import pytest

from core.audio.edit import PostProcessing
from core.errors import InvalidInput
from core.takes.values import Options, options_from_values
from core.types import Sampling
from studio.ui.advanced import ADVANCED, NAMES, advanced_accordion, with_advanced


def test_every_field_is_an_options_keyword_with_the_same_default_meaning():
    keywords = inspect.signature(options_from_values).parameters
    assert set(NAMES) <= set(keywords)
    # A direct call that leaves every field out makes a take with the model's own defaults.
    handler_defaults = {f.name: f.parameter.default for f in ADVANCED}
    assert options_from_values(**handler_defaults) == Options()
    # What gradio_client sends for a left-out field (the widget's value) is valid too.
    widget_values = {f.name: f.value() if callable(f.value) else f.value for f in ADVANCED}
    assert options_from_values(**widget_values).sampling == Sampling(
        temperature=0.9, top_k=50, top_p=1.0, repetition_penalty=1.05
    )


def test_the_accordion_lays_out_one_widget_per_field_in_table_order():
    with gr.Blocks():
        widgets = advanced_accordion(takes=True)
    assert [w.label for w in widgets.inputs] == [f.label for f in ADVANCED]
    assert [type(w) for w in widgets.inputs] == [f.widget for f in ADVANCED]
    assert widgets.seed.label == "Seed" and widgets.seed.placeholder == "random"
    assert widgets.takes is not None and widgets.takes.maximum == 8
    with gr.Blocks():
        assert advanced_accordion().takes is None


def test_with_advanced_spreads_the_fields_where_advanced_stands_and_hands_over_options():
    @with_advanced
    def parse_thing(text: str, advanced: Options = Options(), after: bool = False) -> tuple[str, Options, bool]:
        """Doc kept."""
        return text, advanced, after

    names = list(inspect.signature(parse_thing).parameters)
    assert names == ["text", *NAMES, "after"]
    assert parse_thing.__name__ == "parse_thing" and parse_thing.__doc__ == "Doc kept."
    text, options, after = parse_thing("hi", 4, None, None, None, None, 0, "flac", "peak", after=True)
    assert (text, after, options.fmt) == ("hi", True, "flac")
    assert options.sampling == Sampling(seed=4) and options.post == PostProcessing(normalize="peak")
    assert parse_thing("hi", output_fade_in_s=0.5)[1].post == PostProcessing(fade_in_s=0.5)
    with pytest.raises(InvalidInput, match="^Temperature must be a number"):
        parse_thing("hi", temperature="hot")


def test_with_advanced_keeps_generators_and_coroutines_what_they_are():
    @with_advanced
    def stream(text: str, advanced: Options = Options()):
        yield text
        yield advanced.fmt

    @with_advanced
    async def render(text: str, advanced: Options = Options()) -> str:
        return f"{text}.{advanced.fmt}"

    assert inspect.isgeneratorfunction(stream) and list(stream("a", format="ogg")) == ["a", "ogg"]
    assert inspect.iscoroutinefunction(render) and asyncio.run(render("b", format="mp3")) == "b.mp3"
