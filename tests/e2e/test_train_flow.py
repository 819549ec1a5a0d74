"""Issue 25: the Train a voice tab in a real browser, at desktop (1440x900) and phone (390x844) size.

Upload an espeak-ng reading, build the dataset (a job: progress, then the review table and the
verdict), play a clip, edit its transcript, exclude it, switch dataset and clip (every panel
follows), then train a trial run on the tiny Base model: progress and the loss plot show, Stop
keeps the step, Resume finishes, and the new speaker is listed in Custom Voice and speaks there. Screenshots:
train-dataset-<size>.png and train-run-<size>.png (looked at).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import free_port, make_demo_settings
from tests.e2e.conftest import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium; scripts/test.sh does it)", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[test]')")

from playwright.sync_api import expect

from core.audio.io import write_audio
from tests.core.finetune.test_dataset import make_recording
from tests.e2e.browser import TAKE_TIMEOUT_S
from tests.studio.api.test_train_api import READING

# Run after the rest, in one process (scripts/test.sh): a Stop lands part-way through training, and a clip's playhead is timed.
pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def e2e_server(tmp_path_factory, demo_checkpoints, demo_asr):
    """This module's studio: the shared one's settings plus the session's demo Whisper."""
    from studio.server import serve

    settings = make_demo_settings(
        tmp_path_factory.mktemp("e2e-train"), demo_checkpoints, port=free_port(), checkpoint_asr=demo_asr
    )
    app, ctx = serve(settings, block=False)
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "ctx": ctx, "settings": settings}
    finally:
        app.close()


@pytest.fixture(scope="module")
def reading(tmp_path_factory):
    audio, _ = make_recording(READING)
    return write_audio(audio, tmp_path_factory.mktemp("reading") / "reading.wav")


EXCLUDED = re.compile(r"^\s*excluded\s*$")  # the cell, not the column's header "Excluded"


def cell(page, text: str | re.Pattern):
    return page.locator("#train-ds-table span.text:visible", has_text=text).first


def test_build_review_and_train_a_voice(studio, e2e_server, reading, tmp_path):
    page, size = studio.page, studio.size
    store = e2e_server["ctx"].app.datasets
    name = f"Anna {size}"
    studio.tab("Train a voice")

    # --- build: a job with a progress line, then the table and the verdict ---
    studio.fill("train-ds-name", name)
    studio.upload("train-ds-files", reading)
    expect(page.locator("#train-ds-files")).to_contain_text("reading.wav")
    page.locator("#train-ds-build").click()
    expect(page.locator("#train-ds-stop")).to_be_visible()
    progress = page.locator("#train-ds-progress")
    expect(progress).to_contain_text(re.compile(r"Built '.*': 5 clips"), timeout=TAKE_TIMEOUT_S * 1000)
    expect(page.locator("#train-ds-stop")).to_be_hidden()
    built = next(d for d in store.list() if d.name == name)
    verdict = page.locator("#train-ds-verdict")
    expect(verdict).to_contain_text("No-go")
    expect(verdict).to_contain_text("Too little speech")
    expect(verdict).to_contain_text("5 kept")
    expect(page.locator("#train-ds-summary")).to_contain_text(name)
    for utterance in built.utterances:
        expect(cell(page, utterance.id)).to_be_visible()

    # A copy to switch to later (an export imported back: the unedited clips).
    copy = store.import_zip(store.export_zip(built, tmp_path))

    # --- a clip: pick its row, play it, edit its transcript, exclude it ---
    second = built.utterances[1]
    cell(page, second.id).click()
    expect(studio.field("train-clip")).to_have_value(re.compile(second.id))
    expect(studio.field("train-clip-text")).to_have_value(second.text)
    expect(page.locator("#train-clip-details")).to_contain_text(second.id)
    expect(page.locator("#train-clip-player #duration")).to_have_text(re.compile(r"0:0[3-9]"))  # the clip is loaded
    studio.play("train-clip-player")
    studio.fill("train-clip-text", "Edited words here.")
    page.locator("#train-clip-save").click()
    expect(page.locator("#train-ds-status")).to_contain_text(f"Saved the transcript of {second.id}")
    expect(cell(page, "Edited words here.")).to_be_visible()
    page.locator("#train-clip-exclude").click()
    expect(page.locator("#train-ds-status")).to_contain_text(f"Excluded {second.id}")
    expect(page.locator("#train-clip-exclude")).to_have_text("Include in training")
    expect(verdict).to_contain_text("4 kept")
    expect(cell(page, EXCLUDED)).to_be_visible()
    saved = store.get(built.id).utterance(second.id)
    assert saved.excluded and saved.text == "Edited words here."
    assert not any(
        row["audio"].endswith(f"{second.id}.wav") for row in store.get(built.id).training_rows(require_go=False)
    )
    assert not studio.error_toasts() and not studio.error_pills()
    studio.shoot(
        "train-dataset",
        {
            "table": page.locator("#train-ds-table"),
            "verdict": verdict,
            "player": page.locator("#train-clip-player"),
            "transcript": page.locator("#train-clip-text"),
        },
    )

    # --- switching dataset, then clip: every panel follows ---
    page.locator("#train-ds-refresh").click()
    studio.choose("train-dataset", copy.name)
    expect(page.locator("#train-ds-summary")).to_contain_text("(imported)")
    expect(verdict).to_contain_text("5 kept")
    expect(page.locator("#train-ds-table span.text:visible", has_text=EXCLUDED)).to_have_count(0)
    first = copy.utterances[0]
    expect(studio.field("train-clip")).to_have_value(re.compile(first.id))
    expect(studio.field("train-clip-text")).to_have_value(first.text)
    expect(page.locator("#train-clip-exclude")).to_have_text("Exclude from training")
    third = copy.utterances[2]
    studio.choose("train-clip", third.id)
    expect(studio.field("train-clip-text")).to_have_value(third.text)
    expect(page.locator("#train-clip-details")).to_contain_text(third.id)

    # --- training a trial run on the tiny Base: progress, the loss plot, Stop and Resume ---
    speaker = f"Nova {size}"
    studio.fill("train-speaker", speaker)
    # 300 steps of one clip: the tiny model makes ~30 a second, long enough to press Stop part-way.
    studio.number("train-epochs", 60)
    studio.accordion("Advanced")
    studio.number("train-batch", 1)
    studio.number("train-accum", 1)
    page.locator("#train-trial input[type=checkbox]").check()
    page.locator("#train-start").click()
    line = page.locator("#train-progress")
    expect(line).to_contain_text(re.compile(r"Step \d+ of 300 · loss \d"), timeout=TAKE_TIMEOUT_S * 1000)
    expect(page.locator("#train-loss canvas, #train-loss svg").first).to_be_visible()
    deadline = time.monotonic() + TAKE_TIMEOUT_S
    while not re.search(r"Step ([3-9]|\d\d+) of 300", line.inner_text()):
        assert time.monotonic() < deadline, line.inner_text()
        page.wait_for_timeout(200)
    studio.watch_shown("train-resume")
    page.locator("#train-stop").click()
    expect(line).to_contain_text(re.compile(r"Stopped at step \d+ of 300"), timeout=TAKE_TIMEOUT_S * 1000)
    expect(page.locator("#train-resume")).to_be_visible()
    studio.assert_stays_shown("train-resume")
    kept = int(re.search(r"Stopped at step (\d+)", line.inner_text()).group(1))
    assert kept >= 2
    page.locator("#train-resume").click()
    expect(line).to_contain_text("Done: step 300 of 300", timeout=TAKE_TIMEOUT_S * 1000)
    expect(page.locator("#train-result")).to_contain_text(f"{speaker} is ready")
    expect(page.locator("#train-resume")).to_be_hidden()
    expect(page.locator("#train-start")).to_be_enabled()
    expect(studio.field("train-run")).to_have_value(re.compile(rf"{speaker} · LoRA · Done"))
    assert not studio.error_toasts() and not studio.error_pills()
    studio.shoot(
        "train-run",
        {"progress": line, "plot": page.locator("#train-loss"), "result": page.locator("#train-result")},
    )

    # --- the new speaker is listed in Custom Voice ---
    studio.tab("Custom Voice")
    studio.choose("custom-speaker", speaker)
    expect(page.locator("#custom-speaker-card")).to_contain_text("trained here")
    # ...and speaks there: a take in the trained voice, its details naming the new speaker.
    studio.fill("custom-text", f"My first line as {speaker}.")
    studio.set_max_length(1)
    summary = studio.generate("custom")
    assert speaker in summary, summary
    studio.assert_has_audio("custom-audio")
