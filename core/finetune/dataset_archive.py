"""A dataset as one zip file: writing the export, and checking one before it is imported.

An export holds ``dataset.json`` and ``audio/<clip id>.wav`` for each clip, nothing else.
A zip to import comes from anywhere, so it is checked as the voice library checks its
imports (:mod:`core.storage.library.archive`): the central directory first (member count,
names, declared sizes, compression ratio: no zip bomb or path that climbs out is ever
inflated), then each member read with a hard cap, the record validated field by field, and
every clip confirmed to be WAV (hostile bytes never reach ffmpeg) and re-encoded to the
store's 24 kHz mono PCM_16. The caller unpacks into a staging folder and publishes it only
when this returns, so a bad archive leaves nothing.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import soundfile as sf

from core.audio.io import encode, load_audio
from core.errors import AudioError, DatasetError
from core.finetune.dataset import (
    AUDIO_DIR,
    DATASET_FILE,
    MAX_UTTERANCES,
    Dataset,
    dataset_from_record,
    utterance_id_ok,
)
from core.storage.durable import export_destination, replacing, write_file
from core.storage.folder_store import record_bytes
from core.storage.library.records import slugify

MAX_JSON_BYTES = 32 << 20  # 10,000 clips of long transcripts
MAX_CLIP_BYTES = 16 << 20  # a 30 s clip even as 96 kHz 24-bit stereo; the store's own are ~0.7 MB
MAX_TOTAL_BYTES = 16 << 30
MAX_CLIP_SECONDS = 31.0  # the longest clip the cutting settings allow (30 s), and a little
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 << 20


def export_path(dest: Path | str, root: Path, name: str) -> Path:
    """The zip to write: ``dest`` itself, or a dated file in the folder ``dest``; never inside ``root``."""
    try:
        return export_destination(dest, root, prefix=f"dataset-{slugify(name)[:40]}", where="the datasets folder")
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def write_export(dest: Path, dataset: Dataset) -> None:
    """Writes the zip next to ``dest`` and renames it into place: complete or absent."""
    try:
        with replacing(dest) as part, zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(DATASET_FILE, record_bytes(dataset.as_record()))
            for utterance in dataset.utterances:
                archive.write(dataset.audio_path(utterance), utterance.file)
    except OSError as exc:
        raise DatasetError(
            f"Could not write the export to {dest} ({exc.strerror or exc}); nothing was written."
        ) from exc


def unpack(path: Path, staged: Path) -> Dataset:
    """The checked dataset of the export ``path``, its clips written into ``staged``."""
    label = path.name
    if not path.is_file():
        raise DatasetError(f"The file '{label}' does not exist.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise DatasetError(
            f"'{label}' is not a zip file, or it is damaged or incomplete; choose a zip made with the dataset Export."
        ) from exc
    with archive:
        infos = archive.infolist()
        clips = _check_members(infos, label)
        raw = _read(archive, archive.getinfo(DATASET_FILE), MAX_JSON_BYTES, label)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise DatasetError(
                f"'{label}' has a damaged {DATASET_FILE} (not valid JSON); nothing was imported."
            ) from None
        try:
            dataset = dataset_from_record(data, staged)
        except DatasetError as exc:
            raise DatasetError(f"'{label}' cannot be imported: {exc}. Nothing was imported.") from None
        listed = {u.file for u in dataset.utterances}
        missing = sorted(listed - set(clips))
        if missing:
            raise DatasetError(f"'{label}' lacks {missing[0]} (and {len(missing) - 1} more); nothing was imported.")
        extra = sorted(set(clips) - listed)
        if extra:
            raise DatasetError(
                f"'{label}' holds {extra[0]}, which its {DATASET_FILE} does not list; nothing was imported."
            )
        (staged / AUDIO_DIR).mkdir(exist_ok=True)
        for utterance in dataset.utterances:
            wav = _read(archive, clips[utterance.file], MAX_CLIP_BYTES, label)
            write_file(staged / utterance.file, _checked_wav(wav, f"{utterance.file} in '{label}'"))
    return dataset


def _check_members(infos: list[zipfile.ZipInfo], label: str) -> dict[str, zipfile.ZipInfo]:
    """Checks the central directory (nothing is inflated) and returns the clips by name."""
    if len(infos) > MAX_UTTERANCES + 2:
        raise DatasetError(
            f"'{label}' holds {len(infos):,} files, more than a dataset export can; it was not imported."
        )
    names = {info.filename for info in infos}
    if DATASET_FILE not in names:
        if any(name.endswith("/voice.json") for name in names):
            raise DatasetError(f"'{label}' is a voice export; import it in the voice library, not as a dataset.")
        raise DatasetError(f"'{label}' has no {DATASET_FILE}: it is not a dataset export; nothing was imported.")
    if len(names) != len(infos):
        raise DatasetError(f"'{label}' holds a file twice; it is not a valid dataset export.")
    clips: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DatasetError(f"'{label}' contains a symbolic link ('{name}'), which is unsafe; it was not imported.")
        if info.flag_bits & 0x1:
            raise DatasetError(f"'{label}' is password-protected; export the dataset again without a password.")
        if name == f"{AUDIO_DIR}/" and info.is_dir():
            continue
        head, _, tail = name.partition("/")
        is_clip = head == AUDIO_DIR and tail.endswith(".wav") and utterance_id_ok(tail[:-4])
        if name != DATASET_FILE and not is_clip:
            raise DatasetError(
                f"'{label}' contains '{name}', which is not part of a dataset export (only {DATASET_FILE} and "
                f"{AUDIO_DIR}/u0001.wav, ...); it was not imported."
            )
        limit = MAX_JSON_BYTES if name == DATASET_FILE else MAX_CLIP_BYTES
        if info.file_size > limit:
            raise DatasetError(f"'{name}' in '{label}' unpacks to {info.file_size:,} bytes, more than it can be.")
        if info.file_size > RATIO_CHECK_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            raise DatasetError(f"'{name}' in '{label}' is compressed over {MAX_COMPRESSION_RATIO}-fold (a zip bomb?).")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise DatasetError(f"'{label}' unpacks to more than {MAX_TOTAL_BYTES >> 30} GiB; it was not imported.")
        if is_clip:
            clips[name] = info
    return clips


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, label: str) -> bytes:
    try:
        with archive.open(info) as handle:
            data = handle.read(limit + 1)  # never trust the declared size
    except Exception as exc:  # bad CRC, zlib.error, EOFError, unsupported method...
        raise DatasetError(f"'{info.filename}' in '{label}' is damaged and could not be unpacked.") from exc
    if len(data) > limit:
        raise DatasetError(f"'{info.filename}' in '{label}' unpacks to more than {limit:,} bytes; it was not imported.")
    return data


def _checked_wav(data: bytes, where: str) -> bytes:
    try:
        fmt = sf.info(io.BytesIO(data)).format
    except Exception:  # any unreadable header just means "not WAV"
        fmt = None
    if fmt not in ("WAV", "WAVEX"):
        raise DatasetError(f"{where} is not WAV audio; nothing was imported.")
    try:
        audio = load_audio(data, max_seconds=MAX_CLIP_SECONDS)
    except AudioError as exc:
        raise DatasetError(f"{where} is unusable: {exc} Nothing was imported.") from None
    return encode(audio, "wav")
