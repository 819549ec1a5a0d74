"""GET /health and GET /metrics, for monitors and Prometheus.

``/health`` always answers liveness without credentials (``{"status": "ok"}``,
503 with ``"draining"`` while shutting down, so load balancers stop sending
work). The details — versions, engine and device, each model's state, queue
depth — are shown to everyone when the studio has no password, and otherwise
only with ``Authorization: Bearer <password>``. ``/metrics`` (Prometheus text)
follows the same rule but refuses without credentials (401) when a password is set.
Imports ``core`` only, like the /v1 routes.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from core.serving import health
from core.serving.context import ServingContext
from core.serving.metrics import CONTENT_TYPE
from studio.api.openai.errors import BearerAuth, guarded


def ops_routes(ctx: ServingContext, credentials: list[tuple[str, str]] | None = None) -> list[BaseRoute]:
    auth = BearerAuth(credentials, ctx.audit)

    async def get_health(request: Request) -> Response:
        allowed = not auth.enabled or auth.check(request.headers.get("authorization", "")) is not None
        payload = await run_in_threadpool(health.details, ctx) if allowed else health.liveness(ctx)
        return JSONResponse(payload, status_code=503 if ctx.lifecycle.draining else 200)

    async def get_metrics(request: Request) -> Response:
        auth.user(request)  # 401 in OpenAI's shape without the password, when one is set
        return Response(await run_in_threadpool(ctx.metrics.render), media_type=CONTENT_TYPE)

    return [
        APIRoute("/health", guarded(get_health), methods=["GET"], include_in_schema=False),
        APIRoute("/metrics", guarded(get_metrics), methods=["GET"], include_in_schema=False),
    ]
