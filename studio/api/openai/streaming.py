"""``stream: true`` on /v1/audio/speech: audio sent while it is generated.

The engine's ``stream(live=True)`` yields live pieces of each chunk while it
generates, then the chunk's exact audio, then the whole take. A worker thread
runs it and hands pieces to the response over a queue; the first bytes go out
as soon as the first piece exists. ``stream_format: "audio"`` sends the raw
bytes (``pcm``: 16-bit little-endian mono at 24 kHz; ``wav``: the same after a
header whose length fields say "unknown", as streaming WAV encoders do);
``"sse"`` sends OpenAI's ``speech.audio.delta`` events (base64 audio) and one
``speech.audio.done`` event, with the take's id, seed and duration added.

What is streamed is what the UI's Live player plays: the chunks' pieces with
the take's pause between chunks, before the take's final normalisation. The
take kept in the history (when the stream ran to the end) is the usual one.
A client that disconnects stops the generation at its next piece: the
response task is cancelled, which tells the worker to close the engine's
generator (which stops the model's worker thread too). No take is kept then.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import json
import logging
import struct
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi.responses import Response, StreamingResponse

from core.audio.clip import TARGET_SAMPLE_RATE
from core.engine.live_decoding import LiveAudio
from core.engine.synthesis import ChunkAudio
from core.serving.context import ServingContext
from core.takes.service import TakeJob
from core.types import FRAMES_PER_SECOND, SynthesisResult
from studio.api.openai.errors import error_for
from studio.api.openai.speech import SpeechPlan, keep_take

log = logging.getLogger("studio.api.openai")
_END = object()


def wav_stream_header(sample_rate: int = TARGET_SAMPLE_RATE) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length (sizes set to the maximum)."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", unknown)
    )


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class _Pump:
    """Runs the engine's stream in a thread; the response reads its pieces from a queue."""

    def __init__(self, ctx: ServingContext, job: TakeJob, items: Any, loop: asyncio.AbstractEventLoop):
        self.ctx = ctx
        self.job = job
        self.items = items
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.stop = threading.Event()
        self.pause = np.zeros(int(ctx.app.synthesis.pause_s * TARGET_SAMPLE_RATE), dtype=np.float32)
        self.take_id: str | None = None
        context = contextvars.copy_context()  # the endpoint and client labels travel with it
        self.thread = threading.Thread(target=context.run, args=(self._run,), name="speech-stream", daemon=True)

    def _put(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _run(self) -> None:
        live_chunks: set[int] = set()
        try:
            with contextlib.closing(self.items):  # closing() stops the engine when we stop early
                for item in self.items:
                    if self.stop.is_set():
                        log.info("event=api_stream_stopped reason=client_disconnected")
                        return
                    if isinstance(item, LiveAudio):
                        if item.index > 0 and item.index not in live_chunks and item.offset_s == 0:
                            self._put(self.pause)
                        live_chunks.add(item.index)
                        self._put(item.audio.samples)
                    elif isinstance(item, ChunkAudio):
                        if item.index not in live_chunks:  # no live pieces (e.g. MPS): the chunk whole
                            if item.index > 0:
                                self._put(self.pause)
                            self._put(item.audio.samples)
                    elif isinstance(item, SynthesisResult):
                        self.take_id = keep_take(self.ctx, self.job, item)
                        self._put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the response, which reports it
            self._put(exc)
        finally:
            self._put(_END)


async def stream_response(
    ctx: ServingContext, plan: SpeechPlan, job: TakeJob, items: Any, headers: dict[str, str]
) -> Response:
    """The streaming response; an error before the first audio is an ordinary error response."""
    pump = _Pump(ctx, job, items, asyncio.get_running_loop())
    pump.thread.start()
    try:
        first = await pump.queue.get()
    except BaseException:
        pump.stop.set()
        raise
    if isinstance(first, BaseException):
        raise first
    if first is _END:
        raise RuntimeError("the engine produced no audio")
    sse = plan.stream_format == "sse"
    wav = plan.response_format == "wav"

    async def body() -> AsyncIterator[bytes]:
        item = first
        frames = 0.0
        header_sent = False
        try:
            while item is not _END:
                if isinstance(item, BaseException):
                    error = error_for(item)
                    log.warning("event=api_stream_failed status=%d reason=%s", error.status, error.message)
                    if sse:
                        yield _event({"type": "error", **error.body()})
                    return  # raw audio has no way to say more: the stream ends early
                if isinstance(item, SynthesisResult):
                    if sse:
                        yield _event(_done_event(plan, item, pump.take_id))
                else:
                    data = pcm16(item)
                    frames += len(item) / TARGET_SAMPLE_RATE * FRAMES_PER_SECOND
                    if wav and not header_sent:
                        data = wav_stream_header() + data
                        header_sent = True
                    yield (
                        _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
                        if sse
                        else data
                    )
                item = await pump.queue.get()
        finally:
            pump.stop.set()  # a disconnect cancels this generator: the worker stops at its next piece

    media_type = "text/event-stream" if sse else plan.media_type
    headers = {**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type=media_type, headers=headers)


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _done_event(plan: SpeechPlan, result: SynthesisResult, take_id: str | None) -> dict[str, Any]:
    frames = round(result.duration * FRAMES_PER_SECOND)
    return {
        "type": "speech.audio.done",
        # OpenAI counts tokens; here input = characters of text, output = codec frames.
        "usage": {"input_tokens": len(plan.text), "output_tokens": frames, "total_tokens": len(plan.text) + frames},
        "model": result.model,
        "seed": result.seed,
        "duration": round(result.duration, 3),
        "take_id": take_id,
        "warnings": result.warnings,
    }
