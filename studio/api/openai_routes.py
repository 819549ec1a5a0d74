"""An OpenAI- and vLLM-Omni-compatible speech API on the studio's own server.

Scripts and tools written for OpenAI's text-to-speech endpoint, or for
vLLM-Omni serving Qwen3-TTS, work against the studio by pointing their base
URL at ``http://host:port/v1``:

- ``POST /v1/audio/speech`` — text in, audio out (mp3, opus, aac, wav, flac, pcm),
  whole or streamed (``stream: true``), or ``variants: N`` takes as JSON; the fields are
  in studio/api/openai/speech.py;
- ``POST /v1/audio/speech/batch`` — 1-32 requests, one base64 audio per item, generated
  together (batched) where they share a model;
- ``POST /v1/audio/speech/{job_id}/cancel`` — stops a take (``X-Job-Id`` of every speech
  response, ``job_id`` of every batch item), as the UI's Stop does: its finished chunks are
  kept in History as a partial take;
- ``WebSocket /v1/audio/speech/stream`` — vLLM-Omni's streaming-text protocol: text in as
  it comes, audio out per sentence (studio/api/openai/websocket.py);
- ``GET /v1/audio/voices`` — built-in speakers and library voices; ``POST`` uploads a
  voice into the library, ``DELETE /v1/audio/voices/{name}`` removes one;
- ``GET /v1/models`` (and ``/v1/models/{id}``) — the model ids ``model`` accepts.

The routes are passed to Gradio's FastAPI app when it is created, so they are
matched before any Gradio route and are live as soon as the server is. They do
not use Gradio's cookie login: when the studio has credentials, each request
must carry ``Authorization: Bearer <password>`` (or ``<user:password>``).
Every take is a job of the studio's one take runner (core/takes/jobs.py), as a
UI take is: API and UI takes queue behind each other, are listed in Running &
recent, are kept in History, and stop when their client goes away. Errors always come back in OpenAI's JSON
shape, never as a traceback. This module imports ``core`` only, never Gradio.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from core.engine.catalog import real_checkpoint
from core.errors import InvalidInput
from core.serving.audit import current_client
from core.serving.context import ServingContext, client_key
from core.serving.metrics import current_endpoint
from studio.api.openai.batch import parse_batch, parse_variants, run_batch, variant_plans
from studio.api.openai.errors import ApiError, BearerAuth, guarded, read_json
from studio.api.openai.speech import (
    MODEL_ALIASES,
    RESPONSE_FORMATS,
    SpeechPlan,
    build_job,
    model_ids,
    parse_speech,
    respond,
    until_finished,
)
from studio.api.openai.streaming import stream_response
from studio.api.openai.voices import delete_voice, read_upload, save_uploaded_voice, uploaded_voice, voices_payload
from studio.api.openai.websocket import speech_stream_route

__all__ = ["MODEL_ALIASES", "RESPONSE_FORMATS", "openai_routes", "voices_payload"]

PREFIX = "/v1"
STOP_WAIT_S = 5.0  # how long a cancel waits to answer with the job's final state
_KNOWN_ROUTES = {
    "audio/speech": "POST",
    "audio/speech/batch": "POST",
    "audio/speech/stream": "a WebSocket connection (ws://)",
    "audio/voices": "GET, POST",
    "models": "GET",
}


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "qwen-tts-studio"}


def openai_routes(ctx: ServingContext, credentials: list[tuple[str, str]] | None = None) -> list[BaseRoute]:
    """The /v1 routes, for ``FastAPI(routes=...)`` (Gradio's ``launch(app_kwargs=...)``)."""
    auth = BearerAuth(credentials, ctx.audit)
    settings = ctx.app.settings
    # Text (\\uXXXX escapes included) plus, for clones, a base64 reference of up to the upload limit.
    body_limit = 65_536 + 16 * settings.max_text_chars + (settings.max_upload_mb * 1024 * 1024 * 4) // 3
    metrics = ctx.metrics

    def count_error(request: Request, error: ApiError) -> None:
        # The route's template (/v1/{rest:path}), never the raw path: a made-up path or
        # voice name must not become a new series.
        route = request.scope.get("route")
        endpoint = getattr(route, "path", None) or f"{PREFIX}/{{rest:path}}"
        metrics.error(endpoint, getattr(request.state, "mode", "none"), error.status)

    def enter(request: Request, endpoint: str) -> str:
        """Authenticates and labels this request; returns its client key."""
        user = auth.user(request)
        client = client_key(request.client.host if request.client else None, user)
        current_client.set(client)  # the audit log's "client", in this request's context
        current_endpoint.set(endpoint)  # the metrics' label; Metrics.observe leaves counting to us
        return client

    def counted(request: Request, endpoint: str, plan: SpeechPlan) -> None:
        request.state.mode = plan.mode.value
        metrics.request(endpoint, plan.mode.value)

    async def create_speech(request: Request) -> Response:
        """POST /v1/audio/speech (OpenAI, plus the vLLM-Omni fields)."""
        endpoint = f"{PREFIX}/audio/speech"
        client = enter(request, endpoint)
        body = await read_json(request, body_limit)
        ctx.lifecycle.admit()
        variants = parse_variants(body)  # "variants": N answers N takes as JSON, in the batch shape
        plan = await run_in_threadpool(parse_speech, ctx, body)
        counted(request, endpoint, plan)
        ctx.check_rate(client)
        if variants > 1:
            return JSONResponse(await run_batch(request, ctx, variant_plans(plan, variants), client, variants=True))
        take = await run_in_threadpool(build_job, ctx, plan)
        # A job of the take runner, whole (the runner may serve it with other queued takes) or live.
        job = await run_in_threadpool(
            lambda: ctx.jobs.start_take(take, client=client, owner=client, tab="api", live=plan.stream)
        )
        if not plan.stream:
            await until_finished(request, ctx, [job])
            data, headers = await run_in_threadpool(respond, ctx, plan, job)
            return Response(data, media_type=plan.media_type, headers=headers)
        headers = {"X-Model": plan.checkpoint.key, "X-Sample-Rate": "24000"}
        if plan.sampling.seed is not None:  # known before the audio: a remote studio reads it (seed applied)
            headers["X-Seed"] = str(plan.sampling.seed)
        return await stream_response(ctx, plan, job, headers)

    async def create_speech_batch(request: Request) -> Response:
        """POST /v1/audio/speech/batch: 1-32 items, one audio each."""
        endpoint = f"{PREFIX}/audio/speech/batch"
        client = enter(request, endpoint)
        body = await read_json(request, body_limit * 4)
        ctx.lifecycle.admit()
        plans = await run_in_threadpool(parse_batch, ctx, body)
        for plan in plans:
            counted(request, endpoint, plan)
            ctx.check_rate(client)
        return JSONResponse(await run_batch(request, ctx, plans, client))

    async def cancel_speech(request: Request) -> Response:
        """POST /v1/audio/speech/{job_id}/cancel: stops a take this client started (Stop)."""
        client = enter(request, f"{PREFIX}/audio/speech/cancel")
        job_id = request.path_params["job_id"]
        try:
            job = ctx.jobs.get(job_id)
        except InvalidInput:
            job = None
        if job is None or job.client != client:
            raise ApiError(404, f"No take '{job_id}' of yours is listed.", param="job_id", code="job_not_found")
        ctx.jobs.stop(job.id)
        await run_in_threadpool(job.wait, STOP_WAIT_S)  # stops within a frame
        kept = job.partial or (job.kept[0] if job.kept else None)
        return JSONResponse(
            {"id": job.id, "object": "speech.job", "status": job.state.value, "take_id": kept.take.id if kept else None}
        )

    async def list_voices(request: Request) -> Response:
        """Built-in speakers and library voices."""
        enter(request, f"{PREFIX}/audio/voices")
        return JSONResponse(await run_in_threadpool(voices_payload, ctx))

    async def upload_voice(request: Request) -> Response:
        """Saves an uploaded clip as a library voice (the clone tab's checks)."""
        enter(request, f"{PREFIX}/audio/voices")
        ctx.lifecycle.admit()
        fields, data, filename = await read_upload(request, settings.max_upload_mb)
        voice = await run_in_threadpool(save_uploaded_voice, ctx, fields, data, filename)
        # vLLM-Omni's answer (200, success and the voice), with the studio's row in it.
        return JSONResponse({"success": True, "voice": uploaded_voice(voice)})

    async def remove_voice(request: Request) -> Response:
        enter(request, f"{PREFIX}/audio/voices")
        ctx.lifecycle.admit()
        return JSONResponse(await run_in_threadpool(delete_voice, ctx, request.path_params["name"]))

    async def list_models(request: Request) -> Response:
        """The model ids /v1/audio/speech accepts, as OpenAI's model list."""
        enter(request, f"{PREFIX}/models")
        return JSONResponse({"object": "list", "data": [model_object(m) for m in model_ids(ctx)]})

    async def get_model(request: Request) -> Response:
        enter(request, f"{PREFIX}/models")
        wanted = request.path_params["model_id"]
        for model_id in model_ids(ctx):
            if model_id.lower() == wanted.lower():
                return JSONResponse(model_object(model_id))
        if real_checkpoint(wanted) is not None:  # mlx-community's ids name the same checkpoints
            return JSONResponse(model_object(wanted))
        raise ApiError(404, f"The model '{wanted}' does not exist.", param="model", code="model_not_found")

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
            f"POST {PREFIX}/audio/speech, POST {PREFIX}/audio/speech/batch, "
            f"POST {PREFIX}/audio/speech/{{job_id}}/cancel, GET/POST {PREFIX}/audio/voices, "
            f"DELETE {PREFIX}/audio/voices/{{name}} and GET {PREFIX}/models.",
            code="unknown_url",
        )

    def route(path: str, handler: Any, methods: list[str]) -> APIRoute:
        return APIRoute(path, guarded(handler, count_error), methods=methods, include_in_schema=False)

    every = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        route(f"{PREFIX}/audio/speech", create_speech, ["POST"]),
        route(f"{PREFIX}/audio/speech/batch", create_speech_batch, ["POST"]),
        route(f"{PREFIX}/audio/speech/{{job_id}}/cancel", cancel_speech, ["POST"]),
        speech_stream_route(ctx, auth, body_limit),
        route(f"{PREFIX}/audio/voices", list_voices, ["GET"]),
        route(f"{PREFIX}/audio/voices", upload_voice, ["POST"]),
        route(f"{PREFIX}/audio/voices/{{name}}", remove_voice, ["DELETE"]),
        route(f"{PREFIX}/models", list_models, ["GET"]),
        route(f"{PREFIX}/models/{{model_id:path}}", get_model, ["GET"]),
        route(PREFIX, not_found, every),
        route(f"{PREFIX}/{{rest:path}}", not_found, every),
    ]
