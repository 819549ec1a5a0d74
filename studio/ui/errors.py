"""The one place where errors become what a Gradio user (or gradio_client script) sees.

Engine errors (``StudioError``) carry a sentence written for the user: it is
shown as it is, and the log gets one line (a refusal is not a bug: no stack).
Anything else is a bug: the user gets a short generic message and the
traceback goes to the studio's log (once), never to the page.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr

from core.errors import StudioError

log = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Any])

ERROR_TITLE = "Could not do that"


def refusal(message: str, where: str = "", title: str = ERROR_TITLE) -> gr.Error:
    """A ``gr.Error`` for an ordinary refusal (bad input, nothing to do): one line in the log.

    Gradio prints the traceback of every ``gr.Error`` unless told not to; a refusal is not a bug,
    and a log full of stacks for "Type some text first" hid the real ones.
    """
    log.info("event=refused where=%s message=%s", where or "?", " ".join(message.split()))
    return gr.Error(message, title=title, print_exception=False)


def translate(exc: Exception, where: str) -> gr.Error:
    """The ``gr.Error`` to raise for ``exc``, raised in the handler named ``where``."""
    if isinstance(exc, gr.Error):  # already a sentence for the user (e.g. "Please confirm")
        if exc.print_exception:
            log.info("event=refused where=%s message=%s", where, " ".join(str(exc.message).split()))
            exc.print_exception = False
        return exc
    if isinstance(exc, StudioError):
        return refusal(str(exc), where)
    log.exception("unexpected error in %s", where)  # the one traceback: Gradio's own is turned off
    return gr.Error(
        f"Something went wrong ({type(exc).__name__}). The details are in the studio's log; "
        "please try again, and report it if it keeps happening.",
        title="Unexpected error",
        print_exception=False,
    )


def friendly_errors(fn: Handler) -> Handler:
    """Wraps an event handler (plain, async or generator) so its errors reach the user as sentences.

    The wrapper keeps ``fn``'s signature: Gradio reads it to name the API's
    parameters and to decide where to inject ``gr.Progress`` and ``gr.Request``.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc, fn.__name__) from None

        async_wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
        return async_wrapper  # type: ignore[return-value]

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc, fn.__name__) from None

        gen_wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc, fn.__name__) from None

    wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
