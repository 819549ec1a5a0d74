"""The one declaration of the named API: every row true, and registration held to it."""

from __future__ import annotations

import importlib
import inspect
import re

import gradio as gr
import pytest

from studio.api.endpoints import BY_NAME, NAMED_API, declared
from studio.ui.handlers import api_endpoint, api_function


def test_names_are_unique_and_plain():
    names = [endpoint.name for endpoint in NAMED_API]
    assert len(names) == len(set(names)) == len(BY_NAME)
    assert all(re.fullmatch(r"[a-z][a-z_]*", name) for name in names)
    assert all(endpoint.path == f"/{endpoint.name}" for endpoint in NAMED_API)
    assert all(endpoint.description.strip().endswith(".") for endpoint in NAMED_API)


@pytest.mark.parametrize("endpoint", NAMED_API, ids=[e.name for e in NAMED_API])
def test_each_row_names_the_module_that_defines_its_handler(endpoint):
    source = inspect.getsource(importlib.import_module(endpoint.module))
    assert re.search(rf"^\s*(?:async\s+)?def {endpoint.handler}\(", source, re.M), (
        f"{endpoint.module} defines no {endpoint.handler}() for {endpoint.path}"
    )
    assert re.search(rf"['\"]{endpoint.name}['\"]", source), f"{endpoint.module} never registers {endpoint.path}"


def test_declared_finds_a_row_by_name_or_path():
    def parse_design() -> None: ...

    assert declared("design", parse_design) is BY_NAME["design"]
    assert declared("/design", parse_design) is BY_NAME["design"]


def test_declared_refuses_an_undeclared_name_or_another_handler():
    def parse_design() -> None: ...

    def something_else() -> None: ...

    with pytest.raises(LookupError, match="'/secret' is not declared in studio/api/endpoints.py"):
        declared("/secret", parse_design)
    with pytest.raises(LookupError, match=r"declares /design as served by parse_design\(\), not 'something_else'"):
        declared("design", something_else)


def test_registration_goes_through_the_declaration():
    """An endpoint that is not declared cannot be registered at all, by either helper."""

    def voices() -> list:
        return []

    def nothing() -> None: ...

    with gr.Blocks() as app:
        api_function(voices, "voices")
        with pytest.raises(LookupError):
            api_function(nothing, "nothing")
        box = gr.Textbox()
        with pytest.raises(LookupError):
            api_endpoint(nothing, [box], box, "voice_export")
    assert [fn.api_name for fn in app.fns.values() if fn.api_name] == ["voices"]
