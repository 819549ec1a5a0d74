"""An OpenAI-compatible speech API on the studio's own server.

Scripts and tools written for OpenAI's text-to-speech endpoint work against
the studio by pointing their base URL at ``http://host:port/v1``:

- ``POST /v1/audio/speech`` — text in, audio bytes out (mp3, opus, wav, flac, pcm);
- ``GET /v1/audio/voices`` — the nine built-in speakers and the library's voices;
- ``GET /v1/models`` (and ``/v1/models/{id}``) — the model ids ``model`` accepts.

``model`` picks the size: ``tts-1`` and ``qwen3-tts-0.6b`` mean 0.6B;
``tts-1-hd``, ``gpt-4o-mini-tts*`` and ``qwen3-tts-1.7b`` mean 1.7B; a catalog key
such as ``1.7B-CustomVoice`` or ``0.6B-Base`` picks one checkpoint outright. A
built-in speaker (``"Ryan"``, ``"ryan"``) speaks through CustomVoice at that size,
a library voice (by name or id, or ``{"id": ...}``) is cloned with Base at that
size. Built-in speaker names win over library voices of the same name.

``instructions`` direct built-in speakers (the 0.6B CustomVoice model ignores
them, as in the studio) and are ignored for library voices. ``speed`` is not
supported: anything but 1.0 is refused rather than silently ignored. Studio
extras: ``language``, ``seed``, ``temperature``, ``top_k``, ``top_p``,
``repetition_penalty`` and ``max_seconds`` (a cap per chunk, as in the UI).

The routes are passed to Gradio's FastAPI app when it is created, so they are
matched before any Gradio route and are live as soon as the server is. They do
not use Gradio's cookie login: when the studio has credentials, each request
must carry ``Authorization: Bearer <password>`` (or ``<user:password>``).
Generation runs in a worker thread and shares the engine's device lock with
the UI, so API and UI takes queue behind each other; every take is kept in the
history like one made in the UI. Errors always come back in OpenAI's JSON
shape, never as a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from core import text as textlib
from core.audio.clip import TARGET_SAMPLE_RATE
from core.audio.io import encode
from core.engine.catalog import Checkpoint
from core.engine.speakers import Speaker, find_speaker, speakers
from core.errors import (
    AudioError,
    GenerationError,
    InvalidInput,
    LibraryError,
    ModelLoadError,
    ModelUnavailable,
    StudioError,
    VoiceNotFound,
)
from core.serving.context import ServingContext, client_key
from core.serving.rate_limit import RateLimited
from core.storage.library import Voice
from core.takes.recipes import clone_request_for_voice
from core.takes.service import TakeJob
from core.takes.values import sampling_from_values
from core.types import CustomVoiceRequest, Sampling, normalize_language
from core.types import Request as SynthesisRequest

log = logging.getLogger(__name__)

PREFIX = "/v1"
# OpenAI's response_format -> (core encoder format, Content-Type).
RESPONSE_FORMATS: dict[str, tuple[str, str]] = {
    "mp3": ("mp3", "audio/mpeg"),
    "opus": ("ogg", "audio/ogg"),  # Ogg Opus (Ogg Vorbis where libsndfile has no Opus)
    "wav": ("wav", "audio/wav"),
    "flac": ("flac", "audio/flac"),
    "pcm": ("pcm", "audio/pcm"),  # raw 16-bit little-endian mono at 24 kHz
}
DEFAULT_FORMAT = "mp3"
# Model aliases -> size; the mode follows from the voice.
MODEL_ALIASES: dict[str, str] = {
    "tts-1": "0.6B",
    "tts-1-hd": "1.7B",
    "gpt-4o-mini-tts": "1.7B",
    "qwen3-tts-0.6b": "0.6B",
    "qwen3-tts-1.7b": "1.7B",
}
# Dated snapshots such as gpt-4o-mini-tts-2025-12-15 map like their family.
_ALIAS_FAMILIES = (("gpt-4o-mini-tts-", "1.7B"),)
SAMPLING_FIELDS = ("seed", "temperature", "top_k", "top_p", "repetition_penalty", "max_seconds")
MAX_INSTRUCTIONS_CHARS = 1000
_KNOWN_ROUTES = {"audio/speech": "POST", "audio/voices": "GET", "models": "GET"}
_RETRY_AFTER = re.compile(r"in (\d+) s\b")


# --------------------------------------------------------------------------- errors


@dataclass
class ApiError(Exception):
    """An error response in OpenAI's shape."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        headers = dict(self.headers)
        # The official clients retry 429 and 5xx on their own; say when that is pointless.
        if self.status in (500, 503) and self.code in ("model_unavailable", "generation_failed"):
            headers.setdefault("x-should-retry", "false")
        return JSONResponse(body, status_code=self.status, headers=headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def error_for(exc: Exception) -> ApiError:
    """An engine error (or anything else) as the OpenAI-shaped error to send."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RateLimited):
        match = _RETRY_AFTER.search(str(exc))
        headers = {"Retry-After": match.group(1)} if match else {}
        return ApiError(429, str(exc), "rate_limit_error", code="rate_limit_exceeded", headers=headers)
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
    if isinstance(exc, StudioError):
        return ApiError(500, str(exc), "server_error")
    log.error("unexpected error in the OpenAI-compatible API", exc_info=exc)
    return ApiError(
        500,
        f"Something went wrong ({type(exc).__name__}). The details are in the studio's log; "
        "please try again, and report it if it keeps happening.",
        "server_error",
    )


def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every route answers in OpenAI's error shape, whatever goes wrong."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - translated, and logged when unexpected
            return error_for(exc).response()

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


# --------------------------------------------------------------------------- auth


class BearerAuth:
    """Accepts ``Authorization: Bearer <key>`` where key is a configured password
    or ``user:password``; with no credentials configured, everything is allowed."""

    def __init__(self, credentials: list[tuple[str, str]] | None):
        self.credentials = list(credentials or [])

    @property
    def enabled(self) -> bool:
        return bool(self.credentials)

    def user(self, request: Request) -> str | None:
        """The matching user name (None when auth is off), or raises a 401 ApiError."""
        if not self.enabled:
            return None
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise self._refuse(
                "You didn't provide an API key. Send the studio's password as "
                "'Authorization: Bearer <password>' (or <user:password>)."
            )
        given = key.encode("utf-8")
        matched = None
        for user, password in self.credentials:  # compare with every pair: no early exit
            hit_password = hmac.compare_digest(given, password.encode("utf-8"))
            hit_pair = hmac.compare_digest(given, f"{user}:{password}".encode())
            if (hit_password or hit_pair) and matched is None:
                matched = user
        if matched is None:
            raise self._refuse(
                "Incorrect API key provided. Use the studio's password (or user:password) as the bearer token."
            )
        return matched

    @staticmethod
    def _refuse(message: str) -> ApiError:
        return ApiError(
            401,
            message,
            "authentication_error",
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="Qwen TTS Studio"'},
        )


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class SpeechPlan:
    """A validated /v1/audio/speech request, ready to generate."""

    text: str
    response_format: str
    checkpoint: Checkpoint
    language: str | None  # None: the voice's own (library) or auto
    sampling: Sampling
    speaker: Speaker | None = None
    voice: Voice | None = None
    instructions: str | None = None


def model_ids(ctx: ServingContext) -> list[str]:
    keys = [c.key for c in ctx.app.catalog if c.mode in ("custom_voice", "base")]
    return [*MODEL_ALIASES, *keys]


def _parse_model(ctx: ServingContext, model: Any) -> str | Checkpoint:
    """A size (for an alias, whose mode follows from the voice) or one catalog checkpoint."""
    if not isinstance(model, str) or not model.strip():
        raise bad_request("You must provide a model parameter: " + ", ".join(model_ids(ctx)) + ".", "model")
    name = model.strip().lower()
    size = MODEL_ALIASES.get(name) or next((s for p, s in _ALIAS_FAMILIES if name.startswith(p)), None)
    if size:
        return size
    try:
        checkpoint = ctx.app.catalog.get(name)
    except InvalidInput:
        raise bad_request(
            f"The model '{model}' does not exist. Choose one of: " + ", ".join(model_ids(ctx)) + ".",
            "model",
            "model_not_found",
        ) from None
    if checkpoint.mode == "voice_design":
        raise bad_request(
            f"{checkpoint.key} designs voices from a description and cannot speak a named voice; "
            "use tts-1, tts-1-hd or a CustomVoice / Base model.",
            "model",
        )
    return checkpoint


def _checkpoint_for(ctx: ServingContext, model: str | Checkpoint, wants: str) -> Checkpoint:
    """The checkpoint that speaks a voice of mode ``wants`` ("custom_voice" or "base")."""
    catalog = ctx.app.catalog
    if isinstance(model, str):
        return catalog.resolve(wants, model, ctx.app.settings.preferred_size)
    if model.mode == wants:
        return model
    kind = "a built-in speaker" if wants == "custom_voice" else "a library voice"
    right = catalog.resolve(wants, model.size)
    raise bad_request(
        f"{model.key} cannot speak {kind}; use {right.key} (or tts-1 / tts-1-hd, which "
        "pick the right model for the voice).",
        "model",
    )


def _resolve_voice(ctx: ServingContext, voice: Any) -> Speaker | Voice:
    if isinstance(voice, dict):  # OpenAI's custom-voice form: {"id": "..."}
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice.strip():
        raise bad_request(
            "You must provide a voice: a built-in speaker such as 'Ryan' or a library "
            "voice's name or id (GET /v1/audio/voices lists them).",
            "voice",
        )
    try:
        return find_speaker(voice)
    except InvalidInput:
        pass
    try:
        return ctx.app.library.get(voice)
    except VoiceNotFound:
        names = ", ".join(s.name for s in speakers())
        raise bad_request(
            f"Unknown voice '{voice}'. Use a built-in speaker ({names}) or a voice saved in "
            "the studio's library (GET /v1/audio/voices lists them).",
            "voice",
            "voice_not_found",
        ) from None


def _optional_str(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(f"{name} must be a string.", name)
    return value


def _sampling(body: dict) -> Sampling:
    values = {}
    for name in SAMPLING_FIELDS:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad_request(f"{name} must be a number.", name)
        try:
            sampling_from_values(**{name: value})
        except InvalidInput as exc:
            raise bad_request(str(exc), name) from None
        values[name] = value
    return sampling_from_values(**values)


def parse_speech(ctx: ServingContext, body: Any) -> SpeechPlan:
    """Checks a request body without touching a model; raises ApiError (400)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = _parse_model(ctx, body.get("model"))
    raw_input = body.get("input")
    if not isinstance(raw_input, str):
        raise bad_request("You must provide input: the text to speak, as a string.", "input")
    try:
        text = textlib.validate_text(raw_input, max_chars=ctx.app.settings.max_text_chars)
    except InvalidInput as exc:
        raise bad_request(str(exc), "input") from None
    voice = _resolve_voice(ctx, body.get("voice"))

    fmt = body.get("response_format")
    fmt = DEFAULT_FORMAT if fmt is None else fmt
    if not isinstance(fmt, str) or fmt.strip().lower() not in RESPONSE_FORMATS:
        raise bad_request(
            f"response_format '{fmt}' is not supported; choose one of: " + ", ".join(RESPONSE_FORMATS) + ".",
            "response_format",
        )
    fmt = fmt.strip().lower()

    speed = body.get("speed")
    if speed is not None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not math.isfinite(speed):
            raise bad_request("speed must be a number.", "speed")
        if speed != 1:
            raise bad_request(
                "speed is not supported: Qwen3-TTS speaks at its own pace. Send 1.0 or leave it "
                "out; for built-in speakers, ask for a slower or faster delivery in instructions.",
                "speed",
            )
    stream_format = _optional_str(body, "stream_format")
    if stream_format not in (None, "audio"):
        raise bad_request("stream_format 'sse' is not supported; the audio comes back whole.", "stream_format")

    instructions = (_optional_str(body, "instructions") or "").strip() or None
    if instructions and len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise bad_request(
            f"instructions are over {MAX_INSTRUCTIONS_CHARS:,} characters; keep them short.", "instructions"
        )
    language = _optional_str(body, "language")
    if language is not None:
        try:
            language = normalize_language(language)
        except InvalidInput as exc:
            raise bad_request(str(exc), "language") from None
    sampling = _sampling(body)

    wants = "custom_voice" if isinstance(voice, Speaker) else "base"
    checkpoint = _checkpoint_for(ctx, model, wants)
    if isinstance(voice, Speaker):
        return SpeechPlan(text, fmt, checkpoint, language, sampling, speaker=voice, instructions=instructions)
    return SpeechPlan(text, fmt, checkpoint, language, sampling, voice=voice)


# --------------------------------------------------------------------------- generating


def generate(ctx: ServingContext, plan: SpeechPlan) -> tuple[bytes, dict[str, str]]:
    """Blocking: generates the take, keeps it in the history, returns (bytes, headers)."""
    app = ctx.app
    request: SynthesisRequest
    voice_id: str | None = None
    voice_name: str | None = None
    if plan.speaker is not None:
        request = CustomVoiceRequest(
            text=plan.text,
            speaker=plan.speaker.name,
            language=plan.language or "auto",
            instruct=plan.instructions,
            size=plan.checkpoint.size,
            sampling=plan.sampling,
        )
    else:
        assert plan.voice is not None
        language = plan.language or plan.voice.language or "auto"
        request, _ = clone_request_for_voice(
            app.library,
            app.synthesis,
            plan.voice.id,
            text=plan.text,
            language=language,
            size=plan.checkpoint.size,
            sampling=plan.sampling,
        )
        voice_id, voice_name = plan.voice.id, plan.voice.name
    result = app.synthesis.synthesize(request)

    encoder_format, _ = RESPONSE_FORMATS[plan.response_format]
    audio = result.audio
    if audio.sample_rate != TARGET_SAMPLE_RATE:  # the engine always returns 24 kHz; pcm promises it
        raise GenerationError(f"The model returned {audio.sample_rate} Hz audio, not {TARGET_SAMPLE_RATE} Hz.")
    data: bytes | None = None
    take_id = None
    job = TakeJob(
        request,
        "wav" if encoder_format == "pcm" else encoder_format,  # raw PCM cannot be kept
        voice_id=voice_id,
        voice_name=voice_name,
    )
    try:
        take = ctx.takes.keep(job, result).take
        take_id = take.id
        if encoder_format != "pcm":
            data = take.audio_path.read_bytes()  # the history encoded it already
    except (StudioError, OSError) as exc:
        # The caller still gets the audio; the history is a convenience.
        log.warning("event=api_take_not_kept reason=%s", exc)
    if data is None:
        try:
            data = encode(audio, encoder_format)
        except AudioError as exc:  # e.g. no ffmpeg for MP3: the server's problem, not the request's
            raise ApiError(500, str(exc), "server_error", code="encoding_failed") from exc
    headers = {
        "X-Model": result.model,
        "X-Seed": str(result.seed),
        "X-Duration": f"{audio.duration:.3f}",
        "X-Sample-Rate": str(audio.sample_rate),
    }
    if take_id:
        headers["X-Take-Id"] = take_id
    if result.warnings:
        headers["X-Warnings"] = " | ".join(result.warnings).encode("ascii", "replace").decode("ascii")
    log.info(
        "event=api_speech model=%s format=%s chars=%d audio_s=%.2f",
        result.model,
        plan.response_format,
        len(plan.text),
        audio.duration,
    )
    return data, headers


# --------------------------------------------------------------------------- routes


async def read_json(request: Request, limit: int) -> Any:
    length = request.headers.get("content-length", "")
    too_big = bad_request(f"The request body is over {limit:,} bytes: the input is too long.", "input")
    if length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError as exc:
        raise bad_request(
            f"We could not parse the JSON body of your request ({exc}). Send a JSON object with model, input and voice."
        ) from None


def voices_payload(ctx: ServingContext) -> dict[str, Any]:
    rows = [
        {"id": s.id, "name": s.name, "type": "builtin", "description": s.description, "language": s.native_language}
        for s in speakers()
    ]
    for v in ctx.app.library.list():
        description = v.description or v.notes or f"Cloned voice ({v.reference_seconds:.0f} s reference)"
        rows.append(
            {
                "id": v.id,
                "name": v.name,
                "type": "library",
                "description": description,
                "language": v.language.capitalize(),
            }
        )
    return {"voices": rows}


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "qwen-tts-studio"}


def openai_routes(ctx: ServingContext, credentials: list[tuple[str, str]] | None = None) -> list[BaseRoute]:
    """The /v1 routes, for ``FastAPI(routes=...)`` (Gradio's ``launch(app_kwargs=...)``)."""
    auth = BearerAuth(credentials)
    body_limit = 65_536 + 16 * ctx.app.settings.max_text_chars  # \\uXXXX escapes included

    @guarded
    async def create_speech(request: Request) -> Response:
        """OpenAI's POST /v1/audio/speech."""
        user = auth.user(request)
        plan = parse_speech(ctx, await read_json(request, body_limit))
        ctx.check_rate(client_key(request.client.host if request.client else None, user))
        data, headers = await run_in_threadpool(generate, ctx, plan)
        return Response(data, media_type=RESPONSE_FORMATS[plan.response_format][1], headers=headers)

    @guarded
    async def list_voices(request: Request) -> Response:
        """Built-in speakers and library voices."""
        auth.user(request)
        return JSONResponse(await run_in_threadpool(voices_payload, ctx))

    @guarded
    async def list_models(request: Request) -> Response:
        """The model ids /v1/audio/speech accepts, as OpenAI's model list."""
        auth.user(request)
        return JSONResponse({"object": "list", "data": [model_object(m) for m in model_ids(ctx)]})

    @guarded
    async def get_model(request: Request) -> Response:
        auth.user(request)
        wanted = request.path_params["model_id"]
        for model_id in model_ids(ctx):
            if model_id.lower() == wanted.lower():
                return JSONResponse(model_object(model_id))
        raise ApiError(404, f"The model '{wanted}' does not exist.", param="model", code="model_not_found")

    @guarded
    async def not_found(request: Request) -> Response:
        auth.user(request)
        rest = request.path_params.get("rest", "").strip("/")
        if rest in _KNOWN_ROUTES:
            raise ApiError(
                405,
                f"{request.method} is not allowed on {PREFIX}/{rest}; use {_KNOWN_ROUTES[rest]}.",
                code="method_not_allowed",
            )
        raise ApiError(
            404,
            f"Unknown route {request.method} {request.url.path}. This studio serves "
            f"POST {PREFIX}/audio/speech, GET {PREFIX}/audio/voices and GET {PREFIX}/models.",
            code="unknown_url",
        )

    every = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        APIRoute(f"{PREFIX}/audio/speech", create_speech, methods=["POST"], include_in_schema=False),
        APIRoute(f"{PREFIX}/audio/voices", list_voices, methods=["GET"], include_in_schema=False),
        APIRoute(f"{PREFIX}/models", list_models, methods=["GET"], include_in_schema=False),
        APIRoute(f"{PREFIX}/models/{{model_id:path}}", get_model, methods=["GET"], include_in_schema=False),
        APIRoute(PREFIX, not_found, methods=every, include_in_schema=False),
        APIRoute(f"{PREFIX}/{{rest:path}}", not_found, methods=every, include_in_schema=False),
    ]
