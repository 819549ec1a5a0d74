"""The dataset builder on a real recording: espeak-ng sentences with known pauses, cut by
Silero VAD, transcribed by the tiny demo Whisper through the model manager, saved, reviewed,
exported and imported.

The recording's sentence times are known to the sample, so the cutting is checked against
them. The demo Whisper has random weights: its transcripts are noise, so only their flow is
checked (written, kept, edited, flagged as demo text), never their words.
"""

from __future__ import annotations

import json
import resource
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio.clip import Audio
from core.audio.edit import trim_silence
from core.audio.io import load_audio, write_audio
from core.context import build_context
from core.engine.cancel import CancelToken, cancellable
from core.errors import DatasetError, InvalidInput, Stopped
from core.finetune.checks import VerdictLevel
from core.finetune.dataset import UtteranceEdit
from core.finetune.dataset_store import DatasetStore
from tests.conftest import espeak, make_demo_settings

SR = 24_000
NOISE_DBFS = -60.0  # a quiet room under the whole recording
# Sentence, then the pause after it (s). Every pause of 0.5 s or more ends an utterance;
# "Yes, of course." (1.1 s) is too short alone and merges across its shorter pause (0.7 s)
# with the next sentence; the long sentence and the one after it are joined by a 0.35 s
# pause into a 15.7 s run, which is split at that pause. So 15 sentences make 14 clips.
SENTENCES = [
    ("The morning train was late again, so everyone waited on the cold platform.", 1.0),
    ("She opened the old wooden box and found a bundle of letters inside.", 1.2),
    ("Yes, of course.", 0.7),
    ("Our garden grows tomatoes, beans and sweet peppers every summer without fail.", 1.1),
    ("The library closes at eight, but the reading room stays open until ten.", 0.9),
    (
        "A small boat drifted slowly across the quiet lake as the sun went down behind the hills, and the "
        "birds began to sing their evening songs while the fishermen packed up their nets and walked "
        "slowly home along the sandy shore.",
        0.35,
    ),
    ("He painted the fence a bright shade of green that nobody in the street liked.", 1.3),
    ("Please remember to water the plants while I am away next week.", 0.8),  # recorded too hot: it clips
    ("The museum shows paintings from many different countries and centuries.", 1.0),
    ("After dinner we played cards and told stories until midnight.", 1.4),
    ("Fresh bread from the bakery on the corner is the best way to start a day.", 0.9),
    ("Every winter the river freezes and children skate on it after school.", 1.0),
    ("My neighbour keeps three cats, two dogs and a very noisy parrot.", 1.1),
    ("The bus to the airport leaves every twenty minutes from the station.", 0.9),
    ("Thank you for listening to these sentences about ordinary things.", 1.0),
]
CLIPPED_SENTENCE = 7
MERGED = (2, 3)  # sentence indexes that make one clip
# Each clip's start and end are within this of its sentences' first start and last end: Silero
# marks voiced 32 ms frames, and each clip keeps up to 0.2 s of the pause either side.
TOLERANCE_S = 0.3


def make_recording(sentences: list[tuple[str, float]], clipped: int | None = None) -> tuple[Audio, list]:
    """The sentences spoken one after another with the given pauses, over -60 dBFS of noise,
    and each sentence's (start, end) in seconds."""
    parts = [np.zeros(SR, np.float32)]  # a second of room before the first word
    at = 1.0
    times = []
    for index, (text, pause) in enumerate(sentences):
        voice = trim_silence(Audio(espeak(text), SR), pad_s=0.0).samples
        if index == clipped:
            voice = np.clip(voice * 8.0, -1.0, 1.0)
        times.append((at, at + len(voice) / SR))
        parts += [voice, np.zeros(int(pause * SR), np.float32)]
        at += (len(voice) + int(pause * SR)) / SR
    samples = np.concatenate(parts)
    noise = np.random.default_rng(0).normal(0.0, 10 ** (NOISE_DBFS / 20), len(samples))
    return Audio((samples + noise).astype(np.float32), SR), times


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, list]:
    audio, times = make_recording(SENTENCES, clipped=CLIPPED_SENTENCE)
    path = write_audio(audio, tmp_path_factory.mktemp("recording") / "reading.wav")
    return path, times


@pytest.fixture(scope="module")
def asr_context(tmp_path_factory, demo_checkpoints, demo_asr):
    data = tmp_path_factory.mktemp("data")
    return build_context(make_demo_settings(data, demo_checkpoints, checkpoint_asr=demo_asr))


@pytest.fixture(scope="module")
def built(asr_context, recording):
    """The one dataset built with the ASR (one Whisper load for the module)."""
    steps: list[tuple[float, str]] = []
    dataset = asr_context.datasets.create(
        "Anna reads", [recording[0]], transcriber=asr_context.transcriber, progress=lambda f, m: steps.append((f, m))
    )
    return dataset, steps


def copy_store(dataset, root: Path) -> DatasetStore:
    """A store of its own holding a copy of ``dataset``, for a test that edits it."""
    shutil.copytree(dataset.folder, root / dataset.id)
    return DatasetStore(root)


def folders(store: DatasetStore) -> list[str]:
    """Every folder in the store's root, hidden staging and trash folders included."""
    return sorted(p.name for p in store.root.iterdir() if p.is_dir())


def test_the_builder_cuts_the_recording_at_the_sentence_pauses(built, recording):
    dataset, steps = built
    path, times = recording
    assert 60 <= load_audio(path).duration <= 90
    expected = [(times[i][0], times[i][1]) for i in range(len(times)) if i not in MERGED]
    expected.insert(MERGED[0], (times[MERGED[0]][0], times[MERGED[1]][1]))
    cuts = [(u.start_s, u.end_s) for u in dataset.utterances]
    assert len(cuts) == len(expected) == 14
    for (start, end), (want_start, want_end) in zip(cuts, expected):
        assert abs(start - want_start) <= TOLERANCE_S, (start, want_start)
        assert abs(end - want_end) <= TOLERANCE_S, (end, want_end)
    for u in dataset.utterances:
        assert 3.0 <= u.stats.seconds <= 15.0
        assert not u.excluded and u.note == ""
        assert 0.6 * u.stats.seconds < u.stats.speech_s <= u.stats.seconds
        clip = sf.info(str(dataset.audio_path(u)))
        assert (clip.samplerate, clip.channels, clip.subtype) == (SR, 1, "PCM_16")
        assert clip.duration == pytest.approx(u.end_s - u.start_s, abs=0.01)
    assert dataset.sources[0].name == "reading.wav"
    assert steps[-1] == (1.0, "Dataset saved") and any("Transcribing clip 14 of 14" in m for _, m in steps)
    assert [f for f, _ in steps] == sorted(f for f, _ in steps)


def test_each_clip_is_measured_and_the_verdict_gives_its_reasons(built):
    dataset, _ = built
    stats = {u.id: u.stats for u in dataset.utterances}
    clipped = [uid for uid, s in stats.items() if s.clipped]
    assert clipped == ["u0007"]  # the sentence recorded too hot (the 8th, in the 7th clip)
    assert stats["u0007"].peak_dbfs == pytest.approx(0.0, abs=0.01)
    for uid, s in stats.items():
        assert s.noise_floor_dbfs == pytest.approx(NOISE_DBFS, abs=4.0), uid  # the room, not the voice
        assert not s.noisy
        if uid != "u0007":
            assert -40 < s.rms_dbfs < -10 and s.clipped_ratio == 0
    totals = dataset.totals()
    assert (totals.utterances, totals.kept, totals.excluded, totals.untranscribed) == (14, 14, 0, 0)
    assert totals.kept_minutes == pytest.approx(sum(s.seconds for s in stats.values()) / 60)
    verdict = dataset.verdict()
    assert verdict.level is VerdictLevel.WEAK and verdict.go
    assert (
        verdict.reasons[0]
        == f"{totals.kept_minutes:.1f} min kept in 14 clips; 10 min or more recommended for a steady voice."
    )
    assert any("demo transcription model" in r and "14 clips" in r for r in verdict.reasons)
    assert any(r.startswith("Clipping in 1 clip (u0007)") for r in verdict.reasons)
    assert verdict.as_dict()["totals"]["kept"] == 14


def test_the_transcripts_come_from_the_model_managers_asr(built, asr_context):
    dataset, _ = built
    assert dataset.asr_model == "demo-whisper-small" and dataset.asr_demo
    assert asr_context.models.resident_keys() == ["demo-whisper-small"]
    assert all(u.text and u.text == u.asr_text and u.text.isprintable() for u in dataset.utterances)
    assert dataset.language != "auto"


def test_excluding_a_clip_keeps_it_out_of_training(built, tmp_path):
    dataset, _ = built
    store = copy_store(dataset, tmp_path / "datasets")
    rows = dataset.training_rows()
    assert len(rows) == 14 and all(set(row) == {"audio", "text", "ref_audio"} for row in rows)
    reference = dataset.reference()
    assert reference is not None and reference.id != "u0007"  # the reference never clips
    assert {row["ref_audio"] for row in rows} == {str(dataset.audio_path(reference))}

    edited = store.edit(
        dataset.id,
        [UtteranceEdit("u0003", excluded=True), UtteranceEdit("u0001", text="  The morning train\nwas late.  ")],
    )
    rows = edited.training_rows()
    assert len(rows) == 13
    assert str(edited.audio_path("u0003")) not in {row["audio"] for row in rows}
    assert rows[0]["text"] == "The morning train was late."
    assert edited.totals().demo_text == 12  # the edited transcript no longer counts as demo text
    jsonl = edited.write_training_jsonl(tmp_path / "train.jsonl")
    assert [json.loads(line) for line in jsonl.read_text("utf-8").splitlines()] == rows
    for row in rows:
        assert Path(row["audio"]).is_file() and Path(row["audio"]).is_absolute()

    reopened = DatasetStore(tmp_path / "datasets").get("anna READS")  # by name, case-insensitive, from disk
    assert reopened == edited and reopened.utterance("u0003").excluded
    included = store.set_excluded(reopened, "u0003", False)
    assert len(included.training_rows()) == 14

    with pytest.raises(InvalidInput, match="has no clip 'u0099'"):
        store.set_text(dataset.id, "u0099", "words")
    with pytest.raises(InvalidInput, match="control character"):
        store.set_text(dataset.id, "u0002", "bad\x00text")
    assert store.get(dataset.id) == included  # a refused edit changes nothing


def test_the_reference_clip_can_be_chosen_while_it_is_kept(built, tmp_path):
    dataset, _ = built
    store = copy_store(dataset, tmp_path / "datasets")
    chosen = store.set_reference(dataset.id, "u0005")
    assert {row["ref_audio"] for row in chosen.training_rows()} == {str(chosen.audio_path("u0005"))}
    excluded = store.set_excluded(chosen.id, "u0005")
    assert excluded.reference() is not None and excluded.reference().id != "u0005"
    with pytest.raises(InvalidInput, match="excluded or has no transcript"):
        store.set_reference(dataset.id, "u0005")


def test_many_clips_without_transcripts_are_a_no_go_until_transcribed(asr_context, tmp_path):
    clips = []
    for n, chunk in enumerate((SENTENCES[0:2], SENTENCES[3:5], SENTENCES[6:9])):
        audio, _ = make_recording(chunk)
        clips.append(write_audio(audio, tmp_path / f"clip{n}.flac"))
    store = DatasetStore(tmp_path / "datasets")
    dataset = store.create("Clips", clips)  # no transcriber: cut only
    assert [u.source for u in dataset.utterances] == [0, 0, 1, 1, 2, 2, 2]
    assert [s.name for s in dataset.sources] == ["clip0.flac", "clip1.flac", "clip2.flac"]
    assert dataset.asr_model is None and all(u.text == "" for u in dataset.utterances)
    verdict = dataset.verdict()
    assert verdict.level is VerdictLevel.NO_GO and not verdict.go
    assert verdict.headline.startswith("No transcripts: none of the 7 included clips has one.")
    with pytest.raises(InvalidInput, match="Nothing to train on in 'Clips': No transcripts"):
        dataset.training_rows()

    typed = store.edit(dataset.id, [UtteranceEdit(f"u000{n}", text=f"Typed {n}.") for n in (1, 2, 3, 4, 6)])
    assert typed.totals().untranscribed == 2 and typed.verdict().level is VerdictLevel.NO_GO  # 0.4 min
    done = store.transcribe(typed.id, asr_context.transcriber)  # only the two missing ones
    assert [u.text for u in done.utterances if u.id != "u0005" and u.id != "u0007"] == [
        f"Typed {n}." for n in (1, 2, 3, 4, 6)
    ]
    assert done.utterance("u0005").text and done.utterance("u0007").asr_text and done.asr_demo
    assert done.totals().untranscribed == 0 and done.totals().demo_text == 2


def test_too_little_speech_is_a_no_go_and_no_speech_is_refused(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    audio, _ = make_recording(SENTENCES[0:2])
    short = store.create("Short", [("take 1", audio)])
    short = store.edit(short.id, [UtteranceEdit(u.id, text="Words.") for u in short.utterances])
    verdict = short.verdict()
    assert verdict.level is VerdictLevel.NO_GO
    assert verdict.headline.startswith("Too little speech: 0.1 min kept in 2 clips; at least 1 min is needed")
    with pytest.raises(InvalidInput, match="Too little speech"):
        short.training_rows()
    assert len(short.training_rows(require_go=False)) == 2  # a trial run may, knowingly

    hum = Audio((0.3 * np.sin(2 * np.pi * 120 * np.arange(10 * SR) / SR)).astype(np.float32), SR)
    with pytest.raises(InvalidInput, match=r"No speech was found in the recording \(10.0 s of audio\)"):
        store.create("Hum", [("hum", hum)])
    with pytest.raises(InvalidInput, match="Add a recording"):
        store.create("Nothing", [])
    with pytest.raises(InvalidInput, match="A dataset named 'short' already exists"):
        store.create("short", [("take 1", audio)])
    assert [d.name for d in store.list()] == ["Short"]
    assert folders(store) == [short.id]  # nothing half-saved


def test_a_stopped_build_leaves_nothing(asr_context, recording, tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    token = CancelToken()

    def progress(_fraction: float, message: str) -> None:
        if message.startswith("Cutting"):  # the clips are written, the ASR has not started
            token.cancel()

    with cancellable(token), pytest.raises(Stopped, match="Stopped transcribing"):
        store.create("Stopped", [recording[0]], transcriber=asr_context.transcriber, progress=progress)
    assert store.list() == [] and folders(store) == []


@contextmanager
def files_capped_at(size: int) -> Iterator[None]:
    """The OS refuses to grow any file of this process past ``size`` bytes (EFBIG), as a disk
    that fills up refuses a write (ENOSPC) mid-save. Python ignores SIGXFSZ, so it is an OSError."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_disk_that_refuses_a_write_mid_save_leaves_nothing_half_saved(built, recording, tmp_path):
    dataset, _ = built
    store = copy_store(dataset, tmp_path / "datasets")
    # The 12 s clip (about 560 KB) cannot be written: the build stops there, at its 5th clip.
    with (
        files_capped_at(300_000),
        pytest.raises(
            DatasetError, match=r"Could not save the dataset 'Full' \(File too large\); nothing was changed."
        ),
    ):
        store.create("Full", [recording[0]])
    assert folders(store) == [dataset.id]
    record = (dataset.folder / "dataset.json").read_bytes()
    with files_capped_at(1_000), pytest.raises(DatasetError, match="Could not save the review of 'Anna reads'"):
        store.set_excluded(dataset.id, "u0001")
    assert store.get(dataset.id) == DatasetStore(store.root).get(dataset.id)
    assert not store.get(dataset.id).utterance("u0001").excluded
    assert (store.root / dataset.id / "dataset.json").read_bytes() == record  # the old record, whole
    assert sorted(p.name for p in (store.root / dataset.id).iterdir()) == ["audio", "dataset.json"]  # no temp file


def test_the_store_lists_renames_and_deletes(built, tmp_path):
    dataset, _ = built
    unused = DatasetStore(tmp_path / "unused")
    assert unused.list() == [] and not unused.root.exists()  # no folder until a dataset is saved
    store = copy_store(dataset, tmp_path / "datasets")
    assert [d.id for d in store.list()] == [dataset.id]
    renamed = store.rename(dataset.id, "Anna, chapter one")
    assert DatasetStore(store.root).get(renamed.id).name == "Anna, chapter one"
    with pytest.raises(InvalidInput, match="Give the dataset a name"):
        store.rename(dataset.id, "   ")
    (store.root / "broken").mkdir()
    (store.root / "broken" / "dataset.json").write_text("{not json")
    assert [d.id for d in store.list()] == [dataset.id]
    assert store.warnings == ["Skipped the dataset folder 'broken': its dataset.json is not valid JSON."]
    store.delete(renamed.id)
    assert store.list() == [] and not (store.root / dataset.id).exists()
    with pytest.raises(InvalidInput, match="No dataset is named 'Anna, chapter one'"):
        store.get("Anna, chapter one")


def test_export_and_import_as_one_zip(built, tmp_path):
    dataset, _ = built
    source = copy_store(dataset, tmp_path / "a")
    edited = source.edit(dataset.id, [UtteranceEdit("u0002", excluded=True), UtteranceEdit("u0004", text="Mine.")])
    exported = source.export_zip(dataset.id, tmp_path)  # a folder: a dated file in it
    assert exported.parent == tmp_path and exported.suffix == ".zip"
    with zipfile.ZipFile(exported) as archive:
        assert sorted(archive.namelist()) == ["audio/" + u.file.split("/")[1] for u in dataset.utterances] + [
            "dataset.json"
        ]

    target = DatasetStore(tmp_path / "b")
    imported = target.import_zip(exported)
    assert imported.name == "Anna reads" and imported.id != "" and imported.folder.parent == target.root
    assert [u.as_dict() for u in imported.utterances] == [u.as_dict() for u in edited.utterances]
    for u in imported.utterances:
        assert imported.audio_path(u).read_bytes() == edited.audio_path(u).read_bytes()
    assert len(imported.training_rows()) == 13
    again = target.import_zip(exported)
    assert again.name == "Anna reads (imported)" and again.id != imported.id
    with pytest.raises(DatasetError, match="outside the datasets folder"):
        target.export_zip(imported.id, target.root / "x.zip")


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_a_wrong_file_is_refused_on_import_and_nothing_is_saved(built, tmp_path):
    dataset, _ = built
    good = copy_store(dataset, tmp_path / "a").export_zip(dataset.id, tmp_path / "good.zip")
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    record = json.loads(members["dataset.json"])
    bad_record = {**record, "utterances": [{**record["utterances"][0], "stats": {"seconds": "many"}}]}
    cases = {
        "not a zip": (_write(tmp_path / "notes.zip", b"plain text"), "is not a zip file"),
        "a voice export": (_zip(tmp_path / "v.zip", {"anna/voice.json": b"{}"}), "is a voice export"),
        "a path that climbs out": (_zip(tmp_path / "e.zip", {**members, "../evil.wav": b"x"}), "not part of a dataset"),
        "a missing clip": (
            _zip(tmp_path / "m.zip", {k: v for k, v in members.items() if k != "audio/u0003.wav"}),
            r"lacks audio/u0003.wav",
        ),
        "a damaged record": (
            _zip(tmp_path / "d.zip", {**members, "dataset.json": json.dumps(bad_record).encode()}),
            "cannot be imported: its dataset.json is damaged",
        ),
        "a clip that is not WAV": (
            _zip(tmp_path / "w.zip", {**members, "audio/u0003.wav": b"ID3 not a wav at all"}),
            "audio/u0003.wav in 'w.zip' is not WAV audio",
        ),
    }
    store = DatasetStore(tmp_path / "b")
    for label, (path, message) in cases.items():
        with pytest.raises(DatasetError, match=message):
            store.import_zip(path)
        assert folders(store) == [], label


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
