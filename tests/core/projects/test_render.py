"""Rendering projects on the real demo models, as jobs of the one take runner: end to end, Stop
and Resume, QA re-takes (counted), alternates, redo with the same seed, edit one block.

One serving context (one model load) for the module; each test makes its own project. Takes
are kept short with ``max_new_tokens``.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from core.audio.io import load_audio
from core.errors import InvalidInput
from core.projects import render
from core.projects.model import (
    Block,
    BlockStatus,
    BlockTake,
    Chapter,
    Manuscript,
    ManuscriptChapter,
    Project,
    VoiceChoice,
)
from core.takes.jobs import JobState
from tests.conftest import make_demo_settings

FRAMES = 10  # codec frames per block: under a second of audio each

BOOK = Manuscript(
    title="The Lighthouse",
    author="A. Writer",
    chapters=(
        ManuscriptChapter("Arrival", ("The keeper climbed the stairs.", "Maya: Is the lamp lit?", "It was.")),
        ManuscriptChapter("Night", ("The sea was calm.", "Morning came slowly.")),
    ),
)


@pytest.fixture(scope="module")
def serving(demo_checkpoints, demo_asr, tmp_path_factory):
    from core.context import build_context
    from core.serving.context import ServingContext

    settings = make_demo_settings(tmp_path_factory.mktemp("render") / "data", demo_checkpoints, checkpoint_asr=demo_asr)
    context = ServingContext(build_context(settings))
    context.projects.max_new_tokens = FRAMES
    yield context
    context.jobs.stop_all()


@pytest.fixture
def calls(serving):
    """Every request the engine is asked to make, counted where the render sends them."""
    synthesis = serving.app.synthesis
    made: list[str] = []
    original = synthesis.synthesize_many

    def counting(requests, *args, **kwargs):
        made.extend(r.text for r in requests)
        return original(requests, *args, **kwargs)

    synthesis.synthesize_many = counting
    yield made
    del synthesis.synthesize_many


def new_project(serving, qa_tries: int = 0, **fields) -> Project:
    projects = serving.projects
    project = projects.create("The Lighthouse", narrator="Ryan (calm)")
    projects.add_manuscript(project.id, BOOK)
    return projects.update(project.id, qa_tries=qa_tries, casting="Maya = Vivian", **fields)


def finish(job, seconds: float = 300) -> None:
    assert job.wait(seconds), "the render did not finish"
    assert job.state is JobState.DONE, job.error


def blocks(project: Project) -> list[Block]:
    return [b for c in project.chapters for b in c.blocks]


# --- planning and alternates (no model) -------------------------------------------------


def test_the_plan_skips_locked_and_current_blocks_and_casts_dialogue():
    project = Project(
        id="p-1",
        title="T",
        narrator=VoiceChoice(speaker="Ryan", instruct="calm"),
        casting="Maya = Vivian (warm)",
        chapters=[
            Chapter("c1", "One", [Block("b1", "Hello there."), Block("b2", "Maya: Is it lit?", speaker="Maya")]),
            Chapter("c2", "Two", [Block("b3", "Locked one.", locked=True), Block("b4", "Tom: Hi.", speaker="Tom")]),
        ],
    )
    works = render.plan(project)
    assert [w.block_id for w in works] == ["b1", "b2", "b4"]
    assert [w.cast.voice.label for w in works] == ["Ryan (calm)", "Vivian (warm)", "Ryan (calm)"]
    # A cast name speaks its line; an uncast one is narration, read whole.
    assert [w.cast.spoken for w in works] == ["Hello there.", "Is it lit?", "Tom: Hi."]
    assert works[1].label == "Chapter 1 of 2 · block 2 of 2"
    assert works[0].seed == render.block_seed("p-1", "b1") == render.plan(project)[0].seed
    assert render.block_seed("p-1", "b1") != render.block_seed("p-1", "b2")

    # A block whose chosen take is current is skipped; edited or re-voiced, it is planned again.
    take = BlockTake("t1", "audio/t1.wav", 42, 1.0, "Hello there.", "Ryan (calm)", 1.0)
    project.chapters[0].blocks[0].takes, project.chapters[0].blocks[0].chosen = [take], "t1"
    assert "b1" not in [w.block_id for w in render.plan(project)]
    assert render.plan(project, block_id="b1")[0].seed == 42  # redo: the same seed
    assert render.plan(project, block_id="b1", seed="new")[0].block_id == "b1"
    project.chapters[0].voice = VoiceChoice(speaker="Aiden")
    assert render.plan(project)[0].block_id == "b1"
    with pytest.raises(InvalidInput, match="locked"):
        render.plan(project, block_id="b3")
    with pytest.raises(InvalidInput, match="Seed must be"):
        render.plan(project, seed="same")
    with pytest.raises(InvalidInput, match="Nothing to render"):
        render.plan(Project(id="p", title="T", chapters=[Chapter("c", "C", [Block("b", "x", locked=True)])]))


def test_alternates_keep_the_newest_and_the_chosen_and_passing_takes_win():
    from core.projects.model import QAVerdict

    block = Block("b1", "Hello.")
    ok, bad = QAVerdict(passed=True, wer=0.0), QAVerdict(passed=False, reasons=("runs 2.6x longer than expected",))
    made = [BlockTake(f"t{i}", f"audio/t{i}.wav", i, 1.0, "Hello.", "Ryan", float(i), qa=ok) for i in range(1, 4)]
    for take in made:
        assert render.add_take(block, take, keep=2) == ([] if take.id != "t3" else [made[0]])
    assert [t.id for t in block.takes] == ["t2", "t3"] and block.chosen == "t3"
    assert block.status is BlockStatus.CHECKED
    # A failing take is kept as an alternate, but the passing one stays chosen.
    failed = BlockTake("t4", "audio/t4.wav", 4, 1.0, "Hello.", "Ryan", 4.0, qa=bad)
    assert render.add_take(block, failed, keep=2) == [made[1]]
    assert block.chosen == "t3" and [t.id for t in block.takes] == ["t3", "t4"]
    # Only failing takes: the newest is chosen, and the block is flagged with the reason.
    lone = Block("b2", "Hello.")
    render.add_take(lone, failed, keep=3)
    assert lone.chosen == "t4" and lone.status is BlockStatus.FLAGGED and "2.6x" in lone.flag


# --- on the demo models ---------------------------------------------------------------------


def test_a_project_renders_end_to_end_as_one_job(serving, calls):
    project = new_project(serving)
    job = serving.projects.render(project.id, owner="s1")
    assert job.kind == "project" and job.chunks_total == 5 and job.tab == "projects"
    lines: list[str] = []
    while not job.wait(0.05):
        if job.state is JobState.RUNNING:
            lines.append(job.progress_text())
    finish(job)
    assert any(line.startswith("Chapter 1 of 2 · block 1 of 3") for line in lines), lines
    assert job.chunks_done == 5 and job.progress_text().startswith("Done in")
    assert sorted(calls) == sorted(
        ["The keeper climbed the stairs.", "Is the lamp lit?", "It was.", "The sea was calm.", "Morning came slowly."]
    )

    stored = serving.projects.get(project.id)
    for block in blocks(stored):
        take = block.chosen_take
        assert take is not None and take.tries == 1 and take.text == block.text
        assert block.status is not BlockStatus.NOT_RENDERED
        path = serving.projects.take_path(project.id, take)
        assert path.is_file() and abs(load_audio(path).duration - take.seconds) < 0.01
        assert take.qa is not None and take.qa.demo  # heard by the demo ASR, and it says so
    maya = stored.block("b0002")[1]
    assert maya.speaker == "Maya" and maya.chosen_take.voice == "Vivian"
    assert [row["rendered"] for row in serving.projects.list() if row["id"] == project.id] == [5]
    # Rendering again has nothing to do: every block is current.
    with pytest.raises(InvalidInput, match="Nothing to render"):
        serving.projects.render(project.id)


def test_a_stopped_render_keeps_its_blocks_and_rendering_again_finishes_only_the_rest(serving, calls):
    project = new_project(serving)
    job = serving.projects.render(project.id)
    deadline = time.monotonic() + 300
    while not any(b.takes for b in blocks(serving.projects.get(project.id))):
        assert time.monotonic() < deadline and not job.finished, "no block was saved"
        time.sleep(0.02)
    threading.Thread(target=serving.jobs.stop, args=(job.id,)).start()
    assert job.wait(120) and job.state is JobState.STOPPED, job.state
    assert "Stopp" in job.progress_text()

    saved = {b.id: b.chosen for b in blocks(serving.projects.get(project.id)) if b.chosen}
    assert 1 <= len(saved) < 5
    calls.clear()
    again = serving.projects.render(project.id)  # the Resume
    assert again.chunks_total == 5 - len(saved)
    finish(again)
    assert len(calls) == 5 - len(saved)
    done = serving.projects.get(project.id)
    assert all(b.chosen for b in blocks(done))
    assert {b.id: b.chosen for b in blocks(done) if b.id in saved} == saved  # the saved ones untouched


def test_a_block_that_fails_the_check_is_retaken_then_flagged(serving, calls):
    project = new_project(serving, qa_tries=2)
    job = serving.projects.render(project.id, block_id="b0001")
    finish(job)
    # The demo ASR hears noise, so the words never match: 1 take + 2 re-takes, then flagged.
    assert calls == ["The keeper climbed the stairs."] * 3
    block = serving.projects.get(project.id).block("b0001")[1]
    assert block.status is BlockStatus.FLAGGED and block.flag
    take = block.chosen_take
    assert take.tries == 3 and not take.qa.passed and take.qa.demo
    assert take.seed == render.block_seed(project.id, "b0001") + 2 * render.RETAKE_STRIDE
    report = serving.projects.qa_report(project.id)
    assert report["flagged"] == 1 and report["demo"]
    assert report["chapters"][0]["flagged"][0]["reason"] == block.flag


def test_edit_redo_alternates_and_choose(serving, calls):
    projects = serving.projects
    project = new_project(serving, alternates=2)
    finish(projects.render(project.id, chapter_id="c001"))
    assert len(calls) == 3
    first = projects.get(project.id).block("b0003")[1].chosen_take

    # Edit one block: only that one is made again.
    calls.clear()
    edited = projects.edit_block(project.id, "b0003", "It was lit.")
    assert edited.block("b0003")[1].status is BlockStatus.NOT_RENDERED
    finish(projects.render(project.id, chapter_id="c001"))
    assert calls == ["It was lit."]
    block = projects.get(project.id).block("b0003")[1]
    second = block.chosen_take
    assert second.text == "It was lit." and [t.id for t in block.takes] == [first.id, second.id]

    # Redo with the same seed: the same take again (bit for bit); a third take drops the oldest.
    calls.clear()
    finish(projects.render(project.id, block_id="b0003", seed="keep"))
    block = projects.get(project.id).block("b0003")[1]
    third = block.chosen_take
    assert calls == ["It was lit."] and third.seed == second.seed
    assert [t.id for t in block.takes] == [second.id, third.id]
    assert not projects.take_path(project.id, first).exists()
    a, b = (load_audio(projects.take_path(project.id, t)).samples for t in (second, third))
    assert np.array_equal(a, b)

    # A new seed; then choose the older alternate back.
    finish(projects.render(project.id, block_id="b0003", seed="new"))
    block = projects.get(project.id).block("b0003")[1]
    assert block.chosen_take.seed != third.seed and len(block.takes) == 2
    chosen = projects.choose_take(project.id, "b0003", third.id).block("b0003")[1]
    assert chosen.chosen == third.id and chosen.status is not BlockStatus.NOT_RENDERED
    with pytest.raises(InvalidInput, match="not one of this block's alternates"):
        projects.choose_take(project.id, "b0003", first.id)

    # A locked block is left alone by renders, and cannot be edited.
    projects.lock_block(project.id, "b0001", True)
    with pytest.raises(InvalidInput, match="locked"):
        projects.edit_block(project.id, "b0001", "Changed.")
    with pytest.raises(InvalidInput, match="locked"):
        projects.render(project.id, block_id="b0001")
