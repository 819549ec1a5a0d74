"""Redoing one part of a take (a chunk, a script line) on the real demo models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.audio.io import load_audio
from core.errors import InvalidInput
from core.takes.part_edit import PartAction, edit_part
from core.takes.script_render import plan_script, render_script
from core.takes.service import TakeJob, TakeService
from core.types import CustomVoiceRequest, Sampling
from tests.core.storage.test_take_parts import LONG_TEXT

FAST = Sampling(seed=11, max_new_tokens=8)
SCRIPT = "Maya: Hello there, Tom.\nTom: Hi Maya, how are you?\nMaya: Very well, thank you."
CASTING = "Maya = Ryan\nTom = Aiden"


@pytest.fixture(scope="module")
def context(demo_checkpoints, tmp_path_factory):
    from core.context import build_context
    from tests.conftest import make_demo_settings

    settings = make_demo_settings(tmp_path_factory.mktemp("part-edit") / "data", demo_checkpoints, chunk_chars=50)
    return build_context(settings)


@pytest.fixture(scope="module")
def service(context):
    return TakeService.for_app(context)


@pytest.fixture(scope="module")
def chunked(service):
    request = CustomVoiceRequest(text=LONG_TEXT, speaker="Ryan", language="english", sampling=FAST)
    return service.make(TakeJob(request, "wav")).take


@pytest.fixture(scope="module")
def script_take(context, service):
    plan = plan_script(context.synthesis, context.library, SCRIPT, CASTING, sampling=FAST, pause_s=0.25)
    result = render_script(context.synthesis, context.library, plan)
    return service.keep_script(plan, result, "wav").take


def consistent(take):
    """The take's parts tile it: in order, a pause apart, the last one ending the take."""
    parts = take.parts
    assert parts[0].start_s == 0.0
    for before, after in zip(parts, parts[1:]):
        assert after.start_s == pytest.approx(before.end_s + take.parts_pause_s, abs=1e-4)
    assert parts[-1].end_s == pytest.approx(take.duration_s, abs=1e-4)
    total = sum(p.load().duration for p in parts) + take.parts_pause_s * (len(parts) - 1)
    assert take.duration_s == pytest.approx(total, abs=1e-3)


def test_a_chunk_redone_with_its_own_seed_sounds_as_it_did_and_the_original_stays(context, service, chunked):
    edit = edit_part(service, chunked.id, 1, PartAction.SAME_SEED)
    new = context.history.get(edit.kept.take.id)
    before = chunked.parts[1].load().samples
    np.testing.assert_array_equal(edit.part_audio.samples, before)  # bit-identical, made alone
    np.testing.assert_array_equal(new.parts[1].load().samples, before)
    # Re-assembled exactly as the take was made: the same audio.
    np.testing.assert_array_equal(load_audio(new.audio_path).samples, load_audio(chunked.audio_path).samples)
    assert new.request["derived_from"] == chunked.id
    assert new.request["edits"] == [{"part": 1, "action": "same_seed", "seed": chunked.parts[1].seed}]
    assert context.history.get(chunked.id).audio_path.exists()  # nothing saved is lost
    consistent(new)


def test_a_chunk_redone_with_a_new_seed_differs_and_only_it_changes(context, service, chunked):
    edit = edit_part(service, chunked.id, 2, "new_seed", seed=987)
    new = context.history.get(edit.kept.take.id)
    assert new.parts[2].seed == 987 and edit.seed == 987
    assert not np.array_equal(new.parts[2].load().samples[:2000], chunked.parts[2].load().samples[:2000])
    for i in (0, 1):
        np.testing.assert_array_equal(new.parts[i].load().samples, chunked.parts[i].load().samples)
    assert new.text == chunked.text
    consistent(new)


def test_a_deleted_chunk_leaves_the_take_and_its_text(context, service, chunked):
    edit = edit_part(service, chunked.id, 0, PartAction.DELETE)
    new = context.history.get(edit.kept.take.id)
    assert [p.text for p in new.parts] == [p.text for p in chunked.parts[1:]]
    assert new.text == " ".join(p.text for p in chunked.parts[1:])
    assert new.duration_s < chunked.duration_s
    consistent(new)
    # Regenerating the derived take replays the original and re-applies the edit: the same audio.
    again = service.regenerate(new.id)
    np.testing.assert_array_equal(load_audio(again.kept.take.audio_path).samples, load_audio(new.audio_path).samples)


def test_a_script_line_redone_with_its_seed_is_identical_and_with_a_new_one_differs(context, service, script_take):
    same = edit_part(service, script_take.id, 1, "same_seed")
    np.testing.assert_array_equal(same.part_audio.samples, script_take.parts[1].load().samples)
    same_take = context.history.get(same.kept.take.id)
    np.testing.assert_array_equal(load_audio(same_take.audio_path).samples, load_audio(script_take.audio_path).samples)
    assert [p.speaker for p in same_take.parts] == ["Maya", "Tom", "Maya"]

    other = edit_part(service, script_take.id, 1, "new_seed")
    changed = context.history.get(other.kept.take.id)
    assert changed.parts[1].seed != script_take.parts[1].seed
    assert not np.array_equal(changed.parts[1].load().samples[:2000], script_take.parts[1].load().samples[:2000])
    consistent(changed)


def test_a_deleted_script_line_leaves_the_scene(context, service, script_take):
    edit = edit_part(service, script_take.id, 2, "delete")
    new = context.history.get(edit.kept.take.id)
    assert new.text == "Maya: Hello there, Tom.\nTom: Hi Maya, how are you?"
    consistent(new)


def test_bad_requests_are_sentences(context, service, chunked):
    with pytest.raises(InvalidInput, match="numbered 0 to 2; there is no part 3"):
        edit_part(service, chunked.id, 3, "same_seed")
    with pytest.raises(InvalidInput, match="Unknown part action"):
        edit_part(service, chunked.id, 0, "louder")
    with pytest.raises(InvalidInput, match="by its number"):
        edit_part(service, chunked.id, "first", "delete")
    # A take kept before parts were stored.
    folder = chunked.audio_path.parent
    record = json.loads((folder / "take.json").read_text())
    record.pop("parts")
    old = folder.parent / "20200101-000000-0a0b0c"
    old.mkdir()
    (old / "take.json").write_text(json.dumps(record | {"id": old.name}))
    (old / chunked.audio_path.name).write_bytes(chunked.audio_path.read_bytes())
    with pytest.raises(InvalidInput, match="before takes stored their chunks"):
        edit_part(service, old.name, 0, "delete")
