"""`qwen-tts-studio bench`: measure the configured models and the studio's overhead.

The engine figures (loads, real-time factor, mode switches, memory) come from
``core.bench``; this module adds the API overhead -- the named ``/design``
endpoint called end to end with ``gradio_client`` against a real in-process
server, alternated with direct engine calls on the same loaded model -- and
prints everything, as aligned lines or (``--json``) one JSON object whose keys
are documented in ``core/bench.py``.

Progress goes to stderr; with ``--json`` stdout holds only the JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import sys
import tempfile
import time
from typing import Iterator

from core import bench
from core.bench import BenchError, BenchReport, OverheadFigure
from core.context import AppContext, build_context
from core.settings import Settings
from core.synthesis import DesignRequest, Sampling

# The studio's default Advanced values (studio/ui_common.py sampling_widgets):
# sent explicitly to the API and used for the direct call, so both do the same work.
API_SAMPLING = dict(temperature=0.9, top_k=50, top_p=1.0, repetition_penalty=1.05)

MODE_NAMES = {"voice_design": "design", "custom_voice": "custom", "base": "clone"}


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Libraries print banners (qwen_tts, the server's URL); keep stdout for the figures."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def bench_server_settings(settings: Settings, port: int) -> Settings:
    """The user's model settings, served only on loopback for this process.

    No password, TLS or rate limit: the bench is its own only client, and the
    rate limit would refuse a long run of API calls.
    """
    return settings.replace(
        host="127.0.0.1", port=port, auth=None, auth_file=None, insecure_no_auth=False,
        ssl_certfile=None, ssl_keyfile=None, rate_limit_per_minute=0,
    )


def measure_api_overhead(
    settings: Settings,
    *,
    frames: int = bench.DEFAULT_FRAMES,
    runs: int = bench.DEFAULT_RUNS,
    seed: int = bench.DEFAULT_SEED,
    text: str | None = None,
    progress=None,
) -> OverheadFigure:
    """Median api/direct ratio for /design, the two measurements alternated.

    The server runs in this process on a free loopback port with a scratch
    data folder (its takes never reach the user's history).
    """
    bench.check_runs(runs)
    with bench.isolated_settings(settings) as isolated:
        return _measure_api_overhead(isolated, frames=frames, runs=runs, seed=seed, text=text)


def _measure_api_overhead(settings: Settings, *, frames: int, runs: int, seed: int, text: str | None) -> OverheadFigure:
    from gradio_client import Client

    from studio.server import serve

    port = free_port()
    server_settings = bench_server_settings(settings, port)
    with _stdout_to_stderr():
        app, studio_ctx = serve(server_settings, block=False)
    downloads = tempfile.mkdtemp(prefix="qwen-tts-bench-")
    client = None
    try:
        engine: AppContext = studio_ctx.app
        text = text or bench.bench_text(frames, engine.synthesis.chunk_chars)
        checkpoint = bench.checkpoint_for(engine, "voice_design")
        bench.ensure_available(engine, ["voice_design"])
        sampling = Sampling(seed=seed, max_new_tokens=frames, **API_SAMPLING)
        request = DesignRequest(text=text, description=bench.DESCRIPTION, language="auto", sampling=sampling)
        max_seconds = bench.max_seconds_for(frames)
        with _stdout_to_stderr():
            client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=downloads,
                            analytics_enabled=False)

        def direct() -> tuple[float, float]:
            start = time.perf_counter()
            result = engine.synthesis.design(request)
            return time.perf_counter() - start, result.duration

        def api() -> tuple[float, float]:
            start = time.perf_counter()
            audio_path, info = client.predict(
                text=text, language="Auto", description=bench.DESCRIPTION, seed=seed,
                max_seconds=max_seconds, format="wav", api_name="/design", **API_SAMPLING,
            )
            elapsed = time.perf_counter() - start
            if info.get("model") != checkpoint.key or info.get("seed") != seed:
                raise BenchError(
                    f"/design answered with model {info.get('model')} seed {info.get('seed')}, "
                    f"not {checkpoint.key} seed {seed}."
                )
            return elapsed, float(info["duration_s"])

        _progress(f"api overhead: server on 127.0.0.1:{port}, {checkpoint.key}, warm-up + {runs} pairs")
        # Warm-up: loads the model once, then both paths run once untimed.
        _, direct_audio = direct()
        _, api_audio = api()
        if abs(direct_audio - api_audio) > 0.002:
            raise BenchError(
                f"/design made {api_audio:.3f} s of audio but the direct call {direct_audio:.3f} s; "
                "the two would not be comparable."
            )
        loads_before = engine.models.load_count.get(checkpoint.key, 0)
        direct_s: list[float] = []
        api_s: list[float] = []
        for _ in range(runs):
            direct_s.append(direct()[0])
            api_s.append(api()[0])
        if engine.models.load_count.get(checkpoint.key, 0) != loads_before:
            raise BenchError(f"{checkpoint.key} was reloaded while measuring the API overhead.")
        ratios = [a / d for a, d in zip(api_s, direct_s)]
        direct_median, api_median = bench.median(direct_s), bench.median(api_s)
        return OverheadFigure(
            endpoint="/design",
            model=checkpoint.key,
            pairs=runs,
            ratio=bench.median(ratios),
            direct_seconds=direct_median,
            api_seconds=api_median,
            overhead_seconds=api_median - direct_median,
            samples=ratios,
        )
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        with _stdout_to_stderr(), contextlib.suppress(Exception):
            app.close()
        studio_ctx.app.models.unload()
        shutil.rmtree(downloads, ignore_errors=True)
        shutil.rmtree(studio_ctx.outputs_dir, ignore_errors=True)


def collect(settings: Settings, *, frames: int, runs: int, seed: int) -> BenchReport:
    """Runs every measurement in order: memory first (before any model), API last."""
    started = time.perf_counter()
    bench.check_runs(runs)
    text = bench.bench_text(frames, settings.chunk_chars)
    _progress("checking the models are on disk (demo models are built once, cached)")
    with _stdout_to_stderr(), bench.isolated_settings(settings) as isolated:
        context = build_context(isolated)
        report = BenchReport(
            device=context.models.device, dtype_policy=context.models.dtype_policy,
            demo=settings.demo_models, frames=frames, runs=runs, seed=seed, text_chars=len(text),
        )
        report.memory = bench.measure_memory(context, progress=_progress)
        report.loads = bench.measure_loads(context, runs=runs, progress=_progress)
        report.rtf = bench.measure_rtf(context, frames=frames, runs=runs, seed=seed, text=text, progress=_progress)
        report.switch = bench.measure_switches(context, runs=runs, progress=_progress)
        context.models.unload()  # the server below loads its own copy
        del context
    report.api_overhead = measure_api_overhead(settings, frames=frames, runs=runs, seed=seed, text=text)
    report.total_seconds = time.perf_counter() - started
    return report


# --- printing --------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 2**20:9.1f} MB"


def _delta(value: int, base: int) -> str:
    return f"{(value - base) / 2**20:+.1f} MB"


def format_report(report: BenchReport) -> str:
    lines: list[str] = []
    kind = "demo models (random weights)" if report.demo else "models"
    audio = report.frames / bench.FRAMES_PER_SECOND
    lines.append(f"Qwen TTS Studio bench: {kind} on {report.device}, dtype {report.dtype_policy}")
    lines.append(f"  {report.frames} frames (~{audio:.2f} s of audio) per generation, "
                 f"{report.text_chars}-character text, seed {report.seed}, median of {report.runs} run(s)")
    w = 24  # model column

    lines.append("")
    lines.append("Model load (fresh, everything unloaded first)")
    for f in report.loads:
        lines.append(f"  {MODE_NAMES[f.mode]:<7} {f.model:<{w}} {f.seconds:8.3f} s   (loader {f.loader_seconds:.3f} s)")

    lines.append("")
    lines.append(f"Real-time factor (generation s per audio s, {report.frames} frames, 1 warm-up; <1 = faster than real time)")
    for f in report.rtf:
        lines.append(f"  {MODE_NAMES[f.mode]:<7} {f.model:<{w}} {f.rtf:8.3f} x   "
                     f"({f.generate_seconds:.2f} s for {f.audio_seconds:.2f} s of audio; best {min(f.samples):.3f} x)")

    if report.switch:
        s = report.switch
        seq = " -> ".join(MODE_NAMES.get(m, m) for m in s.sequence)
        lines.append("")
        lines.append(f"Mode switch (max_resident=1, {seq}; evict + load)")
        lines.append(f"  {'median of ' + str(len(s.samples)):<{w + 8}} {s.median_seconds:8.3f} s   "
                     f"(min {min(s.samples):.3f}, max {max(s.samples):.3f})")

    if report.api_overhead:
        o = report.api_overhead
        lines.append("")
        lines.append(f"API overhead ({o.endpoint} via gradio_client vs direct engine call, {o.model}, "
                     f"{o.pairs} alternating pair(s))")
        lines.append(f"  {'direct engine call':<{w + 8}} {o.direct_seconds:8.3f} s")
        lines.append(f"  {'named API ' + o.endpoint:<{w + 8}} {o.api_seconds:8.3f} s")
        lines.append(f"  {'ratio api/direct (median)':<{w + 8}} {o.ratio:8.3f} x   "
                     f"({o.overhead_seconds * 1000:+.0f} ms per call)")

    if report.memory:
        m = report.memory
        lines.append("")
        lines.append(f"Resident memory (RSS, {m.source})")
        lines.append(f"  {'before any model':<{w + 8}} {_mb(m.before_bytes)}")
        lines.append(f"  {'model code imported':<{w + 8}} {_mb(m.runtime_bytes)}   "
                     f"({_delta(m.runtime_bytes, m.before_bytes)})")
        for mode, loaded in m.loaded_bytes.items():
            label = f"{MODE_NAMES[mode]} loaded"
            lines.append(f"  {label:<{w + 8}} {_mb(loaded)}   ({_delta(loaded, m.runtime_bytes)} over code; "
                         f"weights {m.model_bytes[mode] / 2**20:.1f} MB)")
            lines.append(f"  {MODE_NAMES[mode] + ' unloaded':<{w + 8}} {_mb(m.unloaded_bytes[mode])}   "
                         f"({_delta(m.unloaded_bytes[mode], m.runtime_bytes)} over code)")

    lines.append("")
    lines.append(f"{'Total bench time':<{w + 10}} {report.total_seconds:8.1f} s")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    def option(name: str, default: int) -> int:
        value = getattr(args, name, None)
        return default if value is None else value

    frames = option("frames", bench.DEFAULT_FRAMES)
    runs = option("runs", bench.DEFAULT_RUNS)
    seed = option("seed", bench.DEFAULT_SEED)
    report = collect(settings, frames=frames, runs=runs, seed=seed)
    if getattr(args, "json", False):
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(format_report(report))
    return 0
