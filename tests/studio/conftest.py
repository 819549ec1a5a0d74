"""A real studio server on a free localhost port, on the tiny demo models."""

from __future__ import annotations

import pytest

from tests.conftest import free_port, make_demo_settings


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory, demo_checkpoints):
    """Starts the studio in this process (a real uvicorn server) and yields its URL, context and app."""
    from studio.server import serve

    settings = make_demo_settings(tmp_path_factory.mktemp("studio-data"), demo_checkpoints, port=free_port())
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx, "settings": settings, "app": app}
    finally:
        app.close()


@pytest.fixture(scope="module")
def client(studio_server):
    from gradio_client import Client

    return Client(studio_server["url"], verbose=False)


def wired_handler(app, name: str, *, generator: bool | None = None):
    """The event handler wired into the running ``app`` under its function name (e.g. a private button's)."""
    import inspect

    for block_fn in app.fns.values():
        fn = block_fn.fn
        if getattr(fn, "__name__", None) == name and (
            generator is None or inspect.isgeneratorfunction(fn) == generator
        ):
            return fn
    raise LookupError(f"no handler named {name}")
