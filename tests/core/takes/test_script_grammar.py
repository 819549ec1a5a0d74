"""Script mode's languages: parsing scripts and castings, with errors that name the line."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.takes.script_grammar import (
    Casting,
    ScriptLine,
    VoiceSpec,
    casting_from,
    draft_casting,
    name_gender,
    parse_casting,
    parse_script,
    script_language,
)

SCRIPT = """\
# The scene: a dark house.
Narrator: It was a dark night.

Anna: Who's there?
Narrator: Nobody answered.
  The wind was loud.
"""


# --------------------------------------------------------------------------- parsing


def test_parse_skips_comments_and_blanks_and_joins_continuations():
    assert parse_script(SCRIPT) == [
        ScriptLine(2, "Narrator", "It was a dark night."),
        ScriptLine(4, "Anna", "Who's there?"),
        ScriptLine(5, "Narrator", "Nobody answered. The wind was loud."),
    ]


def test_unicode_names_spaces_and_full_width_colon():
    lines = parse_script("Фёдор Михайлович: Привет.\n小明：你好。\nOno Anna : こんにちは。\r\nNarrator (V.O.): Later.")
    assert [(line.speaker, line.text) for line in lines] == [
        ("Фёдор Михайлович", "Привет."),
        ("小明", "你好。"),
        ("Ono Anna", "こんにちは。"),
        ("Narrator (V.O.)", "Later."),
    ]
    assert [line.number for line in lines] == [1, 2, 3, 4]


def test_prose_with_a_colon_continues_and_a_backslash_forces_text():
    lines = parse_script("Anna: Listen.\nHe said, quietly: go.\nSee https://example.com\n\\Note: not a name")
    assert lines == [ScriptLine(1, "Anna", "Listen. He said, quietly: go. See https://example.com Note: not a name")]


@pytest.mark.parametrize(
    "script, message",
    [
        ("", "The script is empty"),
        ("# only a comment\n\n", "The script is empty"),
        (None, "The script is empty"),
        ("\n# intro\nOnce upon a time.\nAnna: Hi.", "Line 3: 'Once upon a time.' has no speaker"),
        ("Narrator: Hello.\n\nAnna:\nBob: Hi.", "Line 3: 'Anna:' has no text to speak."),
        ("Narrator: Hello.\nAnna：  ", "Line 2: 'Anna:' has no text to speak."),
    ],
)
def test_parse_errors_name_the_line(script, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_script(script)


def test_limits_on_lines_and_characters():
    parse_script("\n".join(f"A: line {i}." for i in range(5)), max_lines=5)
    with pytest.raises(InvalidInput, match="more than 5 lines.*line 6"):
        parse_script("\n".join(f"A: line {i}." for i in range(6)), max_lines=5)
    with pytest.raises(InvalidInput, match="60 characters to speak; the limit is 50"):
        parse_script("A: " + "x" * 30 + "\nB: " + "y" * 30, max_chars=50)
    with pytest.raises(InvalidInput, match="must be text"):
        parse_script(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- casting


def test_casting_grammar():
    casting = parse_casting("""
        # who is who
        Narrator = Ryan (calm, slow)
        Anna = voice: My Voice [English, 0.6B]
        Bob = speaker: Aiden [size=0.6b] (whispering)
        小明：Dylan [language=Chinese]
        Eve = Grandma (old)
    """)
    assert casting.get("narrator") == VoiceSpec(speaker="Ryan", instruct="calm, slow")
    assert casting.get("ANNA") == VoiceSpec(voice="My Voice", language="english", size="0.6B")
    assert casting.get("Bob") == VoiceSpec(speaker="Aiden", instruct="whispering", size="0.6B")
    assert casting.get("小明") == VoiceSpec(speaker="Dylan", language="chinese")
    # Not a built-in speaker: a library voice, whose name may end in parentheses.
    assert casting.get("Eve") == VoiceSpec(voice="Grandma (old)")
    assert "nobody" not in casting and len(casting) == 5
    # The text form round-trips.
    assert parse_casting(casting.as_text()) == casting


def test_casting_as_mapping_and_json():
    mapping = {
        "Narrator": {"speaker": "Ryan", "instruct": "whispering"},
        "Anna": {"voice": "My Voice", "language": "English", "size": "0.6b"},
        "Bob": "Aiden (cheerful)",
    }
    casting = casting_from(mapping)
    assert casting.get("Narrator") == VoiceSpec(speaker="Ryan", instruct="whispering")
    assert casting.get("Anna") == VoiceSpec(voice="My Voice", language="English", size="0.6B")
    assert casting.get("Bob") == VoiceSpec(speaker="Aiden", instruct="cheerful")
    import json

    assert parse_casting(json.dumps(mapping)) == casting
    assert casting_from(casting) is casting
    assert casting_from(None) == Casting({}) == parse_casting("  \n# nothing\n")


@pytest.mark.parametrize(
    "text, message",
    [
        ("Narrator = Ryan\nAnna Serena", "Casting line 2: 'Anna Serena' has no '='"),
        ("= Ryan", "Casting line 1: no name before '='"),
        ("Narrator =", "Casting line 1: no voice given"),
        ("Narrator = voice:", "Casting line 1: name the library voice"),
        ("A = Ryan\n\nB = Vivian\na = Serena", "Casting line 4: 'a' is already cast on line 1"),
        ("A = Ryan [Klingon]", "Casting line 1: 'Klingon' is not a language"),
        ("A = Ryan [English, French]", "Casting line 1: the language is given twice"),
        ("A = Ryan []", "Casting line 1: the \\[options\\] are empty"),
        ("A = speaker: Ryan [size=big]", "Casting line 1: 'big' is not a model size"),
        ("A = Ryan [language=xx]", "Casting line 1: Language 'xx' is not supported"),
        (
            '{"A": {"speaker": "Ryan", "voice": "V"}}',
            "Casting for 'A': give either a built-in speaker or a library voice",
        ),
        ('{"A": {"voice": "V", "instruct": "calm"}}', "style instruction only works with built-in speakers"),
        ('{"A": {"speker": "Ryan"}}', "Casting for 'A': unknown key speker"),
        ('{"A": 3}', "Casting for 'A': give a voice like"),
        ('{"A": "Ryan",', "looks like JSON but is not valid"),
    ],
)
def test_casting_errors_name_the_line(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_casting(text)


def test_draft_casting_fills_uncast_names_with_unused_speakers_of_the_scripts_language():
    drafted = draft_casting(SCRIPT + "anna: Again.\nBob: Me too.", "Narrator = Ryan")
    # Anna is a woman's name: no native English speaker is a woman, so a non-native one, told to
    # speak English; Bob gets Aiden, the other native English speaker.
    assert drafted.splitlines() == ["Narrator = Ryan", "Anna = Vivian [English]", "Bob = Aiden"]
    assert draft_casting("not a script", "A = Ryan") == "A = Ryan"


def test_an_english_dialogue_gets_the_english_speakers_one_each():
    # Issue 14: Maya and Tom were cast as Vivian and Serena, two Chinese voices; issue 23: then as
    # Ryan and Aiden, a man's voice for Maya. Names that tell a gender get a speaker of it.
    script = "Maya: Good morning, Tom.\nTom: Morning, Maya! Coffee?\nMaya: Please."
    assert draft_casting(script, "").splitlines() == ["Maya = Vivian [English]", "Tom = Ryan"]
    # With the language chosen, the setting applies to every voice: no tag is needed.
    assert draft_casting(script + "\nZoe: Me too.\nNarrator: Later.", "", "English").splitlines() == [
        "Maya = Vivian",
        "Tom = Ryan",
        "Zoe = Serena",
        "Narrator = Aiden",  # no gender in the name: the natives first
    ]


@pytest.mark.parametrize(
    ("name", "gender"),
    [("Maya", "female"), ("tom", "male"), ("Zoe Smith", "female"), ("Narrator", None), ("小明", None), ("R2", None)],
)
def test_a_first_name_tells_a_gender_or_nothing(name, gender):
    assert name_gender(name) == gender


def test_other_languages_get_their_native_speakers_with_genders_mixed():
    assert draft_casting("小明：你好。\n小红：你好！\n老王：吃了吗？", "").splitlines() == [
        "小明 = Vivian",
        "小红 = Uncle Fu",
        "老王 = Serena",
    ]
    assert draft_casting("A: こんにちは。\nB: はい。", "").splitlines() == ["A = Ono Anna", "B = Uncle Fu [Japanese]"]
    assert draft_casting("A: 안녕하세요.\nB: 네.", "", "Korean").splitlines() == ["A = Sohee", "B = Uncle Fu"]
    assert script_language("Hallo, wie geht's?") == "english"
