"""WebSocket ``/v1/audio/speech/stream``: text in as it is typed or heard, audio out per sentence.

vLLM-Omni's streaming-text protocol, so its ``streaming_speech_client.py`` (and
clients written for it) work unchanged:

Client -> server (JSON text frames)::

    {"type": "session.config", "voice": "Vivian", "task_type": "CustomVoice", ...}
    {"type": "input.text", "text": "Hello, how are "}
    {"type": "input.text", "text": "you? I am fine."}
    {"type": "input.done"}          # flush: speak what is left; the connection stays open
    {"type": "session.close"}       # or just close the socket

Server -> client::

    {"type": "audio.start", "utterance_index": 0, "sentence_index": 0, "sentence_text": "...",
     "format": "wav", "sample_rate": 24000}
    <binary frame(s): the sentence's audio>
    {"type": "audio.done", "utterance_index": 0, "sentence_index": 0, "total_bytes": N, "error": false}
    {"type": "session.done", "utterance_index": 0, "total_sentences": 2}
    {"type": "error", "message": "...", "param": "...", "code": "..."}

``session.config`` takes the fields of a ``/v1/audio/speech`` request (all but
``input``) plus ``stream_audio`` (raw 16-bit PCM frames; needs ``response_format``
``pcm``) and ``split_granularity``: ``sentence`` (the default: a sentence is spoken
as soon as the next one starts), ``clause`` (also at commas) or ``none`` (all the
text at ``input.done``). It is checked like a speech request the moment it arrives;
a bad first config gets an ``error`` and the socket is closed (code 1008). Each
sentence is an ordinary take, kept in the history, generated through the same
path as ``/v1/audio/speech``. Authentication is the /v1 routes' bearer key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from core import text as textlib
from core.serving.audit import current_client
from core.serving.context import ServingContext, client_key
from core.serving.metrics import current_endpoint
from studio.api.openai.errors import ApiError, BearerAuth, bad_request, error_for
from studio.api.openai.fields import SPEECH_FIELDS, unknown_field
from studio.api.openai.speech import generate, parse_speech

log = logging.getLogger("studio.api.openai")
PATH = "/v1/audio/speech/stream"
CONFIG_TIMEOUT_S = 10.0  # to send session.config after connecting
IDLE_TIMEOUT_S = 120.0  # between messages, once configured
FRAME_BYTES = 24_000 * 2 // 2  # binary frames of at most half a second of 24 kHz PCM
GRANULARITIES = ("sentence", "clause", "none")
CONFIG_FIELDS = frozenset((SPEECH_FIELDS - {"input", "stream", "stream_format", "variants"}) | {"type"}) | {
    "stream_audio",
    "split_granularity",
    "speaker",
    "instruct",
    "lang_code",
    "max_tokens",
}
_SENTENCE_END = re.compile(r"[.!?…。！？；]['\")\]」』]*\s*$")
_CLAUSE = re.compile(r"(?<=[,;:])\s+|(?<=[、，；：])")


class TextSplitter:
    """Cuts incoming text into the units to speak: a unit is complete once text follows it."""

    def __init__(self, granularity: str):
        self.granularity = granularity
        self.buffer = ""

    def feed(self, text: str) -> list[str]:
        self.buffer += text
        if self.granularity == "none":
            return []
        sentences = textlib.split_sentences(self.buffer)
        if not sentences:
            return []
        last = sentences[-1]
        # The last sentence is complete only when it ends in a stop and more (space) followed it.
        done = sentences if _SENTENCE_END.search(last) and self.buffer[-1:].isspace() else sentences[:-1]
        if not done:
            return []
        rest = self.buffer[self.buffer.rfind(done[-1]) + len(done[-1]) :]
        self.buffer = rest.lstrip()
        return [unit for sentence in done for unit in self._units(sentence)]

    def flush(self) -> list[str]:
        text, self.buffer = self.buffer, ""
        if self.granularity == "none":
            return [text.strip()] if text.strip() else []
        return [unit for sentence in textlib.split_sentences(text) for unit in self._units(sentence)]

    def _units(self, sentence: str) -> list[str]:
        units = _CLAUSE.split(sentence) if self.granularity == "clause" else [sentence]
        return [u.strip() for u in units if u.strip()]


class _Session:
    def __init__(self, ctx: ServingContext, socket: WebSocket, client: str):
        self.ctx = ctx
        self.socket = socket
        self.client = client
        self.config: dict[str, Any] | None = None
        self.stream_audio = False
        self.splitter = TextSplitter("sentence")
        self.utterance = 0
        self.sentence = 0

    async def error(self, error: ApiError | str) -> None:
        await self.socket.send_json(error_message(error))

    async def configure(self, message: dict[str, Any]) -> bool:
        """Checks and applies a session.config; False (after an error message) when refused."""
        fields = {k: v for k, v in message.items() if k != "type"}
        try:
            unknown_field(fields, CONFIG_FIELDS)
            granularity = fields.pop("split_granularity", None) or "sentence"
            if granularity not in GRANULARITIES:
                raise bad_request("split_granularity must be sentence, clause or none.", "split_granularity")
            stream_audio = fields.pop("stream_audio", None) or False
            if not isinstance(stream_audio, bool):
                raise bad_request("stream_audio must be true or false.", "stream_audio")
            if stream_audio and (fields.get("response_format") or "wav") != "pcm":
                raise bad_request("stream_audio sends raw PCM frames: set response_format to pcm.", "response_format")
            # Checked now, as a speech request would be (the text is a stand-in).
            await run_in_threadpool(parse_speech, self.ctx, {**fields, "input": "Check."}, allow_stream=False)
        except Exception as exc:  # noqa: BLE001 - told to the client in OpenAI's error shape
            await self.error(error_for(exc))
            return False
        self.config, self.stream_audio = fields, stream_audio
        self.splitter = TextSplitter(granularity)
        return True

    async def speak(self, units: list[str]) -> None:
        for unit in units:
            await self._speak_one(unit)
            self.sentence += 1

    async def _speak_one(self, text: str) -> None:
        assert self.config is not None
        fmt = (self.config.get("response_format") or "wav").lower()
        start = {
            "type": "audio.start",
            "utterance_index": self.utterance,
            "sentence_index": self.sentence,
            "sentence_text": text,
            "format": fmt,
            "sample_rate": self.config.get("sample_rate") or 24_000,
        }
        await self.socket.send_json(start)
        total, failed = 0, False
        try:
            self.ctx.lifecycle.admit()
            plan = await run_in_threadpool(parse_speech, self.ctx, {**self.config, "input": text}, allow_stream=False)
            self.ctx.metrics.request(PATH, plan.mode.value)
            self.ctx.check_rate(self.client)
            data, _ = await run_in_threadpool(generate, self.ctx, plan, self.client)
            step = FRAME_BYTES if self.stream_audio else len(data) or 1
            for offset in range(0, len(data), step):
                await self.socket.send_bytes(data[offset : offset + step])
            total = len(data)
        except WebSocketDisconnect:
            raise
        except Exception as exc:  # noqa: BLE001 - this sentence failed; the session goes on
            failed = True
            error = error_for(exc)
            self.ctx.metrics.error(PATH, "none", error.status)
            await self.error(
                ApiError(
                    error.status, f"Sentence {self.sentence}: {error.message}", error.type, error.param, error.code
                )
            )
        await self.socket.send_json(
            {
                "type": "audio.done",
                "utterance_index": self.utterance,
                "sentence_index": self.sentence,
                "total_bytes": total,
                "error": failed,
            }
        )

    async def done(self) -> None:
        await self.speak(self.splitter.flush())
        await self.socket.send_json(
            {"type": "session.done", "utterance_index": self.utterance, "total_sentences": self.sentence}
        )
        self.utterance += 1
        self.sentence = 0


def speech_stream_route(ctx: ServingContext, auth: BearerAuth, message_limit: int) -> WebSocketRoute:
    max_chars = ctx.app.settings.max_text_chars

    async def speech_stream(socket: WebSocket) -> None:
        await socket.accept()
        try:
            user = auth.user(socket)
        except ApiError as exc:
            await socket.send_json(error_message(exc))
            await socket.close(code=1008)
            return
        client = client_key(socket.client.host if socket.client else None, user)
        current_client.set(client)
        current_endpoint.set(PATH)
        session = _Session(ctx, socket, client)
        try:
            await _serve(session, message_limit, max_chars)
        except WebSocketDisconnect:
            log.info("event=api_ws_closed reason=client_disconnected")

    return WebSocketRoute(PATH, speech_stream)


async def _serve(session: _Session, message_limit: int, max_chars: int) -> None:
    socket = session.socket
    while True:
        timeout = CONFIG_TIMEOUT_S if session.config is None else IDLE_TIMEOUT_S
        try:
            raw = await asyncio.wait_for(socket.receive_text(), timeout)
        except asyncio.TimeoutError:
            await session.error("No session.config in time." if session.config is None else "Idle timeout.")
            await socket.close(code=1000)
            return
        except KeyError:  # a binary frame: this protocol is JSON text only
            raw = ""
        message = _parse(raw, message_limit)
        if isinstance(message, ApiError):
            await session.error(message)
            if session.config is None:
                await socket.close(code=1008)
                return
            continue
        kind = message.get("type")
        if kind == "session.config":
            if session.splitter.buffer.strip():
                await session.error("Send input.done before a new session.config: text is waiting to be spoken.")
            elif not await session.configure(message) and session.config is None:
                await socket.close(code=1008)
                return
        elif session.config is None:
            await session.error(f"The first message must be session.config, not {kind!r}.")
            await socket.close(code=1008)
            return
        elif kind == "input.text":
            text = message.get("text")
            if not isinstance(text, str):
                await session.error("input.text needs text: a string.")
            elif len(session.splitter.buffer) + len(text) > max_chars:
                await session.error(f"Over {max_chars:,} characters without a sentence end; send input.done.")
            else:
                await session.speak(session.splitter.feed(text))
        elif kind == "input.done":
            await session.done()
        elif kind == "session.close":
            await socket.close(code=1000)
            return
        else:
            await session.error(
                f"Unknown message type {kind!r}: use session.config, input.text, input.done or session.close."
            )


def error_message(error: ApiError | str) -> dict[str, Any]:
    """vLLM-Omni's ``{"type": "error", "message"}``, with the OpenAI error's param, code and type."""
    if isinstance(error, str):
        return {"type": "error", "message": error, "param": None, "code": None}
    body = error.body()["error"]
    return {
        "type": "error",
        "message": body["message"],
        "param": body["param"],
        "code": body["code"],
        "error_type": body["type"],
    }


def _parse(raw: str, limit: int) -> dict[str, Any] | ApiError:
    if not raw:
        return bad_request("Send JSON text messages (session.config, input.text, input.done).")
    if len(raw) > limit:
        return ApiError(413, f"The message is over {limit:,} bytes.", code="body_too_large")
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return bad_request("The message is not valid JSON.")
    if not isinstance(message, dict):
        return bad_request("Each message must be a JSON object with a type.")
    return message
