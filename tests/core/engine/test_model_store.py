"""Downloading real checkpoints, against a local stand-in for the Hugging Face Hub.

The hub (tests/fake_hub.py) serves the tiny real Base checkpoint under the real
repo id, so ModelStore, huggingface_hub and the model manager run exactly as
they would for Qwen/Qwen3-TTS-12Hz-0.6B-Base, only on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from core.engine.catalog import Catalog
from core.engine.model_store import ModelStore, is_complete_checkpoint
from core.errors import ModelUnavailable
from core.settings import Settings
from tests.conftest import spoken
from tests.fake_hub import closed_port_url, fake_hub, point_huggingface_hub_at  # noqa: F401 (fixture)

CHECKPOINT = Catalog(demo=False).get("0.6B-Base")
REPO = "Qwen/Qwen3-TTS-12Hz-0.6B-Base"


@pytest.fixture
def hub(fake_hub, demo_checkpoints):
    fake_hub.add_repo(REPO, demo_checkpoints["base"])
    return fake_hub


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        hf_cache_dir=tmp_path / "hf",
        offline=False,
        demo_models=False,
        device="cpu",
        dtype="float32",
    )


def file_of(request) -> str | None:
    """The repo path a resolve request asked for."""
    return request.path.split("/resolve/", 1)[1].split("/", 1)[1] if "/resolve/" in request.path else None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_same_files(folder: Path, source: Path) -> None:
    wanted = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")}
    for name in wanted:
        assert digest(folder / name) == digest(source / name), name


def test_download_into_the_cache_reports_progress_and_is_found(hub, settings, demo_checkpoints):
    store = ModelStore(settings)
    assert store.local_path(CHECKPOINT) is None
    calls: list[tuple[float, str]] = []

    path = store.download(CHECKPOINT, lambda fraction, message: calls.append((fraction, message)))

    assert CHECKPOINT.repo_id == REPO and CHECKPOINT.key == "0.6B-Base"
    assert path.is_relative_to(settings.hf_cache_dir)
    assert path == settings.hf_cache_dir / "models--Qwen--Qwen3-TTS-12Hz-0.6B-Base" / "snapshots" / hub.repos[REPO].sha
    assert is_complete_checkpoint(path)
    assert_same_files(path, demo_checkpoints["base"])
    assert store.local_path(CHECKPOINT) == path

    fractions = [f for f, _ in calls]
    assert len(calls) >= 3, calls
    assert fractions == sorted(fractions) and 0 < fractions[0] < 1
    assert any(0 < f < 1 and m.startswith(f"Downloading {CHECKPOINT.repo_name}") for f, m in calls), calls
    assert calls[-1] == (1.0, f"Downloaded {CHECKPOINT.repo_name}")

    # Plain HTTP from the hub: repo info, then a HEAD and a GET per file, nothing else.
    paths = {r.path for r in hub.requests}
    assert f"/api/models/{REPO}/revision/main" in paths
    assert all(r.status == 200 and r.range is None for r in hub.requests)
    assert len(hub.file_gets("speech_tokenizer/model.safetensors")) == 1


def test_model_manager_downloads_a_missing_model_then_loads_and_clones(hub, settings):
    from core.context import build_context
    from core.types import CloneRequest, Sampling

    ctx = build_context(settings)
    status = {row.key: row for row in ctx.models.status()}
    assert status["0.6B-Base"].state == "not downloaded"
    calls: list[tuple[float, str]] = []

    loaded = ctx.models.get(CHECKPOINT, lambda f, m: calls.append((f, m)))

    messages = [m for _, m in calls]
    assert f"Downloaded {CHECKPOINT.repo_name}" in messages
    assert messages.index(f"Downloaded {CHECKPOINT.repo_name}") < next(
        i for i, m in enumerate(messages) if m.startswith("Loaded")
    )
    assert loaded.path == ctx.store.local_path(CHECKPOINT)
    assert loaded.device == "cpu" and loaded.dtype == "float32"
    assert hub.file_gets("model.safetensors")

    reference = spoken(3.0)  # real speech: a clone reference must pass the speech check
    result = ctx.synthesis.clone(
        CloneRequest(
            text="Hello.",
            reference=reference,
            x_vector_only=True,
            size="0.6B",
            sampling=Sampling(seed=5, max_new_tokens=6),
        )
    )
    assert result.model == "0.6B-Base" and not result.demo
    assert result.audio.sample_rate == 24_000 and result.audio.samples.size > 0
    assert np.all(np.isfinite(result.audio.samples))
    status = {row.key: row for row in ctx.models.status()}
    assert status["0.6B-Base"].state == "loaded" and status["0.6B-Base"].disk_bytes == hub.repos[REPO].total_bytes


@pytest.mark.parametrize("layout", ["cache", "models_dir"])
def test_interrupted_download_fails_clearly_and_the_next_one_resumes(hub, settings, tmp_path, layout, demo_checkpoints):
    if layout == "models_dir":
        settings = settings.replace(models_dir=tmp_path / "models")
    store = ModelStore(settings)
    name = "speech_tokenizer/model.safetensors"  # the last piece a complete checkpoint needs
    size = len(hub.repos[REPO].files[name])
    hub.fail_after(name, 1_000_000)

    with pytest.raises(ModelUnavailable) as err:
        store.download(CHECKPOINT)
    message = str(err.value)
    assert f"Could not download {REPO}" in message
    assert "`qwen-tts-studio models download 0.6B-Base`" in message
    assert "resumes where it stopped" in message
    # Everything else arrived, but a half-downloaded checkpoint is not a checkpoint.
    assert store.local_path(CHECKPOINT) is None
    with pytest.raises(ModelUnavailable, match="is not downloaded"):
        store.require(CHECKPOINT)

    first = hub.file_gets(name)
    assert len(first) == 1 and first[0].range is None
    fetched_first = {file_of(r) for r in hub.requests if r.method == "GET" and file_of(r)} - {name}
    hub.clear_log()

    path = store.download(CHECKPOINT)

    resumed = hub.file_gets(name)
    assert len(resumed) == 1 and resumed[0].status == 206
    start = int(resumed[0].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= 1_000_000 < size, resumed[0].range
    # Files that arrived the first time did not travel again (the ones huggingface_hub
    # had not started when the failure stopped it are fetched now).
    fetched_again = {file_of(r) for r in hub.requests if r.method == "GET" and file_of(r)}
    assert name in fetched_again and not fetched_again & fetched_first
    assert_same_files(path, demo_checkpoints["base"])
    assert store.local_path(CHECKPOINT) == path


def test_models_dir_download_lands_in_a_plain_folder_and_remove_deletes_it(hub, settings, tmp_path, demo_checkpoints):
    models_dir = tmp_path / "models"
    store = ModelStore(settings.replace(models_dir=models_dir))
    calls: list[tuple[float, str]] = []

    path = store.download(CHECKPOINT, lambda f, m: calls.append((f, m)))

    assert path == (models_dir / "Qwen3-TTS-12Hz-0.6B-Base").resolve()
    assert not any(p.is_symlink() for p in path.rglob("*"))
    assert_same_files(path, demo_checkpoints["base"])
    assert store.local_path(CHECKPOINT) == models_dir / "Qwen3-TTS-12Hz-0.6B-Base"
    assert calls[-1] == (1.0, "Downloaded Qwen3-TTS-12Hz-0.6B-Base")
    assert not (settings.hf_cache_dir / "models--Qwen--Qwen3-TTS-12Hz-0.6B-Base").exists()

    freed = store.remove(CHECKPOINT)
    assert freed >= hub.repos[REPO].total_bytes
    assert not path.exists() and store.local_path(CHECKPOINT) is None


def test_remove_deletes_the_cached_repo_and_returns_the_bytes_freed(hub, settings):
    from huggingface_hub import scan_cache_dir

    store = ModelStore(settings)
    store.download(CHECKPOINT)
    assert [r.repo_id for r in scan_cache_dir(settings.hf_cache_dir).repos] == [REPO]

    freed = store.remove(CHECKPOINT)

    assert freed == hub.repos[REPO].total_bytes
    assert store.local_path(CHECKPOINT) is None
    assert scan_cache_dir(settings.hf_cache_dir).repos == frozenset()
    assert not any((settings.hf_cache_dir / "models--Qwen--Qwen3-TTS-12Hz-0.6B-Base").rglob("*.safetensors"))
    assert store.remove(CHECKPOINT) == 0


def test_offline_mode_never_contacts_the_hub(hub, settings):
    from core.context import build_context

    offline = settings.replace(offline=True)
    store = ModelStore(offline)
    assert store.local_path(CHECKPOINT) is None
    with pytest.raises(ModelUnavailable) as err:
        store.download(CHECKPOINT)
    assert "offline mode" in str(err.value) and "qwen-tts-studio models download 0.6B-Base" in str(err.value)

    ctx = build_context(offline)
    with pytest.raises(ModelUnavailable) as err:
        ctx.models.get(CHECKPOINT)
    assert f"{REPO} is not downloaded" in str(err.value)
    assert "Run `qwen-tts-studio models download 0.6B-Base` while online" in str(err.value)
    assert hub.requests == []


def test_a_hub_that_is_down_names_the_repo_and_the_command(settings, monkeypatch):
    point_huggingface_hub_at(monkeypatch, closed_port_url())
    store = ModelStore(settings)
    with pytest.raises(ModelUnavailable) as err:
        store.download(CHECKPOINT)
    message = str(err.value)
    assert f"Could not download {REPO}" in message
    assert "run `qwen-tts-studio models download 0.6B-Base` again" in message
    assert store.local_path(CHECKPOINT) is None


def test_an_unknown_repo_is_reported_not_retried_forever(fake_hub, settings):
    # The hub knows no repos at all: a 404 with X-Error-Code RepoNotFound.
    store = ModelStore(settings)
    with pytest.raises(ModelUnavailable, match=f"Could not download {REPO}"):
        store.download(CHECKPOINT)
    assert [r.path for r in fake_hub.requests] == [f"/api/models/{REPO}/revision/main"]
