"""Take QA on real audio: espeak-ng speech, silence and tones; words from the real ASR path."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.clip import Audio
from core.audio.io import load_audio
from core.context import build_context
from core.engine.transcription import WordTiming, WordTimings
from core.errors import InvalidInput
from core.projects.model import QAVerdict, WordTime
from core.projects.qa import (
    DEMO_NOTE,
    QAThresholds,
    check_take,
    expected_seconds,
    hear,
    normalise_for_wer,
    unspaced_script,
)
from core.takes.job import plan_text
from core.text_lexicon import Lexicon
from tests.conftest import SPEECH_TEXT, make_demo_settings

SR = 24_000


@pytest.fixture(scope="module")
def speech(speech_wav) -> Audio:
    """SPEECH_TEXT read by espeak-ng (about 5 s), at the studio's 24 kHz."""
    return load_audio(speech_wav)


def heard(text: str, *, demo: bool = False, code: str | None = "en") -> WordTimings:
    """What an ASR would answer for ``text``: its words, a third of a second each."""
    words = tuple(WordTiming(w, round(i / 3, 3), round(i / 3 + 0.3, 3)) for i, w in enumerate(text.split()))
    return WordTimings(words, code, len(words) / 3, demo, "test")


def tone(seconds: float, amplitude: float, hz: float = 220.0) -> Audio:
    t = np.arange(int(seconds * SR)) / SR
    return Audio(np.clip(amplitude * np.sin(2 * np.pi * hz * t), -1.0, 1.0), SR)


def silence(seconds: float) -> Audio:
    return Audio(np.zeros(int(seconds * SR), np.float32), SR)


def join(*clips: Audio) -> Audio:
    return Audio(np.concatenate([c.samples for c in clips]), SR)


# --------------------------------------------------------------------------- sound


def test_clean_speech_passes_and_says_the_words_were_not_checked_without_an_asr(speech):
    verdict = check_take(speech, SPEECH_TEXT, None, language="english")
    assert verdict.passed
    assert verdict.reasons == ("words not checked: no speech recogniser was available",)
    assert verdict.wer is None and verdict.heard == "" and verdict.words == ()
    # espeak-ng reads at about the studio's estimated pace
    assert 0.6 < verdict.duration_ratio < 1.4
    assert verdict.longest_silence_s < 1.0  # pauses between its sentences are short
    assert verdict.clipped_fraction == 0.0


def test_silence_inside_the_block_is_flagged_with_where_it_is(speech):
    cut = int(speech.duration / 2 * SR)
    spliced = join(Audio(speech.samples[:cut], SR), silence(3.0), Audio(speech.samples[cut:], SR))
    verdict = check_take(spliced, SPEECH_TEXT, None, language="english")
    assert not verdict.passed
    assert verdict.longest_silence_s == pytest.approx(3.0, abs=0.3)
    (reason,) = [r for r in verdict.reasons if "silence" in r]
    assert reason.startswith(f"{verdict.longest_silence_s:.1f} s of silence inside the block at ")
    where = float(reason.split(" at ")[1].split(" s")[0])
    assert where == pytest.approx(speech.duration / 2, abs=0.5)


def test_leading_and_trailing_silence_do_not_count(speech):
    padded = join(silence(2.5), speech, silence(2.5))
    verdict = check_take(padded, SPEECH_TEXT, None, language="english")
    assert verdict.passed, verdict.reasons
    assert verdict.longest_silence_s < 1.0


def test_a_silent_take_is_flagged(speech):
    verdict = check_take(silence(speech.duration), SPEECH_TEXT, None)
    assert not verdict.passed and "is silent" in verdict.reasons
    assert verdict.longest_silence_s == 0.0  # one silence from end to end is not a pause inside speech


def test_a_runaway_take_is_caught_by_its_length(speech):
    looped = join(speech, speech, speech)  # a model that does not stop: it says it all again
    verdict = check_take(looped, SPEECH_TEXT, None, language="english")
    assert not verdict.passed
    expected = expected_seconds(SPEECH_TEXT)
    assert verdict.duration_ratio == pytest.approx(looped.duration / expected)
    assert verdict.duration_ratio > 2.0
    assert f"runs {verdict.duration_ratio:.1f}x longer than expected" in verdict.reasons[0]


def test_a_truncated_take_is_caught_where_its_sound_ends(speech):
    cut = Audio(speech.samples[: int(0.4 * expected_seconds(SPEECH_TEXT) * SR)], SR)
    verdict = check_take(cut, SPEECH_TEXT, None, language="english")
    assert not verdict.passed
    assert any(
        r.endswith("x the expected length (cut short?)") and r.startswith("ends at 0.4x") for r in verdict.reasons
    )
    # the same cut followed by silence ends just as early
    trailing = check_take(join(cut, silence(4.0)), SPEECH_TEXT, None, language="english")
    assert any("cut short?" in r for r in trailing.reasons)


def test_a_short_block_is_not_a_runaway_for_the_silence_around_it():
    hello = "Yes."  # about 0.3 s of speech in 0.9 s of take
    verdict = check_take(join(silence(0.3), tone(0.3, 0.3), silence(0.3)), hello, None, language="english")
    assert not any("longer than expected" in r for r in verdict.reasons)


def test_a_clean_tone_is_not_clipped_and_a_clipped_one_is():
    clean = check_take(tone(5.0, 0.5), SPEECH_TEXT, None)
    assert clean.clipped_fraction == 0.0 and clean.passed
    clipped = check_take(tone(5.0, 2.0), SPEECH_TEXT, None)
    # a sine at twice full scale sits at the rails for about two thirds of its samples
    assert clipped.clipped_fraction == pytest.approx(2 / 3, abs=0.02)
    assert not clipped.passed
    assert f"{clipped.clipped_fraction:.1%} of the samples are clipped (at most 0.1% allowed)" in clipped.reasons


def test_expected_length_is_the_studios_one_estimate():
    assert expected_seconds(SPEECH_TEXT) == pytest.approx(plan_text(SPEECH_TEXT, 300).speech_s)
    assert expected_seconds("你好世界。") == pytest.approx(plan_text("你好世界。", 300).speech_s)
    assert expected_seconds("你好世界。") > expected_seconds("hello")  # dense scripts are slower per character
    assert expected_seconds("") == 0.0
    with pytest.raises(InvalidInput, match="Klingon"):
        expected_seconds("hello", "Klingon")


# --------------------------------------------------------------------------- words


def test_matching_words_pass_in_any_case_punctuation_and_number_form(speech):
    text = "The keeper lit 42 lamps at 9. Mr. Smith watched!"
    verdict = check_take(
        speech, text, heard("the keeper lit forty-two lamps at nine mister smith watched"), language="english"
    )
    assert verdict.wer == 0.0 and verdict.cer == 0.0
    assert not any("heard" in r for r in verdict.reasons)
    assert normalise_for_wer(text, english=True) == "the keeper lit 42 lamps at 9 mister smith watched"


def test_a_word_mismatch_names_the_worst_differing_stretch(speech):
    text = "The lighthouse keeper slept."
    verdict = check_take(speech, text, heard("the housekeeper slept"), language="english")
    assert verdict.wer == pytest.approx(2 / 4)  # one substitution and one deletion in four words
    assert not verdict.passed
    assert verdict.reasons[0] == (
        "heard 'the housekeeper' for 'the lighthouse keeper' (word error rate 50%, at most 35% allowed)"
    )
    assert verdict.heard == "the housekeeper slept"
    lenient = check_take(speech, text, heard("the housekeeper slept"), thresholds=QAThresholds(max_wer=0.5))
    assert not any(r.startswith("heard") for r in lenient.reasons)  # at the limit is within it


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("the old man walked slowly", "heard 'walked slowly' for 'walked down to the sea at dawn'"),
        ("the old man walked down to", "missed 'the sea at dawn'"),
        (
            "the old man walked down to the sea at dawn and then he sang and danced",
            "heard 'and then he sang and danced', which is not in the text",
        ),
        ("", "heard no words (expected 'the old man walked down to the sea…')"),
        ("purple monkey dishwasher", "heard 'purple monkey dishwasher' for 'the old man walked down to the sea…'"),
    ],
    ids=["substituted", "missed", "inserted", "nothing", "other"],
)
def test_each_kind_of_mismatch_reads_as_a_sentence(speech, said, reason):
    text = "The old man walked down to the sea at dawn."
    verdict = check_take(speech, text, heard(said), language="english")
    assert not verdict.passed
    assert verdict.reasons[0].startswith(reason + " (word error rate ")
    assert verdict.wer > 0.35


def test_words_are_checked_against_the_text_the_model_read(speech):
    """The lexicon changed "Qwen" to "Chwen": the model said "Chwen", so that is right."""
    text = "Qwen reads the whole chapter aloud."
    spoken = Lexicon.from_values([{"pattern": "Qwen", "spoken": "Chwen"}]).apply(text, "english")
    said = heard("Chwen reads the whole chapter aloud")
    assert check_take(speech, text, said, language="english", spoken_text=spoken).wer == 0.0
    assert check_take(speech, text, said, language="english").wer == pytest.approx(1 / 6)


def test_scripts_without_spaces_are_decided_by_characters(speech):
    text = "灯塔看守人爬上了楼梯。"
    assert unspaced_script(text) and unspaced_script("hello", "japanese")
    assert not unspaced_script("등대지기가 계단을 올라갔다.")  # Korean spaces its words
    said = WordTimings(
        tuple(WordTiming(ch, i * 0.2, i * 0.2 + 0.2) for i, ch in enumerate("管家爬上了楼梯")), "zh", 2.0, False, "t"
    )
    verdict = check_take(speech, text, said, language="chinese")
    assert verdict.wer == verdict.cer == pytest.approx(5 / 10)  # 3 characters for 5: 3 substituted, 2 missed
    assert verdict.heard == "管家爬上了楼梯"
    assert verdict.reasons[0].startswith("heard '管家' for '灯塔看守人' (character error rate 50%")
    ok = WordTimings(tuple(WordTiming(ch, 0.0, 0.1) for ch in "灯塔看守人爬上了楼梯"), "zh", 2.0, False, "t")
    assert check_take(speech, text, ok, language="auto").cer == 0.0


def test_the_demo_asr_still_decides_and_says_so(speech):
    verdict = check_take(speech, SPEECH_TEXT, heard("alpha beta gamma", demo=True), language="english")
    assert verdict.demo is True and not verdict.passed
    assert verdict.reasons[0].endswith(DEMO_NOTE)
    matching = check_take(speech, SPEECH_TEXT, heard(SPEECH_TEXT, demo=True), language="english")
    assert matching.demo is True and matching.passed


def test_verdict_keeps_the_heard_words_and_round_trips(speech):
    said = heard("the quick brown fox")
    verdict = check_take(speech, SPEECH_TEXT, said, language="english")
    assert verdict.words == tuple(WordTime(w.word, w.start, w.end) for w in said.words)
    assert QAVerdict.from_dict(verdict.as_dict()) == verdict


def test_thresholds_refuse_nonsense():
    with pytest.raises(InvalidInput, match="max_wer must be above 0"):
        QAThresholds(max_wer=0)
    with pytest.raises(InvalidInput, match="truncated ratio must be below its runaway ratio"):
        QAThresholds(runaway_ratio=1.0, truncated_ratio=1.5)
    with pytest.raises(InvalidInput, match="fraction from 0 to 1"):
        QAThresholds(max_clipped_fraction=2)


# --------------------------------------------------------------------------- the real ASR path


def test_hear_runs_the_model_managers_asr_and_the_verdict_uses_its_words(tmp_path, demo_checkpoints, demo_asr, speech):
    """One load of the demo Whisper: hear() through the model manager, then the whole check."""
    ctx = build_context(make_demo_settings(tmp_path / "data", demo_checkpoints, checkpoint_asr=demo_asr))
    timings = hear(ctx.transcriber, speech, "english")
    assert ctx.models.resident_keys() == ["demo-whisper-small"]
    assert timings.demo and timings.words and timings.language_code == "en"
    verdict = check_take(speech, SPEECH_TEXT, timings, language="english")
    assert verdict.demo is True
    assert verdict.words == tuple(WordTime(w.word, w.start, w.end) for w in timings.words)
    assert all(0.0 <= w.start <= w.end <= speech.duration + 1e-3 for w in verdict.words)
    assert verdict.heard == " ".join(w.word for w in timings.words)
    # the demo's random words do not match the text: the word rule fails the take, and says it was the demo
    assert not verdict.passed and verdict.wer > 0.35
    assert verdict.reasons[0].endswith(DEMO_NOTE)
    assert hear(ctx.transcriber, silence(2.0)).words == ()  # a silent take has no words, and no error
