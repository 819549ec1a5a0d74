"""The take history on real files, with real takes from the tiny demo checkpoints."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio.io import load_audio, write_audio
from core.errors import InvalidInput
from core.storage.history import History, Take
from core.takes.recipes import recipe_of, request_from_recipe
from core.types import CustomVoiceRequest, DesignRequest, Sampling
from tests.conftest import make_demo_settings, need

DESIGN_TEXT = "Hello there, this is a test."
DESIGN_DESCRIPTION = "A calm, low voice."


# --- fixtures: one engine and two real takes per module keep this file fast --


@pytest.fixture(scope="module")
def engine(demo_checkpoints, tmp_path_factory):
    # demo_context is per test; loading the checkpoints once per module is
    # what keeps this file well under 30 s. Same settings as demo_settings.
    from core.context import build_context

    settings = make_demo_settings(tmp_path_factory.mktemp("history-engine") / "data", demo_checkpoints)
    return build_context(settings).synthesis


def request_dict(request: DesignRequest | CustomVoiceRequest, seed: int | None = None) -> dict:
    """What the studio stores to regenerate a take (the recipe, see core/takes/recipes.py)."""
    return recipe_of(request, seed if seed is not None else request.sampling.seed)


def request_from_dict(data: dict, seed: int) -> DesignRequest | CustomVoiceRequest:
    recipe = {**data, "sampling": {**data["sampling"], "seed": seed}}
    return request_from_recipe(recipe, library=None, synthesis=None)  # design/custom need neither


@pytest.fixture(scope="module")
def design(engine):
    request = DesignRequest(
        text=DESIGN_TEXT,
        description=DESIGN_DESCRIPTION,
        language="english",
        sampling=Sampling(seed=1, max_new_tokens=8),
    )
    return engine.design(request), request


@pytest.fixture(scope="module")
def custom(engine):
    # No seed: the engine picks one, and only the take's seed can reproduce it.
    request = CustomVoiceRequest(text="Good morning, everyone.", speaker="Ryan", sampling=Sampling(max_new_tokens=8))
    return engine.custom_voice(request), request


def add_design(history: History, design, fmt: str = "wav") -> Take:
    result, request = design
    return history.add(
        result,
        fmt=fmt,
        request=request_dict(request),
        voice={"description": request.description},
        language=request.language,
    )


def add_custom(history: History, custom, fmt: str = "wav") -> Take:
    result, request = custom
    return history.add(result, fmt=fmt, request=request_dict(request), voice={"speaker": request.speaker})


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- round trip ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_add_get_list_delete_round_trip(tmp_path, design, fmt):
    if fmt == "mp3":
        need("ffmpeg")
    result, request = design
    history = History(tmp_path / "history")
    take = add_design(history, design, fmt)

    assert (take.mode, take.model, take.seed, take.demo) == ("voice_design", result.model, 1, True)
    assert take.text == result.text and take.language == "english"
    assert take.voice == {"description": DESIGN_DESCRIPTION}
    assert take.request == request_dict(request)
    assert take.sampling == dataclasses.asdict(request.sampling)  # taken from the request
    assert take.warnings == result.warnings and take.timings.keys() == result.timings.keys()
    assert take.sample_rate == 24_000 and take.duration_s == pytest.approx(result.duration)
    assert take.audio_path == history.root / take.id / f"take.{fmt}"
    assert take.size_bytes == take.audio_path.stat().st_size > 0
    # The take's chunks are kept beside it, one lossless file each (core/storage/take_parts.py).
    assert sorted(p.name for p in (history.root / take.id).iterdir()) == sorted(["parts", "take.json", f"take.{fmt}"])
    assert [
        p.relative_to(history.root / take.id).as_posix() for p in sorted((history.root / take.id / "parts").iterdir())
    ] == [f"parts/{i:03d}.wav" for i in range(len(result.chunks))]

    record = json.loads((history.root / take.id / "take.json").read_text(encoding="utf-8"))
    assert record["schema"] == 1 and record["audio"] == f"take.{fmt}"
    assert record == take.as_dict()
    assert take.engine == record["engine"] == result.engine == "torch"  # the take names its engine

    stored = load_audio(take.audio_path)
    assert stored.sample_rate == 24_000
    if fmt in ("wav", "flac"):  # lossless 16-bit: equal to within one quantisation step
        np.testing.assert_allclose(stored.samples, result.audio.samples, atol=1.5 / 32768)
    else:  # lossy codecs add encoder delay and padding
        assert abs(stored.duration - result.duration) < 0.15

    assert history.get(take.id) == take
    assert history.list() == [take] and history.warnings == []

    history.delete(take.id)
    assert history.list() == []
    assert [p.name for p in history.root.iterdir()] == [".lock"]
    with pytest.raises(InvalidInput, match="no take"):
        history.get(take.id)
    with pytest.raises(InvalidInput, match="no take"):
        history.delete(take.id)


def test_custom_voice_take_records_the_seed_actually_used(tmp_path, custom):
    result, request = custom
    assert request.sampling.seed is None
    take = add_custom(History(tmp_path / "history"), custom, "flac")
    assert take.mode == "custom_voice" and take.voice == {"speaker": "Ryan"}
    assert take.seed == result.seed and take.request["sampling"]["seed"] is None
    assert take.language == "auto" and take.format == "flac"


def test_a_new_history_on_the_same_root_sees_the_takes(tmp_path, design, custom):
    root = tmp_path / "history"
    first = History(root)
    added = [add_design(first, design), add_custom(first, custom, "flac")]
    restarted = History(root)
    assert restarted.list() == added[::-1]
    assert restarted.get(added[0].id) == added[0]


def test_newest_first_and_limit(tmp_path, design):
    history = History(tmp_path / "history")
    ids = [add_design(history, design).id for _ in range(3)]
    assert len(set(ids)) == 3
    assert [t.id for t in history.list()] == ids[::-1]
    assert [t.id for t in history.list(limit=2)] == ids[:0:-1]
    assert history.list(limit=0) == []
    with pytest.raises(InvalidInput, match="whole number"):
        history.list(limit=-1)


def test_query_and_mode_filters(tmp_path, design, custom):
    history = History(tmp_path / "history")
    designed = add_design(history, design)
    spoken = add_custom(history, custom)

    assert history.list(query="MORNING") == [spoken]
    assert history.list(query="ryan good") == [spoken]  # every word, any field, any order
    assert history.list(query="calm") == [designed]  # the voice description counts
    assert history.list(query="hello calm") == [designed]
    assert history.list(query="morning calm") == []
    assert history.list(query="  ") == [spoken, designed]
    assert history.list(mode="custom_voice") == [spoken]
    assert history.list(mode="voice_design") == [designed]
    assert history.list(mode="base") == []
    assert history.list(query="hello", mode="custom_voice") == []


# --- retention -----------------------------------------------------------------


def test_retention_by_count_prunes_the_oldest(tmp_path, design):
    root = tmp_path / "history"
    history = History(root, max_takes=3)
    ids = [add_design(history, design).id for _ in range(5)]
    assert [t.id for t in history.list()] == ids[:1:-1]
    assert not (root / ids[0]).exists() and not (root / ids[1]).exists()
    assert not any(p.name.startswith((".tmp-", ".trash-")) for p in root.iterdir())
    assert history.prune() == []

    # Lower limits apply to what is already there; removed ids come oldest first.
    assert History(root, max_takes=1).prune() == ids[2:4]
    assert [t.id for t in history.list()] == [ids[4]]


def test_retention_by_size_prunes_the_oldest(tmp_path, design):
    root = tmp_path / "history"
    probe = add_design(History(tmp_path / "probe"), design)
    footprint = probe.size_bytes + probe.parts_bytes + (probe.audio_path.parent / "take.json").stat().st_size
    history = History(root, max_bytes=int(footprint * 2.5))
    ids = [add_design(history, design).id for _ in range(4)]
    assert [t.id for t in history.list()] == ids[:1:-1]

    # A take larger than the whole budget still survives its own save.
    tiny = History(root, max_bytes=1)
    newest = add_design(tiny, design)
    assert tiny.list() == [newest] and newest.audio_path.is_file()


# --- damage and leftovers ------------------------------------------------------


def test_damaged_entries_are_skipped_with_warnings(tmp_path, design, caplog):
    caplog.set_level(logging.DEBUG, logger="core.storage.history")
    root = tmp_path / "history"
    history = History(root)
    good = [add_design(history, design) for _ in range(2)]
    source = root / good[0].id

    def copy_as(take_id: str) -> Path:
        folder = Path(shutil.copytree(source, root / take_id))
        record = json.loads((folder / "take.json").read_text(encoding="utf-8"))
        (folder / "take.json").write_text(json.dumps({**record, "id": take_id}), encoding="utf-8")
        return folder

    cut_json = copy_as("20200101-000000-00000a")
    (cut_json / "take.json").write_bytes((source / "take.json").read_bytes()[:40])
    no_audio = copy_as("20200101-000000-00000b")
    (no_audio / "take.wav").unlink()
    cut_audio = copy_as("20200101-000000-00000c")
    (cut_audio / "take.wav").write_bytes((source / "take.wav").read_bytes()[:100])
    no_json = copy_as("20200101-000000-00000d")  # a save interrupted before its record
    (no_json / "take.json").unlink()
    wrong_type = copy_as("20200101-000000-00000e")
    (wrong_type / "take.json").write_text("[1, 2, 3]", encoding="utf-8")
    escaping = copy_as("20200101-000000-00000f")  # a record must never point outside its folder
    record = json.loads((source / "take.json").read_text(encoding="utf-8"))
    record.update(id=escaping.name, audio="../../outside.wav")
    (escaping / "take.json").write_text(json.dumps(record), encoding="utf-8")
    (root / "my notes").mkdir()
    half = root / ".tmp-0123456789abcdef"  # a save in progress (or crashed) elsewhere
    half.mkdir()
    (half / "take.json").write_text('{"schema": 1, "id": "2', encoding="utf-8")
    stale = root / ".tmp-fedcba9876543210"
    stale.mkdir()
    (stale / "take.wav").write_bytes(b"RIFF")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))

    assert History(root).list() == good[::-1]
    again = History(root)
    again.list()
    warnings = "\n".join(again.warnings)
    assert len(again.warnings) == 7, warnings
    assert "belongs to another take" not in warnings
    assert "00000a: its take.json is not valid JSON" in warnings
    assert "00000b: its audio file take.wav is missing" in warnings
    assert "00000c: its audio file is 100 bytes" in warnings
    assert "00000d: its take.json is missing" in warnings
    assert "00000e: its take.json is not a take record" in warnings
    assert "00000f: its take.json names an unexpected audio file" in warnings
    assert "'my notes'" in warnings and ".tmp-" not in warnings
    assert half.is_dir() and not stale.exists()  # young temp kept, hour-old one cleaned

    with pytest.raises(InvalidInput, match="damaged: its audio file take.wav is missing"):
        again.get(no_audio.name)
    again.delete(no_audio.name)  # damaged takes can still be removed
    assert not no_audio.exists()
    # Damaged entries are not the history's to prune.
    assert History(root, max_takes=1).prune() == [good[0].id]
    assert cut_json.exists()

    # Saves, skips, deletes and prunes are logged; the user's words never are.
    assert "event=take_saved" in caplog.text and "Skipped the take" in caplog.text
    assert "event=take_deleted" in caplog.text and "event=history_pruned" in caplog.text
    assert DESIGN_TEXT not in caplog.text and DESIGN_DESCRIPTION not in caplog.text


def test_unsafe_ids_are_rejected_and_nothing_changes(tmp_path, design):
    root = tmp_path / "history"
    history = History(root)
    take = add_design(history, design)
    (tmp_path / "x").mkdir()  # what "../x" would reach
    before = tree(tmp_path)
    unsafe = [
        "../x",
        "a/b",
        "",
        "   ",
        "\x00",
        f"{take.id}\x00",
        f"{take.id}/..",
        f"{take.id}\n",
        "..",
        ".",
        ".lock",
        f"../history/{take.id}",
        str(take.audio_path.parent),
        "２０２６１１２２-083512-3f9a1c",
        take.id.upper().replace("-", "_"),
        None,
        42,
    ]
    for bad in unsafe:
        for call in (history.get, history.delete):
            with pytest.raises(InvalidInput) as caught:
                call(bad)
            message = str(caught.value)
            assert "not valid" in message or "empty" in message
            assert "\x00" not in message and "\n" not in message
    assert tree(tmp_path) == before
    assert history.list() == [take]


# --- concurrency ---------------------------------------------------------------


def test_concurrent_adds_from_threads_all_land(tmp_path, design):
    root = tmp_path / "history"
    shared = History(root)
    takes: list[Take] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        # Half share one History, half have their own (as another process would).
        history = shared if index % 2 else History(root)
        try:
            for _ in range(3):
                takes.append(add_design(history, design))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({t.id for t in takes}) == 24
    listed = History(root).list()
    assert {t.id for t in listed} == {t.id for t in takes}
    assert not any(p.name.startswith((".tmp-", ".trash-")) for p in root.iterdir())


# --- reproducibility -------------------------------------------------------------


@pytest.mark.parametrize("which", ["design", "custom"])
def test_stored_request_and_seed_regenerate_identical_audio(tmp_path, engine, design, custom, which):
    result, request = design if which == "design" else custom
    History(tmp_path / "history").add(result, request=request_dict(request))
    take = History(tmp_path / "history").list()[0]  # read back from disk

    again = request_from_dict(take.request, take.seed)
    regenerated = engine.design(again) if take.mode == "voice_design" else engine.custom_voice(again)
    assert regenerated.seed == take.seed and regenerated.model == take.model

    fresh = write_audio(regenerated.audio, tmp_path / "regenerated.wav")
    stored, _ = sf.read(take.audio_path, dtype="int16")
    redone, _ = sf.read(fresh, dtype="int16")
    assert stored.size > 0
    np.testing.assert_array_equal(stored, redone)


# --- refusals ------------------------------------------------------------------


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, design):
    result, request = design
    root = tmp_path / "history"
    history = History(root)
    with pytest.raises(InvalidInput, match="Raw PCM"):
        history.add(result, fmt="pcm", request={})
    with pytest.raises(InvalidInput, match="choose one of wav, flac, ogg, mp3"):
        history.add(result, fmt="aiff", request={})
    with pytest.raises(InvalidInput, match="request .* must hold only text.*bytes"):
        history.add(result, request={"reference": b"\x00\x01"})
    with pytest.raises(InvalidInput, match="must hold only text"):
        history.add(result, request={"temperature": float("nan")})
    with pytest.raises(InvalidInput, match="must be a dict"):
        history.add(result, request=[("text", "hi")])
    with pytest.raises(InvalidInput, match="not supported"):
        history.add(result, request={}, language="klingon")
    assert [p.name for p in root.iterdir() if p.name != ".lock"] == []
    with pytest.raises(InvalidInput, match="max_takes"):
        History(root, max_takes=0)

    # What JSON changes (tuples, number keys) comes back the way it is stored.
    take = history.add(result, request={"pair": (1, 2), 3: "three"}, sampling={"seed": 1})
    assert take.request == {"pair": [1, 2], "3": "three"} and take.sampling == {"seed": 1}
    assert history.get(take.id) == take


def test_the_engine_is_kept_and_older_records_read_as_torch(tmp_path, design):
    history = History(tmp_path / "history")
    result, request = design
    remote = dataclasses.replace(result, engine="remote http://gpu-box:8091/v1")
    take = history.add(remote, request=request_dict(request))
    assert history.get(take.id).engine == "remote http://gpu-box:8091/v1"

    # A take kept before takes named their engine has no field: it was made in-process.
    path = history.root / take.id / "take.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    del record["engine"]
    path.write_text(json.dumps(record), encoding="utf-8")
    assert History(tmp_path / "history").get(take.id).engine == "torch"

    record["engine"] = 7
    path.write_text(json.dumps(record), encoding="utf-8")
    fresh = History(tmp_path / "history")
    assert fresh.list() == [] and "invalid 'engine'" in " ".join(fresh.warnings)
