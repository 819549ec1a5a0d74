"""The Projects named API through gradio_client against a real studio: a Markdown manuscript
becomes a mastered M4B with chapters (create → import → render → QA report → export)."""

from __future__ import annotations

import json
import subprocess
import time
import zipfile

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

BOOK = """# The Tiny Book

## One

It was dark.

The keeper waited.

## Two

Then the light came back.
"""


@pytest.fixture(scope="module")
def short_blocks(studio_server):
    """Blocks of a fraction of a second: demo models never stop early, so a cap keeps renders quick."""
    projects = studio_server["ctx"].projects
    saved = projects.max_new_tokens
    projects.max_new_tokens = 12
    yield
    projects.max_new_tokens = saved


def chapters_of(m4b: str) -> list[str]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-of", "json", m4b],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(probe.stdout)
    assert data["format"]["tags"].get("title") == "The Tiny Book"
    return [c["tags"]["title"] for c in data["chapters"]]


def test_a_markdown_manuscript_becomes_an_m4b(client, studio_server, short_blocks, tmp_path):
    path = tmp_path / "book.md"
    path.write_text(BOOK, encoding="utf-8")
    project = client.predict(
        title="",
        author="A. Writer",
        narrator="Ryan (calm)",
        manuscript=handle_file(str(path)),
        api_name="/project_create",
    )
    # The title comes from the manuscript's first heading; its ## headings are the chapters.
    assert project["title"] == "The Tiny Book" and project["author"] == "A. Writer"
    assert [c["title"] for c in project["chapters"]] == ["One", "Two"]
    assert [len(c["blocks"]) for c in project["chapters"]] == [2, 1]
    assert project["narrator"] == {"speaker": "Ryan", "instruct": "calm"}
    pid = project["id"]
    assert any(row["id"] == pid and row["blocks"] == 3 for row in client.predict(api_name="/project_list"))

    # Pasted text adds a chapter.
    more = client.predict(project_id=pid, text="## Three\n\nThe end.", api_name="/project_import")
    assert [c["title"] for c in more["chapters"]] == ["One", "Two", "Three"]

    done = client.predict(project_id=pid, api_name="/project_render")
    assert done["id"] == pid and done["blocks"] == 4 and done["rendered"] == 4
    assert done["checked"] + done["flagged"] == 4
    stored = client.predict(project_id=pid, api_name="/project_get")
    assert all(b["chosen"] and b["takes"] for c in stored["chapters"] for b in c["blocks"])

    report = client.predict(project_id=pid, api_name="/project_qa_report")
    assert report["demo"] is True  # the demo ASR heard it: said so
    assert [c["title"] for c in report["chapters"]] == ["One", "Two", "Three"]
    assert report["flagged"] == sum(len(c["flagged"]) for c in report["chapters"])
    assert all(f["reason"] for c in report["chapters"] for f in c["flagged"])

    m4b, zip_path, summary = client.predict(
        project_id=pid, preset="podcast", formats="m4b, mp3, zip", api_name="/project_export"
    )
    assert m4b.endswith(".m4b") and zip_path.endswith(".zip")
    assert chapters_of(m4b) == ["One", "Two", "Three"]
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    assert sum(n.endswith(".mp3") for n in names) == 3  # the chapter files (the M4B comes on its own)
    assert [c["chapter"] for c in summary["compliance"]] == ["One", "Two", "Three"]
    assert all(c["preset"] == "podcast" and c["rules"] for c in summary["compliance"])
    assert summary["passed"] == all(c["passed"] for c in summary["compliance"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(project_id="nope", api_name="/project_get"), "nope"),
        (dict(title="", api_name="/project_create"), "title"),
        (dict(title="X", narrator="Bob", api_name="/project_create"), "Bob"),
        (dict(project_id="nope", api_name="/project_import"), "Paste the manuscript"),
        (dict(project_id="nope", seed="maybe", api_name="/project_render"), "seed must be"),
        (dict(project_id="nope", api_name="/project_qa_report"), "nope"),
    ],
)
def test_bad_calls_are_refused_with_a_sentence(client, kwargs, message):
    with pytest.raises(AppError, match=message):
        client.predict(**kwargs)


def test_a_broken_epub_is_refused_and_nothing_is_created(client, tmp_path):
    before = client.predict(api_name="/project_list")
    broken = tmp_path / "broken.epub"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(AppError):
        client.predict(title="Broken", manuscript=handle_file(str(broken)), api_name="/project_create")
    assert client.predict(api_name="/project_list") == before


def test_cancelling_a_render_stops_it_and_rendering_again_resumes(client, studio_server, short_blocks):
    text = "\n\n".join(f"Paragraph number {i} is here." for i in range(1, 7))
    project = client.predict(title="Stop me", text=text, api_name="/project_create")
    pid = project["id"]
    ctx = studio_server["ctx"]
    job = client.submit(project_id=pid, api_name="/project_render")
    running = None
    for _ in range(600):  # until the render job has made its first block
        jobs = [j for j in ctx.jobs.all() if j.kind == "project" and not j.finished]
        running = jobs[0] if jobs else running
        if running is not None and running.chunks_done >= 1:
            break
        time.sleep(0.1)
    assert running is not None
    job.cancel()
    assert running.wait(60) and running.state.value == "stopped"
    made = client.predict(api_name="/project_list")
    partial = next(r for r in made if r["id"] == pid)["rendered"]
    assert 1 <= partial < 6
    done = client.predict(project_id=pid, api_name="/project_render")
    assert done["rendered"] == 6
