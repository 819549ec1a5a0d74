"""OpenAI-shaped errors, bearer authentication and JSON bodies for the HTTP routes."""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import HTTPConnection

from core.errors import (
    GenerationError,
    InvalidInput,
    LibraryError,
    ModelLoadError,
    ModelUnavailable,
    Stopped,
    StudioError,
    VoiceNotFound,
)
from core.serving.audit import AuditLog
from core.serving.lifecycle import ShuttingDown
from core.serving.rate_limit import RateLimited

log = logging.getLogger("studio.api.openai")
_RETRY_AFTER = re.compile(r"in (\d+) s\b")
MAX_DEPTH = 8  # a speech request is flat (a batch: three levels); anything deeper is not one


@dataclass
class ApiError(Exception):
    """An error response in OpenAI's shape."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = dict(self.headers)
        # The official clients retry 429 and 5xx on their own; say when that is pointless.
        if self.status in (500, 503) and self.code in ("model_unavailable", "generation_failed"):
            headers.setdefault("x-should-retry", "false")
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def error_for(exc: BaseException) -> ApiError:
    """An engine error (or anything else) as the OpenAI-shaped error to send."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RateLimited):
        match = _RETRY_AFTER.search(str(exc))
        headers = {"Retry-After": match.group(1)} if match else {}
        return ApiError(429, str(exc), "rate_limit_error", code="rate_limit_exceeded", headers=headers)
    if isinstance(exc, ShuttingDown):
        return ApiError(503, str(exc), "server_error", code="shutting_down", headers={"Retry-After": "30"})
    if isinstance(exc, ModelUnavailable):
        return ApiError(503, str(exc), "server_error", param="model", code="model_unavailable")
    if isinstance(exc, ModelLoadError):
        return ApiError(503, str(exc), "server_error", param="model", code="model_load_failed")
    if isinstance(exc, GenerationError):
        return ApiError(500, str(exc), "server_error", code="generation_failed")
    if isinstance(exc, VoiceNotFound):
        return bad_request(str(exc), "voice", "voice_not_found")
    if isinstance(exc, (InvalidInput, LibraryError)):
        return bad_request(str(exc))
    if isinstance(exc, Stopped):  # its job was cancelled (POST /v1/audio/speech/{id}/cancel, shutdown)
        return ApiError(409, str(exc), "invalid_request_error", code="take_stopped")
    if isinstance(exc, StudioError):
        return ApiError(500, str(exc), "server_error")
    log.error("unexpected error in the OpenAI-compatible API", exc_info=exc)
    return ApiError(
        500,
        f"Something went wrong ({type(exc).__name__}). The details are in the studio's log; "
        "please try again, and report it if it keeps happening.",
        "server_error",
    )


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler, on_error: Callable[[Request, ApiError], None] | None = None) -> Handler:
    """Every route answers in OpenAI's error shape, whatever goes wrong."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - translated, and logged when unexpected
            error = error_for(exc)
            if on_error is not None:
                on_error(request, error)
            return error.response()

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


class BearerAuth:
    """Accepts ``Authorization: Bearer <key>`` where key is a configured password
    or ``user:password``; with no credentials configured, everything is allowed.
    Failures are written to the audit log (never the key that was tried)."""

    def __init__(self, credentials: list[tuple[str, str]] | None, audit: AuditLog | None = None):
        self.credentials = list(credentials or [])
        self.audit = audit

    @property
    def enabled(self) -> bool:
        return bool(self.credentials)

    def check(self, authorization: str) -> str | None:
        """The matching user for an Authorization header value; None when it does not match."""
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None
        given = key.encode("utf-8")
        matched = None
        for user, password in self.credentials:  # compare with every pair: no early exit
            hit_password = hmac.compare_digest(given, password.encode("utf-8"))
            hit_pair = hmac.compare_digest(given, f"{user}:{password}".encode())
            if (hit_password or hit_pair) and matched is None:
                matched = user
        return matched

    def user(self, request: HTTPConnection) -> str | None:
        """The matching user name (None when auth is off), or raises a 401 ApiError."""
        if not self.enabled:
            return None
        header = request.headers.get("authorization", "")
        matched = self.check(header)
        if matched is not None:
            return matched
        self.failed(request.client.host if request.client else None, request.url.path)
        if not header.partition(" ")[2].strip() or header.partition(" ")[0].lower() != "bearer":
            raise refuse(
                "You didn't provide an API key. Send the studio's password as "
                "'Authorization: Bearer <password>' (or <user:password>)."
            )
        raise refuse("Incorrect API key provided. Use the studio's password (or user:password) as the bearer token.")

    def failed(self, host: str | None, path: str) -> None:
        if self.audit is not None:
            self.audit.record("auth.failure", path, client=host or "local")


def refuse(message: str) -> ApiError:
    return ApiError(
        401,
        message,
        "authentication_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": 'Bearer realm="Qwen TTS Studio"'},
    )


async def read_body(request: Request, limit: int, what: str = "the input is too long") -> bytes:
    length = request.headers.get("content-length", "")
    too_big = ApiError(413, f"The request body is over {limit:,} bytes: {what}.", param="input", code="body_too_large")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    data = await read_body(request, limit)
    try:
        body = json.loads(data)
    except RecursionError:  # nested thousands deep: the parser gives up before our depth check
        raise bad_request("The request body is nested too deeply; a speech request is a flat JSON object.") from None
    except ValueError as exc:
        raise bad_request(
            f"We could not parse the JSON body of your request ({exc}). Send a JSON object with model, input and voice."
        ) from None
    check_depth(body)
    return body


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuses JSON nested deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise bad_request(
                    f"The request body is nested more than {limit} levels deep; a speech request is flat."
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
