"""A take's parts on disk: written with the take, read back exactly, and older records still load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.audio.io import load_audio
from core.errors import InvalidInput
from core.takes.service import TakeJob, TakeService
from core.types import CustomVoiceRequest, Sampling
from tests.conftest import make_demo_settings

# Three sentences of about 40 characters: three chunks at chunk_chars=50.
LONG_TEXT = (
    "The first chunk is about forty letters. "
    "The second one is just as long as that. "
    "And the third one closes the whole take."
)


@pytest.fixture(scope="module")
def context(demo_checkpoints, tmp_path_factory):
    from core.context import build_context

    settings = make_demo_settings(tmp_path_factory.mktemp("parts") / "data", demo_checkpoints, chunk_chars=50)
    return build_context(settings)


@pytest.fixture(scope="module")
def kept(context):
    request = CustomVoiceRequest(
        text=LONG_TEXT, speaker="Ryan", language="english", sampling=Sampling(seed=5, max_new_tokens=8)
    )
    return TakeService.for_app(context).make(TakeJob(request, "flac"))


def test_every_chunk_is_kept_with_its_text_seed_times_and_lossless_audio(context, kept):
    take = context.history.get(kept.take.id)
    assert [p.text for p in take.parts] == [
        "The first chunk is about forty letters.",
        "The second one is just as long as that.",
        "And the third one closes the whole take.",
    ]
    assert [p.seed for p in take.parts] == [5, 6, 7]  # chunk i is made with seed + i
    assert take.parts_pause_s == context.synthesis.pause_s
    assert [p.audio_path.relative_to(take.audio_path.parent).as_posix() for p in take.parts] == [
        "parts/000.wav",
        "parts/001.wav",
        "parts/002.wav",
    ]
    # Times: in order, apart by the pause, the last ending where the take ends.
    for before, after in zip(take.parts, take.parts[1:]):
        assert after.start_s == pytest.approx(before.end_s + take.parts_pause_s, abs=1e-4)
    assert take.parts[0].start_s == 0.0
    assert take.parts[-1].end_s == pytest.approx(take.duration_s, abs=1e-4)
    # Each part's audio is exactly what was joined: its samples sit in the take (16-bit FLAC here).
    whole = load_audio(take.audio_path).samples
    for part in take.parts:
        audio = part.load()
        assert audio.samples.dtype == np.float32 and audio.sample_rate == take.sample_rate
        assert audio.duration == pytest.approx(part.duration_s, abs=1e-4)
        start = int(round(part.start_s * take.sample_rate))
        edge = int(0.01 * take.sample_rate)
        middle = slice(edge, len(audio) - edge)
        in_take = whole[start : start + len(audio)][middle]
        np.testing.assert_allclose(in_take, audio.samples[middle], atol=1 / 32767 + 1e-6)


def test_the_listing_counts_the_parts_in_a_takes_footprint(context, kept):
    take = context.history.get(kept.take.id)
    assert take.parts_bytes == sum(p.audio_path.stat().st_size for p in take.parts) > 0


def test_a_record_from_before_parts_still_loads_with_none(context, kept):
    folder = kept.take.audio_path.parent
    record = json.loads((folder / "take.json").read_text())
    for key in ("parts", "parts_pause_s"):
        record.pop(key)
    old = folder.parent / "20200101-000000-abcdef"
    old.mkdir()
    (old / "take.json").write_text(json.dumps(record | {"id": old.name}))
    (old / kept.take.audio_path.name).write_bytes(kept.take.audio_path.read_bytes())
    take = context.history.get(old.name)
    assert take.parts == [] and take.parts_pause_s is None
    assert old.name in [t.id for t in context.history.list()]


def test_a_part_pointing_outside_its_folder_makes_the_take_skipped_not_used(context, kept):
    folder = kept.take.audio_path.parent
    record = json.loads((folder / "take.json").read_text())
    record["parts"][1]["audio"] = "../../etc/passwd"
    bad = folder.parent / "20200101-000001-abcdef"
    bad.mkdir()
    (bad / "take.json").write_text(json.dumps(record | {"id": bad.name}))
    (bad / kept.take.audio_path.name).write_bytes(kept.take.audio_path.read_bytes())
    with pytest.raises(InvalidInput, match="invalid parts"):
        context.history.get(bad.name)
    assert bad.name not in [t.id for t in context.history.list()]
    assert any(bad.name in w and "invalid parts" in w for w in context.history.warnings)


def test_a_lost_part_file_is_a_sentence_when_loaded(context, kept, tmp_path):
    part = context.history.get(kept.take.id).parts[0]
    moved = tmp_path / "kept.wav"
    part.audio_path.rename(moved)
    try:
        with pytest.raises(InvalidInput, match="Part 1 of this take has lost its audio file"):
            part.load()
    finally:
        moved.rename(part.audio_path)
