"""The /script endpoint through real gradio_client calls against a real server."""

from __future__ import annotations

import json
import zipfile

import pytest
import soundfile as sf
from gradio_client.exceptions import AppError

from core.audio.io import load_audio
from tests.conftest import HEADLESS_CHROMIUM_ARGS, chromium_path

FAST = {"seed": 5, "max_seconds": 1}
SCRIPT = """\
# A scene for three voices.
Narrator: It was a dark night.
Anna: Who's there?
Bob: Only me.
  Just passing by.
Narrator: They laughed.
"""
CASTING = """\
Narrator = Ryan (calm)
Anna = voice: Script Fox
Bob = Vivian [English]
"""


@pytest.fixture(scope="module")
def fox(studio_server, speech_wav):
    library = studio_server["ctx"].app.library
    return library.save(
        name="Script Fox",
        kind="clone",
        reference=load_audio(speech_wav),
        transcript="The quick brown fox jumps over the lazy dog.",
    )


def test_script_renders_three_voices_to_a_take_and_a_zip(client, studio_server, fox):
    merged, archive, info = client.predict(
        script=SCRIPT, casting=CASTING, language="English", size="0.6B", pause_s=0.25, **FAST, api_name="/script"
    )
    data, sr = sf.read(merged)
    assert sr == 24_000 and data.ndim == 1
    assert abs(len(data) / sr - info["duration_s"]) < 0.01
    assert info["mode"] == "script" and info["seed"] == 5 and info["demo"] is True
    assert info["models"] == ["demo-0.6B-CustomVoice", "demo-0.6B-Base"]
    lines = info["lines"]
    assert [(ln["speaker"], ln["text"]) for ln in lines] == [
        ("Narrator", "It was a dark night."),
        ("Anna", "Who's there?"),
        ("Bob", "Only me. Just passing by."),
        ("Narrator", "They laughed."),
    ]
    assert [ln["seed"] for ln in lines] == [5, 1005, 2005, 3005]
    # Merged length = every line plus the pauses between them.
    total = sum(ln["duration_s"] for ln in lines) + 3 * 0.25
    assert abs(info["duration_s"] - total) < 0.01

    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        audio = sorted(n for n in names if n.endswith(".wav"))
        assert audio == ["001-Narrator.wav", "002-Anna.wav", "003-Bob.wav", "004-Narrator.wav"]
        assert [ln["file"] for ln in lines] == audio
        for name, line in zip(audio, lines):
            with z.open(name) as handle:
                clip, clip_sr = sf.read(handle)
            assert clip_sr == 24_000 and abs(len(clip) / clip_sr - line["duration_s"]) < 0.01
        manifest = json.loads(z.read("script.json"))
        assert manifest["seed"] == 5 and len(manifest["lines"]) == 4 and "voice: Script Fox" in manifest["casting"]

    # The merged take is in the history with a script recipe.
    take = studio_server["ctx"].app.history.get(info["take_id"])
    assert take.mode == "script" and take.request["kind"] == "script"
    assert take.request["casting"]["Anna"] == {"voice": "Script Fox"}
    assert take.voice["kind"] == "script" and [v["name"] for v in take.voice["voices"]] == ["Narrator", "Anna", "Bob"]


def test_script_formats_and_reproducibility(client, fox):
    args = dict(
        script="A: One line.\nB: Another.",
        casting="A = Aiden\nB = Sohee",
        size="0.6B",
        pause_s=0,
        **FAST,
        api_name="/script",
    )
    first, archive, info = client.predict(format="flac", **args)
    assert first.endswith(".flac") and sf.info(first).samplerate == 24_000
    with zipfile.ZipFile(archive) as z:
        assert sorted(n for n in z.namelist() if n != "script.json") == ["001-A.flac", "002-B.flac"]
    again, _, _ = client.predict(format="flac", **args)
    assert (sf.read(first)[0] == sf.read(again)[0]).all()
    levelled, _, info = client.predict(format="wav", output_normalize="peak", **args)
    assert abs(abs(sf.read(levelled)[0]).max() - 10 ** (-1 / 20)) < 1e-3
    assert info["post"]["normalize"] == "peak"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(script="", casting="A = Ryan"), "The script is empty"),
        (dict(script="Hello there.\nA: Hi.", casting="A = Ryan"), "Line 1: 'Hello there.' has no speaker"),
        (dict(script="A: Hi.\nB:", casting="A = Ryan"), "Line 2: 'B:' has no text to speak."),
        (
            dict(script="A: Hi.\nB: Yo.\nC: Hey.", casting="A = Ryan"),
            "No voice is cast for these 2 names: B (line 2), C (line 3)",
        ),
        (dict(script="A: Hi.", casting="A Ryan"), "Casting line 1: 'A Ryan' has no '='"),
        (dict(script="A: Hi.", casting="A = speaker: Rian"), "A: Unknown speaker 'Rian'"),
        (dict(script="A: Hi.", casting="A = voice: Nobody Here"), "A: No voice named 'Nobody Here'"),
        (dict(script="A: Hi.", casting="A = Ryan", pause_s=20), "Value 20 is greater than maximum value 10"),
        (dict(script="A: Hi.", casting="A = Ryan", size="3B"), "'3B'"),
        (dict(script="A: Hi.", casting="A = Ryan [3B]"), "A: Custom Voice has no 3B model"),
        (dict(script="A: Hi.", casting="A = Ryan", output_normalize="loud"), "Normalisation 'loud' is not supported"),
        (dict(script="A: Hi.", casting="A = Ryan", format="aiff"), "Output format 'aiff' is not supported"),
        (dict(script="A: Hi.", casting="A = Ryan", language="Klingon"), "Language 'Klingon' is not supported"),
    ],
)
def test_bad_input_is_a_clear_error(client, studio_server, kwargs, message):
    with pytest.raises(AppError) as info:
        client.predict(**kwargs, api_name="/script")
    assert message in str(info.value)


def test_render_in_the_browser_streams_lines_then_the_take(studio_server, fox):
    """The Script tab's own (streaming) Render button, in a real browser."""
    from pathlib import Path

    chromium = chromium_path()
    if not Path(chromium).exists():
        pytest.skip("chromium is not installed (apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=HEADLESS_CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(60_000)
            page.goto(studio_server["url"])
            page.get_by_role("tab", name="Script").first.click()
            page.locator("#script-text textarea").fill("A: Hi.\nB: Hello.\n")
            page.locator("#script-casting textarea").fill("A = Aiden")
            page.locator("#script-fill").click()  # casts the uncast B with the other English speaker
            sync_api.expect(page.locator("#script-casting textarea")).to_have_value("A = Aiden\nB = Ryan")
            page.locator("#script-casting textarea").fill("A = Aiden\nB = voice: Script Fox")
            page.locator("[role=tabpanel]:visible").get_by_label("0.6B").check()
            page.locator("#script-render").click()
            files = page.locator("#script-files a[download]")
            sync_api.expect(files).to_have_count(5, timeout=180_000)  # the zip, the subtitles, each line
            take_id = studio_server["ctx"].app.history.list(mode="script")[0].id
            names = [files.nth(i).get_attribute("download") for i in range(5)]
            assert names[1:] == [f"{take_id}.srt", f"{take_id}.vtt", "001-A.wav", "002-B.wav"], names
            assert names[0].endswith("-all-lines.zip")
            sync_api.expect(page.locator("#script-lines")).to_contain_text("Aiden · at 0.0 s")
            sync_api.expect(page.locator("#script-lines")).to_contain_text("Script Fox (library) · at")
            sync_api.expect(page.locator("#script-summary")).to_contain_text("2 lines")  # may land last
            take = studio_server["ctx"].app.history.list(mode="script")[0]
            assert take.model == "demo-0.6B-CustomVoice, demo-0.6B-Base" and take.text == "A: Hi.\nB: Hello."
        finally:
            browser.close()
