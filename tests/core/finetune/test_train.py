"""Fine-tuning on the tiny real demo checkpoints, on the CPU: the loss, Stop and Resume, the merged
checkpoint as the studio loads and speaks it, LoRA merge equivalence, and the refusals."""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import stat
import time
from pathlib import Path

import pytest
import torch

from core.audio.io import write_audio
from core.context import build_context
from core.engine.catalog import Checkpoint
from core.errors import InvalidInput, StorageFull
from core.finetune import adapters, merge
from core.finetune.batch import TokenIds, collate, compute_losses, prepare, talker_logits
from core.finetune.config import TrainConfig, TrainMethod, load_rows
from core.finetune.service import FineTuning, TrainNote
from core.finetune.state import KeptState, RunStatus, RunStore, full_error
from core.finetune.train import TrainStep
from core.serving.context import ServingContext
from core.storage.durable import write_file
from core.takes.jobs import JobRegistry, JobState
from core.takes.requests import Ask, take_job
from core.takes.values import Options
from core.types import CustomVoiceRequest, Mode, Sampling
from studio.api.openai.speech import build_job, parse_speech
from studio.api.openai.voices import voices_payload
from tests.conftest import make_demo_settings, spoken

TEXTS = (
    "The quick brown fox jumps.",
    "She sells sea shells.",
    "A clear voice reads this.",
    "Numbers like seven and twelve.",
)


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[dict[str, str]]:
    """Four short espeak-ng utterances at 24 kHz (no resampling), the first one the reference."""
    folder = tmp_path_factory.mktemp("ft-audio")
    out = []
    for number, text in enumerate(TEXTS):
        path = write_audio(spoken(1.2, seed=number), folder / f"u{number}.wav")
        out.append({"audio": str(path), "text": text, "ref_audio": str(folder / "u0.wav")})
    return out


@pytest.fixture
def studio(tmp_path, demo_checkpoints):
    """The app, its take runner and its fine-tuning, as a running studio has them (ServingContext)."""
    return ServingContext(build_context(make_demo_settings(tmp_path / "data", demo_checkpoints)))


def _base(ctx) -> tuple[Checkpoint, Path]:
    checkpoint = ctx.catalog.resolve(Mode.BASE, None)
    return checkpoint, ctx.store.local_path(checkpoint)


def _tiny(speaker: str, **overrides) -> TrainConfig:
    values = dict(speaker=speaker, epochs=3, batch_size=1, grad_accum=1, min_rows=2, lr=5e-3, save_every=100)
    return TrainConfig(**{**values, **overrides})


def _load(path: Path):
    from qwen_tts import Qwen3TTSModel

    return Qwen3TTSModel.from_pretrained(str(path), device_map="cpu", dtype=torch.float32)


@pytest.mark.parametrize("method", [TrainMethod.LORA, TrainMethod.FULL])
def test_the_loss_goes_down_on_a_repeated_batch(studio, rows, method):
    ctx = studio.app
    torch.manual_seed(0)
    tts = _load(_base(ctx)[1])
    prepared = prepare(tts, load_rows(rows[:2], min_rows=2))
    config = _tiny("Anna", method=method, lr=1e-2 if method is TrainMethod.LORA else 1e-3)
    _, params = adapters.prepare_trainable(tts.model, config)
    assert params and all(p.requires_grad for p in params)
    if method is TrainMethod.LORA:  # adapters on the attention and MLP layers only
        names = [n for n, p in tts.model.talker.named_parameters() if p.requires_grad]
        assert all("lora_" in n for n in names)
        assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names} == set(adapters.LORA_LAYERS)
        assert any(n.startswith("code_predictor.") for n in names)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    batch = collate(prepared.examples, TokenIds.of(tts.model.config))
    speaker = prepared.speaker_embeddings[batch.refs]
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = compute_losses(tts.model.talker, batch, speaker, 0.3)
        loss.total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(float(loss.total.detach()))
        assert torch.isclose(loss.total, loss.talker + 0.3 * loss.sub_talker)
    assert losses[-1] < losses[0] - 0.05, losses


def test_stop_and_resume_continue_from_the_kept_step_and_make_a_voice_that_speaks(studio, rows):
    ctx, jobs, tuning = studio.app, studio.jobs, studio.finetune
    base, _ = _base(ctx)
    ctx.models.get(base)  # resident: the job must unload it and say so
    started = tuning.start(rows, _tiny("Anna"))
    job = started.job
    assert job.kind == "train" and job.chunks_total == 12  # 4 rows x 3 epochs, batch 1
    deadline = time.monotonic() + 120
    while job.chunks_done < 2 and not job.finished and time.monotonic() < deadline:
        time.sleep(0.02)
    line = job.progress_text()
    jobs.stop(job.id)
    assert job.wait(60) and job.state is JobState.STOPPED, job.progress_text()
    assert line.startswith("Step ") and " of 12" in line and "loss " in line, line
    note = job.pieces[0]
    assert isinstance(note, TrainNote) and "Unloaded" in note.message and base.key in note.message
    assert ctx.models.resident_keys() == []
    kept = tuning.get(started.run_id)
    stopped_at = kept.kept_step()
    assert kept.status is RunStatus.STOPPED and 2 <= stopped_at < 12
    assert f"step {stopped_at} of 12" in str(job.error) and "Resume" in str(job.error)
    first_losses = [p.loss for p in job.pieces if isinstance(p, TrainStep)]
    assert tuning.losses(started.run_id) == pytest.approx(first_losses)
    assert not list(kept.folder.glob(".tmp-*"))

    resumed = tuning.resume(started.run_id)
    assert resumed.job.wait(180) and resumed.job.state is JobState.DONE, resumed.job.progress_text()
    steps = [p for p in resumed.job.pieces if isinstance(p, TrainStep)]
    assert [s.step for s in steps] == list(range(stopped_at + 1, 13))
    run = tuning.get(started.run_id)
    assert run.status is RunStatus.DONE and run.output == "custom-anna" and len(run.losses()) == 12

    # The same run without a Stop: the same data order, the same losses.
    straight = tuning.start(rows, _tiny("Bert"))
    assert straight.job.wait(180) and straight.job.state is JobState.DONE
    assert tuning.get(straight.run_id).losses() == pytest.approx(run.losses(), rel=1e-4, abs=1e-5)

    # The checkpoint: listed in the catalog and Models, loads as usual, speaks with the new name.
    trained = {c.key: c for c in ctx.catalog.trained()}
    assert set(trained) == {"custom-anna", "custom-bert"}
    anna = trained["custom-anna"]
    assert anna.mode == Mode.CUSTOM_VOICE and anna.speaker == "Anna" and ctx.catalog.get("custom-anna") == anna
    config = json.loads((anna.folder / "config.json").read_text())
    assert config["tts_model_type"] == "custom_voice"
    assert config["talker_config"]["spk_id"] == {"anna": 3000}
    assert config["talker_config"]["spk_is_dialect"] == {"anna": False}
    model = _load(anna.folder)
    assert model.model.speaker_encoder is None and set(model.model.get_supported_speakers()) == {"anna"}
    torch.manual_seed(0)
    wavs, sr = model.generate_custom_voice(text="Hello there.", language="auto", speaker="Anna", max_new_tokens=8)
    assert sr == 24_000 and wavs[0].size > 0 and float(abs(wavs[0]).max()) > 0
    assert {s.name for s in ctx.catalog.trained_speakers()} == {"Anna", "Bert"}
    result = ctx.synthesis.synthesize(
        CustomVoiceRequest(text="Hello there.", speaker="anna", sampling=Sampling(max_new_tokens=8, seed=1))
    )
    assert result.model == "custom-anna" and result.audio.duration > 0
    ask = Ask(Mode.CUSTOM_VOICE, "Hi.", "Auto", "0.6B", speaker="Anna", options=Options(Sampling(max_new_tokens=4)))
    assert take_job(ask, ctx.library, ctx.synthesis).info["speaker"] == "Anna"
    # The OpenAI-compatible API lists the voice and speaks it from its own checkpoint.

    trained_rows = [r for r in voices_payload(studio)["voice_details"] if r["type"] == "trained"]
    assert [(r["id"], r["name"]) for r in trained_rows] == [("anna", "Anna"), ("bert", "Bert")]
    plan = parse_speech(studio, {"model": "tts-1", "input": "Hello.", "voice": "Anna"})
    assert plan.checkpoint.key == "custom-anna" and plan.speaker is not None and plan.speaker.id == "anna"
    assert ctx.synthesis.synthesize(build_job(studio, plan).request).model == "custom-anna"
    rows_by_key = {row.key: row for row in ctx.models.status()}
    assert rows_by_key["custom-anna"].state == "loaded" and rows_by_key["custom-bert"].state == "downloaded"

    # A name taken by a trained voice is refused too; removing it in Models frees the name.
    with pytest.raises(InvalidInput, match="already a speaker's name"):
        tuning.start(rows, _tiny("anna"))
    ctx.models.unload()
    assert ctx.store.remove(ctx.catalog.get("custom-bert")) > 0
    assert [c.key for c in ctx.catalog.trained()] == ["custom-anna"]


def test_a_lora_merge_gives_the_outputs_of_the_unmerged_adapter(studio, rows, tmp_path):
    ctx = studio.app
    base, path = _base(ctx)
    tts = _load(path)
    prepared = prepare(tts, load_rows(rows[:2], min_rows=2))
    config = _tiny("Cleo")
    peft_model, params = adapters.prepare_trainable(tts.model, config)
    torch.manual_seed(1)
    with torch.no_grad():  # an adapter far from zero, as after training
        for p in params:
            p.normal_(0, 0.2)
    tts.model.talker.eval()
    batch = collate(prepared.examples, TokenIds.of(tts.model.config))
    speaker = prepared.speaker_embeddings[batch.refs]
    with torch.no_grad():
        unmerged, _ = talker_logits(tts.model.talker, batch, speaker)
    adapters.merge(peft_model)
    voice = merge.write_checkpoint(
        tts.model,
        base_path=path,
        dest_root=tmp_path / "models",
        config=config.validated(),
        speaker_embedding=prepared.speaker_embedding,
        base_key=base.key,
        steps=0,
        reserve_bytes=0,
    )
    merged = _load(voice.folder)
    merged.model.talker.eval()
    with torch.no_grad():
        again, _ = talker_logits(merged.model.talker, batch, speaker)
    assert unmerged.shape == again.shape
    assert torch.allclose(unmerged, again, atol=1e-4, rtol=1e-4), float((unmerged - again).abs().max())
    table = merged.model.talker.get_input_embeddings().weight
    assert torch.allclose(table[3000], prepared.speaker_embedding, atol=1e-6)


def test_a_name_that_clashes_with_a_built_in_speaker_is_refused(studio, rows):
    tuning = studio.finetune
    for name in ("Ryan", "uncle fu", "Ono-Anna"):
        with pytest.raises(InvalidInput, match="already a speaker's name"):
            tuning.start(rows, _tiny(name))
    with pytest.raises(InvalidInput, match="name"):
        tuning.start(rows, _tiny("  "))
    assert tuning.all() == []  # nothing was created


def test_too_few_rows_and_bad_rows_are_refused(studio, rows, tmp_path):
    tuning = studio.finetune
    with pytest.raises(InvalidInput, match="at least 10 utterances; this dataset has 4"):
        tuning.start(rows, TrainConfig(speaker="Dora"))
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"audio": rows[1]["audio"], "text": ""}) + "\n")
    with pytest.raises(InvalidInput, match="line 2 of train.jsonl has no text and no ref_audio"):
        load_rows(jsonl, min_rows=1)
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r.text for r in load_rows(jsonl, min_rows=4)] == list(TEXTS)
    assert tuning.all() == []


def test_a_full_disk_mid_checkpoint_keeps_nothing_half_saved(studio, rows, demo_checkpoints, tmp_path):
    ctx, jobs = studio.app, studio.jobs
    # A quota: the disk "has" no room beyond what must stay free.
    tight = FineTuning(ctx, jobs, reserve_bytes=1 << 60)
    assert isinstance(jobs, JobRegistry)
    started = tight.start(rows, _tiny("Erin", save_every=2))
    assert started.job.wait(120) and started.job.state is JobState.FAILED
    assert isinstance(started.job.error, StorageFull) and "Not enough disk space" in str(started.job.error)
    run = tight.get(started.run_id)
    assert run.status is RunStatus.FAILED and run.latest_state() is None
    assert not list(run.folder.glob(".tmp-*")) and ctx.catalog.trained() == ()

    # A real write that fails half-way (a file-size limit: EFBIG, as ENOSPC would): the kept
    # checkpoint stays whole, and nothing of the new one or of a trained voice is left.
    store = RunStore(tmp_path / "runs", reserve_bytes=0)
    other = store.create(_tiny("Fay").as_dict(), "base", Path("."), rows)
    small = {"w": torch.ones(1000)}
    other.save_state(KeptState(1, small, {}, [1.0], 1.0))
    big = {"w": torch.ones(2_000_000)}  # 8 MB
    with _file_size_limit(2 * 2**20):
        with pytest.raises(
            StorageFull, match="disk filled up .* step 2; nothing of it was kept. The checkpoint at step 1"
        ):
            other.save_state(KeptState(2, big, {}, [1.0, 0.5], 2.0))
        tts = _load(_base(ctx)[1])
        with pytest.raises(StorageFull, match="trained voice 'Fay'"):
            merge.write_checkpoint(
                tts.model,
                base_path=_base(ctx)[1],
                dest_root=tmp_path / "models",
                config=_tiny("Fay"),
                speaker_embedding=torch.zeros(tts.model.talker.config.hidden_size),
                base_key="base",
                steps=1,
                reserve_bytes=0,
            )
    if stat.S_ISCHR(os.stat("/dev/full").st_mode):  # a real ENOSPC, written in place (never replace the device)
        with pytest.raises(OSError) as full:
            write_file(Path("/dev/full"), b"x" * 65536)
        assert full.value.errno == errno.ENOSPC
        assert "disk filled up" in str(full_error(full.value, "the checkpoint", ""))
    kept = other.load_state()
    assert kept is not None and kept.step == 1 and torch.equal(kept.weights["w"], small["w"])
    assert [p.name for p in other.folder.iterdir() if p.name.startswith((".tmp", "state-"))] == ["state-000001"]
    assert list((tmp_path / "models").iterdir()) == []


class _file_size_limit:
    """RLIMIT_FSIZE for the block: a write past ``limit`` bytes fails with EFBIG (SIGXFSZ ignored)."""

    def __init__(self, limit: int):
        self.limit = limit

    def __enter__(self):
        self.old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        self.old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.old_limit[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.old_limit)
        signal.signal(signal.SIGXFSZ, self.old_handler)
