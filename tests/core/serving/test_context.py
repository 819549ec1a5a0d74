"""ServingContext: what the UI and the HTTP routes share, without any web framework."""

from __future__ import annotations

import pytest

from core.serving.context import ServingContext, client_key
from core.serving.rate_limit import RateLimited
from core.takes.service import TakeService


def test_client_key():
    assert client_key("10.0.0.2", "anna") == "anna@10.0.0.2"
    assert client_key("10.0.0.2", None) == "10.0.0.2"
    assert client_key(None, None) == "local"
    assert client_key(None, "anna") == "anna@local"


def test_rate_limit_per_client(demo_context):
    demo_context.settings = demo_context.settings.replace(rate_limit_per_minute=2)
    ctx = ServingContext(demo_context)
    ctx.check_rate("a")
    ctx.check_rate("a")
    ctx.check_rate("b")  # another client has its own budget
    with pytest.raises(RateLimited, match="2 generations per minute"):
        ctx.check_rate("a")


def test_outputs_dir_demo_flag_and_takes(demo_context, tmp_path):
    ctx = ServingContext(demo_context, outputs_dir=tmp_path)
    assert ctx.outputs_dir == tmp_path and ctx.demo is True
    assert ServingContext(demo_context).outputs_dir.is_dir()  # a fresh folder of its own by default
    takes = ctx.takes
    assert isinstance(takes, TakeService)
    assert (takes.synthesis, takes.history, takes.library) == (
        demo_context.synthesis,
        demo_context.history,
        demo_context.library,
    )
