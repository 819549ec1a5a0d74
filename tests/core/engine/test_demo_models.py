"""The tiny demo checkpoints load and run in the real qwen_tts package (no fakes)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.engine.demo_models.build import (
    BUILDER_VERSION,
    DEMO_MODES,
    MARKER_NAME,
    build_demo_checkpoints,
    demo_checkpoint_complete,
    is_demo_checkpoint,
)

qwen_tts = pytest.importorskip("qwen_tts")

SR = 24_000
FRAME = 1_920  # samples per codec frame at 12.5 Hz
MAX_NEW_TOKENS = 16
SPEAKERS = {"vivian", "serena", "uncle_fu", "dylan", "eric", "ryan", "aiden", "ono_anna", "sohee"}
REF_TEXT = "This is the reference recording."


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo-models")
    build_demo_checkpoints(out)
    return out


@pytest.fixture(scope="session")
def models(demo_dir: Path) -> dict[str, Any]:
    load = qwen_tts.Qwen3TTSModel.from_pretrained
    return {mode: load(str(demo_dir / mode), device_map="cpu", dtype=torch.float32) for mode in DEMO_MODES}


@pytest.fixture(scope="session")
def ref_audio() -> tuple[np.ndarray, int]:
    # 1.5 s of a modulated tone, inside [-1, 1] (the mel code warns outside it).
    t = np.arange(int(1.5 * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return wave.astype(np.float32), SR


def assert_audio(result: tuple[list[np.ndarray], int], *, frame_tolerance: int = 0) -> np.ndarray:
    wavs, sr = result
    assert sr == SR
    assert len(wavs) == 1
    wav = wavs[0]
    assert isinstance(wav, np.ndarray) and wav.dtype == np.float32 and wav.ndim == 1
    assert wav.size >= FRAME
    remainder = wav.size % FRAME
    assert min(remainder, FRAME - remainder) <= frame_tolerance, wav.size
    assert np.isfinite(wav).all()
    assert float(np.sqrt(np.mean(wav**2))) > 1e-2  # clearly not silent (target level is 0.1)
    return wav


def file_state(root: Path) -> dict[str, tuple[int, bytes]]:
    """Relative path -> (mtime_ns, content) of every file of a build."""
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".demo-build.lock"
    }


# --- the build itself -------------------------------------------------------


def test_build_writes_three_small_complete_demo_checkpoints(demo_dir: Path) -> None:
    for mode in DEMO_MODES:
        path = demo_dir / mode
        assert demo_checkpoint_complete(path)
        assert is_demo_checkpoint(path)
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        assert config["tts_model_type"] == mode
        assert config["studio_demo"] is True
        assert (path / "speech_tokenizer" / "model.safetensors").is_file()
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        assert size < 20 * 1024 * 1024


def test_incomplete_checkpoints_are_not_complete(demo_dir: Path, tmp_path: Path) -> None:
    assert not demo_checkpoint_complete(tmp_path / "missing")

    no_marker = tmp_path / "no_marker"
    shutil.copytree(demo_dir / "base", no_marker)
    (no_marker / MARKER_NAME).unlink()
    assert not demo_checkpoint_complete(no_marker)

    old_version = tmp_path / "old_version"
    shutil.copytree(demo_dir / "base", old_version)
    (old_version / MARKER_NAME).write_text(json.dumps({"builder_version": BUILDER_VERSION + 1, "seed": 0}))
    assert not demo_checkpoint_complete(old_version)

    no_weights = tmp_path / "no_weights"
    shutil.copytree(demo_dir / "base", no_weights)
    (no_weights / "speech_tokenizer" / "model.safetensors").unlink()
    assert not demo_checkpoint_complete(no_weights)


def test_concurrent_builds_then_cached_reuse(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    results: list[dict[str, Path]] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(build_demo_checkpoints(out))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results[0] == results[1] == {mode: out / mode for mode in DEMO_MODES}
    assert all(demo_checkpoint_complete(p) for p in results[0].values())
    assert not [p for p in out.iterdir() if p.name.startswith((".tmp-", ".old-"))]

    # Same seed, separate build: byte-identical files (deterministic weights).
    for mode in DEMO_MODES:
        assert {k: v[1] for k, v in file_state(out / mode).items()} == {
            k: v[1] for k, v in file_state(demo_dir / mode).items()
        }

    before = file_state(out)
    started = time.perf_counter()
    assert build_demo_checkpoints(out) == results[0]
    assert time.perf_counter() - started < 1.0
    assert file_state(out) == before  # nothing rewritten: same content, same mtimes


def test_partial_forced_and_reseeded_rebuilds(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(demo_dir, out)
    (out / "voice_design" / MARKER_NAME).unlink()
    (out / ".tmp-base-deadbeef").mkdir()  # debris of a builder that died

    before = file_state(out)
    build_demo_checkpoints(out)
    after = file_state(out)
    assert demo_checkpoint_complete(out / "voice_design")
    assert not (out / ".tmp-base-deadbeef").exists()
    for name, (mtime, _) in after.items():
        if name.startswith(("base/", "custom_voice/")):
            assert before[name][0] == mtime, name  # complete ones were left alone
    assert after["voice_design/model.safetensors"][0] != before["voice_design/model.safetensors"][0]

    build_demo_checkpoints(out, force=True)
    forced = file_state(out)
    for mode in DEMO_MODES:
        name = f"{mode}/model.safetensors"
        assert forced[name][0] != after[name][0]  # rewritten ...
        assert forced[name][1] == after[name][1]  # ... with the same seed-0 weights

    build_demo_checkpoints(out, seed=1)  # another seed invalidates the cache
    reseeded = file_state(out)
    for mode in DEMO_MODES:
        assert reseeded[f"{mode}/model.safetensors"][1] != forced[f"{mode}/model.safetensors"][1]
        assert json.loads((out / mode / MARKER_NAME).read_text())["seed"] == 1


# --- loading ------------------------------------------------------------------


@pytest.mark.parametrize("mode", DEMO_MODES)
def test_loads_on_cpu_float32(models: dict[str, Any], mode: str) -> None:
    model = models[mode]
    assert model.model.tts_model_type == mode
    assert model.model.dtype == torch.float32
    assert model.model.config.studio_demo is True
    languages = model.get_supported_languages()
    assert {"auto", "english", "chinese"} <= set(languages)
    assert not [lang for lang in languages if "dialect" in lang]


def test_custom_voice_lists_the_nine_speakers(models: dict[str, Any]) -> None:
    # qwen_tts reports speakers lower-cased and sorted; lookups are case-insensitive.
    assert set(models["custom_voice"].get_supported_speakers()) == SPEAKERS


# --- generation ---------------------------------------------------------------


def test_voice_design_generates_audio(models: dict[str, Any]) -> None:
    assert_audio(
        models["voice_design"].generate_voice_design(
            text="Hello from the demo studio.",
            language="English",
            instruct="A calm, warm female voice.",
            max_new_tokens=MAX_NEW_TOKENS,
        )
    )


@pytest.mark.parametrize(
    ("speaker", "language", "instruct"),
    [("Vivian", "English", "Speak happily."), ("Dylan", "Chinese", None), ("Eric", "Auto", "慢一点")],
)
def test_custom_voice_generates_audio(
    models: dict[str, Any], speaker: str, language: str, instruct: str | None
) -> None:
    assert_audio(
        models["custom_voice"].generate_custom_voice(
            text="你好，这是一个测试。",
            language=language,
            speaker=speaker,
            instruct=instruct,
            max_new_tokens=MAX_NEW_TOKENS,
        )
    )


def test_voice_clone_icl(models: dict[str, Any], ref_audio: tuple[np.ndarray, int]) -> None:
    base = models["base"]
    prompt = base.create_voice_clone_prompt(ref_audio=ref_audio, ref_text=REF_TEXT, x_vector_only_mode=False)
    item = prompt[0]
    assert item.icl_mode and not item.x_vector_only_mode and item.ref_text == REF_TEXT
    assert item.ref_code.dtype == torch.int64
    assert item.ref_code.shape == (int(np.ceil(ref_audio[0].size / FRAME)), 16)
    assert item.ref_spk_embedding.shape == (base.model.config.talker_config.hidden_size,)

    # The reference frames are decoded too and then cut off by a float ratio, so the
    # result may miss a whole number of frames by a sample.
    assert_audio(
        base.generate_voice_clone(
            text="Cloned speech.",
            language="English",
            voice_clone_prompt=prompt,
            max_new_tokens=MAX_NEW_TOKENS,
        ),
        frame_tolerance=1,
    )
    assert_audio(
        base.generate_voice_clone(
            text="Cloned speech.",
            language="English",
            ref_audio=ref_audio,
            ref_text=REF_TEXT,
            max_new_tokens=MAX_NEW_TOKENS,
        ),
        frame_tolerance=1,
    )


def test_voice_clone_x_vector_only(models: dict[str, Any], ref_audio: tuple[np.ndarray, int]) -> None:
    base = models["base"]
    prompt = base.create_voice_clone_prompt(ref_audio=ref_audio, x_vector_only_mode=True)
    assert prompt[0].ref_code is None and prompt[0].x_vector_only_mode
    assert_audio(
        base.generate_voice_clone(
            text="Cloned speech.", language="Auto", voice_clone_prompt=prompt, max_new_tokens=MAX_NEW_TOKENS
        )
    )


def test_same_seed_gives_identical_audio(models: dict[str, Any]) -> None:
    def run(seed: int) -> np.ndarray:
        torch.manual_seed(seed)
        wavs, _ = models["custom_voice"].generate_custom_voice(
            text="Same seed, same take.", language="English", speaker="Ryan", max_new_tokens=MAX_NEW_TOKENS
        )
        return wavs[0]

    first = run(1234)
    assert np.array_equal(first, run(1234))
    assert not np.array_equal(first, run(4321))
