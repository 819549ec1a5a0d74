"""Turning recordings into a dataset's clips: cut at pauses, measure, write, transcribe.

The store (:mod:`core.finetune.dataset_store`) runs this inside a hidden staging folder and
publishes it only when every clip is written, so a build that fails, is stopped, or dies
with the process leaves nothing behind.

Transcription goes through the model manager's ASR (:class:`core.engine.transcription.Transcriber`),
one clip at a time. A clip the ASR hears no words in keeps an empty transcript with a note;
an ASR that cannot run at all (not downloaded while offline, cannot load) leaves every clip
untranscribed with that reason, so the cutting is not lost: the review screen says so and
:meth:`~core.finetune.dataset_store.DatasetStore.transcribe` retries.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.audio.clip import Audio
from core.audio.edit import trim
from core.audio.io import encode, load_audio
from core.audio.speech_check import measure_speech
from core.engine.cancel import check_current
from core.errors import InvalidInput, Stopped, StudioError
from core.finetune.checks import measure
from core.finetune.dataset import AUDIO_DIR, MAX_UTTERANCES, SourceInfo, Utterance, utterance_id
from core.finetune.segment import SegmentOptions, plan_utterances
from core.storage.durable import write_file

if TYPE_CHECKING:
    from core.engine.transcription import Transcriber

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]  # (fraction done, what is happening): the model store's shape
# A source is a file path, or (name, Audio) for audio already in memory (a recording in the UI).
Source = str | os.PathLike[str] | tuple[str, Audio]

MAX_SOURCES = 500
MAX_SOURCE_SECONDS = 3 * 3600.0  # one long recording: a three-hour session, decoded to 24 kHz (~1 GB float32)
CUT_SHARE = 0.15  # of the progress bar: cutting is quick next to transcribing


@dataclass(frozen=True)
class Transcribed:
    """What the ASR made of a dataset's clips."""

    texts: dict[str, str]  # clip id -> transcript ("" where it heard no words)
    notes: dict[str, str]  # clip id -> why it has no transcript
    language: str  # the studio language heard most often, "auto" when none
    model: str | None
    demo: bool


def cut_sources(
    sources: Sequence[Source], folder: Path, options: SegmentOptions, progress: Progress | None = None
) -> tuple[list[SourceInfo], list[Utterance]]:
    """Cuts every source into clips written to ``folder/audio/``; raises when none holds speech."""
    if not sources:
        raise InvalidInput("Add a recording: one long recording or several clips of the speaker.")
    if len(sources) > MAX_SOURCES:
        raise InvalidInput(f"{len(sources)} files is more than one dataset takes ({MAX_SOURCES}); join some first.")
    (folder / AUDIO_DIR).mkdir(exist_ok=True)
    infos: list[SourceInfo] = []
    utterances: list[Utterance] = []
    for index, source in enumerate(sources):
        check_current("Stopped building the dataset.")
        name, audio = _load(source)
        if progress:
            progress(CUT_SHARE * index / len(sources), f"Cutting {name} ({index + 1} of {len(sources)})")
        infos.append(SourceInfo(name, audio.duration))
        speech = measure_speech(audio)
        for span in plan_utterances(speech.segments, audio, options):
            if len(utterances) >= MAX_UTTERANCES:
                raise InvalidInput(f"The recordings make more than {MAX_UTTERANCES:,} clips; build smaller datasets.")
            clip = trim(audio, span.start_s, span.end_s)
            uid = utterance_id(len(utterances) + 1)
            write_file(folder / AUDIO_DIR / f"{uid}.wav", encode(clip, "wav"))
            note = (
                f"{span.seconds:.1f} s, shorter than {options.min_s:g} s: kept out of training; "
                "include it if it is a whole sentence."
                if span.short
                else ""
            )
            utterances.append(
                Utterance(
                    id=uid,
                    source=index,
                    start_s=span.start_s,
                    end_s=span.end_s,
                    text="",
                    asr_text="",
                    excluded=span.short,
                    note=note,
                    stats=measure(clip, span.voiced),
                )
            )
    if not utterances:
        total = sum(i.seconds for i in infos)
        raise InvalidInput(
            f"No speech was found in {_files(len(infos))} ({total:.1f} s of audio): the voice-activity "
            "detector heard no one talking. Choose recordings of the speaker."
        )
    return infos, utterances


def transcribe_clips(
    utterances: Sequence[Utterance],
    folder: Path,
    transcriber: Transcriber,
    progress: Progress | None = None,
    *,
    start: float = 0.0,
) -> Transcribed:
    """Transcribes each clip's WAV in ``folder``; the progress bar runs from ``start`` to 1."""
    texts: dict[str, str] = {}
    notes: dict[str, str] = {}
    languages: Counter[str] = Counter()
    model: str | None = None
    demo = False
    failure: str | None = None
    started = time.perf_counter()
    for n, utterance in enumerate(utterances):
        check_current("Stopped transcribing the dataset.")
        if progress:
            progress(
                start + (1 - start) * n / max(1, len(utterances)), f"Transcribing clip {n + 1} of {len(utterances)}"
            )
        if failure is not None:
            notes[utterance.id] = failure
            continue
        try:
            result = transcriber.transcribe(load_audio(folder / utterance.file))
        except Stopped:
            raise
        except InvalidInput as exc:  # no speech / no words in this clip
            texts[utterance.id] = ""
            notes[utterance.id] = f"No transcript: {exc}"
            continue
        except StudioError as exc:  # the ASR cannot run: keep the clips, say why
            failure = f"Not transcribed: {exc}"
            notes[utterance.id] = failure
            continue
        texts[utterance.id] = result.text.strip()
        languages[result.language] += 1
        model, demo = result.model, demo or result.demo
    heard = [lang for lang, _ in languages.most_common() if lang != "auto"]
    log.info(
        "event=dataset_transcribed clips=%d transcribed=%d model=%s wall_s=%.1f",
        len(utterances),
        sum(bool(t) for t in texts.values()),
        model,
        time.perf_counter() - started,
    )
    return Transcribed(texts, notes, heard[0] if heard else "auto", model, demo)


def apply_transcripts(utterances: Sequence[Utterance], done: Transcribed) -> list[Utterance]:
    """Clips with the ASR's text where it wrote one; the notes explain the rest."""
    out: list[Utterance] = []
    for u in utterances:
        if u.id in done.texts and done.texts[u.id]:
            text = done.texts[u.id]
            out.append(replace(u, text=text, asr_text=text, note="" if not u.excluded else u.note))
        elif u.id in done.notes:
            note = done.notes[u.id] if not u.excluded else f"{u.note} {done.notes[u.id]}"
            out.append(replace(u, note=note))
        else:
            out.append(u)
    return out


def _load(source: Source) -> tuple[str, Audio]:
    if isinstance(source, tuple):
        name, audio = source
        if not isinstance(audio, Audio):
            raise InvalidInput("A recording must be an audio file or (name, Audio).")
        if audio.duration > MAX_SOURCE_SECONDS:
            raise InvalidInput(f"'{name}' is longer than {MAX_SOURCE_SECONDS / 3600:.0f} hours; split it first.")
        return str(name), load_audio((audio.samples, audio.sample_rate), max_seconds=MAX_SOURCE_SECONDS)
    path = Path(source)
    return path.name, load_audio(path, max_seconds=MAX_SOURCE_SECONDS)


def _files(count: int) -> str:
    return "the recording" if count == 1 else f"the {count} recordings"
