"""The MLX engine for real: mlx-audio 0.6.2 on MLX's CPU backend, in its own child process,
on the tiny demo checkpoints (core/engine/mlx/)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from core.audio.io import load_audio
from core.context import build_context
from core.engine.mlx.engine import MlxEngine
from core.engine.mlx.install import MARKER, engine_dir, lock_digest
from core.errors import DependencyError, GenerationError, ModelLoadError
from core.settings import Settings
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Mode, Sampling
from tests.conftest import make_demo_settings

FAST = Sampling(seed=7, max_new_tokens=12)


def _audible(result) -> None:
    samples = result.audio.samples
    assert result.sample_rate == 24_000 and samples.dtype == np.float32
    assert samples.size >= 1920 and np.all(np.isfinite(samples)) and float(np.abs(samples).max()) > 1e-3


@pytest.fixture
def mlx_context(mlx_settings):
    context = build_context(mlx_settings)
    assert isinstance(context.synthesis.engine, MlxEngine)
    yield context
    context.synthesis.engine.process.stop()


def test_all_three_modes_name_the_engine_and_honour_seeds(mlx_context, speech_wav):
    synthesis = mlx_context.synthesis
    custom = CustomVoiceRequest(text="Hello from the MLX engine.", speaker="Vivian", language="English", sampling=FAST)
    first = synthesis.synthesize(custom)
    _audible(first)
    assert first.engine == "mlx" and first.model == "demo-1.7B-CustomVoice"
    again = synthesis.synthesize(custom)
    other = synthesis.synthesize(
        CustomVoiceRequest(text=custom.text, speaker="Vivian", sampling=Sampling(seed=8, max_new_tokens=12))
    )
    assert np.array_equal(first.audio.samples, again.audio.samples), "the same seed gives the same take"
    assert not np.array_equal(first.audio.samples, other.audio.samples)
    assert not any("seed" in w.lower() and "not applied" in w.lower() for w in first.warnings)

    design = synthesis.synthesize(
        DesignRequest(text="A designed voice.", description="A calm, low voice.", sampling=FAST)
    )
    _audible(design)
    assert design.engine == "mlx"

    reference = load_audio(speech_wav)
    clone = synthesis.synthesize(
        CloneRequest(
            text="Cloned through MLX.",
            reference=reference,
            reference_text="The quick brown fox jumps over the lazy dog.",
            sampling=FAST,
        )
    )
    _audible(clone)
    assert clone.engine == "mlx" and clone.model == "demo-1.7B-Base"
    xvector = synthesis.synthesize(
        CloneRequest(text="Cloned through MLX.", reference=reference, x_vector_only=True, sampling=FAST)
    )
    _audible(xvector)


def test_live_pieces_tile_the_chunk(mlx_context):
    from core.engine.live_decoding import LiveAudio
    from core.types import SynthesisResult

    request = CustomVoiceRequest(
        text="Streaming from MLX.", speaker="Ryan", sampling=Sampling(seed=3, max_new_tokens=40)
    )
    pieces, result = [], None
    for item in mlx_context.synthesis.stream(request, live=True):
        if isinstance(item, LiveAudio):
            pieces.append(item.audio.samples)
        elif isinstance(item, SynthesisResult):
            result = item
    assert result is not None and result.engine == "mlx"
    assert len(pieces) >= 2, "the child streamed the chunk in pieces"
    assert sum(len(p) for p in pieces) > 0


def test_max_resident_eviction_and_unload_free_the_childs_memory(mlx_context):
    synthesis, models = mlx_context.synthesis, mlx_context.models
    engine = synthesis.engine
    process = engine.process
    synthesis.synthesize(CustomVoiceRequest(text="First model.", speaker="Vivian", sampling=FAST))
    first_pid = process.pid
    memory = process.memory()
    assert memory["active_bytes"] > 1_000_000 and len(memory["models"]) == 1
    rss_loaded = _rss(first_pid)

    # --max-resident 1: the design model evicts the custom one, and the child restarts holding only it.
    synthesis.synthesize(DesignRequest(text="Second model.", description="A bright voice.", sampling=FAST))
    assert models.resident_keys() == ["demo-1.7B-VoiceDesign"]
    assert process.pid != first_pid and not _alive(first_pid)
    assert [m.rsplit("/", 1)[-1] for m in process.memory()["models"]] == ["voice_design"]

    # Unload: the child that held the model is gone, so all of its memory went back to the system.
    second_pid = process.pid
    assert engine.unload() == ["demo-1.7B-VoiceDesign"]
    assert process.pid is None and not _alive(second_pid)
    print(f"child RSS with one demo model loaded: {rss_loaded / 2**20:.0f} MiB; after unload: 0 (process gone)")

    # And the next take starts it again.
    _audible(synthesis.synthesize(CustomVoiceRequest(text="Back again.", speaker="Vivian", sampling=FAST)))


def test_a_child_killed_mid_take_fails_that_take_cleanly_and_the_next_works(mlx_context):
    synthesis = mlx_context.synthesis
    process = synthesis.engine.process
    synthesis.synthesize(CustomVoiceRequest(text="Warm up.", speaker="Vivian", sampling=FAST))
    long_take = CustomVoiceRequest(
        text="A long chunk that keeps the engine busy for a while. " * 3,
        speaker="Vivian",
        sampling=Sampling(seed=1, max_new_tokens=4000),
    )
    outcome: dict[str, BaseException | object] = {}

    def run() -> None:
        try:
            outcome["result"] = synthesis.synthesize(long_take)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(2.0)  # the chunk is generating in the child by now
    pid = process.pid
    assert pid is not None and worker.is_alive()
    os.kill(pid, signal.SIGKILL)
    worker.join(120)
    assert not worker.is_alive()
    error = outcome.get("error")
    assert isinstance(error, GenerationError), outcome
    assert "MLX engine stopped during chunk 1" in str(error) and "restarts for the next take" in str(error)

    after = synthesis.synthesize(CustomVoiceRequest(text="The next take.", speaker="Vivian", sampling=FAST))
    _audible(after)
    assert process.pid not in (None, pid) and process.crashes == 1


def test_not_installed_fails_the_take_with_the_install_command(tmp_path, demo_checkpoints):
    context = build_context(make_demo_settings(tmp_path / "data", demo_checkpoints, engine="mlx"))
    with pytest.raises(DependencyError, match=r"engines install mlx"):
        context.synthesis.synthesize(CustomVoiceRequest(text="Hello.", speaker="Vivian", sampling=FAST))


def test_an_engine_that_cannot_start_fails_with_its_own_words(tmp_path, demo_checkpoints):
    data_dir = tmp_path / "data"
    root = engine_dir(data_dir)
    python = root / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 'mlx: broken on purpose' >&2\nexit 3\n")
    python.chmod(0o755)
    (root / MARKER).write_text(f'{{"lock": "{lock_digest()}", "versions": {{}}}}')
    context = build_context(make_demo_settings(data_dir, demo_checkpoints, engine="mlx"))
    for _ in range(2):  # the studio stays usable: the same clear error each time
        with pytest.raises(ModelLoadError, match=r"failed to start \(exit code 3\): mlx: broken on purpose"):
            context.synthesis.synthesize(CustomVoiceRequest(text="Hello.", speaker="Vivian", sampling=FAST))


def test_auto_is_torch_off_apple_silicon(tmp_path, mlx_engine_home):
    from core.engine.selection import resolve_engine

    assert resolve_engine("torch", mlx_engine_home) == "torch"
    assert resolve_engine("mlx", tmp_path) == "mlx"
    expected = "mlx" if os.uname().sysname == "Darwin" and os.uname().machine == "arm64" else "torch"
    assert resolve_engine("auto", mlx_engine_home) == expected
    assert Settings().engine == "auto"
    assert Mode.CUSTOM_VOICE in MlxEngine.capabilities(object.__new__(MlxEngine)).modes  # type: ignore[arg-type]


def _rss(pid: int | None) -> int:
    assert pid is not None
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; its state says it is gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except OSError:
        return False
