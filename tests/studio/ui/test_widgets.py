"""The readout under a take, built from the details dict the API also returns."""

from __future__ import annotations

from studio.ui.widgets import LANGUAGE_CHOICES, summary_from_info


def test_summary_of_a_take():
    info = {
        "duration_s": 2.345,
        "seed": 7,
        "model": "demo-1.7B-VoiceDesign",
        "chunks": 1,
        "timings": {"generate_s": 1.26, "rtf": 0.53, "load_s": 0.1},
        "warnings": [],
    }
    assert summary_from_info(info) == (
        "**2.3 s** of audio · seed `7` · model `demo-1.7B-VoiceDesign` · generated in 1.3 s (RTF 0.53)"
    )


def test_summary_mentions_a_slow_load_chunks_and_warnings():
    info = {
        "duration_s": 10,
        "seed": 1,
        "model": "m",
        "chunks": 3,
        "timings": {"generate_s": 4, "rtf": 0.4, "load_s": 2.5},
        "warnings": ["Short reference."],
    }
    summary = summary_from_info(info)
    assert "model load 2.5 s · 3 chunks" in summary
    assert summary.endswith("\n\n⚠️ Short reference.")


def test_nothing_to_summarise():
    assert summary_from_info(None) == summary_from_info({}) == ""


def test_language_choices_start_with_auto():
    assert LANGUAGE_CHOICES[:3] == ["Auto", "Chinese", "English"]


def test_summary_reads_as_sentences_and_marks_a_stopped_take():
    info = {
        "duration_s": 3.0,
        "seed": 5,
        "model": "m",
        "chunks": 2,
        "timings": {},
        "text": "Hello *world* [x]",
        "description": "A calm voice.",
        "language": "english",
        "engine": "torch",
        "take_id": "20261130-000000-abcdef",
        "status": "stopped",
        "stopped_at": 2,
        "total_chunks": 5,
        "warnings": [],
    }
    summary = summary_from_info(info)
    assert "**Stopped at chunk 3 of 5**" in summary
    assert "- Text: Hello \\*world\\* \\[x\\]" in summary  # the user's text shown literally
    assert "- Voice description: A calm voice." in summary and "- Take: 20261130-000000-abcdef" in summary
    assert "generated in" not in summary  # a partial take has no timings


def test_download_converts_the_take_to_the_chosen_format(tmp_path, demo_context):
    import numpy as np

    from core.audio.clip import Audio
    from core.audio.io import load_audio, write_audio
    from studio.ui.context import StudioContext
    from studio.ui.handlers import take_download

    ctx = StudioContext(demo_context, outputs_dir=tmp_path / "out")
    source = write_audio(Audio(np.zeros(2_400, dtype=np.float32), 24_000), tmp_path / "20261130-1" / "take.wav", "wav")
    update = take_download(ctx, str(source), "flac")
    assert update["value"].endswith("take-20261130-1.flac") and update["interactive"]
    assert load_audio(update["value"]).duration == 0.1
    assert take_download(ctx, None, "mp3")["interactive"] is False
