"""Exporting a book: mastered chapter files, one M4B with chapter markers, subtitles, a zip.

What :func:`export_book` writes into its folder (each file written beside its name and renamed
into place, so a reader never sees half a file):

- ``01-<chapter>.mp3`` (or ``.wav``) per chapter, mastered to the preset
  (core/projects/mastering.py), tagged with ``mutagen`` (title, book, author, track, cover).
  Each gets a compliance report measured on the file itself. MP3s come from ffmpeg's
  ``libmp3lame`` at a constant bit rate. The MP3 encoder moves levels by a few tenths of a dB,
  so when the file's level misses where mastering aimed by more than 0.2 dB the gain is corrected
  once and the chapter encoded again; the better file (by rules passed) is kept.
- ``<title>.m4b``: every chapter in one AAC-in-MP4 audiobook. ffmpeg encodes it and writes the
  chapter markers from an FFMETADATA file; ``mutagen`` writes title, author (artist and album
  artist), album, genre, the audiobook media kind and the cover. When no chapter files are
  asked for, each chapter's compliance is measured on its stretch of the M4B.
- Subtitles per chapter: sentence-level ``01-<chapter>.srt`` / ``.vtt`` from
  ``ChapterAudio.sentences`` (long sentences cut into readable cues by core/takes/subtitles.py),
  and word-level ``01-<chapter>.words.srt`` / ``.vtt``, one cue per word the QA heard. Times
  follow the mastered audio (the room tone ACX mastering adds at the head shifts them) and stay
  inside the chapter.
- ``<title>.zip``: the chapter files and subtitles.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from core.audio.clip import Audio, from_dbfs
from core.errors import InvalidInput, StudioError
from core.projects.mastering import (
    PRESETS,
    ComplianceReport,
    compliance,
    level_error_db,
    master_timed,
    preset_from_user,
    resampled,
    run_ffmpeg,
)
from core.projects.model import ChapterAudio, MasteringPreset, Sentence, WordTime
from core.storage.durable import fsync_dir, replacing, write_atomic
from core.takes.subtitles import Cue, Span, cues_from_spans, format_cues

__all__ = ["ExportFormat", "ExportResult", "export_book", "sentence_subtitles", "word_subtitles"]

DEFAULT_FORMATS = ("m4b", "mp3", "srt", "vtt", "zip")
_AAC_KBPS = {1: 96, 2: 128}  # speech in AAC-LC: transparent well below music's rates
_MPEG2_MAX_KBPS = 160  # MP3 below 32 kHz (MPEG-2) tops out here
_MIN_WORD_S = 0.01
_LEVEL_SLACK_DB = 0.2  # a chapter file this close to where mastering aimed is not encoded again


class ExportFormat(str, Enum):
    M4B = "m4b"
    MP3 = "mp3"
    WAV = "wav"
    ZIP = "zip"
    SRT = "srt"
    VTT = "vtt"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_user(cls, word: object) -> ExportFormat:
        if isinstance(word, cls):
            return word
        key = str(word or "").strip().lower().lstrip(".")
        key = {"webvtt": "vtt", "subrip": "srt", "mp4": "m4b", "m4a": "m4b"}.get(key, key)
        try:
            return cls(key)
        except ValueError:
            choices = ", ".join(f.value for f in cls)
            raise InvalidInput(f"Unknown export format '{word}'; choose from {choices}.") from None


@dataclass(frozen=True)
class ExportResult:
    files: dict[str, Path]  # "m4b", "zip", "chapter-01.mp3", "chapter-01.srt", "chapter-01.words.vtt", ...
    compliance: tuple[tuple[str, ComplianceReport], ...]  # (chapter title, report)

    @property
    def passed(self) -> bool:
        return all(report.passed for _, report in self.compliance)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": {key: str(path) for key, path in self.files.items()},
            "passed": self.passed,
            "compliance": [{"chapter": title, **report.as_dict()} for title, report in self.compliance],
        }


# --------------------------------------------------------------------------- subtitles


def word_subtitles(words: Sequence[WordTime], fmt: str) -> str:
    """One cue per word, in time order; a word never starts before the one before it ends."""
    cues: list[Cue] = []
    floor = 0.0
    for word in sorted(words, key=lambda w: (w.start, w.end)):
        text = " ".join(word.word.split())
        if not text:
            continue
        start = max(float(word.start), floor)
        end = max(float(word.end), start + _MIN_WORD_S)
        cues.append(Cue(start, end, text))
        floor = end
    return format_cues(cues, fmt)


def sentence_subtitles(sentences: Sequence[Sentence], fmt: str) -> str:
    """A cue per sentence (a block), long ones cut into readable cues timed by characters."""
    ordered = sorted(sentences, key=lambda s: s.start)
    spans = [Span(s.start, s.end, s.text, None) for s in ordered]
    duration = max((s.end for s in ordered), default=0.0)
    return format_cues(cues_from_spans(spans, duration), fmt)


def _shift_words(words: Sequence[WordTime], offset: float, duration: float) -> list[WordTime]:
    out = []
    for w in words:
        start = min(max(0.0, w.start + offset), duration)
        end = min(max(start, w.end + offset), duration)
        if end > start:
            out.append(WordTime(w.word, start, end))
    return out


def _shift_sentences(sentences: Sequence[Sentence], offset: float, duration: float) -> list[Sentence]:
    out = []
    for s in sentences:
        start = min(max(0.0, s.start + offset), duration)
        end = min(max(start, s.end + offset), duration)
        if end > start:
            out.append(Sentence(start, end, s.text))
    return out


# --------------------------------------------------------------------------- the book


def export_book(
    chapters: Sequence[ChapterAudio],
    out_dir: Path,
    *,
    title: str,
    author: str = "",
    cover: bytes | None = None,
    preset: MasteringPreset | str = MasteringPreset.ACX,
    formats: Iterable[ExportFormat | str] = DEFAULT_FORMATS,
) -> ExportResult:
    """Masters ``chapters`` to ``preset`` and writes the ``formats`` asked for into ``out_dir``."""
    wanted = {ExportFormat.from_user(f) for f in formats}
    if not wanted:
        raise InvalidInput("Choose at least one export format.")
    if not chapters:
        raise InvalidInput("There is nothing to export yet: render at least one chapter first.")
    title = " ".join(str(title or "").split())
    if not title:
        raise InvalidInput("The book needs a title to export.")
    preset = preset_from_user(preset)
    cover_kind = _cover_kind(cover) if cover else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    mastered = []
    for chapter in chapters:
        try:
            mastered.append(master_timed(chapter.audio, preset))
        except StudioError as exc:
            raise type(exc)(f"Chapter '{chapter.title}': {exc}") from exc
    rate = mastered[0].audio.sample_rate  # the M4B has one rate (only "none" can differ)
    audios = [resampled(m.audio, rate) for m in mastered]

    files: dict[str, Path] = {}
    reports: list[tuple[str, ComplianceReport]] = []
    tags = _Tags(title=title, author=author, cover=cover, cover_kind=cover_kind, total=len(chapters))
    audio_fmt = _chapter_format(wanted)
    for n, chapter in enumerate(chapters, start=1):
        key, name = f"chapter-{n:02d}", f"{n:02d}-{_slug(chapter.title)}"
        if audio_fmt is not None:
            path = out_dir / f"{name}.{audio_fmt}"
            audios[n - 1], report = _write_chapter(audios[n - 1], path, preset, tags, chapter.title, n)
            files[f"{key}.{audio_fmt}"] = path
            reports.append((chapter.title, report))
        offset, duration = mastered[n - 1].offset_s, audios[n - 1].duration
        words = _shift_words(chapter.words, offset, duration)
        sentences = _shift_sentences(chapter.sentences, offset, duration)
        for fmt in (ExportFormat.SRT, ExportFormat.VTT):
            if fmt not in wanted:
                continue
            if sentences:
                files[f"{key}.{fmt}"] = _write_text(out_dir / f"{name}.{fmt}", sentence_subtitles(sentences, fmt))
            if words:
                files[f"{key}.words.{fmt}"] = _write_text(out_dir / f"{name}.words.{fmt}", word_subtitles(words, fmt))

    if ExportFormat.M4B in wanted:
        m4b = out_dir / f"{_slug(title)}.m4b"
        bounds = _write_m4b(audios, [c.title for c in chapters], m4b, preset, tags)
        files["m4b"] = m4b
        if audio_fmt is None:
            reports = [
                (c.title, compliance(m4b, preset, start_s=start, end_s=end))
                for c, (start, end) in zip(chapters, bounds, strict=True)
            ]
    if ExportFormat.ZIP in wanted:
        files["zip"] = _write_zip(out_dir / f"{_slug(title)}.zip", [p for k, p in files.items() if k != "m4b"])
    return ExportResult(files=files, compliance=tuple(reports))


@dataclass(frozen=True)
class _Tags:
    title: str
    author: str
    cover: bytes | None
    cover_kind: str | None  # "jpeg" | "png"
    total: int


def _chapter_format(wanted: set[ExportFormat]) -> str | None:
    if ExportFormat.WAV in wanted and ExportFormat.MP3 not in wanted:
        return "wav"
    if wanted & {ExportFormat.MP3, ExportFormat.WAV, ExportFormat.ZIP}:
        return "mp3"
    return None


def _write_chapter(
    audio: Audio, path: Path, preset: MasteringPreset, tags: _Tags, chapter: str, track: int
) -> tuple[Audio, ComplianceReport]:
    """Encodes, tags and checks one chapter; corrects the encoder's level drift once."""
    _encode_chapter(audio, path, preset, tags, chapter, track)
    report = compliance(path, preset)
    error = level_error_db(report)
    if abs(error) <= _LEVEL_SLACK_DB:
        return audio, report
    corrected = Audio(audio.samples * np.float32(from_dbfs(-error)), audio.sample_rate)
    first = path.with_name(f".{path.name}.first")
    os.replace(path, first)
    try:
        _encode_chapter(corrected, path, preset, tags, chapter, track)
        second = compliance(path, preset)
        if sum(r.passed for r in second.rules) >= sum(r.passed for r in report.rules):
            return corrected, second
        os.replace(first, path)
        return audio, report
    finally:
        first.unlink(missing_ok=True)


def _encode_chapter(audio: Audio, path: Path, preset: MasteringPreset, tags: _Tags, chapter: str, track: int) -> None:
    spec = PRESETS[preset]
    sr = audio.sample_rate
    if path.suffix == ".wav":
        codec = ["-c:a", "pcm_s16le", "-metadata", f"title={chapter}", "-metadata", f"artist={tags.author}"]
        codec += ["-f", "wav"]
    else:
        kbps = spec.bitrate_kbps if sr >= 32_000 else min(spec.bitrate_kbps, _MPEG2_MAX_KBPS)
        codec = ["-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-f", "mp3"]
    with replacing(path) as tmp:
        run_ffmpeg(_pcm_input(sr), _channels(spec.channels), codec, [str(tmp)], stdin=_pcm(audio))
        if path.suffix == ".mp3":
            _tag_mp3(tmp, tags, chapter, track)
    fsync_dir(path.parent)


def _tag_mp3(path: Path, tags: _Tags, chapter: str, track: int) -> None:
    from mutagen.id3 import APIC, ID3, TALB, TCON, TIT2, TPE1, TPE2, TRCK

    id3 = ID3()
    id3.add(TIT2(encoding=3, text=chapter))
    id3.add(TALB(encoding=3, text=tags.title))
    if tags.author:
        id3.add(TPE1(encoding=3, text=tags.author))
        id3.add(TPE2(encoding=3, text=tags.author))
    id3.add(TRCK(encoding=3, text=f"{track}/{tags.total}"))
    id3.add(TCON(encoding=3, text="Audiobook"))
    if tags.cover and tags.cover_kind:
        id3.add(APIC(encoding=3, mime=f"image/{tags.cover_kind}", type=3, desc="Cover", data=tags.cover))
    id3.save(path, v2_version=3)


def _write_m4b(
    audios: list[Audio], titles: list[str], path: Path, preset: MasteringPreset, tags: _Tags
) -> list[tuple[float, float]]:
    """The whole book as AAC in MP4 with chapter markers; returns each chapter's (start, end) s."""
    sr = audios[0].sample_rate
    bounds, cursor = [], 0
    for audio in audios:
        bounds.append((cursor / sr, (cursor + len(audio)) / sr))
        cursor += len(audio)
    lines = [";FFMETADATA1", f"title={_meta(tags.title)}", "genre=Audiobook"]
    if tags.author:
        lines += [f"artist={_meta(tags.author)}", f"album_artist={_meta(tags.author)}"]
    for chapter_title, (start, end) in zip(titles, bounds, strict=True):
        lines += ["", "[CHAPTER]", "TIMEBASE=1/1000", f"START={round(start * 1000)}", f"END={round(end * 1000)}"]
        lines.append(f"title={_meta(chapter_title)}")
    channels = PRESETS[preset].channels
    with tempfile.TemporaryDirectory(prefix="qtts-m4b-") as folder:
        meta = Path(folder) / "chapters.txt"
        meta.write_text("\n".join(lines) + "\n", encoding="utf-8")
        pcm = np.concatenate([a.samples for a in audios]).astype("<f4").tobytes()
        with replacing(path) as tmp:
            run_ffmpeg(
                _pcm_input(sr),
                ["-f", "ffmetadata", "-i", str(meta)],
                ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"],
                _channels(channels),
                ["-c:a", "aac", "-b:a", f"{_AAC_KBPS[channels]}k", "-f", "ipod", str(tmp)],
                stdin=pcm,
            )
            _tag_m4b(tmp, tags)
        fsync_dir(path.parent)
    return bounds


def _tag_m4b(path: Path, tags: _Tags) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    mp4 = MP4(path)
    assert mp4.tags is not None  # ffmpeg wrote title and chapters, so the file has tags
    mp4.tags["\xa9nam"] = [tags.title]
    mp4.tags["\xa9alb"] = [tags.title]
    mp4.tags["\xa9gen"] = ["Audiobook"]
    mp4.tags["stik"] = [2]  # iTunes media kind 2: audiobook
    if tags.author:
        mp4.tags["\xa9ART"] = [tags.author]
        mp4.tags["aART"] = [tags.author]
    if tags.cover and tags.cover_kind:
        kind = MP4Cover.FORMAT_PNG if tags.cover_kind == "png" else MP4Cover.FORMAT_JPEG
        mp4.tags["covr"] = [MP4Cover(tags.cover, imageformat=kind)]
    mp4.save()


def _write_zip(path: Path, members: list[Path]) -> Path:
    with replacing(path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for member in members:
            # Audio is compressed already; text is worth deflating.
            method = zipfile.ZIP_DEFLATED if member.suffix in (".srt", ".vtt") else zipfile.ZIP_STORED
            archive.write(member, member.name, compress_type=method)
    fsync_dir(path.parent)
    return path


def _write_text(path: Path, text: str) -> Path:
    write_atomic(path, text.encode("utf-8"))
    return path


def _pcm_input(sr: int) -> list[str]:
    return ["-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0"]


def _pcm(audio: Audio) -> bytes:
    return np.clip(audio.samples, -1.0, 1.0).astype("<f4").tobytes()


def _channels(channels: int) -> list[str]:
    # A mono master copied to both channels at full level (ffmpeg's default upmix would lower it
    # 3 dB, and the podcast preset counts on the copy: -19 LUFS mono = -16 LUFS stereo).
    return ["-af", "pan=stereo|c0=c0|c1=c0"] if channels == 2 else []


def _cover_kind(cover: bytes) -> str:
    if cover.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if cover.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    raise InvalidInput("The cover must be a JPEG or PNG image.")


def _meta(value: str) -> str:
    """A value for ffmpeg's FFMETADATA file: '=', ';', '#', '\\' and newlines escaped."""
    return re.sub(r"([=;#\\\n])", r"\\\1", " ".join(value.split()))


def _slug(text: str) -> str:
    return "-".join(re.findall(r"\w+", text.lower()))[:60].strip("-_") or "untitled"
