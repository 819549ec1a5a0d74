"""The model manager on the tiny real checkpoints (qwen_tts code, random weights)."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
import torch

from core.engine.catalog import Catalog
from core.engine.device import DeviceProbe
from core.engine.model_manager import ModelManager, qwen_loader
from core.engine.model_store import ModelStore
from core.errors import ModelLoadError, ModelUnavailable
from core.settings import Settings


def manager_for(settings: Settings, **kwargs) -> ModelManager:
    return ModelManager(
        catalog=Catalog(demo=settings.demo_models),
        store=ModelStore(settings),
        device_preference=settings.device,
        dtype_preference=settings.dtype,
        max_resident=settings.max_resident,
        **kwargs,
    )


def test_concurrent_get_loads_once(demo_settings):
    manager = manager_for(demo_settings)
    checkpoint = manager.catalog.get("demo-0.6B-Base")
    results, errors = [], []
    barrier = threading.Barrier(6)

    def worker():
        try:
            barrier.wait()
            results.append(manager.get(checkpoint))
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 6
    assert manager.load_count == {checkpoint.key: 1}
    assert len({id(r.model) for r in results}) == 1


def test_lru_eviction_and_unload_free_the_model(demo_settings):
    manager = manager_for(demo_settings)
    design = manager.catalog.resolve("design", None)
    custom = manager.catalog.resolve("custom", "0.6B")
    first = manager.get(design)
    ref = weakref.ref(first.model.model)
    del first
    manager.get(custom)
    gc.collect()
    assert manager.resident_keys() == [custom.key]
    assert ref() is None, "the evicted model must not stay referenced"

    second = manager.get(custom)
    ref2 = weakref.ref(second.model.model)
    del second
    assert manager.unload() == [custom.key]
    gc.collect()
    assert ref2() is None
    assert manager.resident_keys() == []


def test_max_resident_two_keeps_two_and_evicts_least_recently_used(demo_settings):
    manager = manager_for(demo_settings.replace(max_resident=2))
    a = manager.catalog.resolve("design", None)
    b = manager.catalog.resolve("custom", "1.7B")
    c = manager.catalog.resolve("clone", "0.6B")
    manager.get(a)
    manager.get(b)
    manager.get(a)  # a becomes most recently used
    manager.get(c)
    assert manager.resident_keys() == [a.key, c.key]


def test_status_reports_states_device_dtype_and_memory(demo_settings):
    manager = manager_for(demo_settings)
    before = {row.key: row for row in manager.status()}
    assert before["demo-1.7B-VoiceDesign"].state == "downloaded"
    assert before["demo-1.7B-VoiceDesign"].disk_bytes > 1_000_000
    manager.get(manager.catalog.resolve("design", None))
    row = {r.key: r for r in manager.status()}["demo-1.7B-VoiceDesign"]
    assert row.state == "loaded"
    assert row.device == "cpu" and row.dtype == "float32"
    assert row.memory_bytes > 100_000 and row.load_seconds >= 0


def test_offline_missing_checkpoint_names_it_and_the_fix(tmp_path):
    settings = Settings(data_dir=tmp_path, hf_cache_dir=tmp_path / "hf", offline=True, device="cpu")
    manager = manager_for(settings)
    checkpoint = manager.catalog.get("0.6B-Base")
    assert {r.key: r.state for r in manager.status()}["0.6B-Base"] == "not downloaded"
    with pytest.raises(ModelUnavailable) as info:
        manager.get(checkpoint)
    message = str(info.value)
    assert "Qwen/Qwen3-TTS-12Hz-0.6B-Base" in message
    assert "qwen-tts-studio models download 0.6B-Base" in message


def test_mps_dtype_fallback_chain(demo_settings):
    """MPS simulated: bf16 fails to load, fp16 loads but fails its first tiny
    generation, fp32 works — the manager must end on fp32."""
    tried = []

    def loader(path, device, dtype):
        tried.append(dtype)
        if dtype == torch.bfloat16:
            raise RuntimeError("MPS does not support bfloat16 here")
        return qwen_loader(path, "cpu", torch.float32)

    def verifier(model, checkpoint):
        if tried[-1] == torch.float16:
            raise RuntimeError("NaN in first generation")

    probe = DeviceProbe(lambda: False, lambda: True, lambda: False)
    manager = manager_for(
        demo_settings.replace(device="auto", dtype="auto"), probe=probe, loader=loader, verifier=verifier
    )
    assert manager.device == "mps"
    loaded = manager.get(manager.catalog.resolve("custom", "1.7B"))
    assert tried == [torch.bfloat16, torch.float16, torch.float32]
    assert loaded.dtype == "float32"


def test_real_smoke_generation_is_the_default_verifier(demo_settings):
    """The default verifier runs a real tiny generation for each mode."""
    from core.engine.model_manager import smoke_generation

    manager = manager_for(demo_settings.replace(max_resident=3))
    for mode, size in (("design", None), ("custom", "1.7B"), ("clone", "1.7B")):
        loaded = manager.get(manager.catalog.resolve(mode, size))
        smoke_generation(loaded.model, loaded.checkpoint)


def test_all_dtypes_failing_gives_one_clear_error(demo_settings):
    def loader(path, device, dtype):
        raise RuntimeError(f"cannot load {dtype}")

    probe = DeviceProbe(lambda: False, lambda: True, lambda: False)
    manager = manager_for(demo_settings.replace(device="mps", dtype="auto"), probe=probe, loader=loader)
    with pytest.raises(ModelLoadError, match="Try --device cpu"):
        manager.get(manager.catalog.resolve("design", None))
    assert manager.resident_keys() == []
