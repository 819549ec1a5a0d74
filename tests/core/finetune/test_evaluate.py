"""The evaluation after training (core/finetune/evaluate.py) on the tiny demo checkpoints and the demo
Whisper: one short training, then three held-out sentences by the trained voice and by a clone, each
heard by the ASR and measured against the training clips with the Base's speaker encoder."""

from __future__ import annotations

import json

import pytest
import torch

from core.audio.io import load_audio
from core.context import build_context
from core.errors import InvalidInput
from core.finetune.batch import SAMPLE_RATE, speaker_embedding
from core.finetune.evaluate import HELD_OUT, RECORD, Side, cosine, embed, held_out
from core.finetune.service import FineTuning
from core.serving.context import ServingContext
from core.takes.jobs import JobState
from tests.conftest import make_demo_settings
from tests.core.finetune.test_train import _load, _tiny, rows  # noqa: F401  (rows: the module's fixture)


@pytest.fixture
def studio(tmp_path, demo_checkpoints, demo_asr):
    settings = make_demo_settings(tmp_path / "data", demo_checkpoints, checkpoint_asr=demo_asr)
    return ServingContext(build_context(settings))


def test_held_out_sentences_skip_what_the_voice_was_trained_on():
    assert held_out(["Hello there."]) == list(HELD_OUT[:3])
    trained_on = ["We said: the BIRCH canoe slid on the smooth planks!", "Glue the sheet to the dark blue background"]
    assert held_out(trained_on) == [HELD_OUT[2], HELD_OUT[3], HELD_OUT[4]]


def test_a_finished_run_is_evaluated_against_a_clone_and_the_result_is_kept(studio, rows):  # noqa: F811
    ctx, tuning = studio.app, studio.finetune
    with pytest.raises(InvalidInput, match="There is no training run"):
        tuning.evaluate("run-nope")
    started = tuning.start(rows, _tiny("Eve", max_steps=2))
    with pytest.raises(InvalidInput, match="Evaluate a finished run"):  # queued or training: not yet
        tuning.evaluate(started.run_id)
    assert started.job.wait(180) and started.job.state is JobState.DONE, started.job.progress_text()

    job = tuning.evaluate(started.run_id, max_new_tokens=16)
    assert job.kind == "evaluate" and job.chunks_total == 12
    with pytest.raises(InvalidInput, match="being evaluated already"):
        tuning.evaluate(started.run_id)
    assert job.wait(300) and job.state is JobState.DONE, job.progress_text()
    assert "Evaluated 'Eve'" in job.message

    ev = tuning.evaluation(started.run_id)
    assert (
        ev is not None
        and ev.speaker == "Eve"
        and ev.model == "custom-eve"
        and ev.base == tuning.get(started.run_id).base_key
    )
    assert [row.sentence for row in ev.rows] == list(HELD_OUT[:3])
    assert ev.reference == rows[0]["ref_audio"] and ev.reference_text == rows[0]["text"] and ev.clips == len(rows)
    takes = [row.side(side) for row in ev.rows for side in Side]
    files = {ev.path(t) for t in takes}
    assert len(files) == 6 and all(f.is_file() and f.parent.parent == ev.folder for f in files)
    for take in takes:
        assert take.seconds > 0 and load_audio(ev.path(take)).duration == pytest.approx(take.seconds, abs=0.01)
        # The demo Whisper really heard each take: a rate, not "not checked".
        assert take.wer is not None and take.wer >= 0 and take.cer is not None and take.cer >= 0
        assert -1.0 <= take.similarity <= 1.0
    assert len({t.similarity for t in takes}) > 1  # it tells takes apart (the demo encoder is not constant)
    assert [r.trained.seed for r in ev.rows] == [r.clone.seed for r in ev.rows] == [1000, 1001, 1002]
    assert ev.demo and ev.asr == ctx.catalog.asr.key and "noise" in ev.reading()
    means = ev.as_dict()["means"]
    assert means["trained"]["similarity"] == pytest.approx(sum(r.trained.similarity for r in ev.rows) / 3, abs=1e-4)

    # The similarity is what it says: recomputed here from the kept WAV (16-bit) and the clips.
    tts = _load(ctx.store.local_path(ctx.catalog.get(ev.base)))
    with torch.inference_mode():
        clips = [speaker_embedding(tts, load_audio(r["audio"], target_sr=SAMPLE_RATE).samples) for r in rows]
        mean = torch.stack(clips).mean(dim=0)
        take = embed(tts, load_audio(ev.path(ev.rows[0].clone), target_sr=SAMPLE_RATE))
        assert cosine(take, take) == pytest.approx(1.0, abs=1e-5)  # a take is its own speaker
        assert cosine(embed(tts, load_audio(ev.path(ev.rows[0].clone))), take) == pytest.approx(1.0, abs=1e-5)
        assert cosine(take, mean) == pytest.approx(ev.rows[0].clone.similarity, abs=0.02)

    # Kept with the run: a restarted studio (a new FineTuning on the same data dir) reads it back.
    again = FineTuning(ctx, studio.jobs).evaluation(started.run_id)
    assert again is not None and again.as_dict() == ev.as_dict()
    record = json.loads((ev.folder / RECORD).read_text())
    assert "means" not in record and len(record["rows"]) == 3
    assert not list(ev.folder.glob(".tmp-*"))
