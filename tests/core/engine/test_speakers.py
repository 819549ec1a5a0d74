"""The built-in speakers and design presets, read from the real voices/*.json files."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from core.engine.speakers import DesignPreset, Speaker, design_presets, find_speaker, speakers
from core.errors import InvalidInput


def _json(name: str) -> dict:
    return json.loads(resources.files("voices").joinpath(name).read_text(encoding="utf-8"))


def test_speakers_are_the_rows_of_speakers_json_in_order():
    rows = _json("speakers.json")["speakers"]
    assert [s.id for s in speakers()] == [row["id"] for row in rows]
    assert all(isinstance(s, Speaker) for s in speakers())
    assert len(speakers()) == 9


def test_speaker_ids_are_lower_case_and_unique():
    # qwen_tts looks speakers up with speaker.lower(), so an id must already be lower case.
    ids = [s.id for s in speakers()]
    assert ids == [i.lower() for i in ids]
    assert len(set(ids)) == len(ids)


def test_the_demo_custom_voice_model_knows_every_speaker():
    from core.engine.demo_models.tts_model import _SPEAKER_IDS

    assert {s.id for s in speakers()} == set(_SPEAKER_IDS)


def test_label_shows_name_description_and_language():
    ryan = find_speaker("ryan")
    assert ryan.label == f"Ryan — {ryan.description} (English)"


@pytest.mark.parametrize("name", ["Ryan", "ryan", "RYAN", "  Ryan  "])
def test_find_by_name_ignores_case_and_outer_spaces(name):
    assert find_speaker(name).id == "ryan"


@pytest.mark.parametrize("name", ["Uncle Fu", "uncle_fu", "uncle-fu", "UNCLE FU"])
def test_find_by_id_or_by_name_with_spaces_or_dashes(name):
    speaker = find_speaker(name)
    assert (speaker.id, speaker.name) == ("uncle_fu", "Uncle Fu")


def test_every_speaker_is_found_by_its_id_and_its_name():
    for speaker in speakers():
        assert find_speaker(speaker.id) is speaker
        assert find_speaker(speaker.name) is speaker


def test_unknown_speaker_names_every_choice():
    with pytest.raises(InvalidInput) as caught:
        find_speaker("Bob")
    message = str(caught.value)
    assert message.startswith("Unknown speaker 'Bob'. Choose one of: ")
    for speaker in speakers():
        assert speaker.name in message


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_missing_speaker_asks_to_pick_one(empty):
    with pytest.raises(InvalidInput, match="Pick a speaker"):
        find_speaker(empty)


def test_speaker_that_is_not_text_is_refused():
    with pytest.raises(InvalidInput, match="Name the speaker as text"):
        find_speaker(3)  # type: ignore[arg-type]


def test_design_presets_are_the_rows_of_design_presets_json():
    rows = _json("design_presets.json")["presets"]
    presets = design_presets()
    assert all(isinstance(p, DesignPreset) for p in presets)
    assert [(p.name, p.description) for p in presets] == [(r["name"], r["description"]) for r in rows]
    assert len({p.name for p in presets}) == len(presets)
    assert all(p.description.strip() for p in presets)
