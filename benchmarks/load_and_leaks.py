#!/usr/bin/env python
"""Load and leaks: a real studio server under concurrent and sustained use.

Run from the repository root::

    .venv/bin/python benchmarks/load_and_leaks.py [--clients 20] [--sequential 200]
                                                 [--switches 50] [--json]

It starts the studio in this process (a real uvicorn server on a free
localhost port) on the tiny random-weight demo models, in a scratch data
folder that is removed afterwards, with the rate limit off, and measures:

1. **Concurrent clients** -- ``--clients`` ``gradio_client`` clients (one
   thread each, all released at once) each ask ``/design`` for a short take.
   Figures: how many finished, errors, wall time, request latency, how often
   each model was loaded (goal: exactly once, however many callers raced for
   it), the process's resident memory (RSS) before, at its peak (sampled
   every 20 ms) and after, and how many sessions Gradio keeps: it holds a copy
   of the whole app's config per session until ``state_session_capacity``
   (10,000 by default) sessions exist; the figure "at the cap" is that count
   times one session's size (goal: < 1 GB, a WARN otherwise).
2. **Sustained sequential use** -- ``--sequential`` generations through one
   client, alternating ``/design`` and ``/custom_voice`` with
   ``max_resident=2`` (so neither model is ever reloaded). Figures: RSS after
   the warm-up (the first ``--warmup`` generations) and at the end, the
   growth in between (goal: < 50 MB), latency early vs late, threads and open
   files, what the history holds, and how many finished requests Gradio's
   queue still holds (Gradio 6.17 keeps every one). Every take is stored in the history
   (files in the data folder, not RSS); the default retention is 500 takes,
   after which the oldest are pruned.
3. **Mode switching** -- ``--switches`` switches design -> custom -> clone ->
   design ... with ``max_resident=1``, one short generation each, directly on
   the engine (``ctx.app.synthesis`` / ``ctx.app.models``, the calls the API
   handlers make). Figures: every switch evicted and loaded exactly once, and
   the RSS growth over the switches compared with one model's size
   (``LoadedModel.memory_bytes``; goal: no more growth than that).

Goals are marked PASS or WARN (memory, which the allocator makes noisy) and
FAIL (correctness: a request failed or never finished, a model was loaded
more than once). The exit status is 1 when a correctness check FAILed, else 0:
a WARN never fails a run. Nothing here asserts a timing. RSS is the whole
process -- the server, the engine and the clients' threads together -- as read
by ``core.tools.bench.common.rss_bytes`` (psutil). ``--json`` prints one JSON object
(``version`` 1) on stdout instead of the report; progress and the server's own
messages go to stderr either way.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

JSON_VERSION = 1
DEFAULT_CLIENTS = 20
DEFAULT_SEQUENTIAL = 200
DEFAULT_WARMUP = 20
DEFAULT_SWITCHES = 50
DEFAULT_MAX_SECONDS = 0.3  # 4 frames at 12.5 Hz: the plumbing is measured, not the model
SEQUENTIAL_GOAL_BYTES = 50 * 2**20
SESSIONS_GOAL_BYTES = 2**30  # what Gradio may keep for sessions when its cap is reached
REQUEST_TIMEOUT_S = 300.0
SAMPLE_INTERVAL_S = 0.02
SWITCH_MODES = ("voice_design", "custom_voice", "base")
TEXT = "Hello there, this is a load test."
DESCRIPTION = "A calm, clear adult voice."
SPEAKER = "Ryan"
MB = 2**20

Progress = Callable[[str], None]


# --- small helpers ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss() -> int | None:
    from core.tools.bench.common import rss_bytes

    return rss_bytes()[0]


def settled_rss() -> int | None:
    """RSS after a full garbage collection, so collectable garbage is not counted as a leak."""
    gc.collect()
    return rss()


def open_files() -> int | None:
    try:
        import psutil

        return psutil.Process().num_fds()
    except Exception:  # no psutil, or not on a POSIX system
        return None


def folder_bytes(path: Path) -> int:
    total = 0
    if not path.exists():
        return 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).stat().st_size
    return total


def gradio_sessions(app: Any) -> dict[str, Any]:
    """How many browser/client sessions Gradio keeps, its cap, and what one costs.

    Gradio keeps a ``SessionState`` per session hash -- with a copy of every
    block's config -- until ``state_session_capacity`` sessions (10,000 by
    default) exist; closing a session does not drop it. One session's cost is
    measured with tracemalloc on a fresh ``SessionState`` of this app (the
    Python allocations only, so a lower bound of its RSS).
    """
    figures: dict[str, Any] = {"sessions": None, "capacity": None, "session_bytes": None}
    try:
        holder = app.state_holder
        figures["sessions"] = len(holder.session_data)
        figures["capacity"] = int(holder.capacity)
        import tracemalloc

        from gradio.state_holder import SessionState

        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = [SessionState(app) for _ in range(3)]
            figures["session_bytes"] = int((tracemalloc.get_traced_memory()[0] - before) / len(kept))
            del kept
        finally:
            if not was_tracing:
                tracemalloc.stop()
    except Exception:  # Gradio internals: a figure, never a reason to fail the run
        pass
    return figures


def gradio_events_kept(app: Any) -> int | None:
    """Finished requests Gradio's queue still holds (each with its request and payload);
    Gradio 6.17 never drops them after a normal completion."""
    try:
        return len(app._queue.event_ids_to_events)
    except Exception:  # Gradio internals: a figure, never a reason to fail the run
        return None


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


class PeakRss:
    """Samples the process's RSS in a background thread; ``peak`` is the highest seen."""

    def __init__(self, interval: float = SAMPLE_INTERVAL_S):
        self.interval = interval
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        value = rss()
        if value is not None and (self.peak is None or value > self.peak):
            self.peak = value

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def quiet_libraries() -> None:
    """Keeps per-request library chatter (transformers' pad token notice,
    Starlette deprecations) out of the output; errors still show."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*HTTP_422.*")
    for name in ("transformers", "httpx", "gradio_client", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()


# --- the server -----------------------------------------------------------------


class Studio:
    """A real studio server on a free localhost port, on the demo models."""

    def __init__(self, data_dir: Path, checkpoints: dict[str, Path] | None = None, progress: Progress | None = None):
        from core.engine.demo_models.build import build_demo_checkpoints
        from core.settings import Settings
        from studio.server import serve

        say = progress or (lambda _: None)
        self.data_dir = Path(data_dir)
        if checkpoints is None:
            say("building the demo checkpoints")
            checkpoints = build_demo_checkpoints(self.data_dir / "demo-models")
        self.settings = Settings(
            data_dir=self.data_dir,
            port=free_port(),
            demo_models=True,
            device="cpu",
            dtype="float32",
            offline=True,
            rate_limit_per_minute=0,  # a load test is exactly what the limit refuses
            max_resident=2,  # design + custom voice stay resident through phases 1 and 2
            checkpoint_voice_design=Path(checkpoints["voice_design"]),
            checkpoint_custom_voice=Path(checkpoints["custom_voice"]),
            checkpoint_base=Path(checkpoints["base"]),
        )
        self.gradio_cache = self.data_dir / "gradio-cache"
        say(f"starting the studio on port {self.settings.port}")
        # Gradio copies every returned file into its cache; Blocks read this at
        # build time, so the copies land in the scratch folder, not /tmp/gradio.
        with (
            environment(GRADIO_TEMP_DIR=str(self.gradio_cache), GRADIO_ANALYTICS_ENABLED="False"),
            contextlib.redirect_stdout(sys.stderr),
        ):
            self.app, self.ctx = serve(self.settings, block=False)
        self.url = f"http://127.0.0.1:{self.settings.port}/"

    @property
    def models(self):
        return self.ctx.app.models

    def key(self, mode: str) -> str:
        return self.ctx.app.synthesis.checkpoint_for(mode, None).key

    def load_counts(self) -> dict[str, int]:
        return dict(self.models.load_count)

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False, download_files=False, analytics_enabled=False)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.app.close()
        shutil.rmtree(self.ctx.outputs_dir, ignore_errors=True)


def _take_ok(result: Any, mode: str) -> str | None:
    """None for a good take, else what is wrong with it."""
    try:
        file, info = result
        path = file.get("path") if isinstance(file, dict) else file
        if info.get("mode") != mode:
            return f"mode {info.get('mode')!r}, expected {mode!r}"
        if not info.get("duration_s", 0) > 0:
            return "an empty take"
        if not path or not Path(path).is_file():
            return "the take's file is missing"
    except Exception as exc:  # an unexpected shape is a failure, not a crash of the bench
        return f"an unexpected answer ({type(exc).__name__})"
    return None


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200]


def _request(client: Any, mode: str, seed: int, max_seconds: float) -> Any:
    if mode == "voice_design":
        job = client.submit(text=TEXT, description=DESCRIPTION, seed=seed, max_seconds=max_seconds, api_name="/design")
    elif mode == "custom_voice":
        job = client.submit(text=TEXT, speaker=SPEAKER, seed=seed, max_seconds=max_seconds, api_name="/custom_voice")
    else:
        raise ValueError(mode)
    return job.result(timeout=REQUEST_TIMEOUT_S)


# --- phase 1: concurrent clients -------------------------------------------------------


def concurrent_clients(
    studio: Studio, clients: int, max_seconds: float, progress: Progress | None = None
) -> dict[str, Any]:
    say = progress or (lambda _: None)
    say(f"phase 1: {clients} concurrent clients x /design")
    key = studio.key("voice_design")
    loads_before = studio.load_counts()
    latencies: list[float | None] = [None] * clients
    errors: list[str | None] = [None] * clients
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        client = None
        try:
            client = studio.client()
        except Exception as exc:
            errors[index] = f"connect: {_error_text(exc)}"
        try:
            barrier.wait(timeout=REQUEST_TIMEOUT_S)
        except threading.BrokenBarrierError:
            pass
        if client is None:
            return
        try:
            start = time.perf_counter()
            result = _request(client, "voice_design", index, max_seconds)
            latencies[index] = time.perf_counter() - start
            problem = _take_ok(result, "voice_design")
            if problem:
                errors[index] = problem
        except Exception as exc:
            errors[index] = _error_text(exc)
        finally:
            with contextlib.suppress(Exception):
                client.close()

    rss_before = settled_rss()
    threads_before = threading.active_count()
    with PeakRss() as peak:
        threads = [
            threading.Thread(target=worker, args=(i,), name=f"load-client-{i}", daemon=True) for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=REQUEST_TIMEOUT_S)  # every client connected: release them together
        start = time.perf_counter()
        deadline = start + REQUEST_TIMEOUT_S + 30
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()))
        wall = time.perf_counter() - start
    hung = sum(thread.is_alive() for thread in threads)
    rss_after = settled_rss()
    loads = {k: v - loads_before.get(k, 0) for k, v in studio.load_counts().items() if v - loads_before.get(k, 0)}
    sessions = gradio_sessions(studio.app)
    at_capacity = (
        sessions["capacity"] * sessions["session_bytes"]
        if sessions["capacity"] is not None and sessions["session_bytes"] is not None
        else None
    )
    done = [lat for lat in latencies if lat is not None]
    failed = [e for e in errors if e]
    finished = sum(1 for lat, err in zip(latencies, errors) if lat is not None and not err)
    return {
        "clients": clients,
        "endpoint": "/design",
        "max_seconds": max_seconds,
        "finished": finished,
        "errors": len(failed),
        "hung": hung,
        "error_messages": sorted(set(failed))[:5],
        "wall_seconds": wall,
        "latency_median_seconds": median(done),
        "latency_max_seconds": max(done) if done else None,
        "model": key,
        "loads": loads,
        "rss_before_bytes": rss_before,
        "rss_peak_bytes": peak.peak,
        "rss_after_bytes": rss_after,
        "threads_before": threads_before,
        "threads_after": threading.active_count(),
        "gradio_sessions": sessions["sessions"],
        "gradio_session_capacity": sessions["capacity"],
        "gradio_session_bytes": sessions["session_bytes"],
        "gradio_sessions_at_capacity_bytes": at_capacity,
        "sessions_goal_bytes": SESSIONS_GOAL_BYTES,
        "checks": {
            "all_finished": "PASS" if finished == clients and not hung else "FAIL",
            "no_errors": "PASS" if not failed else "FAIL",
            "loaded_once": "PASS" if loads.get(key, 0) == 1 and set(loads) == {key} else "FAIL",
            "sessions_bounded": "PASS" if at_capacity is not None and at_capacity < SESSIONS_GOAL_BYTES else "WARN",
        },
    }


# --- phase 2: sustained sequential use --------------------------------------------------


def sequential_use(
    studio: Studio, requests: int, warmup: int, max_seconds: float, progress: Progress | None = None
) -> dict[str, Any]:
    say = progress or (lambda _: None)
    modes = ("voice_design", "custom_voice")
    warmup = max(1, min(warmup, requests // 2)) if requests > 1 else 0
    say(f"phase 2: {requests} sequential generations (design/custom alternating, {warmup} warm-up)")
    if studio.models.max_resident < len(modes):
        studio.models.set_max_resident(len(modes))
    client = studio.client()
    latencies: list[float] = []
    errors: list[str] = []
    trend: list[int | None] = []
    rss_start = settled_rss()
    rss_warm = rss_start
    files_warm = open_files()
    threads_warm = threading.active_count()
    every = max(1, requests // 10)
    try:
        for i in range(requests):
            mode = modes[i % len(modes)]
            start = time.perf_counter()
            try:
                result = _request(client, mode, 1000 + i, max_seconds)
                latencies.append(time.perf_counter() - start)
                problem = _take_ok(result, mode)
                if problem:
                    errors.append(f"{mode}: {problem}")
            except Exception as exc:
                errors.append(f"{mode}: {_error_text(exc)}")
            done = i + 1
            if done == warmup:
                rss_warm = settled_rss()
                files_warm = open_files()
                threads_warm = threading.active_count()
            if done % every == 0 or done == requests:
                trend.append(rss())  # no gc here: a full collection takes ~1 s in this process
                say(f"  {done}/{requests}")
    finally:
        with contextlib.suppress(Exception):
            client.close()
    rss_end = settled_rss()
    growth = rss_end - rss_warm if rss_end is not None and rss_warm is not None else None
    window = max(1, min(20, len(latencies) // 4))
    counts = studio.load_counts()
    keys = [studio.key(m) for m in modes]
    history = studio.ctx.app.history
    takes = len(history.list())
    reloaded = any(counts.get(k, 0) != 1 for k in keys)
    return {
        "requests": requests,
        "endpoints": ["/design", "/custom_voice"],
        "max_seconds": max_seconds,
        "warmup": warmup,
        "finished": requests - len(errors),
        "errors": len(errors),
        "error_messages": sorted(set(errors))[:5],
        "latency_first_seconds": median(latencies[warmup : warmup + window] or latencies[:window]),
        "latency_last_seconds": median(latencies[-window:]),
        "latency_window": window,
        "rss_start_bytes": rss_start,
        "rss_warm_bytes": rss_warm,
        "rss_end_bytes": rss_end,
        "growth_bytes": growth,
        "goal_bytes": SEQUENTIAL_GOAL_BYTES,
        "rss_trend_bytes": trend,
        "open_files_warm": files_warm,
        "open_files_end": open_files(),
        "threads_warm": threads_warm,
        "threads_end": threading.active_count(),
        "loads": {k: counts.get(k, 0) for k in keys},
        "history_takes": takes,
        "history_bytes": folder_bytes(studio.settings.history_dir),
        "history_max_takes": studio.settings.history_max_takes,
        "gradio_cache_bytes": folder_bytes(studio.gradio_cache),
        "gradio_sessions": gradio_sessions(studio.app)["sessions"],
        "gradio_events_kept": gradio_events_kept(studio.app),
        "growth_per_request_bytes": growth / (requests - warmup) if growth is not None and requests > warmup else None,
        "checks": {
            "no_errors": "PASS" if not errors else "FAIL",
            "no_reload": "FAIL" if reloaded else "PASS",
            "growth": ("PASS" if growth is not None and growth < SEQUENTIAL_GOAL_BYTES else "WARN")
            if requests > warmup
            else "WARN",
        },
    }


# --- phase 3: mode switching -------------------------------------------------------------


def mode_switches(studio: Studio, switches: int, progress: Progress | None = None) -> dict[str, Any]:
    from core.tools.bench.common import BenchRequests, bench_text
    from core.types import Sampling

    say = progress or (lambda _: None)
    say(f"phase 3: {switches} mode switches with max_resident=1 (engine)")
    ctx = studio.ctx.app
    manager = ctx.models
    frames = 4
    requests = BenchRequests(
        ctx, bench_text(frames, ctx.synthesis.chunk_chars), Sampling(seed=7, max_new_tokens=frames)
    )
    keys = {mode: studio.key(mode) for mode in SWITCH_MODES}
    previous = manager.max_resident
    manager.set_max_resident(1)
    errors: list[str] = []
    bad_switches = 0
    samples: list[float] = []
    model_bytes: dict[str, int] = {}
    try:
        for mode in SWITCH_MODES:  # warm-up: the speaker list and the clone prompt, one pass each
            requests.prepare(mode)
            requests.generate(mode)
            model_bytes[mode] = int(manager.get(ctx.synthesis.checkpoint_for(mode, None)).memory_bytes)
        rss_before = settled_rss()
        with PeakRss() as peak:
            for i in range(switches):
                mode = SWITCH_MODES[i % len(SWITCH_MODES)]
                before = manager.load_count.get(keys[mode], 0)
                start = time.perf_counter()
                try:
                    result = requests.generate(mode)
                    samples.append(time.perf_counter() - start)
                    if result.model != keys[mode] or not result.duration > 0:
                        errors.append(f"{mode}: unexpected result from {result.model}")
                except Exception as exc:
                    errors.append(f"{mode}: {_error_text(exc)}")
                if manager.load_count.get(keys[mode], 0) - before != 1 or manager.resident_keys() != [keys[mode]]:
                    bad_switches += 1
                if (i + 1) % max(1, switches // 5) == 0:
                    say(f"  {i + 1}/{switches}")
        rss_after = settled_rss()
    finally:
        manager.set_max_resident(previous)
    one_model = max(model_bytes.values()) if model_bytes else None
    growth = rss_after - rss_before if rss_after is not None and rss_before is not None else None
    return {
        "switches": switches,
        "sequence": list(SWITCH_MODES),
        "finished": switches - len(errors),
        "errors": len(errors),
        "error_messages": sorted(set(errors))[:5],
        "bad_switches": bad_switches,
        "switch_median_seconds": median(samples),
        "rss_before_bytes": rss_before,
        "rss_peak_bytes": peak.peak,
        "rss_after_bytes": rss_after,
        "growth_bytes": growth,
        "model_bytes": model_bytes,
        "goal_bytes": one_model,
        "loads": {keys[m]: manager.load_count.get(keys[m], 0) for m in SWITCH_MODES},
        "checks": {
            "no_errors": "PASS" if not errors else "FAIL",
            "one_load_per_switch": "PASS" if not bad_switches else "FAIL",
            "growth": "PASS" if growth is not None and one_model is not None and growth <= one_model else "WARN",
        },
    }


# --- the whole run -------------------------------------------------------------------------


def run(
    clients: int = DEFAULT_CLIENTS,
    sequential: int = DEFAULT_SEQUENTIAL,
    switches: int = DEFAULT_SWITCHES,
    warmup: int = DEFAULT_WARMUP,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    data_dir: Path | None = None,
    checkpoints: dict[str, Path] | None = None,
    progress: Progress | None = None,
    on_phase: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Runs the three phases on a fresh server; returns the figures (the JSON object).

    ``data_dir`` is a scratch folder (one is made and removed when not given);
    ``checkpoints`` maps mode -> demo checkpoint folder, built when not given.
    """
    from core.tools.bench.common import rss_bytes

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="qwen-tts-load-")) if data_dir is None else None
    report: dict[str, Any] = {
        "version": JSON_VERSION,
        "config": {
            "clients": clients,
            "sequential": sequential,
            "switches": switches,
            "warmup": warmup,
            "max_seconds": max_seconds,
            "device": "cpu",
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "rss_source": rss_bytes()[1],
        },
    }
    studio = None
    try:
        studio = Studio(Path(data_dir or scratch), checkpoints, progress)
        report["setup_seconds"] = time.perf_counter() - started
        if on_phase:
            on_phase("setup", report)
        phases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("concurrent", lambda: concurrent_clients(studio, clients, max_seconds, progress)),
            ("sequential", lambda: sequential_use(studio, sequential, warmup, max_seconds, progress)),
            ("switches", lambda: mode_switches(studio, switches, progress)),
        ]
        for name, phase in phases:
            phase_start = time.perf_counter()
            report[name] = phase()
            report[name]["seconds"] = time.perf_counter() - phase_start
            if on_phase:
                on_phase(name, report[name])
    finally:
        if studio is not None:
            studio.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    report["total_seconds"] = time.perf_counter() - started
    statuses = [s for name in ("concurrent", "sequential", "switches") for s in report[name]["checks"].values()]
    report["status"] = "FAIL" if "FAIL" in statuses else "WARN" if "WARN" in statuses else "PASS"
    return report


# --- the human report -------------------------------------------------------------------------


LABEL_WIDTH = 30
VALUE_WIDTH = 52


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f} MB"


def _signed_mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:+.1f} MB"


def _s(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f} s"


def _line(label: str, value: str, status: str = "", goal: str = "") -> str:
    text = f"  {label:<{LABEL_WIDTH}} {value:<{VALUE_WIDTH}}"
    if status:
        text += f" {status:<4}" + (f"  (goal: {goal})" if goal else "")
    return text.rstrip()


def _loads(loads: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in loads.items()) or "none"


def format_phase(name: str, r: dict[str, Any]) -> list[str]:
    c = r["checks"]
    if name == "concurrent":
        lines = [
            (
                f"1. Concurrent clients: {r['clients']} x {r['endpoint']} (max_seconds {r['max_seconds']}), "
                f"{r['seconds']:.1f} s"
            ),
            _line(
                "finished",
                f"{r['finished']}/{r['clients']}" + (f" ({r['hung']} hung)" if r["hung"] else ""),
                c["all_finished"],
                "all",
            ),
            _line("errors", str(r["errors"]), c["no_errors"], "0"),
            _line("wall time", _s(r["wall_seconds"])),
            _line("latency median / max", f"{_s(r['latency_median_seconds'])} / {_s(r['latency_max_seconds'])}"),
            _line("model loads", _loads(r["loads"]), c["loaded_once"], "1 per model"),
            _line(
                "RSS before / peak / after",
                f"{_mb(r['rss_before_bytes'])} / {_mb(r['rss_peak_bytes'])} / {_mb(r['rss_after_bytes'])}",
            ),
            _line("threads before / after", f"{r['threads_before']} / {r['threads_after']}"),
            _line(
                "Gradio sessions kept",
                f"{r['gradio_sessions']} of at most {r['gradio_session_capacity']}, "
                f"{_mb(r['gradio_session_bytes'])} each",
            ),
            _line(
                "sessions' memory at the cap",
                _mb(r["gradio_sessions_at_capacity_bytes"]),
                c["sessions_bounded"],
                f"< {r['sessions_goal_bytes'] / MB:.0f} MB",
            ),
        ]
    elif name == "sequential":
        trend = " ".join("?" if v is None else f"{v / MB:.0f}" for v in r["rss_trend_bytes"])
        lines = [
            (
                f"2. Sequential: {r['requests']} x /design + /custom_voice alternating "
                f"(max_resident 2), {r['seconds']:.1f} s"
            ),
            _line("finished", f"{r['finished']}/{r['requests']}"),
            _line("errors", str(r["errors"]), c["no_errors"], "0"),
            _line("model loads (since start)", _loads(r["loads"]), c["no_reload"], "1 each, no reload"),
            _line(
                "latency after warm-up / last",
                f"{_s(r['latency_first_seconds'])} / {_s(r['latency_last_seconds'])} (median of {r['latency_window']})",
            ),
            _line(f"RSS after warm-up ({r['warmup']})", _mb(r["rss_warm_bytes"])),
            _line("RSS at the end", _mb(r["rss_end_bytes"])),
            _line(
                "RSS growth after warm-up",
                _signed_mb(r["growth_bytes"])
                + (
                    f" ({r['growth_per_request_bytes'] / 1024:+.0f} KB per request)"
                    if r["growth_per_request_bytes"] is not None
                    else ""
                ),
                c["growth"],
                f"< {r['goal_bytes'] / MB:.0f} MB",
            ),
            _line("RSS trend", f"{trend} MB"),
            _line("open files warm-up / end", f"{r['open_files_warm']} / {r['open_files_end']}"),
            _line("threads warm-up / end", f"{r['threads_warm']} / {r['threads_end']}"),
            _line(
                "history",
                f"{r['history_takes']} takes, {_mb(r['history_bytes'])} on disk (keeps {r['history_max_takes']})",
            ),
            _line("Gradio file cache", f"{_mb(r['gradio_cache_bytes'])} on disk (not RSS)"),
            _line("Gradio sessions / events kept", f"{r['gradio_sessions']} / {r['gradio_events_kept']}"),
        ]
    else:
        sizes = ", ".join(f"{v / MB:.1f}" for v in r["model_bytes"].values())
        lines = [
            (
                f"3. Mode switches: {r['switches']} x {' -> '.join(r['sequence'])} -> ... "
                f"(max_resident 1, engine), {r['seconds']:.1f} s"
            ),
            _line("finished", f"{r['finished']}/{r['switches']}"),
            _line("errors", str(r["errors"]), c["no_errors"], "0"),
            _line(
                "evict + load per switch",
                f"{r['switches'] - r['bad_switches']}/{r['switches']} exactly once",
                c["one_load_per_switch"],
                "all",
            ),
            _line("switch + generate median", _s(r["switch_median_seconds"])),
            _line(
                "RSS before / peak / after",
                f"{_mb(r['rss_before_bytes'])} / {_mb(r['rss_peak_bytes'])} / {_mb(r['rss_after_bytes'])}",
            ),
            _line(
                "RSS growth over the switches",
                _signed_mb(r["growth_bytes"]),
                c["growth"],
                f"<= one model, {_mb(r['goal_bytes'])}",
            ),
            _line("model sizes (MB)", f"{sizes} (design, custom, clone)"),
        ]
    if r.get("error_messages"):
        lines += [f"    ! {message}" for message in r["error_messages"]]
    return lines


def format_header(report: dict[str, Any]) -> list[str]:
    c = report["config"]
    return [
        (
            f"Load and leaks -- demo models on cpu ({c['cpu_count']} cores), Python {c['python']}, "
            f"RSS from {c['rss_source']} (the whole process: server, engine and clients)"
        ),
        _line("setup (demo models + server)", _s(report["setup_seconds"])),
    ]


def format_footer(report: dict[str, Any]) -> list[str]:
    with_imports = report.get("process_seconds")
    extra = f" ({with_imports:.0f} s with start-up and imports)" if with_imports else ""
    return [f"Total {report['total_seconds']:.1f} s{extra} -- {report['status']}"]


def main(argv: list[str] | None = None) -> int:
    launched = time.perf_counter()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help=f"concurrent clients in phase 1 (default {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--sequential",
        type=int,
        default=DEFAULT_SEQUENTIAL,
        help=f"sequential generations in phase 2 (default {DEFAULT_SEQUENTIAL})",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"of those, the warm-up before the memory baseline (default {DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--switches", type=int, default=DEFAULT_SWITCHES, help=f"mode switches in phase 3 (default {DEFAULT_SWITCHES})"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help=f"audio per request (default {DEFAULT_MAX_SECONDS})",
    )
    parser.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="build (or reuse) the demo checkpoints here instead of in the scratch folder",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = parser.parse_args(argv)
    for name in ("clients", "sequential", "switches"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0 or not math.isfinite(args.max_seconds) or args.max_seconds <= 0:
        parser.error("--warmup must be >= 0 and --max-seconds > 0")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    quiet_libraries()
    out = sys.stdout

    def progress(message: str) -> None:
        print(f"[load] {message}", file=sys.stderr, flush=True)

    def on_phase(name: str, result: dict[str, Any]) -> None:
        if not args.json:
            lines = format_header(result) if name == "setup" else format_phase(name, result)
            print("\n".join(lines), file=out, flush=True)

    checkpoints = None
    # Library banners printed on import (and the server's own lines) go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        if args.demo_dir is not None:
            from core.engine.demo_models.build import build_demo_checkpoints

            progress(f"demo checkpoints in {args.demo_dir}")
            checkpoints = build_demo_checkpoints(args.demo_dir)
        import qwen_tts  # noqa: F401  (its import banner belongs on stderr)

        report = run(
            args.clients,
            args.sequential,
            args.switches,
            args.warmup,
            args.max_seconds,
            checkpoints=checkpoints,
            progress=progress,
            on_phase=on_phase,
        )
    report["process_seconds"] = time.perf_counter() - launched
    if args.json:
        print(json.dumps(report, indent=2), file=out)
    else:
        print("\n".join(format_footer(report)), file=out)
    return 1 if report["status"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
