"""Transcribing a reference clip on this machine: Whisper through transformers (docs/ASR.md).

The Whisper checkpoint is one more entry of the model manager (``Mode.ASR``), so it is
downloaded, loaded, evicted and counted against ``--max-resident`` exactly like a TTS
checkpoint. A clip is cut to its start/end, checked for speech (Silero, the same
detector as the speech check), split into windows of at most 30 s at pauses between
voiced stretches (Whisper hears 30 s at a time), its language detected on the first
window, and each window decoded greedily with a length cap derived from its seconds,
so a model that never says "end" (the random demo model, or a real one looping on
noise) still stops.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.audio.clip import Audio
from core.audio.edit import trim
from core.audio.io import load_audio
from core.audio.speech_check import measure_speech
from core.errors import InvalidInput
from core.types import LANGUAGES

if TYPE_CHECKING:
    import torch

    from core.engine.model_manager import ModelManager
    from core.engine.model_store import ProgressCallback

log = logging.getLogger(__name__)

ASR_SAMPLE_RATE = 16_000  # what Whisper's feature extractor expects
WINDOW_S = 30.0  # one Whisper window
# A reference longer than this is not a reference: the same bound as the Clone tab's upload.
MAX_TRANSCRIBE_S = 600.0
MIN_SPEECH_S = 0.2  # below this the detector heard no word, and Whisper would invent one
# Greedy decoding, capped per window by its length: about 12 tokens a second covers fast
# English and Chinese (one token per character or so) with room; 444 is Whisper's own
# ceiling (448 positions less the 4-token prompt).
TOKENS_PER_SECOND = 12
MIN_TOKENS = 16
MAX_TOKENS = 444

# Whisper's language codes for the studio's languages (core.types.LANGUAGES, "auto" aside).
WHISPER_CODES: dict[str, str] = {
    "english": "en",
    "chinese": "zh",
    "german": "de",
    "spanish": "es",
    "russian": "ru",
    "korean": "ko",
    "french": "fr",
    "japanese": "ja",
    "portuguese": "pt",
    "italian": "it",
}
STUDIO_LANGUAGE_OF = {code: name for name, code in WHISPER_CODES.items()}
assert set(WHISPER_CODES) == set(LANGUAGES) - {"auto"}, "every studio language needs its Whisper code"
_UNSPACED = {"zh", "ja"}  # windows of these join without a space
# Whisper writes Mandarin in traditional or simplified characters as it likes; a simplified
# prompt (the usual remedy) makes it write simplified, as the studio's Chinese text is.
CHINESE_PROMPT = "以下是普通话的句子。"


@dataclass
class WhisperModel:
    """What the model manager keeps resident for ``Mode.ASR``: the model and its processor."""

    model: Any  # transformers.WhisperForConditionalGeneration
    processor: Any  # transformers.WhisperProcessor
    demo: bool  # random weights (config.json carries "studio_demo": true)

    # The manager's LoadedModel asks every model for these; Whisper has neither.
    def get_supported_speakers(self) -> list[str]:
        return []

    def get_supported_languages(self) -> list[str]:
        return sorted(WHISPER_CODES)


@dataclass(frozen=True)
class WordTiming:
    """One word Whisper heard, with its start and end in seconds from the clip's start."""

    word: str
    start: float
    end: float


@dataclass(frozen=True)
class WordTimings:
    """The words of a clip with their times (word-level subtitles, vLLM-Omni's word_timestamps)."""

    words: tuple[WordTiming, ...]
    language_code: str | None  # Whisper's code for what it heard ("en"); None when there was no speech
    seconds: float  # length of the audio timed
    demo: bool  # made by the random-weight demo model: the words are noise, the times only shaped
    model: str  # the checkpoint key


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # a studio language ("english"), or "auto" when Whisper heard one the studio does not speak
    language_code: str | None  # Whisper's code for what it heard ("en", "nl")
    seconds: float  # length of the audio transcribed (after start/end)
    demo: bool  # made by the random-weight demo model: the text is noise
    model: str  # the checkpoint key
    elapsed_s: float

    @property
    def language_label(self) -> str:
        """The language as the studio's dropdowns spell it ("English", "Auto")."""
        return self.language.capitalize()

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language_label,
            "language_code": self.language_code,
            "seconds": round(self.seconds, 3),
            "demo": self.demo,
            "model": self.model,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def load_whisper(path: Path, device: str, dtype: torch.dtype) -> WhisperModel:
    """Loads a local Whisper folder (never the network: the store fetched it first)."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from core.engine.demo_models.layout import DEMO_CONFIG_KEY

    processor = WhisperProcessor.from_pretrained(str(path), local_files_only=True)
    model = WhisperForConditionalGeneration.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    model = model.to(device).eval()
    return WhisperModel(model=model, processor=processor, demo=bool(getattr(model.config, DEMO_CONFIG_KEY, False)))


def smoke_transcription(bundle: WhisperModel) -> None:
    """Two tokens from a second of quiet: half precision on MPS can load and then fail here."""
    features = _features(bundle, np.zeros(ASR_SAMPLE_RATE, dtype=np.float32))
    bundle.model.generate(features, language="en", task="transcribe", max_new_tokens=2)


@dataclass
class Transcriber:
    """Transcribes clips with the catalog's ASR checkpoint, through the shared model manager."""

    models: ModelManager
    # The device's one-at-a-time lock (SynthesisService's): loading Whisper may evict a TTS
    # model, and decoding competes for the same device, so neither happens during a take.
    device_lock: contextlib.AbstractContextManager[Any] = field(default_factory=contextlib.nullcontext)

    def transcribe(
        self,
        source: Audio | str | Path | tuple,
        *,
        start_s: float | None = None,
        end_s: float | None = None,
        progress: ProgressCallback | None = None,
    ) -> Transcript:
        """The words in ``source`` (a file, an ``Audio`` or a Gradio pair) between start and end.

        Raises :class:`InvalidInput` for a clip without speech, :class:`AudioError` for a
        file that is not audio, and the model store's error when the model is missing offline.
        """
        started = time.perf_counter()
        audio = source if isinstance(source, Audio) else load_audio(source, max_seconds=MAX_TRANSCRIBE_S)
        start = float(start_s) if start_s else None
        end = float(end_s) if end_s else None
        if start is not None or end is not None:
            audio = trim(audio, start, end)
        speech = measure_speech(audio)
        if speech.speech_s < MIN_SPEECH_S:
            raise InvalidInput(
                f"There is no speech to transcribe in this {audio.duration:.1f} s clip (the voice-activity "
                "detector heard none). Pick a part of the clip where someone speaks."
            )
        checkpoint = self.models.catalog.asr
        samples = _to_16k(audio)
        windows = split_windows(samples, [(a, b) for a, b in speech.segments])
        with self.device_lock:
            loaded = self.models.get(checkpoint, progress)
            bundle: WhisperModel = loaded.model
            if progress:
                progress(0.0, "Transcribing")
            code = detect_language(bundle, windows[0])
            texts = [decode_window(bundle, window, code) for window in windows]
        text = ("" if code in _UNSPACED else " ").join(t for t in texts if t).strip()
        if not text:
            raise InvalidInput("The transcription model heard no words in this clip. Type the transcript yourself.")
        transcript = Transcript(
            text=text,
            language=STUDIO_LANGUAGE_OF.get(code or "", "auto"),
            language_code=code,
            seconds=audio.duration,
            demo=checkpoint.demo or bundle.demo,
            model=checkpoint.key,
            elapsed_s=time.perf_counter() - started,
        )
        log.info(
            "event=transcription model=%s audio_s=%.1f windows=%d language=%s wall_s=%.2f",
            checkpoint.key,
            transcript.seconds,
            len(windows),
            code,
            transcript.elapsed_s,
        )
        if progress:
            progress(1.0, "Transcribed")
        return transcript

    def word_timings(self, source: Audio | str | Path | tuple, *, language: str | None = None) -> WordTimings:
        """Each word in ``source`` with its start and end (seconds from the clip's start).

        Times are monotonic (a word starts no earlier than the one before ends) and inside the
        clip. ``language`` is a studio language ("english"); None or "auto" detects it. A clip
        without speech has no words (an empty answer, not an error: a take may be silent).
        """
        started = time.perf_counter()
        audio = source if isinstance(source, Audio) else load_audio(source, max_seconds=MAX_TRANSCRIBE_S)
        checkpoint = self.models.catalog.asr
        speech = measure_speech(audio)
        if speech.speech_s < MIN_SPEECH_S:
            return WordTimings((), None, audio.duration, checkpoint.demo, checkpoint.key)
        samples = _to_16k(audio)
        windows = split_windows(samples, [(a, b) for a, b in speech.segments])
        code = WHISPER_CODES.get((language or "").strip().lower())
        words: list[WordTiming] = []
        with self.device_lock:
            bundle: WhisperModel = self.models.get(checkpoint).model
            code = code or detect_language(bundle, windows[0])
            offset = 0.0
            for window in windows:
                words.extend(time_window(bundle, window, code, offset))
                offset += len(window) / ASR_SAMPLE_RATE
        timings = WordTimings(tuple(words), code, audio.duration, checkpoint.demo or bundle.demo, checkpoint.key)
        log.info(
            "event=word_timings model=%s audio_s=%.1f windows=%d words=%d wall_s=%.2f",
            checkpoint.key,
            audio.duration,
            len(windows),
            len(words),
            time.perf_counter() - started,
        )
        return timings


def _to_16k(audio: Audio) -> np.ndarray:
    import librosa

    samples = np.asarray(audio.samples, dtype=np.float32)
    if audio.sample_rate != ASR_SAMPLE_RATE:
        samples = librosa.resample(samples, orig_sr=audio.sample_rate, target_sr=ASR_SAMPLE_RATE)
    return samples.astype(np.float32, copy=False)


def split_windows(samples: np.ndarray, segments: list[tuple[float, float]]) -> list[np.ndarray]:
    """Consecutive windows of at most 30 s, cut in the pause between voiced stretches
    where one ends before the limit (else at the limit), so words are rarely cut."""
    sr = ASR_SAMPLE_RATE
    limit = int(WINDOW_S * sr)
    windows: list[np.ndarray] = []
    offset = 0
    while len(samples) - offset > limit:
        # The last pause that starts within this window: the middle of the gap after a segment.
        cut = offset + limit
        for (_, seg_end), (next_start, _) in zip(segments, segments[1:]):
            gap_mid = int((seg_end + next_start) / 2 * sr)
            if offset + sr <= gap_mid <= offset + limit:
                cut = gap_mid
        windows.append(samples[offset:cut])
        offset = cut
    windows.append(samples[offset:])
    return [w for w in windows if len(w) >= sr // 10] or [samples]


def _features(bundle: WhisperModel, window: np.ndarray) -> Any:
    extractor = bundle.processor.feature_extractor
    features = extractor(window, sampling_rate=ASR_SAMPLE_RATE, return_tensors="pt").input_features
    return features.to(bundle.model.device, bundle.model.dtype)


def detect_language(bundle: WhisperModel, window: np.ndarray) -> str | None:
    """Whisper's language code for the window ("en"), from its language-token logits."""
    import torch

    with torch.inference_mode():
        token_ids = bundle.model.detect_language(_features(bundle, window))
    token = bundle.processor.tokenizer.convert_ids_to_tokens(int(token_ids[0]))
    return token.strip("<|>") if isinstance(token, str) and token.startswith("<|") else None


def token_cap(bundle: WhisperModel, seconds: float) -> int:
    """New tokens one window may take: by its seconds, and never past the model's own limits."""
    cap = max(MIN_TOKENS, int(seconds * TOKENS_PER_SECOND) + MIN_TOKENS)
    own = getattr(bundle.model.generation_config, "max_new_tokens", None)
    positions = int(getattr(bundle.model.config, "max_target_positions", 448)) - 4
    return max(1, min(cap, own or MAX_TOKENS, positions, MAX_TOKENS))


def decode_window(bundle: WhisperModel, window: np.ndarray, code: str | None) -> str:
    import torch

    kwargs: dict[str, Any] = {"task": "transcribe", "do_sample": False, "num_beams": 1}
    cap = token_cap(bundle, len(window) / ASR_SAMPLE_RATE)
    if code:
        kwargs["language"] = code
    if code == "zh":
        prompt = bundle.processor.tokenizer.get_prompt_ids(CHINESE_PROMPT, return_tensors="pt")
        kwargs["prompt_ids"] = prompt.to(bundle.model.device)
        # The prompt takes decoder positions too: prompt + 4 start tokens + new tokens must fit.
        positions = int(getattr(bundle.model.config, "max_target_positions", 448))
        cap = max(1, min(cap, positions - 4 - len(prompt)))
    with torch.inference_mode():
        tokens = bundle.model.generate(_features(bundle, window), max_new_tokens=cap, **kwargs)
    return str(bundle.processor.batch_decode(tokens, skip_special_tokens=True)[0]).strip()


def _alignment_heads(bundle: WhisperModel) -> Any:
    """The cross-attention heads that follow the audio. Real checkpoints name them in their
    generation config; one that does not (the demo model) gets the last half of the decoder
    layers, all heads: openai-whisper's own default."""
    heads = getattr(bundle.model.generation_config, "alignment_heads", None)
    if heads:
        return heads
    layers = int(bundle.model.config.decoder_layers)
    per_layer = int(bundle.model.config.decoder_attention_heads)
    return [[layer, head] for layer in range(layers // 2, layers) for head in range(per_layer)]


def time_window(bundle: WhisperModel, window: np.ndarray, code: str | None, offset_s: float = 0.0) -> list[WordTiming]:
    """The words of one window (at most 30 s) with times, shifted by ``offset_s``.

    transformers' token timestamps (dynamic time warping over the alignment heads'
    cross-attention) time each token; its own Whisper word grouping joins tokens into words
    (by spaces, or by character for Chinese and Japanese), as its pipeline's
    ``return_timestamps="word"`` does.
    """
    import torch
    from transformers.models.whisper.tokenization_whisper import LANGUAGES as WHISPER_LANGUAGES
    from transformers.models.whisper.tokenization_whisper import _combine_tokens_into_words

    seconds = len(window) / ASR_SAMPLE_RATE
    kwargs: dict[str, Any] = {"task": "transcribe", "do_sample": False, "num_beams": 1}
    if code:
        kwargs["language"] = code
    bundle.model.generation_config.alignment_heads = _alignment_heads(bundle)
    with torch.inference_mode():
        out = bundle.model.generate(
            _features(bundle, window),
            max_new_tokens=token_cap(bundle, seconds),
            return_token_timestamps=True,
            return_dict_in_generate=True,
            **kwargs,
        )
    tokenizer = bundle.processor.tokenizer
    ids = [int(t) for t in out["sequences"][0]]
    stamps = [float(t) for t in out["token_timestamps"][0]]
    # Only the text tokens Whisper wrote: after the last start-of-transcript, below the specials.
    sot = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    first = max((i for i, t in enumerate(ids) if t == sot), default=-1) + 1
    index = [i for i in range(first, len(ids)) if ids[i] < tokenizer.eos_token_id]
    if not index:
        return []
    language = WHISPER_LANGUAGES.get(code or "", "english")
    words, _, groups = _combine_tokens_into_words(tokenizer, [ids[i] for i in index], language)
    timed: list[WordTiming] = []
    previous_end = 0.0
    for word, group in zip(words, groups):
        text = word.strip()
        if not text or not group:
            continue
        start_at, last = index[group[0]], index[group[-1]]
        start = min(max(stamps[start_at], previous_end), seconds)
        end = stamps[last + 1] if last + 1 < len(stamps) else seconds
        end = min(max(end, start), seconds)
        timed.append(WordTiming(text, round(offset_s + start, 3), round(offset_s + end, 3)))
        previous_end = end
    return timed
