"""`qwen-tts-studio bench`: measure the configured models and the studio's overhead.

The engine figures (loads, real-time factor, mode switches, memory) come from
``core.tools.bench.studio_suite``; this module adds the API overhead -- the named ``/design``
endpoint called end to end with ``gradio_client`` against a real in-process
server, alternated with direct engine calls on the same loaded model -- and
prints everything, as aligned lines or (``--json``) one JSON object whose keys
are documented in ``core/tools/bench/studio_suite.py``.

Progress goes to stderr; with ``--json`` stdout holds only the JSON object.

``--arch 0.6b|1.7b`` (random-weight models of the real sizes, built once into
``<data_dir>/arch-models``) and ``--compare`` (the configured models) run
instead the studio-vs-stock comparison of ``core.tools.bench.compare_suite``:
real-time factor, time to first audio, peak memory and same-codes checks per
mode, the studio path and the stock ``Qwen3TTSModel.generate_*`` call
alternated; ``--int8`` adds the opt-in, lossy int8 path and ``--profile`` the
talker / code predictor / decoder split (see docs/PERFORMANCE.md). ``--arch``
also prints fp32, bf16, int8 and the static-cache decode loop side by side
(``core.tools.bench.dtype_suite``; ``--no-dtypes`` skips it).
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
from collections.abc import Iterator
from typing import Any

from core.context import AppContext, build_context
from core.settings import Settings
from core.tools.bench import common, compare_suite, studio_suite
from core.tools.bench.common import BenchError
from core.tools.bench.compare_suite import CompareReport
from core.tools.bench.studio_suite import BenchReport, OverheadFigure
from core.types import FRAMES_PER_SECOND, MODES, DesignRequest, Mode, Sampling

# The studio's default Advanced values (the widgets of studio/ui/advanced.py: ROWS):
# sent explicitly to the API and used for the direct call, so both do the same work.
API_SAMPLING: dict[str, Any] = dict(temperature=0.9, top_k=50, top_p=1.0, repetition_penalty=1.05)


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
        host="127.0.0.1",
        port=port,
        auth=None,
        auth_file=None,
        insecure_no_auth=False,
        ssl_certfile=None,
        ssl_keyfile=None,
        rate_limit_per_minute=0,
    )


def measure_api_overhead(
    settings: Settings,
    *,
    frames: int = common.DEFAULT_FRAMES,
    runs: int = common.DEFAULT_RUNS,
    seed: int = common.DEFAULT_SEED,
    text: str | None = None,
    progress=None,
) -> OverheadFigure:
    """Median api/direct ratio for /design, the two measurements alternated.

    The server runs in this process on a free loopback port with a scratch
    data folder (its takes never reach the user's history).
    """
    common.check_runs(runs)
    with common.isolated_settings(settings) as isolated:
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
        text = text or common.bench_text(frames, engine.synthesis.chunk_chars)
        checkpoint = common.checkpoint_for(engine, Mode.VOICE_DESIGN)
        common.ensure_available(engine, [Mode.VOICE_DESIGN])
        sampling = Sampling(seed=seed, max_new_tokens=frames, **API_SAMPLING)
        request = DesignRequest(text=text, description=common.DESCRIPTION, language="auto", sampling=sampling)
        max_seconds = common.max_seconds_for(frames)
        with _stdout_to_stderr():
            client = Client(
                f"http://127.0.0.1:{port}/", verbose=False, download_files=downloads, analytics_enabled=False
            )

        def direct() -> tuple[float, float]:
            start = time.perf_counter()
            result = engine.synthesis.design(request)
            return time.perf_counter() - start, result.duration

        def api() -> tuple[float, float]:
            start = time.perf_counter()
            audio_path, info = client.predict(
                text=text,
                language="Auto",
                description=common.DESCRIPTION,
                seed=seed,
                max_seconds=max_seconds,
                format="wav",
                api_name="/design",
                **API_SAMPLING,
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
        direct_median, api_median = common.median(direct_s), common.median(api_s)
        return OverheadFigure(
            endpoint="/design",
            model=checkpoint.key,
            pairs=runs,
            ratio=common.median(ratios),
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
    common.check_runs(runs)
    text = common.bench_text(frames, settings.chunk_chars)
    _progress("checking the models are on disk (demo models are built once, cached)")
    with _stdout_to_stderr(), common.isolated_settings(settings) as isolated:
        context = build_context(isolated)
        report = BenchReport(
            device=context.models.device,
            dtype_policy=context.models.dtype_policy,
            demo=settings.demo_models,
            frames=frames,
            runs=runs,
            seed=seed,
            text_chars=len(text),
            engine=context.synthesis.engine.name,
        )
        report.memory = studio_suite.measure_memory(context, progress=_progress)
        report.loads = studio_suite.measure_loads(context, runs=runs, progress=_progress)
        report.rtf = studio_suite.measure_rtf(
            context, frames=frames, runs=runs, seed=seed, text=text, progress=_progress
        )
        report.switch = studio_suite.measure_switches(context, runs=runs, progress=_progress)
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
    audio = report.frames / FRAMES_PER_SECOND
    lines.append(
        f"Qwen TTS Studio bench: {kind} on {report.device}, {report.engine} engine, dtype {report.dtype_policy}"
    )
    lines.append(
        f"  {report.frames} frames (~{audio:.2f} s of audio) per generation, "
        f"{report.text_chars}-character text, seed {report.seed}, median of {report.runs} run(s)"
    )
    w = 24  # model column

    lines.append("")
    lines.append("Model load (fresh, everything unloaded first)")
    for f in report.loads:
        lines.append(f"  {Mode(f.mode).label:<7} {f.model:<{w}} {f.seconds:8.3f} s   (loader {f.loader_seconds:.3f} s)")

    lines.append("")
    lines.append(
        f"Real-time factor (generation s per audio s, {report.frames} frames, 1 warm-up; <1 = faster than real time)"
    )
    for r in report.rtf:
        lines.append(
            f"  {Mode(r.mode).label:<7} {r.model:<{w}} {r.rtf:8.3f} x   "
            f"({r.generate_seconds:.2f} s for {r.audio_seconds:.2f} s of audio; best {min(r.samples):.3f} x)"
        )

    if report.switch:
        s = report.switch
        seq = " -> ".join(Mode(m).label for m in s.sequence)
        lines.append("")
        lines.append(f"Mode switch (max_resident=1, {seq}; evict + load)")
        lines.append(
            f"  {'median of ' + str(len(s.samples)):<{w + 8}} {s.median_seconds:8.3f} s   "
            f"(min {min(s.samples):.3f}, max {max(s.samples):.3f})"
        )

    if report.api_overhead:
        o = report.api_overhead
        lines.append("")
        lines.append(
            f"API overhead ({o.endpoint} via gradio_client vs direct engine call, {o.model}, "
            f"{o.pairs} alternating pair(s))"
        )
        lines.append(f"  {'direct engine call':<{w + 8}} {o.direct_seconds:8.3f} s")
        lines.append(f"  {'named API ' + o.endpoint:<{w + 8}} {o.api_seconds:8.3f} s")
        lines.append(
            f"  {'ratio api/direct (median)':<{w + 8}} {o.ratio:8.3f} x   "
            f"({o.overhead_seconds * 1000:+.0f} ms per call)"
        )

    if report.memory:
        m = report.memory
        lines.append("")
        lines.append(f"Resident memory (RSS, {m.source})")
        lines.append(f"  {'before any model':<{w + 8}} {_mb(m.before_bytes)}")
        lines.append(
            f"  {'model code imported':<{w + 8}} {_mb(m.runtime_bytes)}   ({_delta(m.runtime_bytes, m.before_bytes)})"
        )
        for mode, loaded in m.loaded_bytes.items():
            label = f"{Mode(mode).label} loaded"
            lines.append(
                f"  {label:<{w + 8}} {_mb(loaded)}   ({_delta(loaded, m.runtime_bytes)} over code; "
                f"weights {m.model_bytes[mode] / 2**20:.1f} MB)"
            )
            lines.append(
                f"  {Mode(mode).label + ' unloaded':<{w + 8}} {_mb(m.unloaded_bytes[mode])}   "
                f"({_delta(m.unloaded_bytes[mode], m.runtime_bytes)} over code)"
            )

    lines.append("")
    lines.append(f"{'Total bench time':<{w + 10}} {report.total_seconds:8.1f} s")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace, settings: Settings) -> int:
    def option(name: str, default: int) -> int:
        value = getattr(args, name, None)
        return default if value is None else value

    arch = getattr(args, "arch", None)
    long = bool(getattr(args, "long", False))
    if arch or getattr(args, "compare", False) or long:
        compare = collect_compare(
            settings,
            arch=arch,
            frames=option("frames", compare_suite.ARCH_DEFAULT_FRAMES if arch else common.DEFAULT_FRAMES),
            runs=option("runs", compare_suite.ARCH_DEFAULT_RUNS if arch else common.DEFAULT_RUNS),
            seed=option("seed", common.DEFAULT_SEED),
            int8=bool(getattr(args, "int8", False)),
            profile=bool(getattr(args, "profile", False)),
            long=long,
            dtypes=bool(arch) and not getattr(args, "no_dtypes", False),
        )
        print(json.dumps(compare.as_json(), indent=2) if getattr(args, "json", False) else format_compare(compare))
        return 0
    frames = option("frames", common.DEFAULT_FRAMES)
    runs = option("runs", common.DEFAULT_RUNS)
    seed = option("seed", common.DEFAULT_SEED)
    report = collect(settings, frames=frames, runs=runs, seed=seed)
    if getattr(args, "json", False):
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(format_report(report))
    return 0


# --- studio vs stock (--arch / --compare) ---------------------------------------


def _int8_loader(path, device, dtype):
    """The stock loader, then the opt-in int8 quantisation (a separate copy of the model)."""
    from core.engine.live_decoding import quantize_int8
    from core.engine.model_manager import qwen_loader

    model = qwen_loader(path, device, dtype)
    quantize_int8(model)
    return model


def collect_compare(
    settings: Settings,
    *,
    arch=None,
    frames: int,
    runs: int,
    seed: int,
    int8: bool = False,
    profile: bool = False,
    progress=_progress,
    modes=None,
    long: bool = False,
    dtypes: bool = False,
) -> CompareReport:
    """The studio path against the stock call, per mode; on ``arch`` models or the configured ones.

    ``arch`` is "0.6b" / "1.7b" (or an ``ArchSpec``, which tests use for a tiny one);
    ``modes`` narrows the modes (default: every mode the models have).
    """
    import os

    import torch

    from core.tools import arch_models

    started = time.perf_counter()
    common.check_runs(runs)
    text = common.bench_text(frames, settings.chunk_chars)
    build_seconds = 0.0
    with contextlib.ExitStack() as stack:
        stack.enter_context(_stdout_to_stderr())
        if arch is not None:
            spec = arch if isinstance(arch, arch_models.ArchSpec) else arch_models.spec_for(arch)
            modes = tuple(modes or compare_suite.arch_modes(spec.name))
            folder = arch_models.default_arch_dir(settings.data_dir)
            progress(
                f"{spec.name} random-weight models in {folder / spec.name} "
                "(built once -- several GB at real size -- and reused)"
            )
            build = arch_models.build_arch_checkpoints(folder, spec, modes)
            build_seconds = build.seconds
            if build.built:
                progress(f"built {', '.join(build.built)} in {build.seconds:.0f} s")
            run_settings = compare_suite.arch_settings(settings, build.paths, spec.name)
            spec_text = arch_models.describe(spec)
        else:
            modes = tuple(modes or MODES)
            run_settings = stack.enter_context(common.isolated_settings(settings))
            spec_text = "demo models (random weights)" if settings.demo_models else "configured models"
        context = build_context(run_settings)
        if int8 and context.models.device != "cpu":
            raise BenchError("--int8 measures CPU int8 kernels; run it with --device cpu.")
        report = CompareReport(
            arch=None if arch is None else spec.name,
            spec=spec_text,
            device=context.models.device,
            threads=torch.get_num_threads(),
            cores=os.cpu_count() or 1,
            frames=frames,
            runs=runs,
            seed=seed,
            text_chars=len(text),
            build_seconds=build_seconds,
        )
        progress(
            f"{frames} frames ({frames / FRAMES_PER_SECOND:.1f} s of audio) per take, "
            f"{runs} alternating pair(s) per mode: {', '.join(modes)}"
        )
        report.compare = compare_suite.measure_compare(
            context, modes, frames=frames, runs=runs, seed=seed, text=text, progress=progress
        )
        if int8:
            int8_context = build_context(run_settings, loader=_int8_loader)
            report.compare += compare_suite.measure_compare(
                context,
                modes,
                frames=frames,
                runs=runs,
                seed=seed,
                text=text,
                progress=progress,
                path="studio-int8",
                studio_context=int8_context,
            )
            int8_context.models.unload()
        if dtypes:
            if context.models.device != "cpu":
                raise BenchError(
                    "The precision table measures the CPU's fp32, bf16 and int8; run it with --device cpu."
                )
            from core.tools.bench import dtype_suite

            context.models.unload()
            contexts = dtype_suite.dtype_contexts(run_settings, build_context, _int8_loader)
            report.dtypes = dtype_suite.measure_dtypes(
                contexts, modes, frames=frames, runs=runs, seed=seed, text=text, progress=progress
            )
            auto = build_context(run_settings.replace(dtype="auto")).models.dtype_policy
            report.dtype_goals = dtype_suite.dtype_goals(report.dtypes, auto)
            del contexts
        if profile:
            mode = Mode.CUSTOM_VOICE if Mode.CUSTOM_VOICE in modes else modes[0]
            for threads in dict.fromkeys([torch.get_num_threads(), 1]):
                report.profile.append(
                    compare_suite.measure_profile(
                        context, mode, frames, seed=seed, text=text, threads=threads, progress=progress
                    )
                )
        if long:
            from core.tools.bench import long_suite

            context.models.unload()
            long_context = build_context(run_settings)
            figures = long_suite.measure_long(
                long_context, frames=long_suite.DEFAULT_FRAMES, runs=1, seed=seed, progress=progress
            )
            report.long = figures.as_json()
            from core.tools.bench import concurrent_suite

            report.long["concurrent"] = concurrent_suite.measure_concurrent(
                long_context, frames=long_suite.DEFAULT_FRAMES, runs=1, seed=seed, progress=progress
            ).as_json()
            long_context.models.unload()
        context.models.unload()
    report.total_seconds = time.perf_counter() - started
    return report


def _gb(value: int) -> str:
    return f"{value / 2**30:.2f} GB"


def format_compare(report: CompareReport) -> str:
    audio = report.frames / FRAMES_PER_SECOND
    lines = [
        f"Studio vs stock qwen_tts: {report.spec}",
        (
            f"  on {report.device} ({report.cores} cores, {report.threads} torch threads); {report.frames} frames "
            f"(~{audio:.1f} s of audio) per take, {report.text_chars}-character text, seed {report.seed}, "
            f"{report.runs} alternating pair(s), medians"
        ),
        "",
        (
            f"  {'mode':<7} {'path':<12} {'RTF studio':>10} {'stock':>7} {'thread':>7} {'ratio':>6} {'/thread':>7}   "
            f"{'first audio studio / stock':<30} {'peak RSS studio / stock':<24} same codes / audio"
        ),
    ]
    for f in report.compare:
        first = f"{f.studio_ttfa_s:.2f} s / {f.stock_ttfa_s:.2f} s ({100 * f.ttfa_share:.0f}%)"
        peak = f"{_gb(f.studio_peak_bytes)} / {_gb(f.stock_peak_bytes)}"
        same = f"{'yes' if f.same_codes else 'NO'} / {'yes' if f.same_audio else 'NO'}"
        if not f.same_audio and f.max_abs_diff != float("inf"):
            same += f" (max diff {f.max_abs_diff:.2g})"
        lines.append(
            f"  {Mode(f.mode).label:<7} {f.path:<12} {f.studio_rtf:10.2f} {f.stock_rtf:7.2f} "
            f"{f.thread_stock_rtf:7.2f} {f.ratio:6.2f} {f.ratio_vs_thread_stock:7.2f}   "
            f"{first:<30} {peak:<24} {same}"
        )
    lines.append(
        "  (RTF = wall s per audio s: studio = stream(live=True), generation threads "
        f"{report.compare[0].generation_threads if report.compare else '-'}; stock = the plain call in "
        "the calling thread, as a script makes it; thread = the same call in a worker thread, as the "
        "server ran it before. ratio = studio/stock wall, /thread = studio/thread-stock wall, medians "
        "of the rounds; first audio % = of the studio's whole take)"
    )
    goals = report.goals()
    if goals:
        lines.append("")
        lines.append("Goals (the exact studio path; int8 is opt-in and lossy)")
        lines.append(
            f"  studio / stock in a thread, process CPU seconds: worst mode "
            f"{goals['cpu_ratio_vs_thread_stock_worst_mode']:.2f} (1-minute load average {goals['load_average']:.1f})"
        )
        lines.append(
            f"  studio/stock wall <= {goals['ratio_goal']}: "
            f"{'met' if goals['ratio_met'] else 'NOT met'} (worst mode {goals['ratio_worst_mode']:.2f}); "
            f"against the stock call in a worker thread: "
            f"{'met' if goals['ratio_vs_thread_stock_met'] else 'NOT met'} "
            f"(worst {goals['ratio_vs_thread_stock_worst_mode']:.2f})"
        )
        lines.append(
            f"  first audio <= {100 * goals['ttfa_share_goal']:.0f}% of the take: "
            f"{'met' if goals['ttfa_share_met'] else 'NOT met'} at {report.frames} frames "
            f"(worst {100 * goals['ttfa_share_worst_mode']:.0f}%); projected for a 20-s line "
            f"({goals['twenty_second_frames']} frames) from the measured per-frame time: "
            f"{100 * goals['ttfa_share_projected_20s']:.0f}%"
        )
        lines.append(
            f"  same codes and same take as stock in every pair: "
            f"{'yes' if goals['same_codes_all'] and goals['same_audio_all'] else 'NO'}"
        )
    for p in report.profile:
        ms = p.per_frame_ms()
        lines.append("")
        lines.append(
            f"Where the time goes (stock call in a worker thread, {Mode(p.mode).label}, {p.threads} thread(s), {p.frames} frames, "
            f"{p.total_s:.1f} s; per frame)"
        )
        for key, label in (
            ("talker_s", "talker (the LM, 1 step)"),
            ("code_predictor_s", "code predictor (15 steps)"),
            ("code_predictor_overhead_s", "  HF generate() around them"),
            ("decode_s", "speech tokenizer decode"),
            ("other_s", "everything else"),
        ):
            share = 100 * getattr(p, key) / max(p.total_s, 1e-9)
            lines.append(f"  {label:<32} {ms[key]:9.1f} ms  {share:5.1f}%")
    if report.long:
        lt, va = report.long["long_take"], report.long["variants"]
        lines.append("")
        lines.append(
            f"Long take ({lt['chunks']} chunks x {lt['frames_per_chunk']} frames, batches {lt['batches']}): "
            f"studio {lt['studio_s']:.1f} s / stock one by one {lt['stock_s']:.1f} s = ratio {lt['ratio']:.2f} "
            f"(goal <= {lt['goal']}: {'met' if lt['goal_met'] else 'not met'}); "
            f"same audio per chunk: {'yes' if lt['same_audio'] else 'NO'}"
        )
        lines.append(
            f"Variants ({va['count']} takes vs 1): {va['variants_s']:.1f} s / {va['one_take_s']:.1f} s = ratio "
            f"{va['ratio']:.2f} (goal <= {va['goal']}: {'met' if va['goal_met'] else 'not met'}); "
            f"first variant same as the take alone: {'yes' if va['same_as_alone'] else 'NO'}"
        )
        co = report.long.get("concurrent")
        if co:
            lines.append(
                f"Concurrent requests ({co['requests']} single-chunk takes at once, {co['frames']} frames): "
                f"{co['together_s']:.1f} s served together ({co['served_together']} queued takes batched) vs "
                f"{co['sequential_s']:.1f} s one after another = ratio {co['ratio']:.2f}; each alone in turn "
                f"{co['queued_alone_s']:.1f} s; CPU time ratio {co['cpu_ratio']:.2f}; "
                f"same audio as alone: {'yes' if co['same_audio'] else 'NO'}"
            )
    if report.dtypes:
        from core.tools.bench.dtype_suite import format_dtypes

        lines.extend(format_dtypes(report.dtypes, report.dtype_goals))
    if report.build_seconds:
        lines.append("")
        lines.append(f"Model build/check {report.build_seconds:.1f} s")
    lines.append(f"Total bench time {report.total_seconds:.1f} s")
    return "\n".join(lines)
