"""ProjectService as the tab, the named API and the CLI use it, on the real demo models: a project
from a manuscript, settings and voices checked, a reopened studio that still has everything,
the project file round trip and the exported book (chapters, words and sentences inside blocks)."""

from __future__ import annotations

import json
import subprocess

import pytest

from core.errors import InvalidInput
from core.projects.model import BlockStatus, MasteringPreset
from core.projects.service import ProjectService
from core.takes.jobs import JobState
from tests.conftest import make_demo_settings

MARKDOWN = """# The Lighthouse

## Arrival

The keeper climbed the stairs.

Maya: Is the lamp lit?

## Night

The sea was calm.
"""
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def serving(demo_checkpoints, demo_asr, tmp_path_factory):
    from core.context import build_context
    from core.serving.context import ServingContext

    settings = make_demo_settings(
        tmp_path_factory.mktemp("service") / "data", demo_checkpoints, checkpoint_asr=demo_asr
    )
    context = ServingContext(build_context(settings))
    context.projects.max_new_tokens = 10
    yield context
    context.jobs.stop_all()


@pytest.fixture(scope="module")
def rendered(serving):
    """A project made from Markdown and rendered once (shared by the tests that read it)."""
    projects = serving.projects
    project = projects.create(
        "", author="A. Writer", narrator="Ryan (calm)", cover=PNG, manuscript=MARKDOWN, manuscript_name="book.md"
    )
    projects.update(project.id, qa_tries=0, casting="Maya = Vivian")
    job = projects.render(project.id)
    assert job.wait(300) and job.state is JobState.DONE, job.error
    return projects.get(project.id)


def test_a_project_from_markdown_has_its_chapters_blocks_and_dialogue(rendered, serving):
    assert rendered.title == "The Lighthouse" and rendered.author == "A. Writer" and rendered.cover == "cover.png"
    assert [c.title for c in rendered.chapters] == ["Arrival", "Night"]
    assert [[b.text for b in c.blocks] for c in rendered.chapters] == [
        ["The keeper climbed the stairs.", "Maya: Is the lamp lit?"],
        ["The sea was calm."],
    ]
    assert [b.speaker for c in rendered.chapters for b in c.blocks] == [None, "Maya", None]
    assert all(b.status is not BlockStatus.NOT_RENDERED for c in rendered.chapters for b in c.blocks)
    row = next(r for r in serving.projects.list() if r["id"] == rendered.id)
    assert {k: row[k] for k in ("title", "chapters", "blocks", "rendered")} == {
        "title": "The Lighthouse",
        "chapters": 2,
        "blocks": 3,
        "rendered": 3,
    }
    report = serving.projects.qa_report(rendered.id)
    assert [c["blocks"] for c in report["chapters"]] == [2, 1] and report["demo"]
    assert (
        report["checked"]
        + report["flagged"]
        + sum(1 for c in rendered.chapters for b in c.blocks if b.status is BlockStatus.RENDERED)
        == 3
    )


def test_a_reopened_studio_still_has_everything(rendered, serving):
    again = ProjectService(serving.app, serving.jobs, serving.takes)  # a restart: a new service on the same data dir
    reopened = again.get(rendered.id)
    assert reopened.as_dict() == rendered.as_dict()
    for block in (b for c in reopened.chapters for b in c.blocks):
        assert again.take_path(reopened.id, block.chosen_take).is_file()


def test_bad_input_is_refused_with_a_sentence_and_nothing_is_half_created(serving, tmp_path):
    projects = serving.projects
    before = {r["id"] for r in projects.list()}
    broken = tmp_path / "broken.epub"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidInput, match="broken.epub"):
        projects.create("Broken", manuscript=broken, manuscript_name="broken.epub")
    with pytest.raises(InvalidInput, match="The narrator: No voice named 'Nobody Here'"):
        projects.create("X", narrator="voice: Nobody Here")
    with pytest.raises(InvalidInput, match="title"):
        projects.create("   ")
    with pytest.raises(InvalidInput, match="JPEG or PNG"):
        projects.create("X", cover=b"GIF89a")
    assert {r["id"] for r in projects.list()} == before

    project = projects.create("Settings", narrator="Aiden")
    with pytest.raises(InvalidInput, match="no setting"):
        projects.update(project.id, speed=2)
    with pytest.raises(InvalidInput, match="QA re-takes is 9"):
        projects.update(project.id, qa_tries=9)
    with pytest.raises(InvalidInput, match="Mastering preset 'loud'"):
        projects.update(project.id, preset="loud")
    with pytest.raises(InvalidInput, match="Language 'Klingon'"):
        projects.update(project.id, language="Klingon")
    with pytest.raises(InvalidInput, match="narrator"):
        projects.set_voice(project.id, None)
    changed = projects.update(project.id, preset="podcast", alternates=4, narrator="Ryan (slow)", language="English")
    assert (changed.preset, changed.alternates, changed.narrator.label, changed.language) == (
        MasteringPreset.PODCAST,
        4,
        "Ryan (slow)",
        "english",
    )
    projects.import_manuscript(project.id, "One paragraph.\n\nAnother one.")
    voiced = projects.set_voice(project.id, "Vivian", chapter_id=projects.get(project.id).chapters[0].id)
    assert voiced.chapters[0].voice.label == "Vivian"
    projects.delete(project.id)
    with pytest.raises(InvalidInput, match="no project"):
        projects.get(project.id)


def test_the_project_file_round_trips(rendered, serving):
    path = serving.projects.export_project(rendered.id)
    assert path.suffix == ".qtsproject" and path.parent.is_relative_to(serving.outputs_dir)
    copy = serving.projects.import_project(path)
    assert copy.id != rendered.id  # the id exists here: a new one
    assert [c.as_dict() for c in copy.chapters] == [c.as_dict() for c in rendered.chapters]
    block = copy.chapters[0].blocks[0]
    assert serving.projects.take_path(copy.id, block.chosen_take).read_bytes() == (
        serving.projects.take_path(rendered.id, rendered.chapters[0].blocks[0].chosen_take).read_bytes()
    )


def test_chapters_are_assembled_with_words_and_sentences_inside_their_blocks(rendered, serving):
    chapter = serving.projects.chapter_audio(rendered.id, rendered.chapters[0].id)
    assert chapter.title == "Arrival" and chapter.audio.duration > 0
    assert [s.text for s in chapter.sentences] == ["The keeper climbed the stairs.", "Is the lamp lit?"]
    first, second = chapter.sentences
    assert 0 <= first.start < first.end < second.start < second.end <= chapter.audio.duration + 1e-3
    assert chapter.words  # the demo ASR hears (noise) words, with times
    for word in chapter.words:
        block = next(s for s in chapter.sentences if s.start - 1e-3 <= word.start <= s.end + 1e-3)
        assert word.end <= block.end + 1e-3
    starts = [w.start for w in chapter.words]
    assert starts == sorted(starts)


def test_the_book_exports_with_chapter_markers(rendered, serving):
    result = serving.projects.export(rendered.id, formats=("m4b", "srt"), preset="acx")
    m4b = result.files["m4b"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-of", "json", str(m4b)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(probe.stdout)
    assert [c["tags"]["title"] for c in info["chapters"]] == ["Arrival", "Night"]
    assert info["format"]["tags"]["title"] == "The Lighthouse"
    assert "chapter-01.srt" in result.files and len(result.compliance) == 2

    # A block edited since it was made: the chapter is not ready to export.
    serving.projects.edit_block(rendered.id, rendered.chapters[1].blocks[0].id, "The sea was rough.")
    with pytest.raises(InvalidInput, match="Chapter 'Night' has 1 block not rendered yet"):
        serving.projects.export(rendered.id, formats=("m4b",))
