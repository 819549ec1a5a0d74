"""``stream: true`` on /v1/audio/speech: audio sent while it is generated.

The take is a job of the one take runner (``core/takes/jobs.py``), made with live
pieces; the response follows the job's pieces (live pieces of each chunk while it
generates, then the chunk's exact audio, then the whole take), and its first
bytes go out as soon as the first piece exists. The job's id is in ``X-Job-Id``. ``stream_format: "audio"`` sends the raw
bytes (``pcm``: 16-bit little-endian mono at 24 kHz; ``wav``: the same after a
header whose length fields say "unknown", as streaming WAV encoders do);
``"sse"`` sends OpenAI's ``speech.audio.delta`` events (base64 audio) and one
``speech.audio.done`` event, with the take's id, seed and duration added.

What is streamed is what the UI's Live player plays: the chunks' pieces with
the take's pause between chunks, before the take's final normalisation. The
take kept in the history (when the stream ran to the end) is the usual one.
A client that disconnects stops the job, as Stop does: the engine stops within
a frame (the device is free for the next request at once), and the chunks
finished by then are kept in History as a partial take that Resume finishes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi.responses import Response, StreamingResponse

from core.audio.clip import TARGET_SAMPLE_RATE
from core.engine.live_decoding import LiveAudio
from core.engine.synthesis import ChunkAudio
from core.errors import GenerationError, StudioError
from core.serving.context import ServingContext
from core.takes.job import Job, JobState
from core.types import FRAMES_PER_SECOND, SynthesisResult
from studio.api.openai.errors import error_for
from studio.api.openai.speech import POLL_S, SpeechPlan

log = logging.getLogger("studio.api.openai")


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


async def _audio(job: Job, pause: np.ndarray) -> AsyncIterator[np.ndarray | SynthesisResult]:
    """The job's audio as the Live player plays it (pauses between chunks), then its result;
    its error when it failed or stopped."""
    live_chunks: set[int] = set()
    seen = 0
    while True:
        finished = job.finished  # read before the pieces: a finished job publishes nothing more
        pieces = job.pieces[seen:]
        seen += len(pieces)
        for item in pieces:
            if isinstance(item, LiveAudio):
                if item.index > 0 and item.index not in live_chunks and item.offset_s == 0:
                    yield pause
                live_chunks.add(item.index)
                yield item.audio.samples
            elif isinstance(item, ChunkAudio) and item.index not in live_chunks:
                if item.index > 0:  # no live pieces (e.g. MPS): the chunk whole
                    yield pause
                yield item.audio.samples
        if finished:
            break
        if not pieces:
            await asyncio.sleep(POLL_S)
    if job.state is not JobState.DONE or job.result is None:
        raise job.error or GenerationError("The take was not made.")
    yield job.result


async def stream_response(ctx: ServingContext, plan: SpeechPlan, job: Job, headers: dict[str, str]) -> Response:
    """The streaming response; an error before the first audio is an ordinary error response."""
    pause = np.zeros(int(ctx.app.synthesis.pause_s * TARGET_SAMPLE_RATE), dtype=np.float32)
    items = _audio(job, pause)
    try:
        first = await items.__anext__()
    except BaseException:
        ctx.jobs.stop(job.id)
        raise
    sse = plan.stream_format == "sse"
    wav = plan.response_format == "wav"

    async def body() -> AsyncIterator[bytes]:
        item: np.ndarray | SynthesisResult | None = first
        header_sent = False
        try:
            while item is not None:
                if isinstance(item, SynthesisResult):
                    if sse:
                        yield _event(_done_event(plan, item, job.kept[0].take.id if job.kept else None))
                else:
                    data = pcm16(item)
                    if wav and not header_sent:
                        data = wav_stream_header() + data
                        header_sent = True
                    yield (
                        _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
                        if sse
                        else data
                    )
                item = await anext(items, None)
        except StudioError as exc:
            error = error_for(exc)
            log.warning("event=api_stream_failed status=%d reason=%s", error.status, error.message)
            if sse:
                yield _event({"type": "error", **error.body()})
            # raw audio has no way to say more: the stream ends early
        finally:
            if not job.finished:  # the client went away: stop the job (its finished chunks are kept)
                ctx.jobs.stop(job.id)
                log.info("event=api_stream_stopped reason=client_disconnected job=%s", job.id)

    media_type = "text/event-stream" if sse else plan.media_type
    headers = {**headers, "X-Job-Id": job.id, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
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
