"""friendly_errors: the one place engine errors become what a Gradio user sees."""

from __future__ import annotations

import inspect
import logging

import gradio as gr
import pytest

from core.errors import InvalidInput, VoiceNotFound
from studio.ui.errors import ERROR_TITLE, friendly_errors


def raises(exc: Exception):
    def handler(text: str, count: int = 1, request: gr.Request | None = None) -> str:
        """Documented."""
        raise exc

    return handler


def test_a_studio_error_is_shown_as_its_own_sentence():
    with pytest.raises(gr.Error) as info:
        friendly_errors(raises(VoiceNotFound("No voice named 'Bob'.")))("hi")
    assert info.value.message == "No voice named 'Bob'." and info.value.title == ERROR_TITLE
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained traceback


def test_a_gr_error_passes_through_unchanged():
    original = gr.Error("Tick the box first.", title="Please confirm")
    with pytest.raises(gr.Error) as info:
        friendly_errors(raises(original))("hi")
    assert info.value is original


@pytest.mark.parametrize("exc", [VoiceNotFound("No voice named 'Bob'."), gr.Error("Tick the box first.")])
def test_a_refusal_is_one_log_line_without_a_traceback(exc, caplog):
    # Issue 23: Gradio printed the stack of every gr.Error; a refusal is not a bug.
    with caplog.at_level(logging.INFO, logger="studio.ui.errors"):
        with pytest.raises(gr.Error) as info:
            friendly_errors(raises(exc))("hi")
    assert info.value.print_exception is False
    [record] = caplog.records
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage().startswith("event=refused where=handler message=")


def test_a_bug_is_logged_once_with_its_traceback_not_twice(caplog):
    with caplog.at_level(logging.INFO, logger="studio.ui.errors"):
        with pytest.raises(gr.Error) as info:
            friendly_errors(raises(KeyError("x")))("hi")
    assert info.value.print_exception is False  # the studio's log has it; Gradio does not print it again
    assert [r.exc_info[0] for r in caplog.records] == [KeyError]


def test_an_unexpected_error_is_a_generic_message_and_a_logged_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="studio.ui.errors"):
        with pytest.raises(gr.Error) as info:
            friendly_errors(raises(KeyError("secret internal detail")))("hi")
    message = info.value.message
    assert message.startswith("Something went wrong (KeyError). The details are in the studio's log")
    assert "secret" not in message and info.value.title == "Unexpected error"
    record = caplog.records[-1]
    assert record.getMessage() == "unexpected error in handler" and record.exc_info[0] is KeyError


def test_generators_are_translated_after_what_they_yielded():
    def stream(n: int):
        yield from range(n)
        raise InvalidInput("Enter some text to speak.")

    wrapped = friendly_errors(stream)
    assert inspect.isgeneratorfunction(wrapped)
    seen = []
    with pytest.raises(gr.Error, match="Enter some text to speak."):
        for item in wrapped(3):
            seen.append(item)
    assert seen == [0, 1, 2]


def test_results_pass_through_and_the_signature_is_kept():
    def design(text: str, seed: float | None = -1, progress=gr.Progress(), request: gr.Request = None) -> str:
        """Speak text."""
        return text.upper()

    wrapped = friendly_errors(design)
    assert wrapped("hi") == "HI"
    # Gradio reads the signature for the API's parameter names and to inject Progress and Request.
    assert inspect.signature(wrapped) == inspect.signature(design)
    assert wrapped.__name__ == "design" and wrapped.__doc__ == "Speak text."
