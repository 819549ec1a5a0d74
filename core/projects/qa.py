"""Take QA: does a rendered block say its text, at about the right length, cleanly?

Each check gives a human sentence when it fails (docs/PROJECTS.md "Take QA" lists the
thresholds and why):

- **words**: the model manager's ASR (Whisper, :func:`hear`) hears the take; its words are
  compared with the text the model was given (``spoken_text``: after the pronunciation
  lexicon) by word error rate, or by character error rate for scripts written without
  spaces (Chinese, Japanese). Both sides are normalised first with Whisper's own
  evaluation normalisers (case, punctuation, and for English numbers: "forty-two" and "42"
  are the same word), and the rates come from ``jiwer``. A mismatch names the worst
  differing stretch: "heard 'the housekeeper' for 'the lighthouse keeper'".
- **length**: the take against the studio's speaking-rate estimate
  (:func:`core.text.speech_seconds`, the same one the take plan shows): a take that runs on
  ("runs 2.6x longer than expected") or whose sound ends too early ("cut short?").
- **silence** inside the block (leading and trailing silence does not count).
- **clipping**: the share of samples at full scale (:func:`core.audio.analysis.analyze`).

In demo mode the ASR is the random-weight demo Whisper: its words are noise. The word rule
still applies (so the flag and re-take path runs end to end on the demo models), and the
verdict says so: ``demo`` is set and the word reason ends "(demo ASR: random words)".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import jiwer
import librosa
import numpy as np

from core import text as textlib
from core.audio.analysis import CLIPPED_RATIO_WARN, SILENCE_DBFS, SILENCE_FRAME_SECONDS, analyze
from core.audio.clip import Audio
from core.errors import InvalidInput
from core.projects.model import QAVerdict, WordTime
from core.types import normalize_language

if TYPE_CHECKING:
    from core.engine.transcription import Transcriber, WordTimings

__all__ = ["QAThresholds", "check_take", "expected_seconds", "hear", "normalise_for_wer", "unspaced_script"]

# A take may run this much past the runaway limit before it counts: the model puts a
# little silence before and after its speech, which is most of a one-word block's length.
DURATION_SLACK_S = 0.5
SPAN_WORDS = 8  # a quoted stretch longer than this is shortened with "…"
DEMO_NOTE = " (demo ASR: random words)"
_UNSPACED_LANGUAGES = ("chinese", "japanese")


@dataclass(frozen=True)
class QAThresholds:
    """When a take fails (docs/PROJECTS.md "Take QA" gives each one's source)."""

    max_wer: float = 0.35  # words: more than about one word in three wrong
    max_cer: float = 0.25  # characters, for scripts without spaces
    runaway_ratio: float = 2.0  # longer than twice the expected length (issue 24)
    truncated_ratio: float = 0.5  # sound ends before half the expected length (issue 24)
    max_inner_silence_s: float = 2.0  # a pause inside a paragraph longer than this (issue 24)
    max_clipped_fraction: float = CLIPPED_RATIO_WARN  # 0.1 % of samples at full scale is audible

    def __post_init__(self) -> None:
        for name in ("max_wer", "max_cer", "runaway_ratio", "truncated_ratio", "max_inner_silence_s"):
            if not float(getattr(self, name)) > 0:
                raise InvalidInput(f"The QA threshold {name} must be above 0.")
        if not 0 <= self.max_clipped_fraction <= 1:
            raise InvalidInput("The QA threshold max_clipped_fraction is a fraction from 0 to 1.")
        if self.truncated_ratio >= self.runaway_ratio:
            raise InvalidInput("The QA's truncated ratio must be below its runaway ratio.")


def expected_seconds(text: str, language: str = "auto") -> float:
    """About how long ``text`` takes to say: the studio's one speaking-rate estimate
    (:func:`core.text.speech_seconds`, about 15 characters a second in spaced scripts and 5
    in Chinese, Japanese and Korean). The rate follows the script, so ``language`` only
    has to be one the studio speaks."""
    normalize_language(language)
    return textlib.speech_seconds(textlib.normalize_text(text or ""))


def hear(transcriber: Transcriber, audio: Audio, language: str = "auto") -> WordTimings:
    """The words of a take with their times, from the model manager's ASR (Whisper).

    ``language`` is a studio language; "auto" lets Whisper detect it. Raises what the
    transcriber raises when the ASR cannot be loaded (the caller then checks without words).
    """
    lang = normalize_language(language)
    return transcriber.word_timings(audio, language=None if lang == "auto" else lang)


def check_take(
    audio: Audio,
    text: str,
    heard: WordTimings | None,
    *,
    language: str = "auto",
    spoken_text: str | None = None,
    thresholds: QAThresholds = QAThresholds(),
) -> QAVerdict:
    """Every check on one take; ``passed`` when none failed.

    ``spoken_text`` is the text after the lexicon (what the model read): the words and the
    expected length are measured against it when given. ``heard`` None means no ASR was
    available: the words are not checked (a reason says so, and does not fail the take).
    """
    lang = normalize_language(language)
    reference = textlib.normalize_text(spoken_text if spoken_text is not None else text or "")
    failures: list[str] = []
    notes: list[str] = []

    wer = cer = None
    heard_text = ""
    words: tuple[WordTime, ...] = ()
    demo = False
    if heard is None:
        notes.append("words not checked: no speech recogniser was available")
    else:
        demo = heard.demo
        words = tuple(WordTime(w.word, float(w.start), float(w.end)) for w in heard.words)
        unspaced = unspaced_script(reference, lang)
        heard_text = ("" if unspaced else " ").join(w.word.strip() for w in heard.words).strip()
        english = _english(reference, lang, heard)
        word_check = _compare_words(reference, heard_text, unspaced=unspaced, english=english, thresholds=thresholds)
        if word_check is not None:
            wer, cer, mismatch = word_check
            if mismatch:
                failures.append(mismatch + (DEMO_NOTE if demo else ""))

    duration_ratio, length_reasons, longest_silence = _check_sound(audio, reference, lang, thresholds)
    failures.extend(length_reasons)

    clipped = analyze(audio).clipped_ratio if len(audio) else 0.0
    if clipped > thresholds.max_clipped_fraction:
        failures.append(
            f"{clipped:.1%} of the samples are clipped (at most {thresholds.max_clipped_fraction:.1%} allowed)"
        )

    return QAVerdict(
        passed=not failures,
        reasons=tuple(failures + notes),
        wer=wer,
        cer=cer,
        heard=heard_text,
        duration_ratio=duration_ratio,
        longest_silence_s=longest_silence,
        clipped_fraction=clipped,
        demo=demo,
        words=words,
    )


# --------------------------------------------------------------------------- words


def unspaced_script(text: str, language: str = "auto") -> bool:
    """True for text written without spaces between words (Chinese, Japanese): its
    character error rate decides. Korean puts spaces between words, so words decide there."""
    if language in _UNSPACED_LANGUAGES:
        return True
    if language != "auto":
        return False
    letters = [ch for ch in text if ch.isalpha()]
    dense = sum(1 for ch in letters if textlib._is_cjk(ch) and not 0xAC00 <= ord(ch) <= 0xD7AF)
    return bool(letters) and dense * 2 > len(letters)


def normalise_for_wer(text: str, *, english: bool) -> str:
    """What the rates compare: Whisper's evaluation normalisers (transformers' copy).

    English: lower case, no punctuation, contractions and spelled-out numbers made one form
    ("forty-two" and "42", "Mr." and "mister"); other languages: lower case, punctuation and
    symbols removed. Both sides of a comparison go through the same one."""
    return " ".join(_normaliser(english)(text).split())


@cache  # built once: the English one compiles its word and number tables
def _normaliser(english: bool) -> Callable[[str], str]:
    # Deferred: importing transformers loads torch, which the project's store and lists do not need.
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer, EnglishTextNormalizer

    normaliser: Callable[[str], str] = EnglishTextNormalizer({}) if english else BasicTextNormalizer()
    return normaliser


def _english(reference: str, language: str, heard: WordTimings) -> bool:
    if language != "auto":
        return language == "english"
    if heard.language_code and not heard.demo:
        return heard.language_code == "en"
    letters = [ch for ch in reference if ch.isalpha()]
    return bool(letters) and all(ch.isascii() for ch in letters)


def _compare_words(
    reference: str, heard_text: str, *, unspaced: bool, english: bool, thresholds: QAThresholds
) -> tuple[float, float, str] | None:
    """(rate that decides, CER, the mismatch sentence or ""); None when the text has nothing to say."""
    ref = normalise_for_wer(reference, english=english)
    hyp = normalise_for_wer(heard_text, english=english)
    if not ref:
        return None
    if unspaced:
        ref, hyp = "".join(ref.split()), "".join(hyp.split())
    chars = jiwer.process_characters(ref, hyp)
    cer = float(chars.cer)
    if unspaced:
        rate, limit, unit = cer, thresholds.max_cer, "character"
        output: Any = chars
    else:
        output = jiwer.process_words(ref, hyp)
        rate, limit, unit = float(output.wer), thresholds.max_wer, "word"
    if rate <= limit:
        return rate, cer, ""
    ref_tokens, hyp_tokens = list(output.references[0]), list(output.hypotheses[0])
    joiner = "" if unspaced else " "
    if not hyp_tokens:
        what = f"heard no words (expected '{_quote(ref_tokens, joiner)}')"
    else:
        what = _worst_span(ref_tokens, hyp_tokens, output.alignments[0], joiner)
    return rate, cer, f"{what} ({unit} error rate {rate:.0%}, at most {limit:.0%} allowed)"


def _worst_span(ref: list[str], hyp: list[str], chunks: Sequence[Any], joiner: str) -> str:
    """The longest stretch where the take differs from the text, as a sentence.

    jiwer's alignment gives runs of equal, substituted, deleted and inserted words; runs
    that touch are one stretch ("lighthouse keeper" heard as "housekeeper" is a substitution
    then a deletion). A substitution is quoted with the word before it, as a listener says it.
    """
    spans: list[list[int]] = []  # [ref_start, ref_end, hyp_start, hyp_end]
    for chunk in chunks:
        if chunk.type == "equal":
            continue
        if spans and spans[-1][1] == chunk.ref_start_idx and spans[-1][3] == chunk.hyp_start_idx:
            spans[-1][1], spans[-1][3] = chunk.ref_end_idx, chunk.hyp_end_idx
        else:
            spans.append([chunk.ref_start_idx, chunk.ref_end_idx, chunk.hyp_start_idx, chunk.hyp_end_idx])
    rs, re_, hs, he = max(spans, key=lambda s: max(s[1] - s[0], s[3] - s[2]))
    if he == hs:
        return f"missed '{_quote(ref[rs:re_], joiner)}'"
    if re_ == rs:
        return f"heard '{_quote(hyp[hs:he], joiner)}', which is not in the text"
    if rs > 0 and hs > 0 and ref[rs - 1] == hyp[hs - 1]:
        rs, hs = rs - 1, hs - 1
    return f"heard '{_quote(hyp[hs:he], joiner)}' for '{_quote(ref[rs:re_], joiner)}'"


def _quote(tokens: Sequence[str], joiner: str) -> str:
    limit = SPAN_WORDS if joiner else SPAN_WORDS * 3
    shown = joiner.join(tokens[:limit])
    return shown + ("…" if len(tokens) > limit else "")


# --------------------------------------------------------------------------- sound


def _check_sound(
    audio: Audio, reference: str, language: str, thresholds: QAThresholds
) -> tuple[float | None, list[str], float]:
    """(take length / expected length, failures, longest silence inside the block)."""
    reasons: list[str] = []
    spans = _sounding_spans(audio)
    gaps = [(end, start - end) for (_, end), (start, _) in zip(spans, spans[1:])]
    at, longest = max(gaps, key=lambda g: g[1], default=(0.0, 0.0))
    if longest > thresholds.max_inner_silence_s:
        reasons.append(
            f"{longest:.1f} s of silence inside the block at {at:.1f} s "
            f"(at most {thresholds.max_inner_silence_s:.0f} s allowed)"
        )
    if not spans:
        reasons.append("is silent" if len(audio) else "has no audio")
    expected = expected_seconds(reference, language)
    if expected <= 0:
        return None, reasons, longest
    ratio = audio.duration / expected
    if audio.duration > thresholds.runaway_ratio * expected + DURATION_SLACK_S:
        reasons.append(
            f"runs {ratio:.1f}x longer than expected ({audio.duration:.1f} s for about {expected:.1f} s of text)"
        )
    elif spans and spans[-1][1] < thresholds.truncated_ratio * expected:
        reasons.append(f"ends at {spans[-1][1] / expected:.1f}x the expected length (cut short?)")
    return ratio, reasons, longest


def _sounding_spans(audio: Audio) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch with sound, in the reference analysis' own terms:
    a 50 ms frame under -50 dBFS RMS is silence (core/audio/analysis.py)."""
    if not len(audio):
        return []
    frame = max(1, int(round(SILENCE_FRAME_SECONDS * audio.sample_rate)))
    # ref=1.0 makes librosa's threshold absolute: top_db below full scale, not below the loudest frame.
    intervals = librosa.effects.split(
        np.asarray(audio.samples), top_db=-SILENCE_DBFS, ref=1.0, frame_length=frame, hop_length=frame
    )
    sr = audio.sample_rate
    return [(float(a) / sr, float(b) / sr) for a, b in intervals]
