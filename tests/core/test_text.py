"""core.text: normalising, validating, sentence splitting, chunking, token caps."""

from __future__ import annotations

import re

import pytest

from core.errors import InvalidInput
from core.text import (
    chunk_text,
    estimate_max_new_tokens,
    normalize_text,
    split_sentences,
    validate_text,
)


def _visible(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --------------------------------------------------------------------------- normalize_text


def test_normalize_collapses_spaces_but_keeps_line_structure():
    raw = "  Hello,\t\tworld!   \r\n\r\n\r\n  Second   paragraph.\rThird line.\u2028Fourth.  "
    assert normalize_text(raw) == "Hello, world!\nSecond paragraph.\nThird line.\nFourth."


def test_normalize_removes_controls_and_invisible_characters():
    raw = "\ufeffbe\u200bll\x07 \u00adrin\x1bg\u2060s\x00"
    assert normalize_text(raw) == "bell rings"


def test_normalize_composes_to_nfc():
    decomposed = "Cafe\u0301 nai\u0308ve"
    out = normalize_text(decomposed)
    assert out == "Café naïve" and len(out) == 10


def test_normalize_keeps_cjk_emoji_and_rtl_text():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji made of three joined by ZWJ
    mixed = f"你好，世界！ こんにちは 안녕하세요 {family} 👍🏽 ❤️"
    assert normalize_text(mixed) == mixed
    hebrew = "\u202bשָׁלוֹם עוֹלָם\u202c"  # with a right-to-left embedding around it
    assert normalize_text(hebrew) == "שָׁלוֹם עוֹלָם"
    arabic = "مرحبا بالعالم؟"
    assert normalize_text(arabic) == arabic
    persian = "می\u200cخواهم"  # ZWNJ is part of the spelling
    assert normalize_text(persian) == persian


def test_normalize_keeps_curly_quotes_and_is_idempotent():
    text = "“Quoted,” she said — ‘twice’…"
    assert normalize_text(text) == text
    messy = " a \n\n b\t\u200b c "
    assert normalize_text(normalize_text(messy)) == normalize_text(messy)


# --------------------------------------------------------------------------- validate_text


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n", "\u200b\u200b", None])
def test_validate_refuses_empty_text(text):
    with pytest.raises(InvalidInput, match="^Enter some text to speak.$"):
        validate_text(text, max_chars=100)


def test_validate_refuses_over_long_text_with_numbers_people_can_read():
    with pytest.raises(InvalidInput) as caught:
        validate_text("a" * 123_456, max_chars=50_000)
    assert str(caught.value) == (
        "The text is 123,456 characters; the limit is 50,000. Split it or raise --max-text-chars."
    )


def test_validate_returns_normalised_text_and_counts_after_normalising():
    assert validate_text("  Hi\u200b  there ", max_chars=8) == "Hi there"
    assert validate_text("x" * 10, max_chars=10) == "x" * 10


# --------------------------------------------------------------------------- split_sentences


def test_split_english_respects_abbreviations_decimals_and_initials():
    text = (
        "Mr. Smith paid $3.14 for coffee, e.g. a flat white. Dr. Jones arrived at 5 p.m. today! "
        "Did J. R. R. Tolkien live in the U.S. at all? See No. 5 on p. 12. I said no. "
        "Then we left… quietly. “Really?” she asked. Visit example.com now."
    )
    assert split_sentences(text) == [
        "Mr. Smith paid $3.14 for coffee, e.g. a flat white.",
        "Dr. Jones arrived at 5 p.m. today!",
        "Did J. R. R. Tolkien live in the U.S. at all?",
        "See No. 5 on p. 12.",
        "I said no.",
        "Then we left… quietly.",
        "“Really?” she asked.",
        "Visit example.com now.",
    ]


def test_split_decimal_at_the_end_of_a_sentence():
    assert split_sentences("The value is 3.14. Next comes 2.72.") == [
        "The value is 3.14.",
        "Next comes 2.72.",
    ]


def test_split_chinese_and_japanese():
    text = "你好。我很好！你呢？今天天气不错；他说：“走吧。”然后走了。今日は晴れです。"
    assert split_sentences(text) == [
        "你好。",
        "我很好！",
        "你呢？",
        "今天天气不错；",
        "他说：“走吧。”",
        "然后走了。",
        "今日は晴れです。",
    ]


def test_split_mixed_scripts_and_line_breaks():
    text = "Hello world. 你好世界。Bonjour!\n1. Preheat the oven\n2. Bake it\nمرحبا؟ كيف حالك"
    assert split_sentences(text) == [
        "Hello world.",
        "你好世界。",
        "Bonjour!",
        "1. Preheat the oven",
        "2. Bake it",
        "مرحبا؟",
        "كيف حالك",
    ]


def test_split_never_returns_empty_sentences():
    assert split_sentences("") == []
    assert split_sentences("...\n\n!!! ?") == ["...", "!!!", "?"]
    assert all(s.strip() == s and s for s in split_sentences(" a. B.  \n\n c? "))


# --------------------------------------------------------------------------- chunk_text

_LONG_ENGLISH = " ".join(
    [
        "The studio reads long texts in pieces, and every piece must be short enough for the model.",
        "Mr. Brown measured 3.5 metres of cable; it was, as expected, too short by half a metre.",
        "A sentence that keeps going, clause after clause, with commas, semicolons; colons: and more,"
        " until it is far longer than a chunk may be and has to be cut at its clause boundaries instead.",
    ]
    * 6
)
_LONG_CHINESE = "今天天气很好，我们一起去公园散步，然后去吃饭。" * 30 + "这是一个非常长的句子没有任何标点符号" * 20


def _check_chunks(text: str, chunks: list[str], max_chars: int) -> None:
    assert chunks, "no chunks"
    assert all(chunk and chunk == chunk.strip() for chunk in chunks)
    assert all(len(chunk) <= max_chars for chunk in chunks)
    assert _visible("".join(chunks)) == _visible(text)  # nothing lost, nothing reordered
    # Each chunk is a verbatim slice of the text, so inner spacing is untouched.
    position = 0
    for chunk in chunks:
        found = text.find(chunk, position)
        assert found >= position
        position = found + len(chunk)


@pytest.mark.parametrize("max_chars", [40, 120, 300])
@pytest.mark.parametrize("text", [_LONG_ENGLISH, _LONG_CHINESE], ids=["english", "chinese"])
def test_chunks_preserve_text_and_respect_the_limit(text, max_chars):
    _check_chunks(text, chunk_text(text, max_chars), max_chars)


def test_chunks_pack_whole_sentences_when_they_fit():
    text = "One. Two. Three. Four."
    assert chunk_text(text, 300) == [text]
    assert chunk_text(text, 10) == ["One. Two.", "Three.", "Four."]


def test_long_sentence_splits_at_clauses_before_spaces():
    sentence = "alpha beta gamma, delta epsilon zeta; eta theta iota kappa"
    assert chunk_text(sentence, 25) == ["alpha beta gamma,", "delta epsilon zeta;", "eta theta iota kappa"]


def test_clause_split_keeps_numbers_whole():
    text = "It cost 1,000,000 dollars at 12:30 on the dot and then some more words follow here"
    chunks = chunk_text(text, 30)
    _check_chunks(text, chunks, 30)
    assert any("1,000,000" in chunk for chunk in chunks)
    assert any("12:30" in chunk for chunk in chunks)


def test_chinese_long_sentence_splits_at_full_width_commas():
    text = "我们今天去公园，" * 10
    chunks = chunk_text(text, 20)
    assert all(chunk.endswith("，") for chunk in chunks)
    _check_chunks(text, chunks, 20)


@pytest.mark.parametrize("run", ["字" * 5_000, "a" * 5_000], ids=["chinese", "latin"])
def test_runs_without_punctuation_or_spaces_are_hard_split(run):
    chunks = chunk_text(run, 300)
    assert [len(c) for c in chunks] == [300] * 16 + [200]
    assert "".join(chunks) == run


def test_hard_split_does_not_break_emoji_or_accents():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    text = "x" * 8 + family + "y" * 8
    chunks = chunk_text(text, 10)
    assert any(family in chunk for chunk in chunks)
    accented = "e\u0301" * 20  # decomposed on purpose: each letter is two code points
    assert all(not chunk.startswith("\u0301") for chunk in chunk_text(accented, 7))
    _check_chunks(accented, chunk_text(accented, 7), 7)


def test_chunk_edge_cases():
    assert chunk_text("") == []
    assert chunk_text("   \n  ") == []
    assert chunk_text("Hi.") == ["Hi."]
    with pytest.raises(ValueError):
        chunk_text("text", 0)


# --------------------------------------------------------------------------- estimate_max_new_tokens


def test_token_cap_grows_with_text_and_is_clamped():
    caps = [estimate_max_new_tokens("word " * n) for n in (1, 10, 40, 80, 160, 5_000)]
    assert caps == sorted(caps)
    assert caps[0] == 48  # floor
    assert caps[-1] == 2048  # ceiling
    assert caps[2] < caps[3] < caps[4]


def test_token_cap_is_monotone_character_by_character():
    text = "Hello there, 你好！ It is 2024 — 100% ready 👍. " * 6
    caps = [estimate_max_new_tokens(text[:i]) for i in range(len(text) + 1)]
    assert all(a <= b for a, b in zip(caps, caps[1:]))


def test_token_cap_gives_cjk_more_frames_per_character():
    latin, chinese = "a" * 100, "字" * 100
    assert estimate_max_new_tokens(chinese) > 2 * estimate_max_new_tokens(latin)


def test_token_cap_covers_slow_speech():
    # 300 characters of English is ~20 s at a normal pace; the cap must allow far more.
    text = ("This is an ordinary sentence spoken at a normal pace. " * 6)[:300]
    seconds = estimate_max_new_tokens(text) / 12.5
    assert 40 < seconds < 120
    # 100 Chinese characters take ~25 s; the cap allows slow reading.
    assert estimate_max_new_tokens("字" * 100) / 12.5 > 40


def test_token_cap_respects_custom_frame_rate_and_bounds():
    text = "A moderately long sentence for the test. " * 3
    assert estimate_max_new_tokens(text, frames_per_second=25) > estimate_max_new_tokens(text)
    assert estimate_max_new_tokens(text, floor=1_000, ceiling=1_000) == 1_000
    with pytest.raises(ValueError):
        estimate_max_new_tokens(text, floor=10, ceiling=5)
