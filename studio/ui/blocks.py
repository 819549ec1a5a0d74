"""``StudioBlocks``: the studio's gr.Blocks, which checks API inputs' JSON types itself.

Why override Gradio internals: scripts can send anything, and Gradio checks
little. It would speak a list given as text as the string "['a', 'b']", and
answer a string seed with a developer report (component index, original
exception). Gradio has no hook for validating inputs before its own
preprocessing, so this overrides two of ``gr.Blocks``' methods
(``preprocess_data`` and ``_format_processing_error``, as of Gradio 6.17) to
name the parameter and what it must be instead. tests/studio/ui/test_blocks.py
pins the behaviour, so a Gradio upgrade that renames them fails loudly.
"""

from __future__ import annotations

import inspect
from typing import Any

import gradio as gr
from starlette import status as starlette_status

from studio.ui.errors import refusal

# Gradio 6.17 reads Starlette's renamed HTTP_422_UNPROCESSABLE_ENTITY on every queued event (the
# error map in routes.queue_join_helper), and Starlette warned each time: dozens of "422" warnings
# in the log, none of them a refused request. As a plain attribute the name is found without
# Starlette's deprecation hook (a module __getattr__); the value is the same 422.
setattr(starlette_status, "HTTP_422_UNPROCESSABLE_ENTITY", starlette_status.HTTP_422_UNPROCESSABLE_CONTENT)  # noqa: B010


class StudioBlocks(gr.Blocks):
    """gr.Blocks that answers API inputs of the wrong JSON type with a sentence."""

    async def preprocess_data(
        self, block_fn: Any, inputs: list[Any], state: Any, explicit_call: bool = False
    ) -> list[Any]:
        for index, (block, value) in enumerate(zip(block_fn.inputs, inputs)):
            if value is None or index in block_fn.component_prop_inputs:
                continue
            if state is not None and block._id in state:
                block = state[block._id]  # this session's copy, as Gradio itself uses it
            check_input(block_fn, index, block, value)
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)

    @staticmethod
    def _format_processing_error(
        block_fn: Any, index: int, block: Any, value: Any, is_input: bool, original_error: Exception
    ) -> str:
        if not is_input:
            return gr.Blocks._format_processing_error(block_fn, index, block, value, is_input, original_error)
        what = (
            "a file (send it with gradio_client.handle_file)"
            if isinstance(block, (gr.Audio, gr.File))
            else "a value it accepts"
        )
        return f"'{input_name(block_fn, index, block)}' must be {what}, not {shown(value)}."


def check_input(block_fn: Any, index: int, block: Any, value: Any) -> None:
    """Raises a gr.Error naming the parameter when ``value`` is the wrong JSON type for ``block``."""
    if isinstance(block, gr.Dropdown) and block.multiselect:
        return
    wanted = expected_type(block)
    if wanted is None:
        return
    types, what = wanted
    name = input_name(block_fn, index, block)
    if (
        not isinstance(value, types)
        or (isinstance(value, bool) and bool not in types)
        or (isinstance(value, dict) and not is_file_data(value))
    ):
        raise refusal(f"'{name}' must be {what}, not {shown(value)}.", "input check")
    choices = [str(c[1]) for c in getattr(block, "choices", None) or []]
    if isinstance(block, gr.Radio) and value not in choices:
        raise refusal(f"'{name}' must be one of {', '.join(choices)}; not {shown(value)}.", "input check")


def expected_type(block: Any) -> tuple[tuple[type, ...], str] | None:
    """The JSON types an input widget accepts, with how to say it; None: anything goes."""
    if isinstance(block, (gr.Textbox, gr.Dropdown, gr.Radio)):
        return (str,), "text"
    if isinstance(block, (gr.Number, gr.Slider)):
        return (int, float), "a number"
    if isinstance(block, gr.Checkbox):
        return (bool,), "true or false"
    if isinstance(block, gr.Audio) or isinstance(block, gr.File) and block.file_count == "single":
        return (dict,), "a file (send it with gradio_client.handle_file)"
    return None


def is_file_data(value: dict[str, Any]) -> bool:
    """What gradio_client.handle_file sends (and Gradio requires) for a file."""
    return isinstance(value.get("path"), str) and (value.get("meta") or {}).get("_type") == "gradio.FileData"


def input_name(block_fn: Any, index: int, block: Any) -> str:
    """The API parameter name of input ``index`` (what a script wrote), else the widget's label."""
    try:
        params = [
            p
            for p in inspect.signature(block_fn.fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        return params[index].name
    except (TypeError, ValueError, IndexError):
        return str(getattr(block, "label", None) or block.get_block_name())


def shown(value: Any) -> str:
    """A short description of a value for an error message: its JSON kind and its start."""
    kind = {list: "a list", dict: "an object", bool: "true/false", str: "text"}.get(type(value))
    text = repr(value)
    text = text if len(text) <= 40 else text[:39] + "…"
    return f"{kind} ({text})" if kind else text
