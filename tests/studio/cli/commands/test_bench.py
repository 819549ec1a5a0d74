"""`qwen-tts-studio bench`: the plumbing, on the tiny demo models.

Benchmarks print figures; these tests only check that every figure is
measured, sane (positive, finite) and reported under its documented key.
No timing thresholds: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest

from core.errors import ModelUnavailable, StudioError
from core.tools.bench import studio_suite
from core.types import FRAMES_PER_SECOND, MODES
from tests.conftest import make_demo_settings

RUNS = 1
FRAMES = 8


def positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def context(tmp_path_factory, demo_checkpoints):
    from core.context import build_context

    settings = make_demo_settings(
        tmp_path_factory.mktemp("bench-data"),
        demo_checkpoints,
        max_resident=2,  # measure_switches must force 1 and put this back
    )
    return build_context(settings)


@pytest.fixture(scope="module")
def memory(context):
    return studio_suite.measure_memory(context)


@pytest.fixture(scope="module")
def loads(context, memory):  # memory first: it needs a process with no model loaded
    before = dict(context.models.load_count)
    figures = studio_suite.measure_loads(context, runs=RUNS)
    return figures, before


@pytest.fixture(scope="module")
def rtf(context, loads):
    return studio_suite.measure_rtf(context, frames=FRAMES, runs=RUNS, seed=7)


@pytest.fixture(scope="module")
def switch(context, rtf):
    before = dict(context.models.load_count)
    return studio_suite.measure_switches(context, runs=RUNS), before


def test_memory_is_measured_before_loaded_and_after_unloading(memory, context):
    assert memory.source in ("psutil", "statm", "getrusage-peak")
    assert positive(memory.before_bytes) and positive(memory.runtime_bytes)
    assert positive(memory.after_unload_bytes)
    for figures in (memory.loaded_bytes, memory.unloaded_bytes, memory.model_bytes):
        assert set(figures) == set(MODES)
        assert all(positive(v) for v in figures.values())
    assert memory.after_unload_bytes == memory.unloaded_bytes[MODES[-1]]


def test_loads_are_fresh_and_counted(loads, context):
    figures, before = loads
    assert [f.mode for f in figures] == list(MODES)
    for f in figures:
        assert positive(f.seconds) and positive(f.loader_seconds) and positive(f.memory_bytes)
        assert f.loads == RUNS and len(f.samples) == RUNS
        assert f.model == context.synthesis.checkpoint_for(f.mode, None).key
        assert context.models.load_count[f.model] - before.get(f.model, 0) == RUNS


def test_rtf_uses_the_fixed_frame_count(rtf, context):
    assert [f.mode for f in rtf] == list(MODES)
    for f in rtf:
        assert positive(f.rtf) and positive(f.generate_seconds) and positive(f.audio_seconds)
        assert f.frames == FRAMES and len(f.samples) == RUNS
        # Random weights never stop early: the audio is the frame cap (the engine
        # may keep one frame fewer), never more.
        assert FRAMES - 2 <= f.audio_seconds * FRAMES_PER_SECOND <= FRAMES + 0.01
        assert math.isclose(f.rtf, f.generate_seconds / f.audio_seconds, rel_tol=1e-6)


def test_switches_evict_and_load_once_each(switch, context):
    figure, before = switch
    assert figure.sequence == list(studio_suite.SWITCH_SEQUENCE)
    assert figure.loads == RUNS * (len(studio_suite.SWITCH_SEQUENCE) - 1) == len(figure.samples)
    assert positive(figure.median_seconds) and all(positive(s) for s in figure.samples)
    loaded = sum(context.models.load_count.values()) - sum(before.values())
    assert loaded == figure.loads + 1  # + the untimed starting load
    assert context.models.max_resident == 2  # put back


def test_human_report_prints_every_section(memory, loads, rtf, switch):
    from studio.cli.commands.bench import format_report

    report = studio_suite.BenchReport(
        device="cpu",
        dtype_policy="float32",
        demo=True,
        frames=FRAMES,
        runs=RUNS,
        seed=7,
        text_chars=44,
        memory=memory,
        loads=loads[0],
        rtf=rtf,
        switch=switch[0],
        api_overhead=studio_suite.OverheadFigure("/design", "demo-1.7B-VoiceDesign", 1, 1.5, 0.2, 0.3, 0.1, [1.5]),
        total_seconds=12.0,
    )
    text = format_report(report)
    for heading in (
        "Model load",
        "Real-time factor",
        "Mode switch",
        "API overhead",
        "Resident memory",
        "Total bench time",
    ):
        assert heading in text
    for f in rtf:
        assert f.model in text
    assert "ratio api/direct" in text and " MB" in text and " s" in text


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"json": True, "runs": RUNS, "frames": FRAMES, **kw})


def test_run_bench_json_has_every_documented_key(demo_settings, capsys):
    from studio.cli.commands.bench import run_bench

    assert run_bench(_args(), demo_settings) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # stdout holds the JSON object and nothing else
    assert set(data) == {
        "version",
        "device",
        "engine",
        "dtype_policy",
        "demo",
        "frames",
        "runs",
        "seed",
        "text_chars",
        "loads",
        "rtf",
        "switch",
        "api_overhead",
        "memory",
        "total_seconds",
    }
    assert data["version"] == 1 and data["demo"] is True and data["engine"] == "torch"
    assert data["frames"] == FRAMES and data["runs"] == RUNS and positive(data["total_seconds"])
    assert set(data["loads"]) == set(data["rtf"]) == set(MODES)
    for figure in data["loads"].values():
        assert set(figure) == {"model", "seconds", "loader_seconds", "samples", "loads", "memory_bytes"}
        assert positive(figure["seconds"]) and figure["loads"] == RUNS
    for figure in data["rtf"].values():
        assert set(figure) == {"model", "rtf", "generate_seconds", "audio_seconds", "frames", "samples"}
        assert positive(figure["rtf"])
    assert set(data["switch"]) == {"sequence", "median_seconds", "samples", "loads"}
    assert positive(data["switch"]["median_seconds"])
    api = data["api_overhead"]
    assert set(api) == {
        "endpoint",
        "model",
        "pairs",
        "ratio",
        "direct_seconds",
        "api_seconds",
        "overhead_seconds",
        "samples",
    }
    assert api["endpoint"] == "/design" and api["pairs"] == RUNS
    assert api["model"] == data["rtf"]["voice_design"]["model"]
    assert positive(api["ratio"]) and positive(api["direct_seconds"]) and positive(api["api_seconds"])
    assert set(data["memory"]) == {
        "source",
        "before_bytes",
        "runtime_bytes",
        "loaded_bytes",
        "unloaded_bytes",
        "after_unload_bytes",
        "model_bytes",
    }
    assert set(data["memory"]["loaded_bytes"]) == set(MODES)


def test_missing_real_model_is_one_readable_error(tmp_path):
    from core.settings import Settings
    from studio.cli.commands.bench import run_bench

    settings = Settings(
        data_dir=tmp_path / "data", hf_cache_dir=tmp_path / "hf", offline=True, device="cpu", dtype="float32"
    )
    with pytest.raises(ModelUnavailable, match="not downloaded"):
        run_bench(_args(), settings)


def test_bad_options_are_refused_before_any_work(demo_settings):
    from studio.cli.commands.bench import run_bench

    with pytest.raises(StudioError, match="--runs"):
        run_bench(_args(runs=0), demo_settings)
    with pytest.raises(StudioError, match="--frames"):
        run_bench(_args(frames=10_000), demo_settings)
