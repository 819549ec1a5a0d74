"""Subtitles timed from a take's parts: a real take from the tiny model, SRT and WebVTT."""

from __future__ import annotations

import dataclasses
import re

import pytest

from core.errors import InvalidInput
from core.storage.take_parts import TakePart
from core.takes.script_render import plan_script, render_script
from core.takes.service import TakeJob, TakeService
from core.takes.subtitles import (
    MAX_CUE_CHARS,
    SubtitleFormat,
    cues_for,
    subtitle_text,
    take_file_stem,
    write_subtitles,
)
from core.types import CustomVoiceRequest, Sampling
from tests.core.storage.test_take_parts import LONG_TEXT

FAST = Sampling(seed=4, max_new_tokens=8)
STAMP = re.compile(r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d) --> (\d\d):(\d\d):(\d\d)[,.](\d\d\d)")


@pytest.fixture(scope="module")
def context(demo_checkpoints, tmp_path_factory):
    from core.context import build_context
    from tests.conftest import make_demo_settings

    settings = make_demo_settings(tmp_path_factory.mktemp("subs") / "data", demo_checkpoints, chunk_chars=50)
    return build_context(settings)


@pytest.fixture(scope="module")
def take(context):
    request = CustomVoiceRequest(text=LONG_TEXT, speaker="Ryan", language="english", sampling=FAST, post=_trimmed())
    return TakeService.for_app(context).make(TakeJob(request, "wav")).take


def _trimmed():
    from core.audio.edit import PostProcessing

    return PostProcessing(trim_silence=True, normalize="peak")


def seconds(groups: tuple[str, ...]) -> float:
    h, m, s, ms = map(int, groups)
    return h * 3600 + m * 60 + s + ms / 1000


def times(text: str) -> list[tuple[float, float]]:
    return [(seconds(m.groups()[:4]), seconds(m.groups()[4:])) for m in STAMP.finditer(text)]


def check_timeline(spans: list[tuple[float, float]], duration: float) -> None:
    assert spans, "no cues"
    previous_end = 0.0
    for start, end in spans:
        assert 0.0 <= start < end <= duration + 1e-3
        assert start >= previous_end - 1e-9  # monotonic, never overlapping
        previous_end = end


def test_srt_has_one_numbered_cue_per_chunk_timed_within_the_take(take):
    text = subtitle_text(take, "srt")
    blocks = text.strip().split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == ["1", "2", "3"]
    assert [b.split("\n", 2)[2] for b in blocks] == [p.text for p in take.parts]
    spans = times(text)
    check_timeline(spans, take.duration_s)
    for (start, end), part in zip(spans, take.parts, strict=True):
        assert start == pytest.approx(part.start_s, abs=0.001) and end == pytest.approx(part.end_s, abs=0.001)


def test_webvtt_is_the_same_timeline_with_its_header_and_dots(take, tmp_path):
    path = write_subtitles(take, tmp_path, "webvtt")
    assert path.name == f"{take.id}.vtt"
    # Issue 23: the take player's downloads read as who speaks and the first words, then the id.
    named = write_subtitles(take, tmp_path, "srt", readable=True)
    assert named.name == f"{take_file_stem(take)}.srt" and named.name.endswith(f"-{take.id}.srt")
    first = re.findall(r"\w+", take.text.lower())[:2]
    assert "-".join(first) in take_file_stem(take)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n\n")
    assert " --> " in text and "," not in text.split("\n")[2]
    assert times(text) == times(subtitle_text(take, SubtitleFormat.SRT))


def test_a_script_names_its_speakers(context):
    plan = plan_script(
        context.synthesis,
        context.library,
        "Maya: Hello there, Tom.\nTom: Hi Maya <3 & welcome.",
        "Maya = Ryan\nTom = Aiden",
        sampling=FAST,
    )
    kept = TakeService.for_app(context).keep_script(
        plan, render_script(context.synthesis, context.library, plan), "wav"
    )
    srt = subtitle_text(kept.take, "srt")
    vtt = subtitle_text(kept.take, "vtt")
    assert "Maya: Hello there, Tom." in srt and "Tom: Hi Maya <3 & welcome." in srt
    assert "<v Maya>Hello there, Tom." in vtt and "<v Tom>Hi Maya &lt;3 &amp; welcome." in vtt
    check_timeline(times(vtt), kept.take.duration_s)


def test_a_long_part_is_cut_into_readable_cues_timed_by_characters(take):
    long_text = (
        "This sentence is the first of a long part, and it goes on for a while. "
        "Then a second sentence follows it, with a comma, and more words after that, "
        "so that it alone is longer than two subtitle lines can hold."
    )
    part = dataclasses.replace(take.parts[0], text=long_text, start_s=1.0, end_s=9.0)
    long_take = dataclasses.replace(take, parts=[part], duration_s=10.0)
    cues = cues_for(long_take)
    assert len(cues) >= 3
    assert all(len(c.text) <= MAX_CUE_CHARS for c in cues)
    assert " ".join(c.text for c in cues) == long_text
    assert cues[0].start_s == 1.0 and cues[-1].end_s == 9.0
    # Shared by characters: each cue's share of the 8 s is its share of the letters.
    letters = sum(len(c.text) for c in cues)
    for cue in cues:
        assert cue.end_s - cue.start_s == pytest.approx(8.0 * len(cue.text) / letters, abs=0.002)
    srt = subtitle_text(long_take, "srt")
    assert all(len(line) <= 46 for line in srt.splitlines())  # wrapped onto short lines
    check_timeline(times(srt), 10.0)


def test_a_take_without_parts_gets_its_text_over_the_whole_take(take):
    old = dataclasses.replace(take, parts=[])
    cues = cues_for(old)
    assert cues[0].start_s == 0.0 and cues[-1].end_s == pytest.approx(take.duration_s, abs=0.001)
    assert " ".join(c.text for c in cues) == " ".join(take.text.split())


def test_a_part_lost_in_trimmed_silence_gets_no_cue(take):
    gone = TakePart(9, "Nothing heard.", 1, take.duration_s, take.duration_s, take.parts[0].audio_path, 0)
    assert [c.text for c in cues_for(dataclasses.replace(take, parts=[*take.parts, gone]))] == [
        p.text for p in take.parts
    ]


def test_an_unknown_format_is_a_sentence(take):
    with pytest.raises(InvalidInput, match="choose srt or vtt"):
        subtitle_text(take, "ass")
