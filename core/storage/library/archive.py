"""Voice exports as zip archives: writing them, and checking one before it is imported.

An export holds ``<id>/voice.json`` and ``<id>/reference.wav`` per voice and
nothing else (prompt caches are rebuilt on first use). An archive to import
comes from anywhere, so it is treated as hostile until proven otherwise:

- The central directory is checked before a byte is inflated: member count,
  names (no absolute paths, ``..``, backslashes, links or unexpected files),
  declared sizes and compression ratio, so a zip bomb or a path that climbs
  out of the library is refused up front.
- Members are then read with a hard cap (the declared size is never trusted),
  and every record and clip is validated exactly as a new save would be. The
  reference must be WAV, so hostile bytes never reach ffmpeg.

Installing the checked voices, all or none, is the store's job
(:meth:`~core.storage.library.store.VoiceLibrary.import_zip`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import soundfile as sf

from core.audio.io import encode, load_audio
from core.audio.speech_check import measure_speech, require_speech
from core.errors import AudioError, LibraryError
from core.storage.durable import export_destination, replacing
from core.storage.folder_store import record_bytes
from core.storage.library.records import (
    ID_RE,
    MAX_RECORD_BYTES,
    REFERENCE_FILE,
    VOICE_FILE,
    Unusable,
    Voice,
    bad_char,
    clean_name,
    clean_record_fields,
    voice_from_record,
    wav_seconds,
)
from core.types import MAX_REFERENCE_SECONDS, check_reference

# Import limits. A real export holds two files per voice (plus optional folder
# entries); the byte caps sit well above a 60 s reference even as 96 kHz
# 24-bit stereo, and the ratio check catches a bomb before a byte is inflated.
MAX_IMPORT_MEMBERS = 6_000
MAX_IMPORT_JSON_BYTES = MAX_RECORD_BYTES
MAX_IMPORT_REFERENCE_BYTES = 64 << 20
MAX_IMPORT_TOTAL_BYTES = 4 << 30
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 << 20  # tiny members may compress absurdly well and still be harmless

_ARCHIVE_FILES = {VOICE_FILE: MAX_IMPORT_JSON_BYTES, REFERENCE_FILE: MAX_IMPORT_REFERENCE_BYTES}

# Members of one archived voice, by file name (voice.json, reference.wav).
VoiceMembers = dict[str, zipfile.ZipInfo]


# --- export ------------------------------------------------------------------


def export_path(dest: Path | str, root: Path) -> Path:
    """The zip to write: ``dest`` itself, or a dated file in the folder ``dest``, never inside ``root``."""
    try:
        return export_destination(dest, root, prefix="qwen-tts-voices", where="the voice library folder")
    except ValueError as exc:
        raise LibraryError(str(exc)) from None


def write_export(dest: Path, voices: Iterable[tuple[Voice, bytes]]) -> None:
    """Writes each (voice, reference bytes) pair; ``dest`` appears complete or not at all."""
    try:
        with replacing(dest) as part, zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for voice, wav in voices:
                record = voice.as_dict()
                record["reference_sha256"] = hashlib.sha256(wav).hexdigest()
                if voice.kind != "design":  # a design is the studio's own output by its kind
                    record["model_output"] = studio_made(voice, wav)
                archive.writestr(f"{voice.id}/{VOICE_FILE}", record_bytes(record))
                archive.writestr(f"{voice.id}/{REFERENCE_FILE}", wav)
    except OSError as exc:
        raise LibraryError(f"Could not write the export to {dest} ({exc.strerror or exc}).") from exc


def studio_made(voice: Voice, wav: bytes) -> bool:
    """Whether the export marks this voice's clip as the studio's own output (no speech check on import).

    A voice saved from a take records it. A record from before that was kept says nothing; it is
    in the library, so it passed the save checks: if its clip holds no speech, only a take saved
    as a voice (or a design) could have got it there.
    """
    if voice.model_output is not None:
        return voice.model_output
    try:
        return not measure_speech(load_audio(wav)).enough
    except AudioError:
        return False


# --- import ------------------------------------------------------------------


def open_archive(path: Path) -> zipfile.ZipFile:
    label = path.name
    if not path.is_file():
        raise LibraryError(f"The file '{label}' does not exist.")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise LibraryError(
            f"'{label}' is not a valid zip archive, or it is damaged or incomplete (was the download cut short?)."
        ) from exc


def check_archive(infos: list[zipfile.ZipInfo], label: str) -> dict[str, VoiceMembers]:
    """Checks the central directory (no data is read) and groups members by voice id."""
    if len(infos) > MAX_IMPORT_MEMBERS:
        raise LibraryError(
            f"'{label}' holds {len(infos):,} files; a voice export holds at most {MAX_IMPORT_MEMBERS:,}. "
            "It was not imported."
        )
    plan: dict[str, VoiceMembers] = {}
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        _check_member_name(name, label)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise LibraryError(f"'{label}' contains a symbolic link ('{name}'), which is unsafe; it was not imported.")
        if name in seen:
            raise LibraryError(f"'{label}' contains '{name}' twice; it is not a valid voice export.")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise LibraryError(f"'{label}' is password-protected; export the voices again without a password.")
        parts = name.split("/")
        if info.is_dir():
            if len(parts) == 2 and parts[1] == "" and ID_RE.fullmatch(parts[0]):
                continue
            raise LibraryError(_unexpected_member(label, name))
        if len(parts) != 2 or not ID_RE.fullmatch(parts[0]) or parts[1] not in _ARCHIVE_FILES:
            raise LibraryError(_unexpected_member(label, name))
        limit = _ARCHIVE_FILES[parts[1]]
        if info.file_size > limit:
            raise LibraryError(
                f"'{name}' in '{label}' unpacks to {info.file_size:,} bytes, more than the "
                f"{limit:,} a voice file can be; the archive was not imported."
            )
        if info.file_size > RATIO_CHECK_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise LibraryError(
                f"'{name}' in '{label}' is compressed over {MAX_COMPRESSION_RATIO}-fold, which no voice "
                "file is (it looks like a zip bomb); the archive was not imported."
            )
        total += info.file_size
        if total > MAX_IMPORT_TOTAL_BYTES:
            raise LibraryError(
                f"'{label}' unpacks to more than {MAX_IMPORT_TOTAL_BYTES >> 30} GiB; it was not imported."
            )
        plan.setdefault(parts[0], {})[parts[1]] = info
    if not plan:
        raise LibraryError(f"'{label}' holds no voices; choose a zip made with Export.")
    for voice_id, members in plan.items():
        for needed in _ARCHIVE_FILES:
            if needed not in members:
                raise LibraryError(
                    f"The voice '{voice_id}' in '{label}' has no {needed}; the archive is incomplete and was not imported."
                )
    return plan


def read_archived_voice(
    archive: zipfile.ZipFile, voice_id: str, members: VoiceMembers, label: str
) -> tuple[dict[str, Any], bytes]:
    """One archived voice, fully validated: its cleaned record and canonical WAV bytes."""
    where = f"The voice '{voice_id}' in '{label}'"
    raw = _read_member(archive, members[VOICE_FILE], label)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LibraryError(f"{where} has a damaged {VOICE_FILE} (not valid JSON); nothing was imported.") from None
    try:
        voice = voice_from_record(data, Path("."), voice_id)
    except Unusable as exc:
        raise LibraryError(f"{where} cannot be imported: {exc}. Nothing was imported.") from None
    try:
        name = clean_name(voice.name)
        record = clean_record_fields(
            kind=voice.kind,
            language=voice.language,
            transcript=voice.transcript,
            description=voice.description,
            tags=voice.tags,
            notes=voice.notes,
            source_name=voice.source_name,
            consent=voice.consent,
            trim=voice.trim,
        )
    except LibraryError as exc:
        raise LibraryError(f"{where} cannot be imported: {exc} Nothing was imported.") from None

    wav_in = _read_member(archive, members[REFERENCE_FILE], label)
    try:
        # Only WAV is accepted, so hostile bytes never reach ffmpeg.
        fmt = sf.info(io.BytesIO(wav_in)).format
    except Exception:  # any unreadable header just means "not WAV"
        fmt = None
    if fmt not in ("WAV", "WAVEX"):
        raise LibraryError(f"{where} has a {REFERENCE_FILE} that is not WAV audio; nothing was imported.")
    try:
        audio = check_reference(load_audio(wav_in, max_seconds=MAX_REFERENCE_SECONDS + 1.0), saving=True)
        # The speech check guards against cloning a hum or a tone by mistake; it is no safety
        # check (the clip was just validated as WAV of a sane length). So what the studio
        # exported as its own output (a design, a take saved as a voice) comes back as it left;
        # every other clip is checked, as on save.
        if not (voice.kind == "design" or voice.model_output):
            require_speech(audio, saving=True)
    except AudioError as exc:
        raise LibraryError(f"{where} has an unusable {REFERENCE_FILE}: {exc} Nothing was imported.") from None
    # Re-encoded so the stored clip is always 24 kHz mono PCM_16; an export of
    # this library re-encodes to the very same bytes.
    wav = encode(audio, "wav")
    record.update(
        name=name,
        reference_sha256=hashlib.sha256(wav).hexdigest(),
        reference_seconds=wav_seconds(wav),
        created_at=voice.created_at,
        updated_at=voice.updated_at,
        model_output=voice.model_output,
    )
    return record, wav


def _check_member_name(name: str, label: str) -> None:
    unsafe = f"'{label}' contains an unsafe path ('{name}'); it was not imported."
    if "\\" in name:
        raise LibraryError(f"'{label}' contains a Windows-style path with backslashes ('{name}'); it was not imported.")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise LibraryError(f"'{label}' contains an absolute path ('{name}'), which is unsafe; it was not imported.")
    if ".." in name.split("/"):
        raise LibraryError(
            f"'{label}' contains a path that climbs out of its folder ('{name}'), which is unsafe; it was not imported."
        )
    if not name or bad_char(name, multiline=False):
        raise LibraryError(unsafe)


def _unexpected_member(label: str, name: str) -> str:
    return (
        f"'{label}' contains '{name}', which is not part of a voice export "
        f"(expected only <id>/{VOICE_FILE} and <id>/{REFERENCE_FILE}); it was not imported."
    )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    limit = _ARCHIVE_FILES[info.filename.split("/")[1]]
    try:
        with archive.open(info) as handle:
            # Never trust the declared size: read at most one byte past the cap.
            data = handle.read(limit + 1)
    except Exception as exc:  # BadZipFile (bad CRC), zlib.error, EOFError, unsupported method...
        raise LibraryError(
            f"'{info.filename}' in '{label}' is damaged and could not be unpacked; the archive was not imported."
        ) from exc
    if len(data) > limit:
        raise LibraryError(
            f"'{info.filename}' in '{label}' unpacks to more than {limit:,} bytes (it looks like a zip bomb); "
            "the archive was not imported."
        )
    return data
