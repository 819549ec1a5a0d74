"""Which engine generates (core/engine/selection.py): chosen at start, switched from the Models tab.

Switching needs no model and no MLX child: the child starts on the first take (which
tests/core/engine/mlx/ and tests/e2e/test_mlx_engine_flow.py make).
"""

from __future__ import annotations

import pytest

from core.engine.interface import Engine
from core.engine.mlx.engine import MlxEngine
from core.engine.model_manager import qwen_loader, smoke_generation
from core.engine.selection import mlx_weights, resolve_engine, switch_engine
from core.engine.torch_engine import TorchEngine
from core.errors import InvalidInput
from core.settings import EngineKind, MlxQuantize


def test_switching_between_torch_and_mlx_keeps_the_manager_in_step(demo_context):
    synthesis, models, settings = demo_context.synthesis, demo_context.models, demo_context.settings
    assert isinstance(synthesis.engine, TorchEngine) and synthesis.engine.kind is EngineKind.TORCH
    assert switch_engine(synthesis, models, settings, "torch") is EngineKind.TORCH  # already: nothing changes
    assert mlx_weights(synthesis.engine, settings) == settings.mlx_quantize == "bf16"

    assert switch_engine(synthesis, models, settings, "mlx", "4bit") is EngineKind.MLX
    engine = synthesis.engine
    assert isinstance(engine, MlxEngine) and Engine in type(engine).__mro__
    assert engine.process.quantize is MlxQuantize.Q4 and engine.weights == "4bit"
    assert models.loader != qwen_loader and models.verifier is None  # the manager loads MLX handles
    assert mlx_weights(engine, settings) == "4bit"
    checkpoint = demo_context.catalog.resolve("base", None, "1.7B")
    assert engine.clones_from_clip(checkpoint) and not engine.routes_remote(checkpoint)

    switch_engine(synthesis, models, settings, "mlx", "8bit")  # new weights, same engine
    assert synthesis.engine is engine and engine.process.quantize is MlxQuantize.Q8

    assert switch_engine(synthesis, models, settings, "torch") is EngineKind.TORCH
    assert isinstance(synthesis.engine, TorchEngine) and synthesis.engine.weights is None
    assert (models.loader, models.verifier, models.on_release) == (qwen_loader, smoke_generation, None)
    assert not synthesis.engine.clones_from_clip(checkpoint)


@pytest.mark.parametrize(
    ("name", "quantize", "message"),
    [("remote", None, "Unknown engine 'remote': choose torch or mlx"), ("mlx", "3bit", "Unknown MLX weights '3bit'")],
)
def test_bad_choices_are_refused_with_a_message(demo_context, name, quantize, message):
    app = demo_context
    with pytest.raises(InvalidInput, match=message):
        switch_engine(app.synthesis, app.models, app.settings, name, quantize)
    assert isinstance(app.synthesis.engine, TorchEngine)


def test_auto_resolves_to_an_engine_kind(tmp_path):
    assert resolve_engine("torch", tmp_path) is EngineKind.TORCH
    assert resolve_engine("auto", tmp_path) is EngineKind.TORCH  # MLX is not installed there
