"""take_handlers: one parse function gives the API, streaming and retry handlers (demo models)."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from core.audio.io import load_audio
from core.takes.service import TakeJob
from core.takes.values import sampling_from_values
from core.types import DesignRequest
from studio.ui.context import StudioContext
from studio.ui.handlers import failed_key, take_handlers


def parse_echo(text: str, seed: float | None = -1) -> TakeJob:
    """Echo: speak `text`."""
    request = DesignRequest(text=text, description="Calm.", sampling=sampling_from_values(seed, max_seconds=0.5))
    return TakeJob(request, "wav", info={"description": "Calm."})


@pytest.fixture
def ctx(demo_context) -> StudioContext:
    return StudioContext(demo_context)


def test_the_api_and_ui_handlers_carry_parse_signature(ctx):
    run, stream, retry = take_handlers(ctx, parse_echo)
    for handler in (run, stream):
        params = list(inspect.signature(handler).parameters)
        assert params == ["text", "seed", "progress", "request"]
        assert handler.__name__ == "parse_echo" and handler.__doc__ == "Echo: speak `text`."
    assert inspect.isgeneratorfunction(stream) and inspect.isgeneratorfunction(retry)


def test_run_and_stream_keep_the_same_take(ctx):
    run, stream, _ = take_handlers(ctx, parse_echo)
    path, info = run("Same take.", 4)
    assert info["take_id"] == ctx.app.history.list()[0].id and info["description"] == "Calm."
    assert info["seed"] == 4 and info["text"] == "Same take."
    updates = list(stream("Same take.", 4))
    live = [u[0] for u in updates if not isinstance(u[0], dict)]
    assert live and all(rate == 24_000 for rate, _ in live)
    _, streamed_path, streamed_info = updates[-1]
    assert np.array_equal(load_audio(streamed_path).samples, load_audio(path).samples)
    assert set(streamed_info) == set(info) and streamed_info["take_id"] != info["take_id"]


def test_errors_are_sentences_and_retry_needs_a_failed_take(ctx):
    run, _, retry = take_handlers(ctx, parse_echo)
    with pytest.raises(gr.Error, match="Enter some text"):
        run("  ")
    with pytest.raises(gr.Error, match="Nothing to retry"):
        list(retry(None, None))


def test_failed_takes_wait_per_session_and_tab():
    request = SimpleNamespace(session_hash="abc")
    assert failed_key(request, parse_echo) == "abc:parse_echo"
    assert failed_key(None, parse_echo) == ":parse_echo"
