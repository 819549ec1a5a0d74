"""POST /v1/audio/speech: OpenAI's request, plus the vLLM-Omni dialect for Qwen3-TTS.

``model`` is an OpenAI alias (``tts-1`` = 0.6B, ``tts-1-hd`` / ``gpt-4o-mini-tts*`` =
1.7B), ``qwen3-tts`` (the preferred size), ``qwen3-tts-0.6b`` / ``-1.7b``, a catalog
key (``1.7B-CustomVoice``) or a Hugging Face id (``Qwen/Qwen3-TTS-12Hz-1.7B-Base``);
in demo mode the real ids and keys resolve to their demo mirror, so client code
written for a real server runs unchanged against a demo studio.

``task_type`` (vLLM-Omni) picks the mode: ``CustomVoice`` (``voice`` = a built-in
speaker, ``instructions`` = style), ``VoiceDesign`` (``instructions`` = the voice
description) or ``Base`` (clone ``ref_audio`` — a base64 data URL, with ``ref_text``
or ``x_vector_only_mode`` — or a library voice named in ``voice``). Without it the
mode follows from the model, then from ``ref_audio``, then from the voice.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from core import text as textlib
from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.io import encode, load_audio
from core.audio.reference import prepare_reference
from core.engine.catalog import REAL_CHECKPOINTS, Checkpoint, real_checkpoint
from core.engine.speakers import Speaker, find_speaker, speakers
from core.errors import AudioError, GenerationError, InvalidInput, VoiceNotFound
from core.serving.context import ServingContext
from core.storage.library import Voice
from core.takes.job import Job, JobState
from core.takes.requests import Ask, TakeJob, take_job
from core.takes.values import Options, sampling_from_values
from core.types import (
    Mode,
    Sampling,
    SynthesisResult,
    normalize_language,
)
from studio.api.openai.errors import ApiError, bad_request
from studio.api.openai.fields import speech_fields

log = logging.getLogger("studio.api.openai")

# response_format -> (core encoder format, Content-Type).
RESPONSE_FORMATS: dict[str, tuple[str, str]] = {
    "mp3": ("mp3", "audio/mpeg"),
    "opus": ("ogg", "audio/ogg"),  # Ogg Opus (Ogg Vorbis where libsndfile has no Opus)
    "wav": ("wav", "audio/wav"),
    "flac": ("flac", "audio/flac"),
    "pcm": ("pcm", "audio/pcm"),  # raw 16-bit little-endian mono at 24 kHz
    "aac": ("aac", "audio/aac"),  # AAC in ADTS frames, through ffmpeg
}
DEFAULT_FORMAT = "wav"  # vLLM-Omni's default (its clients save .wav); OpenAI's is mp3: send it to get mp3
STREAM_FORMATS = ("audio", "sse")
STREAMABLE = ("pcm", "wav")
# Model aliases -> size (None: the preferred size); the mode follows from task_type or the voice.
MODEL_ALIASES: dict[str, str | None] = {
    "tts-1": "0.6B",
    "tts-1-hd": "1.7B",
    "gpt-4o-mini-tts": "1.7B",
    "qwen3-tts": None,
    "qwen3-tts-0.6b": "0.6B",
    "qwen3-tts-1.7b": "1.7B",
}
_ALIAS_FAMILIES = (("gpt-4o-mini-tts-", "1.7B"),)  # dated snapshots map like their family
TASK_TYPES = {"customvoice": Mode.CUSTOM_VOICE, "voicedesign": Mode.VOICE_DESIGN, "base": Mode.BASE}
TASK_NAMES = {Mode.CUSTOM_VOICE: "CustomVoice", Mode.VOICE_DESIGN: "VoiceDesign", Mode.BASE: "Base"}
SAMPLING_FIELDS = ("seed", "temperature", "top_k", "top_p", "repetition_penalty", "max_seconds")
MAX_INSTRUCTIONS_CHARS = 1000
MAX_NEW_TOKENS = 4096
POLL_S = 0.02  # how often a response looks at its job (new pieces, finished, client gone)
WORD_TIMESTAMPS_MAX_BYTES = 4096  # vLLM-Omni's bound on the X-Word-Timestamps header
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[^;,]*)*);base64,(?P<data>.*)$", re.S)


@dataclass(frozen=True)
class SpeechPlan:
    """A validated /v1/audio/speech request, ready to generate."""

    mode: Mode
    text: str
    response_format: str
    checkpoint: Checkpoint
    language: str | None  # None: the voice's own (library) or auto
    sampling: Sampling
    speaker: Speaker | None = None
    voice: Voice | None = None
    instructions: str | None = None
    reference: Audio | None = None
    ref_text: str | None = None
    x_vector_only: bool = False
    stream: bool = False
    stream_format: str = "audio"
    sample_rate: int | None = None  # resample the answer to this rate (None: the model's 24 kHz)
    word_timestamps: bool = False  # vLLM-Omni's: time the take's words (the studio's Whisper)

    @property
    def media_type(self) -> str:
        return RESPONSE_FORMATS[self.response_format][1]


def model_ids(ctx: ServingContext) -> list[str]:
    keys = [c.key for c in ctx.app.catalog]
    repos = [c.repo_id for c in REAL_CHECKPOINTS]
    return [*MODEL_ALIASES, *keys, *repos]


def _parse_model(ctx: ServingContext, model: Any) -> tuple[str | None, Checkpoint | None]:
    """(size, None) for an alias — its mode follows from the request — or (None, checkpoint).

    No model (vLLM-Omni's clients leave it out) is (None, None): the checkpoint for the
    request's task and voice, at the preferred size.
    """
    if model is None:
        return None, None
    if not isinstance(model, str) or not model.strip():
        raise bad_request(
            "model must be a model id: " + ", ".join(MODEL_ALIASES) + ", a model id, or leave it out.", "model"
        )
    name = model.strip().lower()
    if name in MODEL_ALIASES:
        return MODEL_ALIASES[name], None
    family = next((s for p, s in _ALIAS_FAMILIES if name.startswith(p)), None)
    if family:
        return family, None
    # A Hugging Face id names a real checkpoint; in demo mode it means its demo mirror.
    real = real_checkpoint(name)  # Qwen's id, or mlx-community's conversion of it
    try:
        checkpoint = ctx.app.catalog.get(real.key if real else name)
    except InvalidInput:
        checkpoint = None
    # The catalog also knows the transcription model (Mode.ASR), which cannot speak.
    if checkpoint is None or checkpoint.mode == Mode.ASR:
        raise bad_request(
            f"The model '{model}' does not exist. Choose one of: " + ", ".join(model_ids(ctx)) + ".",
            "model",
            "model_not_found",
        ) from None
    return None, checkpoint


def _parse_task(value: Any) -> Mode | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower().replace("_", "") not in TASK_TYPES:
        raise bad_request(
            f"task_type '{value}' is not supported; choose CustomVoice, VoiceDesign or Base.", "task_type"
        )
    return TASK_TYPES[value.strip().lower().replace("_", "")]


def _resolve_voice(ctx: ServingContext, voice: Any, *, required: bool = True) -> Speaker | Voice | None:
    if isinstance(voice, dict):  # OpenAI's custom-voice form: {"id": "..."}
        voice = voice.get("id")
    if voice is None and not required:
        return None
    if not isinstance(voice, str) or not voice.strip():
        raise bad_request(
            "You must provide a voice: a built-in speaker such as 'Ryan' or a library "
            "voice's name or id (GET /v1/audio/voices lists them).",
            "voice",
        )
    try:
        return find_speaker(voice, ctx.app.catalog.trained_speakers())  # built-in, or a voice trained here
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


def _optional_bool(body: dict, name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{name} must be true or false.", name)
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(f"{name} must be a number.", name)
    return value


def _sampling(body: dict) -> Sampling:
    values = {}
    for name in SAMPLING_FIELDS:
        if body.get(name) is None:
            continue
        value = _number(body[name], name)
        try:
            sampling_from_values(**{name: value})
        except InvalidInput as exc:
            raise bad_request(str(exc), name) from None
        values[name] = value
    sampling = sampling_from_values(**values)
    tokens = body.get("max_new_tokens")
    if tokens is not None:
        tokens = _number(tokens, "max_new_tokens")
        if int(tokens) != tokens or not 1 <= tokens <= MAX_NEW_TOKENS:
            raise bad_request(
                f"max_new_tokens is {tokens}; it must be a whole number from 1 to {MAX_NEW_TOKENS} "
                "(12.5 codec frames per second of audio).",
                "max_new_tokens",
            )
        cap = int(tokens) if sampling.max_new_tokens is None else min(int(tokens), sampling.max_new_tokens)
        sampling = Sampling(**{**sampling.__dict__, "max_new_tokens": cap})
    return sampling


def _response_format(body: dict) -> str:
    fmt = body.get("response_format")
    fmt = DEFAULT_FORMAT if fmt is None else fmt
    if not isinstance(fmt, str) or fmt.strip().lower() not in RESPONSE_FORMATS:
        raise bad_request(
            f"response_format '{fmt}' is not supported; choose one of: " + ", ".join(RESPONSE_FORMATS) + ".",
            "response_format",
        )
    return fmt.strip().lower()


def _stream(body: dict, fmt: str, explicit_format: bool) -> tuple[bool, str]:
    stream = _optional_bool(body, "stream")
    stream_format = _optional_str(body, "stream_format")
    if stream_format is not None and stream_format.strip().lower() not in STREAM_FORMATS:
        raise bad_request(f"stream_format '{stream_format}' is not supported; use audio or sse.", "stream_format")
    chosen = (stream_format or "audio").strip().lower()
    # OpenAI's own clients stream by asking for stream_format "sse" without a stream flag.
    if chosen == "sse":
        stream = True
    if stream and fmt not in STREAMABLE:
        if explicit_format:
            raise bad_request(
                f"Streaming sends raw audio as it is made: use response_format pcm or wav, not {fmt}.",
                "response_format",
            )
    return stream, chosen


def _word_timestamps(body: dict, stream: bool, allow_stream: bool) -> bool:
    """vLLM-Omni's word_timestamps: only a single, non-streamed answer carries them (a header)."""
    wanted = _optional_bool(body, "word_timestamps")
    if not wanted:
        return False
    if stream:
        raise bad_request(
            "word_timestamps is not supported with streaming (stream or stream_format): the words are "
            "timed once the whole take exists. Send stream false to get them in X-Word-Timestamps.",
            "word_timestamps",
            "unsupported_field",
        )
    variants = body.get("variants")
    if not allow_stream or (isinstance(variants, int) and not isinstance(variants, bool) and variants > 1):
        raise bad_request(
            "word_timestamps is only supported on a single POST /v1/audio/speech request (not in a "
            "batch, variants or the WebSocket): send that request without stream.",
            "word_timestamps",
            "unsupported_field",
        )
    return True


def _sample_rate(body: dict, stream: bool) -> int | None:
    """vLLM-Omni's ``sample_rate``: the answer resampled to it (8-48 kHz); None for 24 kHz."""
    rate = body.get("sample_rate")
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int) or not 8_000 <= rate <= 48_000:
        raise bad_request(f"sample_rate is {rate!r}; send a whole number of Hz from 8000 to 48000.", "sample_rate")
    if rate == TARGET_SAMPLE_RATE:
        return None
    if stream:
        raise bad_request("Streamed audio is 24000 Hz; leave sample_rate out (or 24000) when streaming.", "sample_rate")
    return rate


def _non_streaming_mode(body: dict, task: Mode | None, has_ref: bool) -> None:
    """vLLM-Omni's ``non_streaming_mode`` (how Qwen3-TTS builds its prompt): the studio uses
    the model's own default — false for cloning, true otherwise — and refuses the other."""
    value = body.get("non_streaming_mode")
    if value is None:
        return
    if not isinstance(value, bool):
        raise bad_request("non_streaming_mode must be true or false.", "non_streaming_mode")
    clone = task is Mode.BASE or has_ref
    if value == clone:
        raise bad_request(
            f"non_streaming_mode {str(value).lower()} is not supported: the studio builds the prompt as "
            f"Qwen3-TTS does by default ({str(not clone).lower()} for this request); leave it out.",
            "non_streaming_mode",
        )


def decode_ref_audio(value: Any) -> bytes:
    """The bytes of a ``ref_audio`` data URL; URLs and paths are refused, never fetched or read."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request("ref_audio must be a base64 data URL such as 'data:audio/wav;base64,UklGR...'.", "ref_audio")
    text = value.strip()
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://", "file:", "ftp://")) or text.startswith(("/", "~", "./")):
        raise bad_request(
            "ref_audio must be the audio itself, as a base64 data URL ('data:audio/wav;base64,...'): "
            "this studio never fetches URLs or reads files on the server for a request.",
            "ref_audio",
            "ref_audio_url_not_allowed",
        )
    match = _DATA_URL.match(text)
    payload = match.group("data") if match else text  # a bare base64 string is accepted too
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            "ref_audio is not valid base64; send 'data:audio/wav;base64,' followed by the file's base64.", "ref_audio"
        ) from None
    if not data:
        raise bad_request("ref_audio is empty.", "ref_audio")
    return data


def _reference(body: dict) -> Audio:
    data = decode_ref_audio(body.get("ref_audio"))
    try:
        return prepare_reference(data).audio  # the clone tab's own pipeline: trim silence, normalise
    except (AudioError, InvalidInput) as exc:
        raise bad_request(f"ref_audio could not be used: {exc}", "ref_audio") from None


def parse_speech(ctx: ServingContext, body: Any, *, allow_stream: bool = True) -> SpeechPlan:
    """Checks a request body without generating; raises ApiError (400).

    Blocking (it may decode ``ref_audio`` and read the library): call it in a worker thread.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    body = speech_fields(body)  # mlx-audio's names folded in; unknown fields refused
    size, checkpoint = _parse_model(ctx, body.get("model"))
    task = _parse_task(body.get("task_type"))
    raw_input = body.get("input")
    if not isinstance(raw_input, str):
        raise bad_request("You must provide input: the text to speak, as a string.", "input")
    try:
        text = textlib.validate_text(raw_input, max_chars=ctx.app.settings.max_text_chars)
    except InvalidInput as exc:
        raise bad_request(str(exc), "input") from None
    fmt = _response_format(body)
    speed = body.get("speed")
    if speed is not None and _number(speed, "speed") != 1:
        raise bad_request(
            "speed is not supported: Qwen3-TTS speaks at its own pace. Send 1.0 or leave it "
            "out; for built-in speakers, ask for a slower or faster delivery in instructions.",
            "speed",
        )
    stream, stream_format = _stream(body, fmt, body.get("response_format") is not None)
    if stream and not allow_stream:
        raise bad_request("Batch items cannot stream; leave stream out.", "stream")
    if stream and fmt not in STREAMABLE:
        fmt = "pcm"  # OpenAI's default mp3 cannot stream; raw PCM is what streaming clients play
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
    ref_text = (_optional_str(body, "ref_text") or "").strip() or None
    x_vector_only = _optional_bool(body, "x_vector_only_mode")
    has_ref = body.get("ref_audio") is not None
    common: dict[str, Any] = dict(text=text, response_format=fmt, language=language, sampling=sampling, stream=stream)
    common["stream_format"] = stream_format
    common["sample_rate"] = _sample_rate(body, stream)
    common["word_timestamps"] = _word_timestamps(body, stream, allow_stream)

    explicit_task = task is not None
    if task is None:
        task = Mode(checkpoint.mode) if checkpoint else Mode.BASE if has_ref else None
    _non_streaming_mode(body, task, has_ref)
    if task is Mode.VOICE_DESIGN:
        if not instructions:
            if not explicit_task and checkpoint is not None:
                raise bad_request(
                    f"{checkpoint.key} designs voices from a description and cannot speak a named voice; "
                    "send task_type 'VoiceDesign' with the description in instructions, or use tts-1, "
                    "tts-1-hd or a CustomVoice / Base model.",
                    "model",
                )
            raise bad_request("VoiceDesign needs instructions: a description of the voice to design.", "instructions")
        if has_ref:
            raise bad_request("ref_audio is for task_type Base (cloning), not VoiceDesign.", "ref_audio")
        design = _checkpoint_for(ctx, size, checkpoint, Mode.VOICE_DESIGN, "a voice description")
        return SpeechPlan(Mode.VOICE_DESIGN, checkpoint=design, instructions=instructions, **common)
    if task is Mode.BASE and has_ref:
        if not ref_text and not x_vector_only:
            raise bad_request(
                "ref_text is needed with ref_audio: the words spoken in the clip. Without one, set "
                "x_vector_only_mode to true (the voice's timbre only, lower fidelity).",
                "ref_text",
            )
        reference = _reference(body)
        base = _checkpoint_for(ctx, size, checkpoint, Mode.BASE, "a reference clip")
        return SpeechPlan(
            Mode.BASE,
            checkpoint=base,
            reference=reference,
            ref_text=None if x_vector_only else ref_text,
            x_vector_only=x_vector_only,
            **common,
        )
    if has_ref:
        raise bad_request("ref_audio is for task_type Base (cloning); leave it out for CustomVoice.", "ref_audio")
    voice = _resolve_voice(ctx, body.get("voice"))
    wants = Mode.CUSTOM_VOICE if isinstance(voice, Speaker) else Mode.BASE
    if task is not None and task is not wants:
        if task is Mode.CUSTOM_VOICE:
            raise bad_request(
                f"'{voice.name}' is a library voice, cloned with the Base model; send task_type Base "  # type: ignore[union-attr]
                "(or leave task_type out). CustomVoice speaks the built-in speakers.",
                "voice",
            )
        if checkpoint is None:
            raise bad_request(
                f"task_type Base clones a library voice or ref_audio; '{voice.name}' is a built-in "  # type: ignore[union-attr]
                "speaker. Send ref_audio (a base64 data URL) or a library voice, or use task_type CustomVoice.",
                "voice",
            )
    kind = "a built-in speaker" if wants is Mode.CUSTOM_VOICE else "a library voice"
    trained = ctx.app.catalog.speaker_checkpoint(voice.id) if isinstance(voice, Speaker) else None
    chosen = trained or _checkpoint_for(ctx, size, checkpoint, wants, kind)  # a trained voice has its own
    if isinstance(voice, Speaker):
        return SpeechPlan(Mode.CUSTOM_VOICE, checkpoint=chosen, speaker=voice, instructions=instructions, **common)
    assert isinstance(voice, Voice)
    return SpeechPlan(Mode.BASE, checkpoint=chosen, voice=voice, **common)


def _checkpoint_for(
    ctx: ServingContext, size: str | None, checkpoint: Checkpoint | None, wants: Mode, kind: str
) -> Checkpoint:
    catalog = ctx.app.catalog
    if checkpoint is None:
        try:
            return catalog.resolve(wants, size, ctx.app.settings.preferred_size)
        except InvalidInput as exc:
            raise bad_request(str(exc), "model") from None
    if checkpoint.mode == wants:
        return checkpoint
    right = catalog.resolve(wants, None if wants is Mode.VOICE_DESIGN else checkpoint.size)
    raise bad_request(
        f"{checkpoint.key} cannot speak {kind}; use {right.key} (or tts-1 / tts-1-hd / qwen3-tts, which "
        "pick the right model for the request).",
        "model",
    )


# --------------------------------------------------------------------------- generating


def build_job(ctx: ServingContext, plan: SpeechPlan) -> TakeJob:
    """The take for a plan, through the request factory (blocking: a library voice may encode its prompt)."""
    keep_format = RESPONSE_FORMATS[plan.response_format][0]
    keep_format = "wav" if keep_format in ("pcm", "aac") else keep_format  # the history keeps a playable file
    design = plan.mode is Mode.VOICE_DESIGN
    ask = Ask(
        plan.mode,
        plan.text,
        plan.language,  # None: a library voice's own language, else auto
        plan.checkpoint.size,
        description=plan.instructions if design else None,
        speaker=plan.speaker.name if plan.speaker else None,
        instruct=None if design else plan.instructions,
        voice=plan.voice.id if plan.voice else None,
        reference=plan.reference,
        reference_text=plan.ref_text,
        x_vector_only=plan.x_vector_only,
        options=Options(plan.sampling, fmt=keep_format),
    )
    return take_job(ask, ctx.app.library, ctx.app.synthesis)


def encode_aac(audio: Audio) -> bytes:
    """AAC in ADTS frames (what OpenAI's ``aac`` returns), through ffmpeg."""
    from pydub import AudioSegment  # only when asked for: pydub warns at import without ffmpeg

    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    segment = AudioSegment(pcm, frame_rate=audio.sample_rate, sample_width=2, channels=1)
    buffer = io.BytesIO()
    try:
        segment.export(buffer, format="adts", codec="aac", bitrate="128k")
    except (OSError, Exception) as exc:  # noqa: BLE001 - pydub raises plain Exceptions for ffmpeg failures
        raise AudioError(
            f"Could not encode AAC ({type(exc).__name__}); AAC needs ffmpeg with its aac encoder."
        ) from exc
    return buffer.getvalue()


def encode_for(audio: Audio, response_format: str) -> bytes:
    encoder_format = RESPONSE_FORMATS[response_format][0]
    try:
        return encode_aac(audio) if encoder_format == "aac" else encode(audio, encoder_format)
    except AudioError as exc:  # e.g. no ffmpeg for MP3: the server's problem, not the request's
        raise ApiError(500, str(exc), "server_error", code="encoding_failed") from exc


def result_headers(result: SynthesisResult, take_id: str | None) -> dict[str, str]:
    headers = {
        "X-Model": result.model,
        "X-Seed": str(result.seed),
        "X-Duration": f"{result.audio.duration:.3f}",
        "X-Sample-Rate": str(result.audio.sample_rate),
    }
    if take_id:
        headers["X-Take-Id"] = take_id
    if result.warnings:
        headers["X-Warnings"] = " | ".join(result.warnings).encode("ascii", "replace").decode("ascii")
    return headers


async def until_finished(request: Any, ctx: ServingContext, jobs: list[Job]) -> None:
    """Waits for ``jobs``; a client that goes away (or cancels) stops them, as Stop does."""
    try:
        while not all(job.finished for job in jobs):
            if await request.is_disconnected():
                raise asyncio.CancelledError
            await asyncio.sleep(POLL_S)
    except asyncio.CancelledError:
        for job in jobs:
            ctx.jobs.stop(job.id)
        log.info("event=api_take_stopped reason=client_disconnected jobs=%s", ",".join(j.id for j in jobs))
        raise


def generate(ctx: ServingContext, plan: SpeechPlan, client: str | None = None) -> tuple[bytes, dict[str, str]]:
    """Blocking (the WebSocket's sentences, MCP tools): the take as a job of the one take
    runner, listed in Running & recent and stoppable like any other, then its answer."""
    job = ctx.jobs.start_whole([build_job(ctx, plan)], client=client, owner=client or "", tab="api")[0]
    job.wait()
    return respond(ctx, plan, job)


def word_timestamp_headers(ctx: ServingContext, plan: SpeechPlan, audio: Audio) -> dict[str, str]:
    """vLLM-Omni's answer to word_timestamps: ``X-Word-Timestamps``, a JSON list of
    ``{word, start_ms, end_ms}`` (ASCII-escaped, so any header parser reads it), or
    ``X-Word-Timestamps-Omitted`` when that is over 4 KB (headers are not for long texts).
    The studio times the take's words with its own Whisper (the model manager's ASR)."""
    timings = ctx.app.transcriber.word_timings(audio, language=plan.language)
    words = [{"word": w.word, "start_ms": round(w.start * 1000), "end_ms": round(w.end * 1000)} for w in timings.words]
    value = json.dumps(words, ensure_ascii=True, separators=(",", ":"))
    headers = {"X-Word-Timestamps-Model": timings.model}
    if timings.demo:  # labelled like the rest of the studio's demo output
        headers["X-Word-Timestamps-Demo"] = "random-weight demo Whisper: the words are noise"
    if len(value) > WORD_TIMESTAMPS_MAX_BYTES:
        headers["X-Word-Timestamps-Omitted"] = f"{len(words)} words, {len(value)} bytes > {WORD_TIMESTAMPS_MAX_BYTES}"
    else:
        headers["X-Word-Timestamps"] = value
    return headers


def respond(ctx: ServingContext, plan: SpeechPlan, job: Job) -> tuple[bytes, dict[str, str]]:
    """A finished job's take, encoded for the response: (bytes, headers); its error when it failed."""
    result = job.result
    if job.state is not JobState.DONE or result is None:
        raise job.error or GenerationError("The take was not made.")
    if result.audio.sample_rate != TARGET_SAMPLE_RATE:  # the engine always returns 24 kHz; pcm promises it
        raise GenerationError(f"The model returned {result.audio.sample_rate} Hz audio, not {TARGET_SAMPLE_RATE} Hz.")
    take_id = job.kept[0].take.id if job.kept else None
    data = None
    if job.kept and RESPONSE_FORMATS[plan.response_format][0] == job.kept[0].take.format:
        try:
            data = job.kept[0].take.audio_path.read_bytes()  # the history encoded it already
        except OSError:
            data = None
    if plan.sample_rate:  # vLLM-Omni's sample_rate: the kept take stays 24 kHz
        data = encode_for(
            load_audio((result.audio.sample_rate, result.audio.samples), target_sr=plan.sample_rate),
            plan.response_format,
        )
    elif data is None:
        data = encode_for(result.audio, plan.response_format)
    log.info(
        "event=api_speech mode=%s model=%s format=%s chars=%d audio_s=%.2f client=%s",
        plan.mode,
        result.model,
        plan.response_format,
        len(plan.text),
        result.audio.duration,
        job.client or "local",
    )
    headers = {**result_headers(result, take_id), "X-Job-Id": job.id}
    if plan.sample_rate:
        headers["X-Sample-Rate"] = str(plan.sample_rate)
    if plan.word_timestamps:
        headers.update(word_timestamp_headers(ctx, plan, result.audio))
    return data, headers
