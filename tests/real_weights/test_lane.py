"""The lane's own rule, checked everywhere: a missing checkpoint skips with its name and the command
that fetches it; a present one runs. (These run without weights; they are not marked real_weights.)"""

from __future__ import annotations

import pytest

from core.context import build_context
from core.settings import Settings
from tests.real_weights.conftest import require


def test_a_missing_checkpoint_skips_naming_it_and_the_command(tmp_path):
    context = build_context(Settings(data_dir=tmp_path / "d", hf_cache_dir=tmp_path / "hf", offline=True, device="cpu"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        require(context, context.catalog.asr)
    assert str(skipped.value.msg) == (
        "openai/whisper-small is not in the Hugging Face cache: fetch it with "
        "`qwen-tts-studio models download whisper-small` (real_weights lane, docs/ASR.md)"
    )
    with pytest.raises(pytest.skip.Exception, match=r"not in --models-dir .*models download 0\.6B-Base"):
        models_dir = build_context(Settings(data_dir=tmp_path / "d", models_dir=tmp_path / "m", offline=True))
        require(models_dir, models_dir.catalog.get("0.6B-Base"))


def test_a_present_checkpoint_runs(tmp_path, demo_asr):
    context = build_context(Settings(data_dir=tmp_path / "d", checkpoint_asr=demo_asr, offline=True, device="cpu"))
    require(context, context.catalog.asr)  # no skip: the folder is complete
