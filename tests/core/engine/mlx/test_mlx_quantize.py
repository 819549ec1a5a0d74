"""``--mlx-quantize``: the MLX engine's child quantizes each model at load (core/engine/mlx/child_main.py),
for real -- mlx-audio 0.6.2 on MLX's CPU backend, on the tiny demo checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from core.context import build_context
from core.engine.mlx.engine import MlxEngine
from core.errors import SettingsError
from core.settings import MlxQuantize, parse_setting
from core.types import CustomVoiceRequest, Sampling
from tests.conftest import make_demo_settings
from tests.mlx_engine import link_engine


@pytest.fixture(scope="module")
def context_4bit(tmp_path_factory, demo_checkpoints, mlx_engine_home):
    data_dir = link_engine(tmp_path_factory.mktemp("mlx-4bit") / "data", mlx_engine_home)
    context = build_context(make_demo_settings(data_dir, demo_checkpoints, engine="mlx", mlx_quantize="4bit"))
    assert isinstance(context.synthesis.engine, MlxEngine)
    yield context
    context.synthesis.engine.process.stop()


def test_4bit_generates_audio_and_records_the_quantization(context_4bit):
    synthesis = context_4bit.synthesis
    result = synthesis.synthesize(
        CustomVoiceRequest(text="Quantized hello.", speaker="Vivian", sampling=Sampling(seed=3, max_new_tokens=12))
    )
    samples = result.audio.samples
    assert result.sample_rate == 24_000 and samples.size >= 1920
    assert np.all(np.isfinite(samples)) and float(np.abs(samples).max()) > 1e-3
    assert result.engine == "mlx 4bit", "the take names the quantization"

    engine = synthesis.engine
    assert engine.process.quantize is MlxQuantize.Q4 and engine.weights == "4bit"
    memory = engine.process.memory()
    assert memory["quantize"] == "4bit"
    layers = memory["quantized_layers"]
    assert len(layers) == 1 and next(iter(layers.values())) > 0, layers  # the demo's 64-wide MLP layers
    row = next(r for r in context_4bit.models.status() if r.state == "loaded")
    assert row.dtype == "4bit"


def test_a_bad_value_is_a_one_line_error():
    with pytest.raises(SettingsError) as caught:
        parse_setting("mlx_quantize", "3bit", "--mlx-quantize")
    message = str(caught.value)
    assert "\n" not in message and "'3bit'" in message and "bf16, 8bit, 6bit, 4bit" in message
    assert parse_setting("mlx_quantize", "4BIT", "env") == "4bit"
    assert MlxQuantize("6bit").bits == 6 and MlxQuantize.BF16.bits is None


def test_offline_with_the_model_missing_names_the_download_command(tmp_path, mlx_engine_home):
    """Quantized weights are converted from the released checkpoint, so what is missing is that
    checkpoint, and the error says how to fetch it (before any child starts)."""
    from core.errors import ModelUnavailable
    from core.settings import Settings

    data_dir = link_engine(tmp_path / "data", mlx_engine_home)
    settings = Settings(
        data_dir=data_dir,
        hf_cache_dir=tmp_path / "empty-hf-cache",
        engine="mlx",
        mlx_quantize="6bit",
        offline=True,
        device="cpu",
    )
    context = build_context(settings)
    request = CustomVoiceRequest(text="Hello.", speaker="Vivian", sampling=Sampling(seed=1, max_new_tokens=4))
    with pytest.raises(ModelUnavailable) as caught:
        context.synthesis.synthesize(request)
    assert "qwen-tts-studio models download" in str(caught.value)
    assert not context.synthesis.engine.process.running(), "nothing to load: no child was started"
