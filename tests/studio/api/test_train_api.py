"""Fine-tuning's named API (studio/ui/tabs/train_dataset.py, train_run.py) through gradio_client against a
real studio on the demo models and the demo Whisper: a dataset built from an espeak-ng reading, reviewed,
exported and imported; a trial run trained, stopped, resumed and spoken through /custom_voice and
/v1/audio/speech; and the refusals, each a sentence."""

from __future__ import annotations

import time
import zipfile

import httpx
import pytest
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from core.audio.io import write_audio
from core.finetune.evaluate import HELD_OUT
from tests.conftest import free_port, make_demo_settings
from tests.core.finetune.test_dataset import make_recording

# Five sentences with clear pauses: about 25 s, five clips (the demo Whisper takes ~1-3 s per clip).
READING = [
    ("The morning train was late again, so everyone waited on the cold platform.", 1.0),
    ("She opened the old wooden box and found a bundle of letters inside.", 1.2),
    ("Our garden grows tomatoes, beans and sweet peppers every summer.", 1.1),
    ("The library closes at eight, but the reading room stays open until ten.", 0.9),
    ("Fresh bread from the bakery on the corner is the best way to start a day.", 1.0),
]


@pytest.fixture(scope="module")
def reading(tmp_path_factory):
    audio, times = make_recording(READING)
    return write_audio(audio, tmp_path_factory.mktemp("reading") / "reading.wav"), times


@pytest.fixture(scope="module")
def train_server(tmp_path_factory, demo_checkpoints, demo_asr):
    from studio.server import serve

    settings = make_demo_settings(
        tmp_path_factory.mktemp("train-studio"), demo_checkpoints, port=free_port(), checkpoint_asr=demo_asr
    )
    app, ctx = serve(settings, block=False)
    try:
        url = f"http://127.0.0.1:{settings.port}/"
        yield {"client": Client(url, verbose=False), "ctx": ctx, "url": url}
    finally:
        app.close()


@pytest.fixture(scope="module")
def built(train_server, reading):
    return train_server["client"].predict(
        name="Anna reads", files=[handle_file(str(reading[0]))], api_name="/dataset_build"
    )


def test_a_reading_becomes_a_reviewed_dataset(train_server, built, reading):
    client = train_server["client"]
    _, times = reading
    clips = built["clips"]
    assert built["name"] == "Anna reads" and len(clips) == len(READING)
    for clip, (start, end) in zip(clips, times):  # each clip is its sentence, within the builder's tolerance
        assert abs(clip["start_s"] - start) < 0.3 and abs(clip["end_s"] - end) < 0.3, (clip, start, end)
        assert clip["text"] and clip["trainable"] and clip["stats"]["speech_s"] > 2
    assert built["asr_demo"] is True and built["reference"] in {c["id"] for c in clips}
    verdict = built["verdict"]
    # About 25 s kept: too little to train for real, said plainly.
    assert verdict["level"] == "no_go" and verdict["reasons"][0].startswith("Too little speech")
    assert verdict["totals"]["kept"] == len(READING)

    listed = client.predict(api_name="/dataset_list")
    assert [d["id"] for d in listed] == [built["id"]] and "clips" not in listed[0]
    got = client.predict(dataset="anna READS", api_name="/dataset_get")  # a name, case-insensitive
    assert got["clips"] == clips

    first, second = clips[0]["id"], clips[1]["id"]
    edited = client.predict(dataset=built["id"], clip=first, text="  A  new   transcript. ", api_name="/dataset_edit")
    assert edited["clips"][0]["text"] == "A new transcript." and edited["clips"][0]["asr_text"] == clips[0]["text"]
    excluded = client.predict(dataset=built["id"], clip=second, excluded=True, api_name="/dataset_edit")
    assert excluded["clips"][1]["excluded"] and not excluded["clips"][1]["trainable"]
    assert excluded["clips"][0]["text"] == "A new transcript."  # the text edit is kept
    assert excluded["verdict"]["totals"]["kept"] == len(READING) - 1
    # Excluding keeps it out of what training reads.
    rows = train_server["ctx"].app.datasets.get(built["id"]).training_rows(require_go=False)
    assert len(rows) == len(READING) - 1 and not any(r["audio"].endswith(f"{second}.wav") for r in rows)
    included = client.predict(dataset=built["id"], clip=second, excluded=False, api_name="/dataset_edit")
    assert included["verdict"]["totals"]["kept"] == len(READING)


def test_export_and_import_round_trip(train_server, built):
    client = train_server["client"]
    path = client.predict(dataset=built["id"], api_name="/dataset_export")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert "dataset.json" in names and sum(n.startswith("audio/") for n in names) == len(READING)
    imported = client.predict(file=handle_file(path), api_name="/dataset_import")
    assert imported["name"] == "Anna reads (imported)" and imported["id"] != built["id"]
    assert [c["id"] for c in imported["clips"]] == [c["id"] for c in built["clips"]]
    train_server["ctx"].app.datasets.delete(imported["id"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"name": "", "api_name": "/dataset_build"}, "Give the dataset a name."),
        ({"name": "Empty", "files": [], "api_name": "/dataset_build"}, "Add a recording"),
        ({"name": "Anna reads", "files": "READING", "api_name": "/dataset_build"}, "already exists"),
        ({"dataset": "nobody", "api_name": "/dataset_get"}, "No dataset is named 'nobody'"),
        ({"dataset": "DATASET", "clip": "u0999", "text": "x", "api_name": "/dataset_edit"}, "has no clip 'u0999'"),
        ({"dataset": "DATASET", "clip": "", "api_name": "/dataset_edit"}, "Name the clip to edit"),
        ({"dataset": "DATASET", "clip": "u0001", "excluded": "maybe", "api_name": "/dataset_edit"}, "true or false"),
        ({"file": None, "api_name": "/dataset_import"}, "Choose a dataset .zip"),
        ({"dataset": "DATASET", "speaker": "Ryan", "trial": True, "api_name": "/train_start"}, "already a speaker"),
        ({"dataset": "DATASET", "speaker": "Nova", "api_name": "/train_start"}, "Too little speech"),
        ({"dataset": "DATASET", "speaker": "Nova", "size": "3B", "trial": True, "api_name": "/train_start"}, "size"),
        ({"dataset": "DATASET", "speaker": "Nova", "method": "magic", "api_name": "/train_start"}, "lora or full"),
        ({"dataset": "", "speaker": "Nova", "api_name": "/train_start"}, "Choose the dataset"),
        ({"run": "run-nope", "api_name": "/train_status"}, "There is no training run"),
        ({"run": "run-nope", "api_name": "/train_evaluate"}, "There is no training run"),
        ({"run": " ", "api_name": "/train_evaluate"}, "Pick the finished training run"),
    ],
)
def test_bad_input_is_refused_with_a_sentence(train_server, built, reading, call, message):
    call = dict(call)
    if call.get("files") == "READING":
        call["files"] = [handle_file(str(reading[0]))]
    if call.get("dataset") == "DATASET":
        call["dataset"] = built["id"]
    with pytest.raises(AppError, match=message):
        train_server["client"].predict(**call)
    assert [d.name for d in train_server["ctx"].app.datasets.list()] == ["Anna reads"]  # nothing half-saved
    assert train_server["ctx"].finetune.all() == []  # no run was created by a refusal


def wait_for(client: Client, run: str, done, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.predict(run=run, api_name="/train_status")
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def test_a_trial_run_trains_stops_resumes_and_speaks(train_server, built):
    client, ctx = train_server["client"], train_server["ctx"]
    started = client.predict(dataset=built["id"], speaker="Nova Test", epochs=4, trial=True, api_name="/train_start")
    run = started["run"]
    assert started["running"] and started["speaker"] == "Nova Test" and started["method"] == "lora"
    assert started["base"] == "demo-0.6B-Base"
    stopped = client.predict(run=run, api_name="/train_stop")
    assert stopped["status"] == "stopped" and not stopped["running"], stopped
    kept = stopped["step"]
    with pytest.raises(AppError, match="is not training now"):
        client.predict(run=run, api_name="/train_stop")

    resumed = client.predict(run=run, api_name="/train_resume")
    assert resumed["running"]
    done = wait_for(client, run, lambda s: not s["running"])
    assert done["status"] == "done", done
    assert done["total_steps"] == 4 and done["step"] == 4 and len(done["losses"]) == 4 >= kept
    assert done["output"] == "custom-nova-test" and any("Unloaded" in n or "Takes wait" in n for n in done["notes"])

    # The trained speaker speaks through the named API and the OpenAI route.
    path, info = client.predict(
        text="Hello there.", speaker="Nova Test", seed=1, max_seconds=1, api_name="/custom_voice"
    )
    assert info["model"] == "custom-nova-test" and sf.info(path).duration > 0
    speech = httpx.post(
        f"{train_server['url']}v1/audio/speech",
        json={"model": "tts-1", "voice": "Nova Test", "input": "Hello there.", "response_format": "wav"},
        timeout=120,
    )
    assert speech.status_code == 200, speech.text
    assert any(c.key == "custom-nova-test" for c in ctx.app.catalog.trained())
    with pytest.raises(AppError, match="already a speaker"):  # the name is taken now
        client.predict(dataset=built["id"], speaker="nova test", trial=True, api_name="/train_start")

    # The evaluation: held-out sentences by the trained voice and by a clone, heard and measured.
    evaluated = client.predict(run=run, max_seconds=1, api_name="/train_evaluate")
    assert [r["sentence"] for r in evaluated["rows"]] == list(HELD_OUT[:3]) and evaluated["model"] == "custom-nova-test"
    for row in evaluated["rows"]:
        for side in ("trained", "clone"):
            take = row[side]
            assert 0 < sf.info(take["wav"]).duration <= 1.5 and take["wer"] >= 0 and -1 <= take["similarity"] <= 1
    assert evaluated["demo"] and "noise" in evaluated["reading"] and evaluated["clips"] == len(READING)
    assert ctx.finetune.evaluation(run).as_dict()["rows"] == [
        {side: {k: v for k, v in r[side].items() if k != "wav"} for side in ("trained", "clone")}
        | {"sentence": r["sentence"]}
        for r in evaluated["rows"]
    ]
