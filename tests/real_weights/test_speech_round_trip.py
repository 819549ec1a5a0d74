"""Speak, then listen: every real checkpoint says fixed English and Chinese sentences, Whisper writes
down what it hears, and the words must match (WER / CER ≤ 10%, jiwer). Each take must also stop on
its own, well before its frame cap. Voice clone speaks in the voice of an espeak-ng reference.

What this proves that the tiny random-weight models cannot: the real weights load and speak
intelligibly in each mode and language through the studio's own code (chunking, caps, seeds,
live decoding, the clone prompt), the model emits its stop code instead of running to the cap,
and the transcription model the studio ships transcribes real speech. See docs/ASR.md.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import pytest

from core.engine.catalog import REAL_CHECKPOINTS
from core.text import estimate_max_new_tokens
from core.types import FRAMES_PER_SECOND, CloneRequest, CustomVoiceRequest, DesignRequest, Mode, Sampling
from tests.conftest import need
from tests.real_weights.conftest import require

pytestmark = pytest.mark.real_weights

jiwer = pytest.importorskip("jiwer", reason="the real_weights lane scores with jiwer: pip install jiwer")

MAX_ERROR = 0.10
# "Well before its frame cap": a take that ran to the cap would fill all of it.
MAX_CAP_SHARE = 0.6
SENTENCES = {
    "english": (
        "The weather is lovely today, so we are going for a walk in the park.",
        "Please read the first chapter of the book before our meeting on Friday.",
    ),
    "chinese": (
        "今天天气很好，我们去公园散步吧。",
        "请在星期五开会之前读完这本书的第一章。",
    ),
}
SPEAKERS = {"english": "Ryan", "chinese": "Vivian"}
DESCRIPTION = "A clear, calm adult voice speaking at a moderate pace, studio quality."
# The espeak-ng references a clone is made from: its voice and what it says.
REFERENCES = {
    "english": ("en-us", "The quick brown fox jumps over the lazy dog near the river bank."),
    "chinese": ("cmn", "我们明天早上八点在学校门口见面。"),
}


def normalized_words(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s']", " ", text).split())


def normalized_chars(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum())


def error_rate(language: str, reference: str, heard: str) -> float:
    if language == "chinese":
        return float(jiwer.cer(normalized_chars(reference), normalized_chars(heard)))
    return float(jiwer.wer(normalized_words(reference), normalized_words(heard)))


def espeak_reference(language: str):
    from core.audio.edit import trim_silence
    from core.audio.io import load_audio

    need("espeak-ng")
    voice, line = REFERENCES[language]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ref.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), line], check=True)
        return trim_silence(load_audio(path)), line


def request_for(checkpoint, language: str, text: str, seed: int):
    sampling = Sampling(seed=seed)
    if checkpoint.mode == Mode.VOICE_DESIGN:
        return DesignRequest(
            text=text, description=DESCRIPTION, language=language, size=checkpoint.size, sampling=sampling
        )
    if checkpoint.mode == Mode.CUSTOM_VOICE:
        return CustomVoiceRequest(
            text=text, speaker=SPEAKERS[language], language=language, size=checkpoint.size, sampling=sampling
        )
    reference, line = espeak_reference(language)
    return CloneRequest(
        text=text, language=language, reference=reference, reference_text=line, size=checkpoint.size, sampling=sampling
    )


@pytest.mark.parametrize("language", sorted(SENTENCES))
@pytest.mark.parametrize("key", [c.key for c in REAL_CHECKPOINTS])
def test_speaks_what_it_was_given(lane, key, language):
    checkpoint = lane.catalog.get(key)
    require(lane, checkpoint)
    require(lane, lane.catalog.asr)
    takes = []
    for seed, sentence in enumerate(SENTENCES[language], start=1):
        result = lane.synthesis.synthesize(request_for(checkpoint, language, sentence, seed))
        assert not result.demo and result.model == checkpoint.key
        assert len(result.chunks) == 1, "a fixed sentence is one chunk"
        cap = estimate_max_new_tokens(result.chunks[0])
        frames = result.duration * FRAMES_PER_SECOND
        assert frames <= MAX_CAP_SHARE * cap, (
            f"{key} ({language}, seed {seed}) did not stop by itself: {result.duration:.1f} s is "
            f"{frames:.0f} of its {cap}-frame cap"
        )
        takes.append((sentence, result))
    for sentence, result in takes:
        heard = lane.transcriber.transcribe(result.audio)
        assert not heard.demo
        rate = error_rate(language, sentence, heard.text)
        precision = result.info().get("dtype", lane.models.dtype_policy)
        assert rate <= MAX_ERROR, (
            f"{key} ({language}, {precision}, engine {result.engine}): said {sentence!r}, "
            f"Whisper heard {heard.text!r} ({rate:.0%})"
        )
        assert heard.language == language, f"{key}: Whisper heard {heard.language_code}, not {language}"
