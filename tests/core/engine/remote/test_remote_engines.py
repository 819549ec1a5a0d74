"""Remote engines against real engine studios (`qwen-tts-studio serve` on 127.0.0.1): no mock of the wire.

The local studio here is a real AppContext on the demo models whose settings
name the engine studios with --remote-engine; every take goes over HTTP in
vLLM-Omni's dialect and each engine studio keeps what it made in its own history.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.audio.reference import prepare_reference
from core.context import AppContext, build_context
from core.engine.catalog import Catalog
from core.engine.live_decoding import LiveAudio
from core.engine.remote.config import RemoteServer, servers_from_settings
from core.engine.remote.discovery import ServerKind, discover
from core.engine.remote.pool import Pool
from core.engine.synthesis import ChunkAudio
from core.errors import GenerationError, SettingsError
from core.takes.jobs import JobRegistry
from core.takes.recipes import clone_request_for_voice
from core.takes.service import TakeJob, TakeService
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Sampling, SynthesisResult
from tests.conftest import make_demo_settings
from tests.core.engine.remote.conftest import AUTH, EngineStudio, running

KEY = AUTH  # engine B's bearer key ("user:password" is what a studio's --auth accepts)
LONG_TEXT = " ".join(f"Sentence number {n} is here to make one more chunk of the take." for n in range(1, 9))


def url_of(studio: EngineStudio) -> str:
    return f"{studio.url}#key={KEY}" if studio.auth else studio.url


@pytest.fixture
def make_context(tmp_path, demo_checkpoints) -> Iterator:
    made: list[AppContext] = []

    def make(*studios: EngineStudio, **overrides) -> AppContext:
        settings = make_demo_settings(
            tmp_path / f"local{len(made)}",
            demo_checkpoints,
            remote_engine=tuple(url_of(s) for s in studios),
            chunk_chars=60,
            **overrides,
        )
        ctx = build_context(settings)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        if ctx.remote:
            ctx.remote.close()


@pytest.fixture(scope="module")
def reference(speech_wav: Path):
    return prepare_reference(speech_wav.read_bytes()).audio


def remote_row(ctx: AppContext, studio: EngineStudio, key: str = "demo-0.6B-CustomVoice") -> dict:
    assert ctx.remote is not None
    return next(r for r in ctx.remote.rows() if r["server"] == studio.url and r["key"] == key)


# --- configuration and discovery ---------------------------------------------------------


def test_configuration_parses_urls_and_keys_and_never_shows_a_key(monkeypatch):
    servers = servers_from_settings(
        ("http://gpu:8000/v1#key=abc:def", "https://gpu2#key_env=GPU2_KEY", "http://studio:7860/v1"),
        env={"GPU2_KEY": "from-env"},
    )
    assert [s.url for s in servers] == ["http://gpu:8000/v1", "https://gpu2/v1", "http://studio:7860/v1"]
    assert [s.key for s in servers] == ["abc:def", "from-env", None]
    assert "abc:def" not in repr(servers) and "from-env" not in repr(servers)
    settings = make_demo_settings(Path("/tmp/x"), {"voice_design": None, "custom_voice": None, "base": None})
    settings = settings.replace(remote_engine=("http://gpu:8000/v1#key=topsecret",))
    assert "topsecret" not in repr(settings)
    with pytest.raises(SettingsError, match="GPU3_KEY"):
        servers_from_settings(("https://gpu3#key_env=GPU3_KEY",), env={})
    with pytest.raises(SettingsError) as bad:
        servers_from_settings(("http://user:hunter2@gpu:8000",))
    assert "hunter2" not in str(bad.value)
    from core.settings import load_settings

    with pytest.raises(SettingsError) as bad_env:
        load_settings({}, env={"QWEN_TTS_STUDIO_REMOTE_ENGINE": "ftp://x#key=leaky"}, config_path=Path("/nonexistent"))
    assert "leaky" not in str(bad_env.value)
    loaded = load_settings(
        {},
        env={
            "QWEN_TTS_STUDIO_REMOTE_ENGINE": "http://a:1/v1,http://b:2/v1",
            "QWEN_TTS_STUDIO_ENGINE_FALLBACK": "local",
        },
        config_path=Path("/nonexistent"),
    )
    assert loaded.remote_engine == ("http://a:1/v1", "http://b:2/v1") and loaded.engine_fallback == "local"


def test_discovery_maps_vllm_omni_ids_and_studio_keys_to_the_catalog():
    real, demo = Catalog(demo=False), Catalog(demo=True)
    vllm = {"object": "list", "data": [{"id": "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", "owned_by": "vllm"}]}
    found = discover(vllm, real)
    assert found.kind is ServerKind.OPENAI
    assert found.models == {"1.7B-CustomVoice": "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"}
    folder = {"data": [{"id": "/models/Qwen3-TTS-12Hz-0.6B-Base", "owned_by": "vllm"}]}
    assert discover(folder, real).models == {"0.6B-Base": "/models/Qwen3-TTS-12Hz-0.6B-Base"}
    assert discover(vllm, demo).models == {}  # a real server never passes for a demo checkpoint


def test_discovery_of_real_engine_studios_with_and_without_the_key(engines, demo_checkpoints):
    a, b = (running(s) for s in engines)
    catalog = Catalog(demo=True)
    pool = Pool([RemoteServer(a.url), RemoteServer(b.url, KEY)], catalog)
    try:
        pool.check()
        for state in pool.states:
            assert state.discovery is not None and state.discovery.kind is ServerKind.STUDIO
            assert set(state.models) == {c.key for c in catalog}
            assert state.models["demo-1.7B-Base"] == "demo-1.7B-Base"
        assert {r["health"] for r in pool.rows()} == {"up"}
    finally:
        pool.close()
    wrong = Pool([RemoteServer(b.url, "engine:wrong")], catalog)
    try:
        wrong.check()
        (row,) = wrong.rows()
        assert row["health"] == "unknown" and "401" in row["last_error"]
        assert "engine:wrong" not in str(row)
    finally:
        wrong.close()


# --- takes made remotely ------------------------------------------------------------------


def test_every_mode_generates_on_the_engine_studio_and_names_it(engines, make_context, reference):
    a = running(engines[0])
    ctx = make_context(a)
    assert ctx.remote is not None and ctx.synthesis.engine.name == "router"
    before = a.takes()
    seed = Sampling(seed=1234)
    voice = ctx.library.save(name="Narrator", kind="clone", reference=reference, transcript="The quick brown fox.")
    library_request, cached = clone_request_for_voice(
        ctx.library, ctx.synthesis, voice.id, text="A library voice, cloned remotely.", sampling=seed
    )
    assert not cached and library_request.prompt is not None and library_request.prompt.reference is not None
    requests = [
        CustomVoiceRequest(text="Hello from the engine studio.", speaker="Ryan", size="0.6B", sampling=seed),
        DesignRequest(text="A designed voice, made remotely.", description="A calm low voice.", sampling=seed),
        CloneRequest(
            text="An uploaded reference, cloned remotely.",
            reference=reference,
            reference_text="The quick brown fox jumps over the lazy dog.",
            size="0.6B",
            sampling=seed,
        ),
        CloneRequest(text="Timbre only, x-vector.", reference=reference, x_vector_only=True, sampling=seed),
        library_request,
    ]
    results = [ctx.synthesis.synthesize(r) for r in requests]
    for result in results:
        assert result.engine == f"remote {a.url}"
        assert result.info()["engine"] == f"remote {a.url}"
        assert result.audio.sample_rate == 24000 and result.audio.duration > 0
        assert not any("seed was not applied" in w for w in result.warnings)  # a studio applies seeds
    # Each chunk of each take was made (and kept) by the engine studio, not here.
    assert a.takes() - before == sum(len(r.chunks) for r in results)
    assert ctx.models.resident_keys() == []  # nothing loaded locally
    assert not list((ctx.settings.voices_dir / voice.id).glob("prompts/*"))  # no local prompt cached
    # The same seed gives the same take again (the seed reached the engine studio).
    again = ctx.synthesis.synthesize(requests[0])
    assert np.array_equal(again.audio.samples, results[0].audio.samples)


def test_two_engine_studios_share_a_long_take(engines, make_context, caplog):
    a, b = (running(s) for s in engines)
    with caplog.at_level(logging.DEBUG):
        ctx = make_context(a, b)
        before = a.takes(), b.takes()
        result = ctx.synthesis.synthesize(CustomVoiceRequest(text=LONG_TEXT, speaker="Aiden", size="0.6B"))
    assert "event=remote_health" in caplog.text and KEY not in caplog.text  # b's key is never logged
    assert KEY not in str(ctx.remote.rows()) and KEY not in repr(ctx.settings)
    made = a.takes() - before[0], b.takes() - before[1]
    assert len(result.chunks) >= 6
    assert made[0] >= 1 and made[1] >= 1 and sum(made) == len(result.chunks)
    assert result.engine.startswith("remote ") and a.url in result.engine and b.url in result.engine
    rows = [remote_row(ctx, a), remote_row(ctx, b)]
    assert all(r["requests"] >= 1 and r["errors"] == 0 and r["in_flight"] == 0 for r in rows)


def test_a_server_killed_mid_take_fails_over_to_the_other(engines, make_context):
    a, b = (running(s) for s in engines)
    ctx = make_context(a, b)
    killed = threading.Event()

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if remote_row(ctx, a)["in_flight"] >= 1:
                a.kill()  # while it generates a chunk: the answer never comes
                killed.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_when_busy)
    watcher.start()
    pieces = []
    for item in ctx.synthesis.stream(CustomVoiceRequest(text=LONG_TEXT, speaker="Aiden", size="0.6B")):
        if isinstance(item, ChunkAudio):
            pieces.append(item.index)
        elif isinstance(item, SynthesisResult):
            result = item
    watcher.join()
    assert killed.is_set()
    assert pieces == list(range(len(result.chunks)))  # every chunk made, none lost
    assert remote_row(ctx, a)["errors"] >= 1  # chunks sent to the dead server ...
    assert b.url in result.engine  # ... were made again on the live one
    running(a)


def test_all_servers_down_is_a_clear_error_within_seconds(engines, make_context):
    a, b = (running(s) for s in engines)
    ctx = make_context(a, b)
    a.kill()
    b.kill()
    started = time.monotonic()
    with pytest.raises(GenerationError) as failed:
        ctx.synthesis.synthesize(CustomVoiceRequest(text="Anyone there?", speaker="Ryan", size="0.6B"))
    elapsed = time.monotonic() - started
    message = str(failed.value)
    assert elapsed < 10, elapsed
    assert a.url in message and b.url in message and "unreachable" in message
    assert "--engine-fallback local" in message
    assert KEY not in message
    assert ctx.models.resident_keys() == []  # it did not quietly load the local model


def test_fallback_local_uses_the_local_model_when_every_server_is_down(engines, make_context, reference):
    a = running(engines[0])
    ctx = make_context(a, engine_fallback="local")
    a.kill()
    result = ctx.synthesis.synthesize(CustomVoiceRequest(text="Local, please.", speaker="Ryan", size="0.6B"))
    assert result.engine == "torch (local fallback)"
    assert any(a.url in w for w in result.warnings)
    assert ctx.models.resident_keys() == ["demo-0.6B-CustomVoice"]
    # A clone whose clip was meant for the server is encoded locally instead.
    clone = ctx.synthesis.synthesize(
        CloneRequest(text="Cloned here.", reference=reference, reference_text="The quick brown fox.", size="0.6B")
    )
    assert "torch" in clone.engine and clone.audio.duration > 0


def test_circuit_breaker_opens_then_half_opens_when_the_server_is_back(engines, make_context):
    a = running(engines[0])
    ctx = make_context(a, remote_failures=2, remote_cooldown=4)
    request = CustomVoiceRequest(text="Are you back?", speaker="Ryan", size="0.6B")
    a.kill()
    for _ in range(2):
        with pytest.raises(GenerationError, match="unreachable"):
            ctx.synthesis.synthesize(request)
    row = remote_row(ctx, a)
    assert row["health"] == "down"
    sent = row["requests"]
    started = time.monotonic()
    with pytest.raises(GenerationError, match="down after 2 failure"):
        ctx.synthesis.synthesize(request)  # open: refused here, nothing sent
    assert time.monotonic() - started < 1
    assert remote_row(ctx, a)["requests"] == sent
    running(a)  # back on the same port
    deadline = time.monotonic() + 30
    while remote_row(ctx, a)["health"] == "down" and time.monotonic() < deadline:
        time.sleep(0.2)  # the cool-down
    result = ctx.synthesis.synthesize(request)  # the probe (or the health check before it) closes it
    assert result.engine == f"remote {a.url}"
    row = remote_row(ctx, a)
    assert row["health"] == "up" and row["last_error"] is None


# --- concurrency and streaming -----------------------------------------------------------


def test_remote_takes_never_wait_for_the_local_device_and_run_at_once_on_two_servers(engines, make_context):

    a, b = (running(s) for s in engines)
    ctx = make_context(a, b)
    runner = JobRegistry(TakeService.for_app(ctx))  # the take runner: its device lane is busy the whole time
    holding, release = threading.Event(), threading.Event()

    def local_generation() -> None:
        with runner.device():
            holding.set()
            release.wait(120)

    holder = threading.Thread(target=local_generation)
    holder.start()
    assert holding.wait(10)
    both: list[bool] = []
    stop = threading.Event()

    def watch() -> None:  # were both servers generating at the same moment?
        while not stop.is_set():
            both.append(remote_row(ctx, a)["in_flight"] >= 1 and remote_row(ctx, b)["in_flight"] >= 1)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    requests = [
        CustomVoiceRequest(text="Two remote takes at once, the first.", speaker="Ryan", size="0.6B"),
        CustomVoiceRequest(text="Two remote takes at once, the second.", speaker="Aiden", size="0.6B"),
    ]
    try:
        jobs = [runner.start_take(TakeJob(r, "wav"), live=False) for r in requests]
        assert all(job.wait(120) for job in jobs)
        results = [job.result for job in jobs]
    finally:
        stop.set()
        watcher.join()
        still_held = holder.is_alive()
        release.set()
        holder.join()
    assert still_held  # both takes finished while the local device was busy
    assert {r.engine for r in results} == {f"remote {a.url}", f"remote {b.url}"}  # one on each server
    assert any(both)  # ... generating at the same time


def test_a_live_take_streams_the_engine_studios_pieces_as_they_arrive(engines, make_context):
    a = running(engines[0])
    ctx = make_context(a)
    request = CustomVoiceRequest(
        text="A streamed chunk from the engine studio, long enough for several pieces.",
        speaker="Ryan",
        size="0.6B",
        sampling=Sampling(seed=4242),
    )
    started = time.monotonic()
    items, arrived = [], []
    for item in ctx.synthesis.stream(request, live=True):
        items.append(item)
        arrived.append(time.monotonic() - started)
    live = [i for i in items if isinstance(i, LiveAudio) and i.index == 0]
    chunk = next(i for i in items if isinstance(i, ChunkAudio))
    result = items[-1]
    assert isinstance(result, SynthesisResult) and result.engine == f"remote {a.url}"
    assert chunk.index == 0 and len(live) >= 2
    # The pieces came before the chunk was whole, and they tile it exactly (the Live player skips it).
    assert arrived[items.index(live[0])] < arrived[items.index(chunk)]
    assert np.array_equal(np.concatenate([p.audio.samples for p in live]), chunk.audio.samples)
    assert [round(p.offset_s, 4) for p in live][0] == 0.0
    assert not any("seed was not applied" in w for w in result.warnings)  # the stream said X-Seed
    # The same take made whole: the same length and, but for 16-bit rounding and the
    # engine's windowed live decode, the same audio.
    whole = ctx.synthesis.synthesize(request)
    assert len(whole.audio.samples) == len(result.audio.samples)
    assert float(np.max(np.abs(whole.audio.samples - result.audio.samples))) < 1e-3


class NoStreamProxy:
    """A real HTTP server in front of an engine studio that answers ``stream: true`` with a 400,
    as a speech server without streaming does, and passes everything else through."""

    def __init__(self, target: str):
        import http.server
        import json

        import httpx

        self.refused = 0
        self.passed: list[dict] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, response: httpx.Response) -> None:
                self.send_response(response.status_code)
                for name in ("content-type", "x-seed", "x-sample-rate"):
                    if name in response.headers:
                        self.send_header(name, response.headers[name])
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._answer(httpx.get(target + self.path.removeprefix("/v1"), timeout=60))

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if body.get("stream"):
                    proxy.refused += 1
                    data = json.dumps({"error": {"message": "stream is not supported"}}).encode()
                    self.send_response(400)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                proxy.passed.append(body)
                self._answer(httpx.post(target + self.path.removeprefix("/v1"), json=body, timeout=300))

            def log_message(self, *_args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_server_that_refuses_stream_gets_whole_chunks_from_then_on(engines, make_context, tmp_path, demo_checkpoints):
    a = running(engines[0])
    proxy = NoStreamProxy(a.url)
    try:
        settings = make_demo_settings(tmp_path / "nostream", demo_checkpoints, remote_engine=(proxy.url,))
        ctx = build_context(settings)
        assert ctx.remote is not None
        deadline = time.monotonic() + 60
        while ctx.remote.undiscovered() and time.monotonic() < deadline:  # a busy machine: the first look may time out
            ctx.remote.check()
        request = CustomVoiceRequest(text="No streaming here.", speaker="Ryan", size="0.6B", sampling=Sampling(seed=9))
        items = list(ctx.synthesis.stream(request, live=True))
        again = list(ctx.synthesis.stream(request, live=True))
        ctx.remote.close()
    finally:
        proxy.close()
    assert proxy.refused == 1  # asked once; whole WAVs from then on
    assert len(proxy.passed) == 2 and not any(body.get("stream") for body in proxy.passed), proxy.passed
    for made in (items, again):
        assert not any(isinstance(i, LiveAudio) for i in made)  # the chunk arrived whole
        assert isinstance(made[-1], SynthesisResult) and made[-1].engine == f"remote {proxy.url}"
    assert np.array_equal(items[-1].audio.samples, again[-1].audio.samples)  # seeded: the same take
