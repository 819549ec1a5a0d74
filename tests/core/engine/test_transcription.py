"""Transcription on the tiny random-weight Whisper: the real transformers code, through the model manager."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.clip import Audio
from core.audio.io import load_audio, write_audio
from core.context import build_context
from core.engine.catalog import Catalog, asr_checkpoint
from core.engine.demo_models.whisper import DEMO_MAX_NEW_TOKENS, demo_asr_complete
from core.engine.model_store import ModelStore, is_complete_asr
from core.engine.transcription import (
    ASR_SAMPLE_RATE,
    MAX_TOKENS,
    WINDOW_S,
    split_windows,
    token_cap,
)
from core.errors import AudioError, InvalidInput, ModelUnavailable
from core.settings import Settings
from core.types import LANGUAGES, CustomVoiceRequest, Mode, Sampling
from tests.conftest import make_demo_settings, spoken


@pytest.fixture
def asr_context(tmp_path, demo_checkpoints, demo_asr):
    return build_context(make_demo_settings(tmp_path / "data", demo_checkpoints, checkpoint_asr=demo_asr))


def test_demo_whisper_is_a_complete_whisper_folder(demo_asr):
    assert demo_asr_complete(demo_asr)
    assert is_complete_asr(demo_asr)
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(demo_asr)
    assert model.config.studio_demo is True
    assert model.generation_config.max_new_tokens == DEMO_MAX_NEW_TOKENS


def test_transcribes_real_speech_through_the_manager(asr_context, speech_wav):
    result = asr_context.transcriber.transcribe(str(speech_wav))
    assert result.text.strip()  # noise, but words of the demo vocabulary
    assert result.text.isprintable()
    assert result.demo is True
    assert result.model == "demo-whisper-small"
    assert result.language in LANGUAGES and result.language != "auto"  # the demo knows only studio languages
    assert result.language_code and len(result.language_code) == 2
    assert result.seconds == pytest.approx(load_audio(speech_wav).duration, abs=0.01)
    assert asr_context.models.resident_keys() == ["demo-whisper-small"]
    shown = result.as_dict()
    assert shown["language"] == result.language.capitalize()
    assert set(shown) >= {"text", "language", "seconds", "demo"}


def test_start_and_end_pick_the_part_transcribed(asr_context, speech_wav):
    result = asr_context.transcriber.transcribe(str(speech_wav), start_s=0.5, end_s=2.0)
    assert result.seconds == pytest.approx(1.5, abs=0.01)
    again = asr_context.transcriber.transcribe(load_audio(speech_wav), start_s=0.5, end_s=2.0)
    assert again.text == result.text  # greedy decoding: the same clip gives the same words


@pytest.mark.parametrize(
    "samples",
    [np.zeros(48_000, dtype=np.float32), np.full(48_000, 0.3, dtype=np.float32)],
    ids=["silence", "dc"],
)
def test_a_clip_without_speech_is_refused_before_loading(asr_context, samples):
    with pytest.raises(InvalidInput, match="no speech to transcribe in this 2.0 s clip"):
        asr_context.transcriber.transcribe(Audio(samples, 24_000))
    assert asr_context.models.resident_keys() == []  # refused before Whisper was loaded


def test_a_file_that_is_not_audio_is_refused(asr_context, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError):
        asr_context.transcriber.transcribe(str(bad))


def test_a_trim_past_the_end_is_refused(asr_context, speech_wav):
    with pytest.raises(InvalidInput, match="audio is only"):
        asr_context.transcriber.transcribe(str(speech_wav), start_s=60.0)


def test_asr_and_tts_share_max_resident_one(asr_context, speech_wav):
    """One model in memory at a time: Whisper evicts the TTS model and the next take evicts Whisper."""
    models = asr_context.models
    assert models.max_resident == 1
    asr_context.synthesis.synthesize(
        CustomVoiceRequest(text="Hi.", speaker="Ryan", size="0.6B", sampling=Sampling(seed=1, max_new_tokens=4))
    )
    assert models.resident_keys() == ["demo-0.6B-CustomVoice"]
    asr_context.transcriber.transcribe(str(speech_wav))
    assert models.resident_keys() == ["demo-whisper-small"]
    asr_context.synthesis.synthesize(
        CustomVoiceRequest(text="Hi.", speaker="Ryan", size="0.6B", sampling=Sampling(seed=1, max_new_tokens=4))
    )
    assert models.resident_keys() == ["demo-0.6B-CustomVoice"]
    rows = {row.key: row for row in models.status()}
    assert rows["demo-whisper-small"].mode == Mode.ASR
    assert rows["demo-whisper-small"].state == "downloaded"
    assert rows["demo-0.6B-CustomVoice"].state == "loaded"


def test_with_two_resident_both_stay_and_the_status_shows_whisper(asr_context, speech_wav):
    models = asr_context.models
    models.set_max_resident(2)
    asr_context.synthesis.synthesize(
        CustomVoiceRequest(text="Hi.", speaker="Ryan", size="0.6B", sampling=Sampling(seed=1, max_new_tokens=4))
    )
    asr_context.transcriber.transcribe(str(speech_wav))
    assert models.resident_keys() == ["demo-0.6B-CustomVoice", "demo-whisper-small"]
    row = next(r for r in models.status() if r.key == "demo-whisper-small")
    assert row.state == "loaded" and row.memory_bytes and row.memory_bytes > 0
    assert models.unload("demo-whisper-small") == ["demo-whisper-small"]


def test_demo_model_is_built_on_first_use_without_an_override(tmp_path, demo_checkpoints, speech_wav):
    context = build_context(make_demo_settings(tmp_path / "data", demo_checkpoints))
    assert next(r for r in context.models.status() if r.key == "demo-whisper-small").state == "not downloaded"
    result = context.transcriber.transcribe(str(speech_wav), end_s=1.5)
    assert result.demo
    assert demo_asr_complete(tmp_path / "data" / "demo-models" / "asr")


def test_offline_without_the_real_model_names_the_command(tmp_path, speech_wav):
    settings = Settings(
        data_dir=tmp_path / "data", hf_cache_dir=tmp_path / "hf", offline=True, device="cpu", dtype="float32"
    )
    context = build_context(settings)
    with pytest.raises(ModelUnavailable) as caught:
        context.transcriber.transcribe(str(speech_wav))
    message = str(caught.value)
    assert "openai/whisper-small is not downloaded" in message
    assert "`qwen-tts-studio models download whisper-small`" in message
    assert context.models.resident_keys() == []


def test_a_configured_whisper_folder_that_is_incomplete_says_so(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text("{}")
    settings = Settings(data_dir=tmp_path / "data", checkpoint_asr=tmp_path / "w", offline=True)
    with pytest.raises(ModelUnavailable, match="does not hold a complete Whisper model"):
        ModelStore(settings).require(Catalog(demo=False).asr)


def test_catalog_knows_the_asr_model_by_key_repo_and_demo_name():
    real, demo = Catalog(demo=False), Catalog(demo=True)
    assert real.asr.repo_id == "openai/whisper-small" and real.asr.mode == Mode.ASR
    assert real.get("whisper-small") is real.asr and real.get("openai/whisper-small") is real.asr
    assert demo.get("whisper-small").key == "demo-whisper-small"
    assert real.asr not in list(real)  # iterating gives the speaking checkpoints only
    assert real.every()[-1] is real.asr
    turbo = asr_checkpoint("openai/whisper-large-v3-turbo")
    assert (turbo.key, turbo.size, turbo.approx_gb) == ("whisper-large-v3-turbo", "large-v3-turbo", 1.62)
    assert Catalog(demo=False, asr_repo="openai/whisper-base").asr.key == "whisper-base"


def test_windows_cut_in_pauses_and_cover_the_clip():
    sr = ASR_SAMPLE_RATE
    samples = np.arange(int(70 * sr), dtype=np.float32)
    # Voiced stretches with pauses at 24-25 s and 52-53 s.
    segments = [(0.5, 24.0), (25.0, 52.0), (53.0, 69.0)]
    windows = split_windows(samples, segments)
    assert [round(len(w) / sr, 1) for w in windows] == [24.5, 28.0, 17.5]
    assert all(len(w) <= WINDOW_S * sr for w in windows)
    assert np.array_equal(np.concatenate(windows), samples)
    # No pause inside a window: it is cut at the limit.
    long_talk = split_windows(samples, [(0.0, 70.0)])
    assert [round(len(w) / sr) for w in long_talk] == [30, 30, 10]


def test_token_cap_is_bounded_by_seconds_and_the_model(asr_context, speech_wav):
    asr_context.transcriber.transcribe(str(speech_wav), end_s=1.0)
    bundle = asr_context.models.resident_models()[0].model
    assert token_cap(bundle, 1.0) == DEMO_MAX_NEW_TOKENS  # the demo's own cap wins
    bundle.model.generation_config.max_new_tokens = None
    assert token_cap(bundle, 1.0) == 28  # 12 a second + 16
    assert token_cap(bundle, 30.0) <= min(MAX_TOKENS, bundle.model.config.max_target_positions - 4)


def test_long_clip_is_transcribed_window_by_window(asr_context, tmp_path):
    clip = spoken(45.0, seed=2)
    path = write_audio(clip, tmp_path / "long.wav")
    result = asr_context.transcriber.transcribe(str(path))
    assert result.seconds == pytest.approx(45.0, abs=0.05)
    assert result.text.strip()


def test_chinese_is_decoded_with_the_simplified_prompt(asr_context, speech_wav):
    from core.engine.transcription import decode_window

    asr_context.transcriber.transcribe(str(speech_wav), end_s=1.0)
    bundle = asr_context.models.resident_models()[0].model
    window = np.asarray(load_audio(speech_wav, target_sr=ASR_SAMPLE_RATE).samples[:ASR_SAMPLE_RATE])
    text = decode_window(bundle, window, "zh")
    assert text and "以下是普通话" not in text  # the prompt steers, it is not part of the transcript


def _assert_timed(timings, seconds: float) -> None:
    """Times in order, each word inside the clip and no longer than its gap to the next."""
    assert timings.words, "real speech gives words"
    assert all(w.word and w.word == w.word.strip() for w in timings.words)
    assert all(0.0 <= w.start <= w.end <= seconds + 1e-3 for w in timings.words)
    for before, after in zip(timings.words, timings.words[1:]):
        assert before.end <= after.start + 1e-3


def test_word_timings_of_real_speech(asr_context):
    """espeak-ng speech over two Whisper windows: one entry per word, offsets added per window."""
    clip = spoken(34.0, seed=1)
    timings = asr_context.transcriber.word_timings(clip, language="english")
    _assert_timed(timings, clip.duration)
    assert timings.demo and timings.model == "demo-whisper-small"  # the demo's words are noise
    assert timings.language_code == "en" and timings.seconds == pytest.approx(34.0, abs=0.01)
    assert timings.words[-1].end > 3.0  # the second window's words are shifted past the first
    short = spoken(3.0, seed=1)
    timed = asr_context.transcriber.word_timings(short, language="english")
    _assert_timed(timed, short.duration)
    text = asr_context.transcriber.transcribe(short).text
    # The same greedy decoding as the transcript: its words, one entry each.
    assert "".join(w.word for w in timed.words) == "".join(text.split())


def test_word_timings_of_silence_are_empty(asr_context):
    timings = asr_context.transcriber.word_timings(Audio(np.zeros(48_000, dtype=np.float32), 24_000))
    assert timings.words == () and timings.language_code is None and timings.seconds == pytest.approx(2.0)
    assert asr_context.models.resident_keys() == []  # no speech, no Whisper loaded
