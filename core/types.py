"""The plain data the engine, the storage and the studio pass between them.

Requests, sampling options, results, clone prompts and the rules on their
values (languages, seeds, reference lengths) live here rather than in the
synthesis service so that code which only *stores* or *describes* takes (the
voice library, the history, the API schemas) can use them without importing
torch or the model code: nothing in this module imports torch at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from core.audio.clip import TARGET_SAMPLE_RATE, Audio
from core.audio.edit import PostProcessing
from core.errors import AudioError, InvalidInput

if TYPE_CHECKING:
    import torch


class Mode(str, Enum):
    """The three kinds of model, by the names stored in takes, recipes and the API.

    A ``str`` subclass that formats as its value, so ``Mode.BASE == "base"``
    and a Mode written to JSON, a log line or an f-string reads exactly as
    the plain string always did.
    """

    VOICE_DESIGN = "voice_design"
    CUSTOM_VOICE = "custom_voice"
    BASE = "base"
    # Not a way to speak: the transcription model (core/engine/transcription.py) is one
    # more checkpoint of the model manager, loaded and evicted under the same rules.
    ASR = "asr"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __hash__(self) -> int:
        # As the plain string's, so a Mode and its value are one dict key.
        return str.__hash__(self)

    @property
    def label(self) -> str:
        """The word the studio shows a person for this mode."""
        return _MODE_LABELS[self]

    @classmethod
    def from_user(cls, word: str) -> Mode:
        """The mode a person or a script named: the CLI's design|custom|clone, or a stored name.

        The one place those words are mapped, so the CLI, the catalog and the
        API all accept (and refuse) the same ones.
        """
        mode = _MODE_WORDS.get(word.strip().lower()) if isinstance(word, str) else None
        if mode is None:
            raise InvalidInput(f"Unknown mode '{word}'. Choose design, custom or clone.")
        return mode


_MODE_LABELS = {Mode.VOICE_DESIGN: "Design", Mode.CUSTOM_VOICE: "Custom", Mode.BASE: "Clone", Mode.ASR: "Transcribe"}
# The modes that speak: what takes, requests, engines and the CLI's --mode deal in.
MODES: tuple[Mode, ...] = (Mode.VOICE_DESIGN, Mode.CUSTOM_VOICE, Mode.BASE)
# What people type (the label in lower case) and what is stored (the value) both name a mode.
_MODE_WORDS = {**{mode.label.lower(): mode for mode in MODES}, **{mode.value: mode for mode in MODES}}

# Qwen3-TTS's 12 Hz speech tokenizer emits 12.5 codec frames per second of
# audio; every seconds <-> frames conversion (length caps, benchmarks) uses it.
FRAMES_PER_SECOND = 12.5

LANGUAGES = (
    "auto",
    "chinese",
    "english",
    "japanese",
    "korean",
    "german",
    "french",
    "russian",
    "portuguese",
    "spanish",
    "italian",
)
MAX_SEED = 2**32 - 1


def chunk_seeds(seed: int, count: int) -> list[int]:
    """The seed each chunk of a take was made with: chunk i uses ``seed + i``."""
    return [(seed + i) % (MAX_SEED + 1) for i in range(count)]


# A clone reference, as the encoder gets it: below half a second there is no
# voice to hear (and a few samples crash the encoder); above a minute every
# encode takes ages for no gain. Cloning and the voice library share these
# limits, and both refuse pure silence.
MIN_REFERENCE_SECONDS = 0.5
MAX_REFERENCE_SECONDS = 60.0


def normalize_language(language: str | None) -> str:
    value = (language or "auto").strip().lower()
    if value not in LANGUAGES:
        raise InvalidInput(
            f"Language '{language}' is not supported. Choose one of: "
            + ", ".join(lang.capitalize() for lang in LANGUAGES)
            + "."
        )
    return value


def check_reference(audio: Any, *, saving: bool = False) -> Audio:
    """Refuses a reference clip too short, too long or silent to clone from.

    Cloning (the default) raises :class:`InvalidInput` worded for a clone
    request. ``saving`` is the voice library's check before it stores a clip:
    it also demands decoded, finite 24 kHz audio (what the library writes to
    disk), raises :class:`AudioError` and speaks of the library instead.
    """
    error: type[InvalidInput] = AudioError if saving else InvalidInput
    if saving:
        if not isinstance(audio, Audio):
            raise AudioError("The reference must be decoded audio; load the clip with load_audio() first.")
        if audio.sample_rate != TARGET_SAMPLE_RATE:
            raise AudioError(
                f"The reference is {audio.sample_rate:,} Hz; resample it to 24 kHz "
                "(load_audio does this) before saving the voice."
            )
        if not np.isfinite(audio.samples).all():
            raise AudioError("The reference contains invalid samples (NaN or infinity); re-export it from your editor.")
    seconds = audio.duration
    if seconds < MIN_REFERENCE_SECONDS:
        needs = "a voice needs" if saving else "cloning needs"
        raise error(
            f"The reference is only {seconds:.2f} s long; {needs} at least "
            f"{MIN_REFERENCE_SECONDS:.1f} s of speech (3-30 s clones best)."
        )
    if seconds > MAX_REFERENCE_SECONDS:
        if saving:
            limit = f"the library keeps at most {MAX_REFERENCE_SECONDS:.0f} s. Trim it to the cleanest 3-30 s."
        else:
            limit = (
                f"cloning uses at most {MAX_REFERENCE_SECONDS:.0f} s. "
                "Set the start and end (start_s/end_s) to the cleanest 3-30 s."
            )
        raise error(f"The reference is {seconds:.1f} s long; {limit}")
    if not np.any(audio.samples):
        raise error("The reference is completely silent; choose a clip with speech in it.")
    return audio


@dataclass(frozen=True)
class Sampling:
    """Sampling options; None means the checkpoint's own default."""

    seed: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    # An upper bound on codec frames per chunk; the engine also derives one from the text.
    max_new_tokens: int | None = None

    def validated(self) -> Sampling:
        def check(name: str, value: Any, low: float, high: float, hint: str) -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInput(f"{name} must be a number ({hint}).")
            if not low <= value <= high:
                raise InvalidInput(f"{name} is {value}; it must be {hint}.")

        check("Seed", self.seed, 0, MAX_SEED, f"a whole number from 0 to {MAX_SEED}")
        check("Temperature", self.temperature, 0.05, 2.0, "between 0.05 and 2.0")
        check("Top-k", self.top_k, 1, 1000, "between 1 and 1000")
        check("Top-p", self.top_p, 0.01, 1.0, "between 0.01 and 1.0")
        check("Repetition penalty", self.repetition_penalty, 1.0, 2.0, "between 1.0 and 2.0")
        check("Max length", self.max_new_tokens, 1, 4096, f"between 1 and 4096 frames ({FRAMES_PER_SECOND} per second)")
        for name, value in (("Seed", self.seed), ("Top-k", self.top_k), ("Max length", self.max_new_tokens)):
            if value is not None and int(value) != value:
                raise InvalidInput(f"{name} must be a whole number.")
        return self

    def generate_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.temperature is not None:
            kwargs["temperature"] = float(self.temperature)
            kwargs["subtalker_temperature"] = float(self.temperature)
        if self.top_k is not None:
            kwargs["top_k"] = int(self.top_k)
        if self.top_p is not None:
            kwargs["top_p"] = float(self.top_p)
        if self.repetition_penalty is not None:
            kwargs["repetition_penalty"] = float(self.repetition_penalty)
        return kwargs


@dataclass(frozen=True)
class DesignRequest:
    text: str
    description: str
    language: str = "auto"
    size: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    post: PostProcessing = field(default_factory=PostProcessing)
    # The pronunciation lexicon version to speak with (core/text_lexicon.py); None: the current one.
    lexicon_version: str | None = None


@dataclass(frozen=True)
class CustomVoiceRequest:
    text: str
    speaker: str
    language: str = "auto"
    instruct: str | None = None
    size: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    post: PostProcessing = field(default_factory=PostProcessing)
    # The pronunciation lexicon version to speak with (core/text_lexicon.py); None: the current one.
    lexicon_version: str | None = None


@dataclass(frozen=True)
class ClonePrompt:
    """A reusable encoding of a reference voice for one Base checkpoint.

    ``ref_code`` (speech-tokenizer codes) is the same for every Base size,
    but ``speaker_embedding`` comes from the checkpoint's own speaker encoder,
    so a prompt is only valid for the checkpoint it was made with. The tensors
    are torch's, but only the encoder and the prompt cache ever create them,
    so this module needs torch for its type hints only.
    """

    checkpoint_key: str
    speaker_embedding: torch.Tensor
    ref_code: torch.Tensor | None
    ref_text: str | None
    x_vector_only: bool
    # The 24 kHz clip itself, for engines that clone from the clip rather than from a
    # local encoding (remote servers take it as ref_audio); such a prompt's
    # speaker_embedding is empty and it is never cached (core/engine/remote/engine.py).
    reference: Audio | None = None

    def to_qwen(self) -> list[Any]:
        from qwen_tts.inference.qwen3_tts_model import VoiceClonePromptItem

        return [
            VoiceClonePromptItem(
                ref_code=self.ref_code,
                ref_spk_embedding=self.speaker_embedding,
                x_vector_only_mode=self.x_vector_only,
                icl_mode=not self.x_vector_only,
                ref_text=self.ref_text,
            )
        ]


@dataclass(frozen=True)
class CloneRequest:
    text: str
    language: str = "auto"
    reference: Audio | None = None
    reference_text: str | None = None
    x_vector_only: bool = False
    prompt: ClonePrompt | None = None
    size: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    post: PostProcessing = field(default_factory=PostProcessing)
    # The pronunciation lexicon version to speak with (core/text_lexicon.py); None: the current one.
    lexicon_version: str | None = None
    # How the reference clip was cut and cleaned (core/audio/reference.py ReferenceOptions.as_dict()),
    # recorded in the take's recipe; the clip above is already the result.
    reference_options: dict[str, Any] | None = None


Request = DesignRequest | CustomVoiceRequest | CloneRequest


@dataclass(frozen=True)
class PartAudio:
    """One part of a take as it went into the join: a chunk of a long text, or a script line.

    ``audio`` is the part before the take's finishing (the join adds pauses and
    edge fades, post-processing levels and trims the whole); ``start_s``/``end_s``
    say where it sits in the finished take (core/audio/assembly.py works them out).
    ``seed`` makes the part again on its own; ``speaker``/``voice`` name a script
    line's part and its voice (None for chunks).
    """

    index: int
    text: str
    seed: int
    audio: Audio
    start_s: float
    end_s: float
    speaker: str | None = None
    voice: str | None = None


@dataclass
class SynthesisResult:
    audio: Audio
    mode: str  # a Mode, or "script" for a whole script's joined take
    model: str
    seed: int
    demo: bool
    text: str
    chunks: list[str]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    engine: str = "torch"  # the engine that made it (core/engine/interface.py)
    dtype: str = ""  # its precision and why, e.g. "bfloat16 (auto: CPU has AVX512-BF16, probe 0.58x fp32)"
    # The take's parts (chunks) and the pause the join put between them; the history keeps
    # each part's audio so one can be redone (core/takes/part_edit.py). Empty: not known.
    parts: list[PartAudio] = field(default_factory=list)
    pause_s: float | None = None

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def duration(self) -> float:
        return self.audio.duration

    def info(self) -> dict[str, Any]:
        """The JSON-friendly summary returned to the UI and scripts."""
        return {
            "mode": self.mode,
            "model": self.model,
            "demo": self.demo,
            "engine": self.engine,
            **({"dtype": self.dtype} if self.dtype else {}),
            "seed": self.seed,
            "duration_s": round(self.duration, 3),
            "sample_rate": self.sample_rate,
            "chunks": len(self.chunks),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
        }
