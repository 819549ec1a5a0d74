"""GET / POST / DELETE /v1/audio/voices: the built-in speakers and the voice library.

The shapes are vLLM-Omni's: ``GET`` answers ``{"voices": [names], "uploaded_voices":
[{name, consent, created_at, ...}], "voice_details": [...]}`` — the names a client
sends back as ``voice``, the library voices as vLLM-Omni describes uploads, and the
studio's richer rows (id, type, description, language) under their own key.

An upload (``multipart/form-data``: ``audio_sample``, ``name``, ``consent``,
optional ``ref_text``, ``language``, ``description`` — or vLLM-Omni's
``speaker_description``) goes through the clone
tab's own pipeline — decode, mono 24 kHz, trim silence, normalise — and the
library's own checks (name, length, silence, field limits), so the API accepts
exactly what the UI accepts. ``consent`` is required here: an API upload has
no dialog that asks. It answers vLLM-Omni's ``{"success": true, "voice": {...}}``
with the studio's row (``id``, ``type``...) in the same ``voice`` object.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from core.audio.reference import ReferenceOptions, prepare_reference
from core.engine.speakers import find_speaker, speakers
from core.errors import AudioError, InvalidInput, LibraryError, VoiceNotFound
from core.serving.context import ServingContext
from core.storage.library import Voice
from core.types import normalize_language
from studio.api.openai.errors import ApiError, bad_request
from studio.api.openai.fields import unknown_field

# Which form field a library refusal is about, from the words of its message.
_FIELD_WORDS = (("transcript", "ref_text"), ("consent", "consent"), ("description", "description"), ("name", "name"))
UPLOAD_FIELDS = ("audio_sample", "name", "consent", "ref_text", "language", "description", "speaker_description")


def voice_row(v: Voice) -> dict[str, Any]:
    description = v.description or v.notes or f"Cloned voice ({v.reference_seconds:.0f} s reference)"
    return {
        "id": v.id,
        "name": v.name,
        "type": "library",
        "description": description,
        "language": v.language.capitalize(),
        "has_transcript": bool(v.transcript),
        "reference_seconds": round(v.reference_seconds, 2),
    }


def uploaded_voice(v: Voice) -> dict[str, Any]:
    """A library voice as vLLM-Omni describes an uploaded one, plus the studio's row."""
    created = datetime.fromisoformat(v.created_at.replace("Z", "+00:00"))
    row: dict[str, Any] = {
        "name": v.name,
        "consent": v.consent,
        "created_at": int(created.timestamp()),
        "mime_type": "audio/wav",  # the library keeps every reference as 24 kHz WAV
    }
    if v.transcript:
        row["ref_text"] = v.transcript
    if v.description:
        row["speaker_description"] = v.description
    return {**row, **voice_row(v)}


def voices_payload(ctx: ServingContext) -> dict[str, Any]:
    library = ctx.app.library.list()
    rows = [
        {"id": s.id, "name": s.name, "type": "builtin", "description": s.description, "language": s.native_language}
        for s in speakers()
    ]
    rows += [
        {"id": s.id, "name": s.name, "type": "trained", "description": s.description, "language": s.native_language}
        for s in ctx.app.catalog.trained_speakers()
    ]
    rows += [voice_row(v) for v in library]
    return {
        "voices": [row["name"] for row in rows],
        "uploaded_voices": [uploaded_voice(v) for v in library],
        "voice_details": rows,
    }


def _text_field(form: Any, name: str, *, required: bool = False, what: str = "") -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise bad_request(f"{name} must be a text field, not a file.", name)
    value = (value or "").strip()
    if required and not value:
        raise bad_request(f"You must provide {name}: {what}.", name)
    return value or None


async def read_upload(request: Request, limit_mb: int) -> tuple[dict[str, Any], bytes, str | None]:
    """The form's fields, the audio file's bytes and its name (checked before anything is decoded)."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise bad_request(
            "Upload a voice as multipart/form-data with the fields audio_sample (the file), name and consent."
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit_mb * 1024 * 1024 + 65_536:
        raise ApiError(413, f"The upload is over {limit_mb} MB.", param="audio_sample", code="body_too_large")
    try:
        form = await request.form(max_files=1, max_fields=len(UPLOAD_FIELDS) + 4)
    except Exception as exc:  # noqa: BLE001 - a malformed multipart body
        raise bad_request(f"We could not read the form ({exc}).") from None
    unknown_field(dict.fromkeys(form.keys()), frozenset(UPLOAD_FIELDS))  # the speech route's rule
    upload = form.get("audio_sample")
    if not isinstance(upload, UploadFile):
        raise bad_request("You must provide audio_sample: the reference clip, as a file.", "audio_sample")
    data = await upload.read(limit_mb * 1024 * 1024 + 1)
    if len(data) > limit_mb * 1024 * 1024:
        raise ApiError(413, f"audio_sample is over {limit_mb} MB.", param="audio_sample", code="body_too_large")
    if not data:
        raise bad_request("audio_sample is empty.", "audio_sample")
    fields = {
        "name": _text_field(form, "name", required=True, what="the voice's name in the library"),
        "consent": _text_field(
            form, "consent", required=True, what="a note that the speaker agreed to this voice being cloned"
        ),
        "ref_text": _text_field(form, "ref_text"),
        "language": _text_field(form, "language"),
        "description": _text_field(form, "description") or _text_field(form, "speaker_description"),
    }
    return fields, data, upload.filename


def save_uploaded_voice(ctx: ServingContext, fields: dict[str, Any], data: bytes, filename: str | None) -> Voice:
    """Blocking: decodes and checks the clip, then saves the voice (nothing is saved on any error)."""
    name = fields["name"]
    try:
        find_speaker(name)
    except InvalidInput:
        pass
    else:
        raise bad_request(f"'{name}' is a built-in speaker's name; choose another name for a library voice.", "name")
    try:
        language = normalize_language(fields["language"])
    except InvalidInput as exc:
        raise bad_request(str(exc), "language") from None
    suffix = Path(filename or "").suffix.lower()[:10] or ".wav"
    fd, tmp = tempfile.mkstemp(prefix="voice-upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        options = ReferenceOptions()
        try:
            prepared = prepare_reference(tmp, options)
        except (AudioError, InvalidInput) as exc:
            raise bad_request(f"audio_sample could not be used: {exc}", "audio_sample") from None
        try:
            return ctx.app.library.save(
                name=name,
                kind="clone",
                reference=prepared.audio,
                transcript=fields["ref_text"],
                language=language,
                description=fields["description"],
                source_name=Path(filename).name if filename else None,
                consent=fields["consent"],
                trim=options,
            )
        except AudioError as exc:  # before InvalidInput: it is one (the clip itself was refused)
            raise bad_request(str(exc), "audio_sample") from None
        except (InvalidInput, LibraryError) as exc:
            words = str(exc).lower()
            param = next((p for word, p in _FIELD_WORDS if word in words), None)
            raise bad_request(str(exc), param) from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def delete_voice(ctx: ServingContext, name: str) -> dict[str, Any]:
    try:
        find_speaker(name)
    except InvalidInput:
        pass
    else:
        raise bad_request(f"'{name}' is a built-in speaker; only library voices can be deleted.", "name")
    try:
        voice = ctx.app.library.get(name)
    except VoiceNotFound:
        raise ApiError(
            404,
            f"There is no library voice '{name}' (GET /v1/audio/voices lists them).",
            param="name",
            code="voice_not_found",
        ) from None
    ctx.app.library.delete(voice.id)
    return {"id": voice.id, "name": voice.name, "object": "voice", "deleted": True}
