"""Rendering a project's blocks: the work of a job of the one take runner (core/takes/jobs.py).

What is rendered: the blocks asked for (the project, a chapter or one block) that are not
locked and whose chosen take is missing or stale (made from other text or by another voice);
one block asked for by itself is always made again ("redo"). So rendering again after a Stop
or a crash is the Resume: every block finished before it was saved at once, and is skipped.

How a block is made:

- its voice: the block's own, else for dialogue (``Name: line``) the name's voice in the
  project's casting (the Script tab's grammar; only the line is spoken), else the chapter's,
  else the narrator; a built-in speaker is a CustomVoice request, a library voice a clone
  with the voice's cached prompt (encoded once per render);
- its seed: the chosen take's seed ("keep", so a redo makes the same take again), or a new
  one ("new"); a block never made gets one derived from the project's and the block's ids,
  so the same project renders the same way every time;
- blocks are sent ``WINDOW`` at a time through ``SynthesisService.synthesize_many``, which
  batches those sharing a checkpoint (each keeps its seed, so it sounds as made alone); the
  first block goes alone, so the first saved block comes early;
- each take is heard by the model manager's ASR and checked (core/projects/qa.py); a take
  that fails is made again with seed ``seed + RETAKE_STRIDE·k``, up to ``qa_tries`` times,
  and the last try is kept flagged with the reason.

The kept take is added to the block's alternates (at most ``alternates``; the oldest unchosen
one goes, its file removed) and becomes the chosen take when it passed (or nothing better is
chosen). Progress: "Chapter 2 of 3 · block 5 of 12", one job chunk per block, each finished
block published as a ``ChunkAudio`` so the time left counts down from the audio made.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from core.audio.clip import Audio
from core.audio.edit import PostProcessing
from core.audio.io import encode
from core.context import AppContext
from core.engine.cancel import check_current
from core.engine.speakers import find_speaker
from core.engine.synthesis import ChunkAudio
from core.errors import GenerationError, InvalidInput, ModelUnavailable, Stopped, StudioError
from core.projects import qa
from core.projects.model import Block, BlockStatus, BlockTake, Chapter, Project, QAVerdict, VoiceChoice
from core.projects.store import AUDIO_DIR, ProjectStore
from core.takes.job import Job
from core.takes.requests import Ask, request_for
from core.takes.script_grammar import Casting, casting_from, name_key
from core.takes.values import Options
from core.types import MAX_SEED, CloneRequest, CustomVoiceRequest, Mode, Sampling, SynthesisResult

log = logging.getLogger(__name__)

WINDOW = 4  # blocks handed to the engine together after the first (a Stop loses at most these)
RETAKE_STRIDE = 1000  # QA re-take k of a block uses seed + 1000·k (its chunks use + 0, 1, 2, …)
# Each block is trimmed of its own leading and trailing silence, so the pause between blocks
# in a chapter is the one the chapter's assembly puts there.
BLOCK_POST = PostProcessing(remove_dc=True, trim_silence=True)

BlockRequest = CustomVoiceRequest | CloneRequest


@dataclass(frozen=True)
class Cast:
    """Who reads a block, and what of it is spoken."""

    voice: VoiceChoice
    language: str
    size: str | None
    spoken: str  # the block's text, or for a cast dialogue line the line without the name


@dataclass(frozen=True)
class BlockWork:
    """One block to make, as planned from the project when the job starts."""

    chapter_id: str
    block_id: str
    chapter_number: int  # from 1
    chapters: int
    block_number: int  # from 1, in its chapter
    blocks: int
    text: str  # the block's text (a take remembers what it was made from)
    cast: Cast
    seed: int

    @property
    def label(self) -> str:
        return f"Chapter {self.chapter_number} of {self.chapters} · block {self.block_number} of {self.blocks}"


# --- planning ----------------------------------------------------------------------------


def block_seed(project_id: str, block_id: str) -> int:
    """The seed a block is first made with: the same for the same project and block, always."""
    digest = hashlib.sha256(f"{project_id}/{block_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (MAX_SEED + 1)


def voice_from_text(text: str, where: str = "The voice") -> VoiceChoice:
    """A voice in the casting grammar ("Ryan (calm)", "voice: Ada") as a VoiceChoice."""
    from core.takes.script_grammar import parse_voice

    spec = parse_voice(text, where)
    if spec.speaker:
        find_speaker(spec.speaker)  # a clear error for a name that is no speaker
    return VoiceChoice(speaker=spec.speaker, voice=spec.voice, instruct=spec.instruct)


def dialogue_line(text: str, speaker: str) -> str:
    """The line of ``Name: line`` without the name (the text itself when it does not start so)."""
    for colon in (":", "："):
        head, sep, rest = text.partition(colon)
        if sep and name_key(head) == name_key(speaker) and rest.strip():
            return rest.strip()
    return text


def cast_of(project: Project, chapter: Chapter, block: Block, casting: Casting) -> Cast:
    language = project.language
    if block.speaker and not block.voice:
        spec = casting.get(block.speaker)
        if spec is not None:
            voice = VoiceChoice(speaker=spec.speaker, voice=spec.voice, instruct=spec.instruct)
            return Cast(voice, spec.language or language, spec.size, dialogue_line(block.text, block.speaker))
    if block.speaker and block.voice:  # the block's own voice plays the name: it speaks the line
        return Cast(block.voice, language, None, dialogue_line(block.text, block.speaker))
    return Cast(project.voice_of(chapter, block), language, None, block.text)


def is_current(take: BlockTake | None, block: Block, cast: Cast) -> bool:
    """True when ``take`` is of the block's text, in the voice that reads it now."""
    return take is not None and take.text == block.text and take.voice == cast.voice.label


def plan(
    project: Project,
    *,
    chapter_id: str | None = None,
    block_id: str | None = None,
    seed: str = "keep",
) -> list[BlockWork]:
    """The blocks to make, in reading order (see the module notes); raises when there are none."""
    if seed not in ("keep", "new"):
        raise InvalidInput("Seed must be 'keep' (the same take again) or 'new' (a different take).")
    casting = casting_from(project.casting or "")
    if block_id:
        chapter, block = project.block(block_id)
        if block.locked:
            raise InvalidInput("This block is locked; unlock it to render it again.")
    elif chapter_id:
        project.chapter(chapter_id)
    works: list[BlockWork] = []
    for c_number, chapter in enumerate(project.chapters, 1):
        if chapter_id and chapter.id != chapter_id:
            continue
        for b_number, block in enumerate(chapter.blocks, 1):
            if block_id and block.id != block_id:
                continue
            if not block.text.strip():
                continue
            cast = cast_of(project, chapter, block, casting)
            if not block_id and (block.locked or is_current(block.chosen_take, block, cast)):
                continue
            chosen = block.chosen_take or (block.takes[-1] if block.takes else None)
            if seed == "new":
                block_s = secrets.randbelow(MAX_SEED + 1)
            else:
                block_s = chosen.seed if chosen is not None else block_seed(project.id, block.id)
            works.append(
                BlockWork(
                    chapter.id,
                    block.id,
                    c_number,
                    len(project.chapters),
                    b_number,
                    len(chapter.blocks),
                    block.text,
                    cast,
                    block_s,
                )
            )
    if not works:
        raise InvalidInput(
            "Nothing to render: every block is rendered (or locked). Edit a block, or redo one, to render it again."
        )
    return works


def check_voices(app: AppContext, works: list[BlockWork]) -> None:
    """Every voice the render needs exists, told before anything is queued."""
    seen: set[str] = set()
    for work in works:
        voice = work.cast.voice
        if voice.label in seen:
            continue
        seen.add(voice.label)
        if voice.speaker:
            find_speaker(voice.speaker)
        else:
            app.library.get(voice.voice or "")


# --- the takes -------------------------------------------------------------------------------


def status_of(block: Block, cast: Cast | None = None) -> tuple[BlockStatus, str]:
    """A block's badge and flag, from its chosen take (stale when its text changed since)."""
    take = block.chosen_take
    if take is None or take.text != block.text or (cast is not None and take.voice != cast.voice.label):
        return BlockStatus.NOT_RENDERED, ""
    if take.qa is None:
        return BlockStatus.RENDERED, ""
    if not take.qa.passed:
        return BlockStatus.FLAGGED, "; ".join(take.qa.reasons) or "failed the take check"
    if take.qa.wer is None and take.qa.cer is None:  # no ASR: made, not heard
        return BlockStatus.RENDERED, ""
    return BlockStatus.CHECKED, ""


def refresh(block: Block, cast: Cast | None = None) -> None:
    block.status, block.flag = status_of(block, cast)


def passed(take: BlockTake | None) -> bool:
    return take is not None and (take.qa is None or take.qa.passed)


def add_take(block: Block, take: BlockTake, keep: int) -> list[BlockTake]:
    """Adds a new take to the block's alternates; returns the takes dropped beyond ``keep``."""
    previous = block.chosen_take
    block.takes.append(take)
    if passed(take) or not passed(previous) or (previous.text, previous.voice) != (take.text, take.voice):  # type: ignore[union-attr]
        block.chosen = take.id
    dropped: list[BlockTake] = []
    while len(block.takes) > max(1, keep):
        oldest = min((t for t in block.takes if t.id != block.chosen), key=lambda t: t.created)
        block.takes.remove(oldest)
        dropped.append(oldest)
    refresh(block)
    return dropped


# --- the job's work -----------------------------------------------------------------------


Checker = Callable[[Audio, BlockWork, SynthesisResult], QAVerdict | None]


class Renderer:
    """Makes the planned blocks of one project and saves each as soon as it is settled."""

    def __init__(self, app: AppContext, store: ProjectStore, project_id: str, *, max_new_tokens: int | None = None):
        self.app = app
        self.store = store
        self.project_id = project_id
        self.max_new_tokens = max_new_tokens
        self._templates: dict[str, CloneRequest] = {}
        self._asr_missing: str | None = None

    def __call__(self, job: Job, works: list[BlockWork], qa_tries: int, alternates: int) -> list[Any]:
        total = len(works)
        with job._changed:
            job.chunks_total = total
        position = 0
        batching = self.app.synthesis.batching
        while position < total:
            check_current()  # Stop between blocks
            size = 1 if position == 0 or not batching else WINDOW
            window = works[position : position + size]
            for work in self._render_window(job, window, qa_tries):
                made, verdict, tries = work
                self._keep(made[0], made[1], verdict, tries, alternates)
                position_done = works.index(made[0])
                job.publish(ChunkAudio(position_done, total, made[0].cast.spoken, made[1].audio))
                job.chunk_done(position_done, total)
            position += len(window)
        job.report(1.0, f"Done: {total} block{'s' if total != 1 else ''} rendered")
        return []

    def _render_window(self, job: Job, window: list[BlockWork], qa_tries: int) -> Any:
        """Yields ((work, result), verdict, tries) for each block of the window once it is settled:
        passed, or failed on its last try."""
        pending = list(window)
        attempt = 0
        while pending:
            label = pending[0].label + (f" (+{len(pending) - 1} together)" if len(pending) > 1 else "")
            if attempt:
                label += f" · re-take {attempt} of {qa_tries}"
            job.report(job.fraction(), label)
            requests = [self._request(work, attempt) for work in pending]

            def progress(fraction: float, _message: str, label: str = label) -> None:
                job.report(fraction, label)  # the engine's "chunk 1 of 1" adds nothing to the block's label

            outcomes = self.app.synthesis.synthesize_many(requests, progress)
            retry: list[BlockWork] = []
            for work, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, Stopped):
                    raise Stopped(f"Stopped at chapter {work.chapter_number}, block {work.block_number}.")
                if isinstance(outcome, StudioError):
                    raise _about(outcome, work)
                verdict = self._check(outcome.audio, work, outcome)
                if verdict is None or verdict.passed or attempt >= qa_tries:
                    yield (work, outcome), verdict, attempt + 1
                else:
                    retry.append(work)
            pending = retry
            attempt += 1

    def _request(self, work: BlockWork, attempt: int) -> BlockRequest:
        sampling = Sampling(
            seed=(work.seed + RETAKE_STRIDE * attempt) % (MAX_SEED + 1), max_new_tokens=self.max_new_tokens
        )
        cast = work.cast
        options = Options(sampling, BLOCK_POST)
        try:
            if cast.voice.speaker:
                speaker = find_speaker(cast.voice.speaker)
                ask = Ask(
                    Mode.CUSTOM_VOICE,
                    cast.spoken,
                    cast.language,
                    cast.size,
                    speaker=speaker.id,
                    instruct=cast.voice.instruct,
                    options=options,
                )
                request, _, _ = request_for(ask)
                assert isinstance(request, CustomVoiceRequest)
                return request
            key = f"{cast.voice.voice}|{cast.language}|{cast.size}"
            if key not in self._templates:  # the voice's clone prompt: cached, or encoded once per render
                ask = Ask(Mode.BASE, cast.spoken, cast.language, cast.size, voice=cast.voice.voice, options=options)
                template, _, _ = request_for(ask, self.app.library, self.app.synthesis)
                assert isinstance(template, CloneRequest)
                self._templates[key] = template
            return replace(self._templates[key], text=cast.spoken, sampling=sampling, post=BLOCK_POST)
        except StudioError as exc:
            raise _about(exc, work) from exc

    def _check(self, audio: Audio, work: BlockWork, result: SynthesisResult) -> QAVerdict | None:
        """The take heard by the ASR and checked; without an ASR model the other checks still run."""
        heard = None
        if self._asr_missing is None:
            try:
                heard = qa.hear(self.app.transcriber, audio, work.cast.language)
            except ModelUnavailable as exc:  # offline without a Whisper model: told once per render
                self._asr_missing = str(exc)
                log.warning("Take QA without the ASR (words unchecked): %s", exc)
            except Stopped:
                raise
        return qa.check_take(audio, work.cast.spoken, heard, language=work.cast.language, spoken_text=result.text)

    def _keep(
        self, work: BlockWork, result: SynthesisResult, verdict: QAVerdict | None, tries: int, alternates: int
    ) -> None:
        """Saves the take's audio, then the project naming it (so a crash never names a missing file)."""
        take_id = f"{work.block_id}-{uuid.uuid4().hex[:6]}"
        file = f"{AUDIO_DIR}/{take_id}.wav"
        self.store.write_file(self.project_id, file, encode(result.audio, "wav"))
        take = BlockTake(
            id=take_id,
            file=file,
            seed=result.seed,
            seconds=round(result.audio.duration, 3),
            text=work.text,
            voice=work.cast.voice.label,
            created=time.time(),
            qa=verdict,
            tries=tries,
        )

        def change(project: Project) -> list[BlockTake]:
            try:
                _, block = project.block(work.block_id)
            except InvalidInput:  # deleted while it was made
                return [take]
            return add_take(block, take, project.alternates)

        _, dropped = self.store.update(self.project_id, change)
        self.store.remove_files(self.project_id, [t.file for t in dropped])


def _about(exc: StudioError, work: BlockWork) -> StudioError:
    """The same error, saying which block it happened on."""
    if isinstance(exc, Stopped):
        return exc
    message = f"Chapter {work.chapter_number}, block {work.block_number}: {exc}"
    try:
        return type(exc)(message)
    except TypeError:
        return GenerationError(message)
