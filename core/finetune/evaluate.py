"""The evaluation after training: held-out sentences by the trained voice and by a zero-shot clone.

**What is rendered.** Three sentences that none of the run's transcripts contains: the first
three of :data:`HELD_OUT` (Harvard sentences, IEEE 1969: short, phonetically balanced English,
the same for every run so runs compare) that the training text does not hold. Each is said

* by the **trained voice**: a CustomVoice request for the run's speaker, which the engine serves
  from the trained checkpoint (core/engine/user_models.py), and
* by a **zero-shot clone from the same recordings**: a CloneRequest like the Clone tab's, with
  the run's reference clip and its transcript (the clip whose speaker embedding the trained
  voice got); a reference without a transcript among the rows clones from its embedding only.

Both use the same seed per sentence, English, and the Base size the run trained from.

**What is measured.** Each take is heard by the model manager's ASR and scored by Take QA's
word error rate (core/projects/qa.py ``hear`` and ``check_take``), and its **speaker
similarity** is the cosine between the Base checkpoint's speaker encoder's embedding of the take
and the mean embedding of the run's training clips (the encoder that gave the trained speaker
its embedding, core/finetune/batch.py). Demo models make noise: ``demo`` says so.

**Kept with the run.** The job (kind ``evaluate`` in the device lane of the one take runner)
writes the six takes into a hidden folder of the run, renames it ``eval-<id>/`` and then
replaces ``evaluation.json`` atomically; a Stop, a failure or a full disk keeps the previous
evaluation whole (the run store sweeps a crash's hidden folder).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from core.audio.clip import Audio
from core.audio.io import encode, load_audio
from core.engine.catalog import Checkpoint
from core.errors import InvalidInput, ModelUnavailable, StorageFull
from core.finetune.batch import SAMPLE_RATE, speaker_embedding
from core.finetune.state import TMP_PREFIX, Run, RunStatus, RunStore
from core.projects import qa
from core.storage.durable import fsync_dir, write_atomic, write_file
from core.takes.job import Job
from core.takes.requests import Ask, request_for
from core.takes.values import Options
from core.types import Mode, Sampling

JOB_KIND = "evaluate"
RECORD = "evaluation.json"
LANGUAGE = "english"
SENTENCES = 3
SEED = 1000  # sentence k is rendered with seed 1000 + k on both sides
# Guidance for reading a similarity (docs/FINETUNING.md "Evaluation" says where it comes from).
SAME_SPEAKER = 0.75
MARGIN = 0.02  # a difference of similarity smaller than this is no difference
# Harvard sentences (IEEE Recommended Practice for Speech Quality Measurements, 1969), list 1:
# the first three not in the training text are used.
HELD_OUT = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
)


class Side(str, Enum):
    TRAINED = "trained"  # the trained speaker (CustomVoice on its checkpoint)
    CLONE = "clone"  # a zero-shot clone of the reference clip (Base)


@dataclass(frozen=True)
class TakeScore:
    """One take of the evaluation and what was measured on it."""

    file: str  # relative to the run's folder
    seconds: float
    seed: int
    similarity: float  # cosine to the training clips' mean speaker embedding, in [-1, 1]
    wer: float | None  # word error rate from the ASR (None: no ASR could run); 0 is perfect, may exceed 1
    cer: float | None
    heard: str  # what the ASR heard


@dataclass(frozen=True)
class EvalRow:
    sentence: str
    trained: TakeScore
    clone: TakeScore

    def side(self, side: Side) -> TakeScore:
        return self.trained if side is Side.TRAINED else self.clone


@dataclass(frozen=True)
class Evaluation:
    """A finished run's evaluation: three sentences, each by the trained voice and by a clone."""

    run_id: str
    folder: Path  # the run's folder: the takes' files are relative to it
    speaker: str
    model: str  # the trained checkpoint's key
    base: str  # the Base checkpoint of the clone and of the speaker encoder
    rows: tuple[EvalRow, ...]
    reference: str  # the clone's reference clip
    reference_text: str | None  # its transcript (None: the clone used its embedding only)
    clips: int  # how many training clips the mean embedding averages
    demo: bool  # demo models: the numbers are noise
    asr: str | None  # the ASR checkpoint that heard the takes; None when none could
    notes: tuple[str, ...]
    created: float

    def path(self, score: TakeScore) -> Path:
        return self.folder / score.file

    def mean(self, side: Side, measure: str) -> float | None:
        """The mean ``similarity`` or ``wer`` of one side (None when nothing was measured)."""
        values = [getattr(row.side(side), measure) for row in self.rows]
        known = [float(v) for v in values if v is not None]
        return round(sum(known) / len(known), 4) if known else None

    def reading(self) -> str:
        """What the numbers say, in a sentence or two."""
        return reading(self)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("folder")
        data["rows"] = [asdict(row) for row in self.rows]
        data["notes"] = list(self.notes)
        data["means"] = {
            side.value: {m: self.mean(side, m) for m in ("similarity", "wer")} for side in (Side.TRAINED, Side.CLONE)
        }
        data["reading"] = self.reading()
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any], folder: Path) -> Evaluation:
        rows = tuple(EvalRow(r["sentence"], TakeScore(**r["trained"]), TakeScore(**r["clone"])) for r in data["rows"])
        return cls(
            run_id=data["run_id"],
            folder=folder,
            speaker=data["speaker"],
            model=data["model"],
            base=data["base"],
            rows=rows,
            reference=data["reference"],
            reference_text=data.get("reference_text"),
            clips=int(data["clips"]),
            demo=bool(data["demo"]),
            asr=data.get("asr"),
            notes=tuple(data.get("notes", ())),
            created=float(data.get("created", 0.0)),
        )


def reading(ev: Evaluation) -> str:
    """One or two sentences on what the means say (docs/FINETUNING.md "Evaluation")."""
    if ev.demo:
        return (
            "Demo models (random weights): these numbers are noise; they only show that the evaluation "
            "runs end to end. With the real models, a higher similarity means closer to the recordings."
        )
    trained, clone = ev.mean(Side.TRAINED, "similarity"), ev.mean(Side.CLONE, "similarity")
    assert trained is not None and clone is not None  # every take has a similarity
    if trained > clone + MARGIN:
        verdict = f"The trained voice sounds more like the recordings than the clone ({trained:.2f} vs {clone:.2f})"
    elif clone > trained + MARGIN:
        verdict = (
            f"The clone sounds more like the recordings than the trained voice ({clone:.2f} vs {trained:.2f}): "
            "train longer or on more speech"
        )
    else:
        verdict = f"The trained voice and the clone are about as close to the recordings ({trained:.2f} vs {clone:.2f})"
    speaker = "at or above" if trained >= SAME_SPEAKER else "below"
    line = f"{verdict}; {trained:.2f} is {speaker} the ~{SAME_SPEAKER:.2f} that usually means the same speaker."
    t_wer, c_wer = ev.mean(Side.TRAINED, "wer"), ev.mean(Side.CLONE, "wer")
    if t_wer is None or c_wer is None:
        return line + " The words were not checked (no speech recogniser was available)."
    limit = qa.QAThresholds().max_wer
    if t_wer > limit:
        words = f"it gets many words wrong (word error rate {t_wer:.0%}; Take QA flags above {limit:.0%})"
    else:
        words = f"its words are {'as clear as' if t_wer <= c_wer + 0.05 else 'less clear than'} the clone's"
        words += f" (word error rate {t_wer:.0%} vs {c_wer:.0%})"
    return f"{line} By ear, {words}."


# --- choosing what to render --------------------------------------------------------------------


def held_out(training_texts: Sequence[str], count: int = SENTENCES) -> list[str]:
    """The first ``count`` sentences of :data:`HELD_OUT` that no training transcript contains."""
    seen = [qa.normalise_for_wer(t, english=True) for t in training_texts]
    fresh = [s for s in HELD_OUT if not any(qa.normalise_for_wer(s, english=True) in t for t in seen)]
    return fresh[:count]


@dataclass(frozen=True)
class Plan:
    """What an evaluation of a run needs, checked before it is queued."""

    run: Run
    speaker: str
    trained: Checkpoint
    base: Checkpoint
    sentences: tuple[str, ...]
    reference: Path
    reference_text: str | None
    clips: tuple[Path, ...]  # the training clips still on disk
    notes: tuple[str, ...]


def plan(app: Any, run: Run) -> Plan:
    """Checks that the run is finished, its voice and Base are there, and so are its recordings."""
    if run.status is not RunStatus.DONE or not run.output:
        raise InvalidInput("Evaluate a finished run: this one has no trained voice yet (train it to the end first).")
    try:
        trained = app.catalog.get(run.output)
    except InvalidInput:
        raise InvalidInput(f"The voice this run trained ({run.output}) is no longer in Models.") from None
    base = app.catalog.get(run.base_key)
    if app.store.local_path(base) is None:
        raise ModelUnavailable(f"{base.label} is not on disk; download it in Models to evaluate against a clone.")
    notes: list[str] = []
    clips = tuple(Path(r["audio"]) for r in run.rows if Path(r["audio"]).is_file())
    reference = Path(run.rows[0]["ref_audio"]) if run.rows else None
    if reference is None or not reference.is_file() or not clips:
        raise InvalidInput(
            "The recordings this run trained on are gone (was its dataset deleted?); "
            "the evaluation compares with them, so it cannot run."
        )
    if len(clips) < len(run.rows):
        notes.append(f"{len(run.rows) - len(clips)} of the {len(run.rows)} training clips are gone; the rest are used.")
    reference_text = next((r["text"] for r in run.rows if Path(r["audio"]) == reference), None)
    if reference_text is None:
        notes.append("The reference clip has no transcript among the rows: the clone used its speaker embedding only.")
    sentences = held_out([str(r["text"]) for r in run.rows])
    if not sentences:
        raise InvalidInput("Every held-out sentence is in this run's training text; there is nothing new to say.")
    return Plan(
        run,
        str(run.config.get("speaker", "")),
        trained,
        base,
        tuple(sentences),
        reference,
        reference_text,
        clips,
        tuple(notes),
    )


# --- the job --------------------------------------------------------------------------------------


class Evaluator:
    """Starts evaluations as jobs and reads them back (``FineTuning.evaluate`` / ``evaluation``)."""

    def __init__(self, app: Any, jobs: Any, runs: RunStore):
        self.app = app  # core.context.AppContext
        self.jobs = jobs  # core.takes.jobs.JobRegistry
        self.runs = runs
        self._lock = threading.Lock()
        self._active: dict[str, Job] = {}  # run id -> its unfinished evaluation

    def start(
        self,
        run_id: str,
        *,
        max_new_tokens: int | None = None,
        owner: str = "",
        tab: str = "",
        client: str | None = None,
    ) -> Job:
        """Queues the evaluation of a finished run (refused now, with a sentence, when it cannot run)."""
        checked = plan(self.app, self.runs.get(run_id))
        sampling = Sampling(max_new_tokens=max_new_tokens).validated()
        with self._lock:
            running = self._active.get(checked.run.id)
            if running is not None and not running.finished:
                raise InvalidInput("This run is being evaluated already; wait for it or stop it.")
            # No text: a take's speed per character must not be learnt from an evaluation.
            job = self.jobs.submit(
                lambda job: self._work(job, checked, sampling),
                kind=JOB_KIND,
                mode="Evaluate",
                text="",
                owner=owner,
                tab=tab,
                chunks=4 * len(checked.sentences),  # each take rendered, then heard
                client=client,
            )
            self._active[checked.run.id] = job
        job.summary = f"Evaluating '{checked.speaker}': {len(checked.sentences)} sentences, trained voice vs clone"
        job.report(0.0, "Waiting for the device…")
        return job

    def running(self, run_id: str) -> Job | None:
        with self._lock:
            job = self._active.get(run_id)
        return job if job is not None and not job.finished else None

    def load(self, run_id: str) -> Evaluation | None:
        """The run's last evaluation, or None when it has none."""
        return load(self.runs.get(run_id))

    def _work(self, job: Job, p: Plan, sampling: Sampling) -> list[Any]:
        n = len(p.sentences)
        total = 4 * n
        step = 0

        def advance(message: str) -> None:
            nonlocal step
            job.report(step / total, message)
            job.token.check("Stopped: nothing of this evaluation was kept.")

        def done() -> None:
            nonlocal step
            job.chunk_done(step, total)
            step += 1

        takes: dict[tuple[Side, int], Any] = {}
        for k, sentence in enumerate(p.sentences):  # the trained checkpoint stays loaded for these
            advance(f"Sentence {k + 1} of {n} by {p.speaker} (trained)")
            ask = Ask(
                Mode.CUSTOM_VOICE, sentence, LANGUAGE, p.trained.size, speaker=p.speaker, options=_opts(sampling, k)
            )
            takes[(Side.TRAINED, k)] = self.app.synthesis.synthesize(request_for(ask)[0])
            done()
        reference = load_audio(p.reference, target_sr=SAMPLE_RATE)
        for k, sentence in enumerate(p.sentences):  # then the Base, which also has the speaker encoder
            advance(f"Sentence {k + 1} of {n} by a clone of the reference")
            ask = Ask(
                Mode.BASE,
                sentence,
                LANGUAGE,
                p.base.size,
                reference=reference,
                reference_text=p.reference_text,
                x_vector_only=p.reference_text is None,
                options=_opts(sampling, k),
            )
            takes[(Side.CLONE, k)] = self.app.synthesis.synthesize(request_for(ask)[0])
            done()
        advance("Measuring speaker similarity")
        tts = self.app.models.get(p.base).model
        with torch.inference_mode():
            target = torch.stack(
                [speaker_embedding(tts, load_audio(c, target_sr=SAMPLE_RATE).samples) for c in p.clips]
            )
            mean = target.mean(dim=0)
            similarity = {key: cosine(embed(tts, r.audio), mean) for key, r in takes.items()}
        verdicts: dict[tuple[Side, int], Any] = {}
        asr: str | None = self.app.catalog.asr.key
        notes = list(p.notes)
        for number, (key, result) in enumerate(takes.items(), 1):
            advance(f"Hearing take {number} of {len(takes)}")
            heard = None
            if asr is not None:
                try:
                    heard = qa.hear(self.app.transcriber, result.audio, LANGUAGE)
                except ModelUnavailable as exc:  # offline without Whisper: the similarity still counts
                    notes.append(f"Words not checked: {exc}")
                    asr = None
            verdicts[key] = qa.check_take(
                result.audio, p.sentences[key[1]], heard, language=LANGUAGE, spoken_text=result.text
            )
            done()
        demo = p.trained.demo or p.base.demo or any(v.demo for v in verdicts.values())
        evaluation = _save(p, takes, similarity, verdicts, asr, demo, notes)
        job.report(1.0, f"Evaluated '{p.speaker}'. {evaluation.reading()}")
        return []


def _opts(sampling: Sampling, k: int) -> Options:
    return Options(Sampling(seed=SEED + k, max_new_tokens=sampling.max_new_tokens))


def embed(tts: Any, audio: Audio) -> torch.Tensor:
    """The speaker encoder's embedding of a take (resampled to the encoder's 24 kHz)."""
    samples = (
        audio.samples
        if audio.sample_rate == SAMPLE_RATE
        else load_audio((audio.samples, audio.sample_rate), target_sr=SAMPLE_RATE).samples
    )
    return speaker_embedding(tts, samples)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two embeddings, in [-1, 1]."""
    value = float(F.cosine_similarity(a.float().reshape(1, -1), b.float().reshape(1, -1)).item())
    return max(-1.0, min(1.0, value))  # float rounding can step just past 1


# --- kept with the run ------------------------------------------------------------------------------


def _save(
    p: Plan,
    takes: dict[tuple[Side, int], Any],
    similarity: dict[tuple[Side, int], float],
    verdicts: dict[tuple[Side, int], Any],
    asr: str | None,
    demo: bool,
    notes: list[str],
) -> Evaluation:
    """Writes the takes into a new ``eval-<id>/`` then ``evaluation.json``; the old one goes last."""
    folder = p.run.folder
    name = f"eval-{uuid.uuid4().hex[:10]}"
    tmp = folder / f"{TMP_PREFIX}{name}"
    scores: dict[tuple[Side, int], TakeScore] = {}
    try:
        tmp.mkdir()
        for (side, k), result in takes.items():
            file = f"{side.value}-{k + 1}.wav"
            write_file(tmp / file, encode(result.audio, "wav"))
            verdict = verdicts[(side, k)]
            scores[(side, k)] = TakeScore(
                file=f"{name}/{file}",
                seconds=round(result.audio.duration, 3),
                seed=int(result.seed),
                similarity=round(similarity[(side, k)], 4),
                wer=None if verdict.wer is None else round(float(verdict.wer), 4),
                cer=None if verdict.cer is None else round(float(verdict.cer), 4),
                heard=verdict.heard,
            )
        fsync_dir(tmp)
        os.rename(tmp, folder / name)
        fsync_dir(folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    evaluation = Evaluation(
        run_id=p.run.id,
        folder=folder,
        speaker=p.speaker,
        model=p.trained.key,
        base=p.base.key,
        rows=tuple(EvalRow(s, scores[(Side.TRAINED, k)], scores[(Side.CLONE, k)]) for k, s in enumerate(p.sentences)),
        reference=str(p.reference),
        reference_text=p.reference_text,
        clips=len(p.clips),
        demo=demo,
        asr=asr,
        notes=tuple(notes),
        created=time.time(),
    )
    record = evaluation.as_dict()
    for derived in ("means", "reading"):
        record.pop(derived)
    try:
        write_atomic(folder / RECORD, (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode())
    except OSError as exc:
        shutil.rmtree(folder / name, ignore_errors=True)
        raise _write_error(exc) from exc
    for old in folder.glob("eval-*"):
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return evaluation


def _write_error(exc: OSError) -> StorageFull:
    kept = "nothing of it was kept, and the previous evaluation is as it was"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageFull(
            f"The disk filled up while writing the evaluation; {kept}. Free some space and evaluate again."
        )
    return StorageFull(f"Could not write the evaluation ({exc.strerror or exc}); {kept}.")


def load(run: Run) -> Evaluation | None:
    """The evaluation kept with ``run``, or None (none yet, or a record that cannot be read)."""
    path = run.folder / RECORD
    if not path.is_file():
        return None
    try:
        return Evaluation.from_record(json.loads(path.read_text(encoding="utf-8")), run.folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None
