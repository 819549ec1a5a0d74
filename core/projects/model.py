"""What a project is: chapters of blocks, each block with its takes and the one chosen.

Plain dataclasses that round-trip through JSON (``as_dict`` / ``from_dict``): the store
writes them, the named API returns them. Nothing here touches files or models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from core.errors import InvalidInput

FORMAT_VERSION = 1
DEFAULT_QA_TRIES = 2  # re-takes with a new seed before a block is flagged (issue 24)
DEFAULT_ALTERNATES = 3  # takes kept per block; the oldest unchosen one goes first


class BlockStatus(str, Enum):
    """Where a block stands; shown as a badge on each block."""

    NOT_RENDERED = "not rendered"
    RENDERED = "rendered"  # made, not checked (QA off, or the ASR unavailable)
    CHECKED = "checked"  # made and passed QA
    FLAGGED = "flagged"  # failed QA after every try; ``Block.flag`` says why

    def __str__(self) -> str:
        return self.value


class MasteringPreset(str, Enum):
    """Loudness targets for export (core/projects/mastering.py has the rules and sources)."""

    ACX = "acx"  # audiobook: RMS -23..-18 dBFS, peak <= -3 dBFS, noise floor <= -60 dBFS
    PODCAST = "podcast"  # -16 LUFS stereo / -19 LUFS mono, true peak <= -1 dBTP
    BROADCAST = "broadcast"  # EBU R128: -23 LUFS, true peak <= -1 dBTP
    NONE = "none"  # as rendered

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class VoiceChoice:
    """Who reads: a built-in ``speaker`` with an optional style, or a library ``voice`` (by name).
    Written and read in the Script tab's casting grammar (``Ryan (calm)``, ``voice: Ada``)."""

    speaker: str | None = None
    voice: str | None = None
    instruct: str | None = None

    def __post_init__(self) -> None:
        if bool(self.speaker) == bool(self.voice):
            raise InvalidInput("A voice is either a built-in speaker or a library voice.")

    @property
    def label(self) -> str:
        if self.speaker:
            return self.speaker + (f" ({self.instruct})" if self.instruct else "")
        return f"voice: {self.voice}"

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoiceChoice:
        return cls(speaker=data.get("speaker"), voice=data.get("voice"), instruct=data.get("instruct"))


@dataclass(frozen=True)
class WordTime:
    """A word the QA heard in a take, in seconds from the take's start (word-level subtitles)."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class QAVerdict:
    """What the QA found in one take (core/projects/qa.py)."""

    passed: bool
    reasons: tuple[str, ...] = ()  # human sentences: "heard 'the housekeeper' for 'the lighthouse keeper'"
    wer: float | None = None  # word error rate after normalisation (CER for scripts without spaces)
    cer: float | None = None
    heard: str = ""  # the ASR's transcript
    duration_ratio: float | None = None  # take length / expected length
    longest_silence_s: float = 0.0
    clipped_fraction: float = 0.0
    demo: bool = False  # heard by the random-weight demo ASR: the words are noise, said in the UI
    words: tuple[WordTime, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        data["words"] = [asdict(w) for w in self.words]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAVerdict:
        return cls(
            passed=bool(data["passed"]),
            reasons=tuple(data.get("reasons", ())),
            wer=data.get("wer"),
            cer=data.get("cer"),
            heard=data.get("heard", ""),
            duration_ratio=data.get("duration_ratio"),
            longest_silence_s=float(data.get("longest_silence_s", 0.0)),
            clipped_fraction=float(data.get("clipped_fraction", 0.0)),
            demo=bool(data.get("demo", False)),
            words=tuple(WordTime(**w) for w in data.get("words", ())),
        )


@dataclass(frozen=True)
class BlockTake:
    """One rendering of a block: its audio file (in the project's folder), seed and QA verdict."""

    id: str
    file: str  # relative to the project's folder, e.g. "audio/b-0007-t2.wav"
    seed: int
    seconds: float
    text: str  # the text it was made from (a block edited later is stale until re-rendered)
    voice: str  # the voice's label when made
    created: float
    qa: QAVerdict | None = None
    tries: int = 1  # model calls it took (1 + QA re-takes)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["qa"] = self.qa.as_dict() if self.qa else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlockTake:
        qa = data.get("qa")
        return cls(**{**data, "qa": QAVerdict.from_dict(qa) if qa else None})


@dataclass
class Block:
    """A paragraph (or one ``Name: line`` of dialogue, read by its cast voice)."""

    id: str
    text: str
    voice: VoiceChoice | None = None  # overrides the chapter's and the project's
    speaker: str | None = None  # the dialogue name (``Name: line``), cast in Project.casting
    locked: bool = False  # a locked block is never re-rendered
    takes: list[BlockTake] = field(default_factory=list)
    chosen: str | None = None  # the id of the take used in the chapter's audio
    status: BlockStatus = BlockStatus.NOT_RENDERED
    flag: str = ""  # why QA flagged it

    @property
    def chosen_take(self) -> BlockTake | None:
        return next((t for t in self.takes if t.id == self.chosen), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "voice": self.voice.as_dict() if self.voice else None,
            "speaker": self.speaker,
            "locked": self.locked,
            "takes": [t.as_dict() for t in self.takes],
            "chosen": self.chosen,
            "status": self.status.value,
            "flag": self.flag,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        voice = data.get("voice")
        return cls(
            id=data["id"],
            text=data["text"],
            voice=VoiceChoice.from_dict(voice) if voice else None,
            speaker=data.get("speaker"),
            locked=bool(data.get("locked", False)),
            takes=[BlockTake.from_dict(t) for t in data.get("takes", ())],
            chosen=data.get("chosen"),
            status=BlockStatus(data.get("status", BlockStatus.NOT_RENDERED.value)),
            flag=data.get("flag", ""),
        )


@dataclass
class Chapter:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    voice: VoiceChoice | None = None  # overrides the project's narrator

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "voice": self.voice.as_dict() if self.voice else None,
            "blocks": [b.as_dict() for b in self.blocks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chapter:
        voice = data.get("voice")
        return cls(
            id=data["id"],
            title=data["title"],
            voice=VoiceChoice.from_dict(voice) if voice else None,
            blocks=[Block.from_dict(b) for b in data.get("blocks", ())],
        )


@dataclass
class Project:
    id: str
    title: str
    author: str = ""
    narrator: VoiceChoice = field(default_factory=lambda: VoiceChoice(speaker="Ryan"))
    language: str = "auto"
    cover: str | None = None  # file name in the project's folder ("cover.jpg")
    casting: str = ""  # dialogue names → voices, in the Script tab's casting grammar
    chapters: list[Chapter] = field(default_factory=list)
    qa_tries: int = DEFAULT_QA_TRIES
    alternates: int = DEFAULT_ALTERNATES
    preset: MasteringPreset = MasteringPreset.ACX
    created: float = 0.0
    updated: float = 0.0

    def chapter(self, chapter_id: str) -> Chapter:
        for chapter in self.chapters:
            if chapter.id == chapter_id:
                return chapter
        raise InvalidInput(f"This project has no chapter '{chapter_id}'.")

    def block(self, block_id: str) -> tuple[Chapter, Block]:
        for chapter in self.chapters:
            for block in chapter.blocks:
                if block.id == block_id:
                    return chapter, block
        raise InvalidInput(f"This project has no block '{block_id}'.")

    def voice_of(self, chapter: Chapter, block: Block) -> VoiceChoice:
        """The block's own voice, else its chapter's, else the narrator (dialogue: see casting)."""
        return block.voice or chapter.voice or self.narrator

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "id": self.id,
            "title": self.title,
            "author": self.author,
            "narrator": self.narrator.as_dict(),
            "language": self.language,
            "cover": self.cover,
            "casting": self.casting,
            "chapters": [c.as_dict() for c in self.chapters],
            "qa_tries": self.qa_tries,
            "alternates": self.alternates,
            "preset": self.preset.value,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Project:
        if int(data.get("format", 0)) > FORMAT_VERSION:
            raise InvalidInput("This project was saved by a newer studio; update the studio to open it.")
        return cls(
            id=data["id"],
            title=data["title"],
            author=data.get("author", ""),
            narrator=VoiceChoice.from_dict(data["narrator"]),
            language=data.get("language", "auto"),
            cover=data.get("cover"),
            casting=data.get("casting", ""),
            chapters=[Chapter.from_dict(c) for c in data.get("chapters", ())],
            qa_tries=int(data.get("qa_tries", DEFAULT_QA_TRIES)),
            alternates=int(data.get("alternates", DEFAULT_ALTERNATES)),
            preset=MasteringPreset(data.get("preset", MasteringPreset.ACX.value)),
            created=float(data.get("created", 0.0)),
            updated=float(data.get("updated", 0.0)),
        )


@dataclass(frozen=True)
class ManuscriptChapter:
    """A chapter as a manuscript gives it, before it becomes part of a project."""

    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Manuscript:
    title: str  # from the file's metadata or first heading; "" when it has none
    author: str
    chapters: tuple[ManuscriptChapter, ...]
    cover: bytes | None = None  # an EPUB's cover image
    cover_type: str | None = None  # its MIME type ("image/jpeg")


@dataclass(frozen=True)
class Sentence:
    """A stretch of a chapter's audio and the text read in it (sentence-level subtitles)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class ChapterAudio:
    """A chapter as exported: its chosen takes joined, and what was said when.

    ``audio`` is a ``core.audio.clip.Audio`` (mono); times are seconds from the chapter's start.
    Typed ``Any`` here so the model stays free of numpy."""

    title: str
    audio: Any
    words: tuple[WordTime, ...] = ()  # heard by the QA, shifted to the chapter's clock
    sentences: tuple[Sentence, ...] = ()  # one per block (its text and where it lies)
