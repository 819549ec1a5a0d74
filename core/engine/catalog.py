"""The checkpoints the studio knows, and which one serves a request.

Real checkpoints are Hugging Face repos. The demo catalog mirrors the real one
entry for entry (same modes and sizes) but points at tiny random-weight
checkpoints built locally, so every code path that depends on size — such as
0.6B CustomVoice ignoring style instructions — behaves the same in demo mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.engine import user_models
from core.engine.speakers import Speaker
from core.errors import InvalidInput
from core.types import Mode

# Said on every take a demo checkpoint makes (core/engine/synthesis.py, request_batch.py, scripts).
DEMO_WARNING = "Made with a random-weight demo model: this is noise-like test audio, not speech."

# A checkpoint's kind as its name reads ("1.7B Voice Design"), not the short mode label.
MODE_LABELS = {
    Mode.VOICE_DESIGN: "Voice Design",
    Mode.CUSTOM_VOICE: "Custom Voice",
    Mode.BASE: "Voice Clone (Base)",
    Mode.ASR: "Transcription (Whisper)",
}


@dataclass(frozen=True)
class Checkpoint:
    key: str  # short stable name used by the CLI, the API and the Models panel
    repo_id: str
    mode: Mode  # the package's tts_model_type
    size: str  # 0.6B | 1.7B
    approx_gb: float
    demo: bool = False
    # A voice trained here (core/engine/user_models.py): its folder and its one speaker's name.
    folder: Path | None = None
    speaker: str = ""

    @property
    def supports_instruct(self) -> bool:
        # qwen-tts silently drops `instruct` for 0.6B CustomVoice; the engine
        # reports that instead of pretending the style was applied.
        return not (self.mode == Mode.CUSTOM_VOICE and self.size == "0.6B")

    @property
    def repo_name(self) -> str:
        return self.repo_id.split("/")[-1]

    @property
    def label(self) -> str:
        suffix = " (demo, random weights)" if self.demo else ""
        if self.folder is not None:
            return f"{self.size} Custom Voice: {self.speaker} (trained here{', demo' if self.demo else ''})"
        return f"{self.size} {MODE_LABELS[self.mode]}{suffix}"

    @property
    def trained(self) -> bool:
        return self.folder is not None


REAL_CHECKPOINTS: tuple[Checkpoint, ...] = (
    Checkpoint("1.7B-VoiceDesign", "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign", Mode.VOICE_DESIGN, "1.7B", 3.5),
    Checkpoint("1.7B-CustomVoice", "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", Mode.CUSTOM_VOICE, "1.7B", 3.5),
    Checkpoint("0.6B-CustomVoice", "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice", Mode.CUSTOM_VOICE, "0.6B", 1.2),
    Checkpoint("1.7B-Base", "Qwen/Qwen3-TTS-12Hz-1.7B-Base", Mode.BASE, "1.7B", 3.5),
    Checkpoint("0.6B-Base", "Qwen/Qwen3-TTS-12Hz-0.6B-Base", Mode.BASE, "0.6B", 1.2),
)

DEMO_CHECKPOINTS: tuple[Checkpoint, ...] = tuple(
    Checkpoint(f"demo-{c.key}", f"local/demo-{c.mode}", c.mode, c.size, 0.012, demo=True) for c in REAL_CHECKPOINTS
)

# mlx-community publishes each checkpoint converted for MLX, named after it plus its precision.
_MLX_PRECISION = re.compile(r"-(bf16|fp16|fp32|[2-8]bit)$")
_PUBLISHERS = ("qwen", "mlx-community")


def real_checkpoint(model_id: str) -> Checkpoint | None:
    """The real checkpoint a Hugging Face id names, or None.

    ``Qwen/Qwen3-TTS-12Hz-1.7B-Base``, its bare name, and mlx-community's conversions
    (``mlx-community/Qwen3-TTS-12Hz-1.7B-Base-6bit``, ``-bf16``, ``-4bit``, ``-8bit``) all name
    the same checkpoint: the precision a server runs at is its own setting, not the id's.
    """
    if not isinstance(model_id, str):
        return None
    publisher, _, name = model_id.strip().lower().rpartition("/")
    if publisher and publisher not in _PUBLISHERS:
        return None
    if publisher != "qwen":
        name = _MLX_PRECISION.sub("", name)
    return next((c for c in REAL_CHECKPOINTS if c.repo_name.lower() == name), None)


# The transcription model (docs/ASR.md): any Whisper repo on the Hub (--asr-model); the
# safetensors weights alone, so sizes are those of model.safetensors plus tokenizer files.
DEFAULT_ASR_REPO = "openai/whisper-small"
_ASR_GB = {
    "whisper-tiny": 0.15,
    "whisper-base": 0.29,
    "whisper-small": 0.97,
    "whisper-medium": 3.06,
    "whisper-large-v3": 3.09,
    "whisper-large-v3-turbo": 1.62,
}


def asr_checkpoint(repo_id: str = DEFAULT_ASR_REPO, *, demo: bool = False) -> Checkpoint:
    """The Whisper checkpoint for ``repo_id``, or its tiny demo mirror (core/engine/demo_models/whisper.py)."""
    name = repo_id.split("/")[-1]
    key = name.lower()
    size = key.removeprefix("whisper-") or key
    if demo:
        return Checkpoint(f"demo-{key}", "local/demo-asr", Mode.ASR, size, 0.001, demo=True)
    return Checkpoint(key, repo_id, Mode.ASR, size, _ASR_GB.get(key, 1.0))


def trained_checkpoint(voice: user_models.TrainedVoice) -> Checkpoint:
    """The catalog entry of a voice trained here: a custom_voice checkpoint in its own folder."""
    return Checkpoint(
        voice.key,
        f"local/{voice.key}",
        Mode.CUSTOM_VOICE,
        voice.size,
        0.0,
        demo=voice.demo,
        folder=voice.folder,
        speaker=voice.speaker,
    )


class Catalog:
    """The speaking checkpoints (iterating gives only the built-in ones), the voices trained
    here (found in ``user_dir``, core/engine/user_models.py) and the one ASR checkpoint."""

    def __init__(self, *, demo: bool, asr_repo: str = DEFAULT_ASR_REPO, user_dir: Path | None = None):
        self.demo = demo
        self.checkpoints = DEMO_CHECKPOINTS if demo else REAL_CHECKPOINTS
        self.asr = asr_checkpoint(asr_repo, demo=demo)
        self.user_dir = user_dir

    def __iter__(self):
        return iter(self.checkpoints)

    def trained(self) -> tuple[Checkpoint, ...]:
        """The voices trained here, as checkpoints (scanned now: a new or removed one shows at once)."""
        return tuple(trained_checkpoint(v) for v in user_models.scan(self.user_dir))

    def every(self) -> tuple[Checkpoint, ...]:
        """Every checkpoint the model manager handles: the built-in speaking ones, the trained ones, the ASR."""
        return (*self.checkpoints, *self.trained(), self.asr)

    def trained_speakers(self) -> tuple[Speaker, ...]:
        """The speakers of the voices trained here, listed after the built-in ones in Custom Voice."""
        return tuple(
            Speaker(
                id=v.speaker_id,
                name=v.speaker,
                gender="",
                description=f"your voice, trained here from {v.base or 'a Base model'}",
                native_language="",
            )
            for v in user_models.scan(self.user_dir)
        )

    def speaker_checkpoint(self, speaker_id: str) -> Checkpoint | None:
        """The trained checkpoint that speaks ``speaker_id``, or None for a built-in speaker."""
        for voice in user_models.scan(self.user_dir):
            if voice.speaker_id == speaker_id:
                return trained_checkpoint(voice)
        return None

    def sizes(self, mode: str) -> list[str]:
        wanted = Mode.from_user(mode)
        return [c.size for c in self.checkpoints if c.mode == wanted]

    def get(self, key: str) -> Checkpoint:
        if not isinstance(key, str):
            raise InvalidInput("Name the model by its key as text, e.g. '0.6B-Base' (see /models).")
        wanted = key.strip().lower()
        for c in self.every():
            if wanted in (c.key.lower(), c.repo_id.lower(), c.repo_name.lower()):
                return c
        real = real_checkpoint(key)  # mlx-community's ids name the same checkpoints
        if real is not None:
            return self.get(real.key)
        # Let scripts written against real keys work in demo mode and vice versa.
        for c in self.every():
            if wanted.removeprefix("demo-") == c.key.lower().removeprefix("demo-"):
                return c
        known = ", ".join(c.key for c in self.every())
        raise InvalidInput(f"Unknown model '{key}'. Known models: {known}.")

    def resolve(self, mode: str, size: str | None, preferred_size: str = "1.7B") -> Checkpoint:
        """The checkpoint for a mode at the requested (or preferred) size.

        Voice design exists only at 1.7B, so a preferred 0.6B quietly becomes
        1.7B there; an *explicit* 0.6B request for design is an error.
        """
        kind = Mode.from_user(mode)
        candidates = [c for c in self.checkpoints if c.mode == kind]
        if size:
            wanted = size.strip().upper().replace("B", "") + "B"
            for c in candidates:
                if c.size.upper() == wanted:
                    return c
            available = ", ".join(c.size for c in candidates)
            raise InvalidInput(f"{MODE_LABELS[kind]} has no {size} model; available: {available}.")
        for c in candidates:
            if c.size == preferred_size:
                return c
        return candidates[0]
