"""StudioContext and client_id: who is calling, for rate limits and logs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.serving.context import ServingContext
from core.serving.rate_limit import RateLimited
from studio.ui.context import StudioContext, client_id


def test_client_id_from_a_gradio_request():
    assert client_id(None) == "local"
    assert client_id(SimpleNamespace(client=SimpleNamespace(host="10.0.0.7"), username=None)) == "10.0.0.7"
    assert client_id(SimpleNamespace(client=SimpleNamespace(host="10.0.0.7"), username="anna")) == "anna@10.0.0.7"
    assert client_id(SimpleNamespace(client=None, username="anna")) == "anna@local"


def test_the_ui_counts_against_the_same_limit_as_the_http_routes(demo_context):
    demo_context.settings = demo_context.settings.replace(rate_limit_per_minute=1)
    ctx = StudioContext(demo_context)
    assert isinstance(ctx, ServingContext) and ctx.failed == {}
    request = SimpleNamespace(client=SimpleNamespace(host="10.0.0.7"), username=None)
    ctx.check_request_rate(request)
    with pytest.raises(RateLimited):
        ctx.check_rate("10.0.0.7")  # what the OpenAI route checks for the same client
    ctx.check_request_rate(None)  # another client ("local") still has its own
