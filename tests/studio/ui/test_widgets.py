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
