"""The outermost layer of the web server: headers, CORS, shutdown refusals, MCP auth.

An ASGI middleware (not Starlette's BaseHTTPMiddleware, which would buffer
streamed audio and hide client disconnects) that every request passes first:

- security headers on every response (no MIME sniffing, no framing by other
  sites, no referrer leaks, no camera or location; the microphone for the
  studio's own pages only);
- CORS: off unless ``cors_origins`` lists the calling origin. Gradio's own CORS
  layer lets any origin in when the studio is served on a LAN address, so this
  layer strips whatever CORS headers a response carries for origins that are
  not on the list, and answers listed origins' preflights itself;
- while the studio drains for shutdown, new work (speech requests, Gradio
  queue joins and calls, MCP) is refused with 503 and Retry-After;
- the MCP endpoint (``/mcp``, also ``/gradio_api/mcp/``) needs ``Authorization: Bearer <password>``
  when the studio has a password (Gradio's login does not cover it);
- failed sign-ins on Gradio's login form go to the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.serving.context import ServingContext
from studio.api.openai.errors import BearerAuth, refuse

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(self)",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MCP_PREFIXES = ("/mcp", "/gradio_api/mcp")  # studio/api/mcp_tools.py (the second: older configurations)
# Requests that start new work; everything else (pages, files, status) is served while draining.
_WORK_PREFIXES = ("/v1/audio/", "/gradio_api/queue/join", "/gradio_api/call/", "/gradio_api/run/", *MCP_PREFIXES)
_LOGIN_PATHS = ("/login", "/gradio_api/login")


class StudioGuard:
    def __init__(
        self,
        app: ASGIApp,
        ctx: ServingContext,
        credentials: list[tuple[str, str]] | None,
        *,
        tls: bool = False,
    ):
        self.app = app
        self.ctx = ctx
        self.auth = BearerAuth(credentials, ctx.audit)
        origins = ctx.app.settings.cors_origins or ""
        self.origins = {o for o in origins.split(",") if o}
        self.tls = tls

    def allowed_origin(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.origins or origin.rstrip("/") in self.origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope.get("path", "")
        method: str = scope["method"]
        origin = headers.get("origin")
        host = scope["client"][0] if scope.get("client") else None

        if method == "OPTIONS" and origin and "access-control-request-method" in headers:
            await self._preflight(origin, headers, send)
            return
        if self.ctx.lifecycle.draining and method in ("POST", "PUT", "DELETE") and path.startswith(_WORK_PREFIXES):
            await self._json(
                send,
                503,
                _error(503, "The studio is shutting down and takes no new work.", "shutting_down"),
                {"Retry-After": "30"},
            )
            return
        if (
            self.auth.enabled
            and path.startswith(MCP_PREFIXES)
            and self.auth.check(headers.get("authorization", "")) is None
        ):
            self.auth.failed(host, path)
            error = refuse("The MCP server needs the studio's password: send 'Authorization: Bearer <password>'.")
            await self._json(send, 401, error.body(), error.headers)
            return

        login = method == "POST" and path.rstrip("/") in _LOGIN_PATHS
        await self.app(scope, receive, self._sender(send, origin, on_status=self._login_audit(host) if login else None))

    def _login_audit(self, host: str | None) -> Callable[[int], None]:
        def check(status: int) -> None:
            if status >= 400:
                self.auth.failed(host, "/login")

        return check

    def _sender(self, send: Send, origin: str | None, on_status: Callable[[int], None] | None) -> Send:
        allowed = self.allowed_origin(origin)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                if on_status is not None:
                    on_status(message["status"])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if self.tls:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
                if origin is not None:
                    for name in [k for k in headers.keys() if k.lower().startswith("access-control-")]:
                        del headers[name]
                    if allowed:
                        headers["Access-Control-Allow-Origin"] = origin
                        headers["Access-Control-Expose-Headers"] = (
                            "X-Model, X-Seed, X-Duration, X-Sample-Rate, X-Take-Id, X-Job-Id, X-Warnings, "
                            "X-Word-Timestamps, X-Word-Timestamps-Omitted, X-Word-Timestamps-Model, "
                            "X-Word-Timestamps-Demo"
                        )
                        headers.add_vary_header("Origin")
            await send(message)

        return wrapped

    async def _preflight(self, origin: str, headers: Headers, send: Send) -> None:
        extra = dict(SECURITY_HEADERS)
        if self.allowed_origin(origin):
            extra.update(
                {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
                    "Access-Control-Allow-Headers": headers.get(
                        "access-control-request-headers", "authorization, content-type"
                    ),
                    "Access-Control-Max-Age": "600",
                    "Vary": "Origin",
                }
            )
        await _plain(send, 204 if "Access-Control-Allow-Origin" in extra else 403, extra)

    async def _json(self, send: Send, status: int, body: dict, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        raw += [(k.lower().encode(), v.encode()) for k, v in {**SECURITY_HEADERS, **headers}.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": data})


def _error(status: int, message: str, code: str) -> dict:
    return {
        "error": {
            "message": message,
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": code,
        }
    }


async def _plain(send: Send, status: int, headers: dict[str, str]) -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()] + [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b""})
