"""The pronunciation lexicon: matching rules, storage, every mode, and regenerate."""

from __future__ import annotations

import json

import pytest

from core.errors import InvalidInput
from core.takes.service import TakeJob, TakeService
from core.text_lexicon import EMPTY_VERSION, Lexicon, LexiconStore
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Sampling
from tests.conftest import spoken

FAST = Sampling(seed=7, max_new_tokens=8)


def test_words_match_whole_and_any_case_regex_and_language():
    lexicon = Lexicon.from_values(
        [
            {"pattern": "Qwen", "spoken": "Chwen"},
            {"pattern": r"\bv(\d+)\b", "spoken": "version", "regex": True},
            {"pattern": "GIF", "spoken": "jif", "language": "english"},
        ]
    )
    assert lexicon.apply("qwen and QWEN, not Qwenny.") == "Chwen and Chwen, not Qwenny."
    assert lexicon.apply("Use v2 now.") == "Use version now."
    assert lexicon.apply("A GIF.", "english") == "A jif."
    assert lexicon.apply("A GIF.", "german") == "A GIF."


def test_a_regex_spoken_form_uses_its_groups_and_a_word_keeps_backslashes():
    lexicon = Lexicon.from_values(
        [
            {"pattern": r"\bEp\.? ?(\d+)", "spoken": r"episode \1", "regex": True},
            {"pattern": r"(?P<n>\d+)km", "spoken": r"\g<n> kilometres", "regex": True},
            {"pattern": "slash", "spoken": r"back\1slash"},
        ]
    )
    assert lexicon.apply("In Ep. 12 we ran 5km.") == "In episode 12 we ran 5 kilometres."
    assert lexicon.apply("a slash") == r"a back\1slash"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"pattern": "", "spoken": "x"}], "no word or pattern"),
        ([{"pattern": "x", "spoken": ""}], "no spoken form"),
        ([{"pattern": "(", "spoken": "x", "regex": True}], "not a valid regular expression"),
        ([{"pattern": "a*", "spoken": "x", "regex": True}], "matches empty text"),
        ([{"pattern": r"Ep (\d+)", "spoken": r"episode \2", "regex": True}], "refers to a group"),
        ([{"pattern": "x", "spoken": "y", "language": "klingon"}], "not supported"),
        ("Qwen=Chwen", "must be a list"),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_saved(tmp_path, entries, message):
    store = LexiconStore(tmp_path / "lexicon")
    store.save([{"pattern": "Qwen", "spoken": "Chwen"}])
    with pytest.raises(InvalidInput, match=message):
        store.save(entries)
    assert store.current().apply("Qwen") == "Chwen"


def test_every_saved_version_stays_readable(tmp_path):
    store = LexiconStore(tmp_path / "lexicon")
    assert store.current().version == EMPTY_VERSION
    first = store.save([{"pattern": "Qwen", "spoken": "Chwen"}])
    second = store.save([{"pattern": "Qwen", "spoken": "Kwen"}])
    assert first.version != second.version
    fresh = LexiconStore(tmp_path / "lexicon")  # a new process
    assert fresh.current().apply("Qwen") == "Kwen"
    assert fresh.version(first.version).apply("Qwen") == "Chwen"
    on_disk = json.loads((tmp_path / "lexicon" / "current.json").read_text())
    assert on_disk["version"] == second.version


def requests():
    text = "Qwen speaks."
    return [
        DesignRequest(text=text, description="A calm voice.", sampling=FAST),
        CustomVoiceRequest(text=text, speaker="Ryan", sampling=FAST),
        CloneRequest(text=text, reference=spoken(3.0), reference_text="The quick brown fox.", sampling=FAST),
    ]


def test_applied_in_every_mode_and_reproduced_by_regenerate(demo_context):
    lexicon = demo_context.synthesis.lexicon
    assert lexicon is not None
    takes = TakeService.for_app(demo_context)
    version = lexicon.save([{"pattern": "Qwen", "spoken": "Chwen"}]).version
    for request in requests():
        kept = takes.make(TakeJob(request, "wav"))
        # The model was given the spoken form; the recipe keeps what was typed and the version.
        assert kept.details["text"] == "Chwen speaks."
        assert kept.take.request["text"] == "Qwen speaks."
        assert kept.take.request["lexicon_version"] == version
        # Without the lexicon the same seed speaks different text, so different audio.
        plain = demo_context.synthesis.synthesize(
            type(request)(**{**request.__dict__, "lexicon_version": EMPTY_VERSION})
        )
        assert plain.text == "Qwen speaks."
        if not isinstance(request, CloneRequest):  # a clone from an uploaded clip is not kept, so not regenerated
            lexicon.save([{"pattern": "Qwen", "spoken": "Kwen"}])  # edited after the take
            again = takes.regenerate(kept.take.id)
            assert again.kept.details["text"] == "Chwen speaks."
            assert again.kept.take.request["lexicon_version"] == version
            import numpy as np

            from core.audio.io import load_audio

            assert np.array_equal(
                load_audio(kept.take.audio_path).samples, load_audio(again.kept.take.audio_path).samples
            )
            lexicon.save([{"pattern": "Qwen", "spoken": "Chwen"}])
