"""The studio's MCP server: tools named as the README documents them, returning audio.

MCP clients (Claude Desktop, Cursor, VS Code...) connect over streamable HTTP at
``/mcp`` (``/gradio_api/mcp/`` is the same server, for configurations written
before). The tools are ``custom_voice``, ``design`` and ``clone`` — each makes a
take through the same path as ``POST /v1/audio/speech`` (checked, generated,
kept in the history) and returns the audio as MCP audio content (``audio/wav``,
base64) plus one text block of JSON details (take id, model, seed, duration,
warnings) — and ``speakers``, ``voices`` and ``languages``, which return JSON.
Every parameter is typed and described, so a client shows a proper form.

Built on the ``mcp`` SDK's FastMCP (Gradio's own MCP server names tools after
Python handlers and returns a Python repr). Authentication is StudioGuard's:
with a password set, MCP requests need ``Authorization: Bearer <password>``.
Imports ``core`` and the /v1 routes' helpers only, never Gradio.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Annotated, Any

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import AudioContent, TextContent
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from core.engine.speakers import speakers as builtin_speakers
from core.serving.audit import current_client
from core.serving.context import ServingContext, client_key
from core.serving.metrics import current_endpoint
from core.types import LANGUAGES
from studio.api.openai.errors import error_for
from studio.api.openai.speech import generate, parse_speech

PATHS = ("/mcp", "/mcp/", "/gradio_api/mcp", "/gradio_api/mcp/")
ENDPOINT = "/mcp"

Text = Annotated[str, Field(description="The text to speak (up to the studio's text limit).")]
Language = Annotated[str, Field(description="The language of the text: auto, English, Chinese, Japanese, Korean, ...")]
Seed = Annotated[int | None, Field(description="A seed to make the same take again; none for a random one.")]
MaxSeconds = Annotated[float | None, Field(description="Stop after this many seconds of audio; none for no cap.")]
Size = Annotated[str, Field(description="Model size: 0.6B or 1.7B; empty for the studio's preferred size.")]


def build_mcp(ctx: ServingContext) -> FastMCP:
    """The FastMCP server with the studio's tools (not yet started: see mcp_routes)."""
    server = FastMCP(
        "qwen-tts-studio",
        instructions="Text to speech with Qwen3-TTS: speak as a built-in speaker, design a voice from a "
        "description, or clone a library voice. Each take returns audio (WAV) and JSON details.",
        stateless_http=True,
        json_response=True,
        # The studio checks origins itself (StudioGuard) and serves LAN hosts on purpose.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )

    async def speak(body: dict[str, Any], request_ctx: Context | None) -> list[AudioContent | TextContent]:
        request = getattr(getattr(request_ctx, "request_context", None), "request", None)
        host = request.client.host if request is not None and request.client else None
        client = client_key(host, None)
        current_client.set(client)
        current_endpoint.set(ENDPOINT)
        body = {k: v for k, v in body.items() if v not in (None, "")}
        try:
            ctx.lifecycle.admit()
            plan = await run_in_threadpool(parse_speech, ctx, {**body, "response_format": "wav"}, allow_stream=False)
            ctx.metrics.request(ENDPOINT, plan.mode.value)
            ctx.check_rate(client)
            data, headers = await run_in_threadpool(generate, ctx, plan, client)
        except Exception as exc:  # noqa: BLE001 - the client gets the same message the HTTP API gives
            error = error_for(exc)
            ctx.metrics.error(ENDPOINT, "none", error.status)
            raise ValueError(error.message) from None
        details = {
            "take_id": headers.get("X-Take-Id"),
            "model": headers["X-Model"],
            "seed": int(headers["X-Seed"]),
            "duration_s": float(headers["X-Duration"]),
            "sample_rate": int(headers["X-Sample-Rate"]),
            "mode": plan.mode.value,
            "text": plan.text,
            "warnings": headers["X-Warnings"].split(" | ") if headers.get("X-Warnings") else [],
        }
        return [
            AudioContent(type="audio", data=base64.b64encode(data).decode("ascii"), mimeType="audio/wav"),
            TextContent(type="text", text=json.dumps(details)),
        ]

    @server.tool(description="Speak text as one of the nine built-in speakers, with an optional style instruction.")
    async def custom_voice(
        context: Context,  # injected by FastMCP, not a tool parameter
        text: Text,
        speaker: Annotated[
            str,
            Field(
                description="A built-in speaker: Vivian, Serena, Uncle_Fu, Dylan, Eric, Ryan, Aiden, Ono_Anna, Sohee."
            ),
        ] = "Ryan",
        instructions: Annotated[str, Field(description="How to speak (1.7B only), e.g. 'Whisper, slowly.'")] = "",
        language: Language = "auto",
        model_size: Size = "",
        seed: Seed = None,
        max_seconds: MaxSeconds = None,
    ) -> list[AudioContent | TextContent]:
        body = {"voice": speaker, "instructions": instructions, "language": language, "seed": seed}
        return await speak(
            {
                **body,
                "max_seconds": max_seconds,
                "model": _model(model_size),
                "task_type": "CustomVoice",
                "input": text,
            },
            context,
        )

    @server.tool(description="Speak text in a voice described in words (Voice Design, 1.7B).")
    async def design(
        context: Context,  # injected by FastMCP, not a tool parameter
        text: Text,
        description: Annotated[str, Field(description="The voice, in words: 'A calm old man with a deep voice.'")],
        language: Language = "auto",
        seed: Seed = None,
        max_seconds: MaxSeconds = None,
    ) -> list[AudioContent | TextContent]:
        body = {"instructions": description, "language": language, "seed": seed, "max_seconds": max_seconds}
        return await speak({**body, "task_type": "VoiceDesign", "input": text}, context)

    @server.tool(
        description="Speak text in a cloned voice: a library voice by name, or a reference clip "
        "(base64 WAV/MP3/FLAC, or a data URL) with its transcript."
    )
    async def clone(
        context: Context,  # injected by FastMCP, not a tool parameter
        text: Text,
        voice: Annotated[str, Field(description="A library voice's name or id (see the voices tool).")] = "",
        reference_audio: Annotated[
            str, Field(description="A reference clip as base64 or a data URL (instead of voice).")
        ] = "",
        reference_text: Annotated[str, Field(description="What the reference clip says (with reference_audio).")] = "",
        x_vector_only: Annotated[bool, Field(description="Clone the timbre only, without reference_text.")] = False,
        language: Language = "auto",
        model_size: Size = "",
        seed: Seed = None,
        max_seconds: MaxSeconds = None,
    ) -> list[AudioContent | TextContent]:
        body: dict[str, Any] = {"language": language, "seed": seed, "max_seconds": max_seconds, "input": text}
        body |= {"task_type": "Base", "model": _model(model_size)}
        if reference_audio:
            body |= {"ref_audio": reference_audio, "ref_text": reference_text, "x_vector_only_mode": x_vector_only}
        else:
            body["voice"] = voice
        return await speak(body, context)

    @server.tool(description="The built-in speakers: id, name, description and native language (JSON).")
    def speakers() -> str:
        rows = [
            {"id": s.id, "name": s.name, "description": s.description, "language": s.native_language}
            for s in builtin_speakers()
        ]
        return json.dumps(rows)

    @server.tool(description="The voice library's voices: name, id, language and description (JSON).")
    async def voices() -> str:
        rows = await run_in_threadpool(ctx.app.library.list)
        return json.dumps(
            [{"id": v.id, "name": v.name, "language": v.language, "description": v.description} for v in rows]
        )

    @server.tool(description="The languages every mode accepts (JSON).")
    def languages() -> str:
        return json.dumps(list(LANGUAGES))

    return server


def _model(size: str) -> str | None:
    size = (size or "").strip().lower()
    return f"qwen3-tts-{size}" if size else None


class _LazyMcp:
    """The streamable-HTTP endpoint; starts the SDK's session manager on the first request
    (Gradio owns the app's lifespan, so the manager cannot start there)."""

    def __init__(self, manager: StreamableHTTPSessionManager, app: Any):
        self.manager = manager
        self.app = app
        self.ready: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ready is None:
            self.ready = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._run())
        await self.ready.wait()
        await self.app(scope, receive, send)

    async def _run(self) -> None:
        assert self.ready is not None
        async with self.manager.run():
            self.ready.set()
            await asyncio.Event().wait()  # until the server's loop ends


def mcp_routes(ctx: ServingContext) -> list[BaseRoute]:
    """The MCP endpoint's routes, for the app's route list (ahead of Gradio's)."""
    from mcp.server.fastmcp.server import StreamableHTTPASGIApp

    server = build_mcp(ctx)
    server.streamable_http_app()  # creates the session manager
    endpoint = _LazyMcp(server.session_manager, StreamableHTTPASGIApp(server.session_manager))
    return [Route(path, endpoint=endpoint, methods=["GET", "POST", "DELETE"]) for path in PATHS]
