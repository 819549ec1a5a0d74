"""The real-weights lane: the real Qwen3-TTS checkpoints and the real Whisper, when this machine has them.

Nothing is downloaded: the settings are the studio's own (``QWEN_TTS_STUDIO_*`` variables,
``config.toml``: ``models_dir``, ``hf_cache_dir``, ``asr_model``, ``device``) with the data dir
in a temporary folder and ``offline`` on. A checkpoint that is not in the Hugging Face cache or
``--models-dir`` skips its tests with the command that fetches it (docs/ASR.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.engine.catalog import Checkpoint

# Every precision the studio offers is measured where the weights exist (issue 26): WER per dtype.
PRECISIONS: dict[str, dict[str, str]] = {
    "float32": {"dtype": "float32"},
    "bfloat16": {"dtype": "bfloat16"},
    "int8": {"dtype": "float32", "quantize": "int8"},  # opt-in, CPU only
}


def lane_settings(data_dir: Path, **precision: str):
    from core.settings import load_settings

    # Two resident models: the TTS checkpoint under test and Whisper, so neither reloads per sentence.
    values = {"data_dir": data_dir, "offline": True, "demo_models": False, "max_resident": 2, **precision}
    return load_settings(values)


def missing_message(checkpoint: Checkpoint, settings) -> str:
    where = f"--models-dir {settings.models_dir}" if settings.models_dir else "the Hugging Face cache"
    override = settings.checkpoint_override(checkpoint.mode)
    if override is not None:
        where = f"the folder {override} set for it"
    return (
        f"{checkpoint.repo_id} is not in {where}: fetch it with "
        f"`qwen-tts-studio models download {checkpoint.key}` (real_weights lane, docs/ASR.md)"
    )


def require(context, checkpoint: Checkpoint) -> None:
    """Skips the test, naming the checkpoint and the command, when it is not on this machine."""
    if context.store.local_path(checkpoint) is None:
        pytest.skip(missing_message(checkpoint, context.settings))


@pytest.fixture(scope="session", params=list(PRECISIONS))
def lane(request, tmp_path_factory):
    """One studio context per precision (models stay loaded between its tests)."""
    from core.context import build_context

    context = build_context(lane_settings(tmp_path_factory.mktemp("real-weights"), **PRECISIONS[request.param]))
    if request.param == "int8" and context.models.device != "cpu":
        pytest.skip("--quantize int8 runs on the CPU only")
    yield context
    context.models.unload()
