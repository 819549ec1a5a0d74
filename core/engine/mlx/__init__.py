"""The MLX engine (``--engine mlx``): mlx-audio in its own environment, run as a child process.

* ``install.py`` -- the engine's environment under the data dir (``engines install|list|remove``);
* ``child_main.py`` -- the child: mlx-audio's server with the studio's few additions
  (runs with the engine's Python, never imported here);
* ``supervisor.py`` -- start on a free loopback port, health, restart after a crash, stop;
* ``engine.py`` -- the Engine protocol over the child's HTTP API.

This package's own import is light: nothing here imports MLX, which lives in the
other environment.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from core.engine.mlx.install import installed, is_apple_silicon

if TYPE_CHECKING:
    from core.engine.model_manager import ModelManager
    from core.engine.synthesis import SynthesisService
    from core.settings import Settings


class MlxQuantize(str, Enum):
    """The MLX engine's weights (``--mlx-quantize``): as stored, or quantized by the child at load
    with MLX's own ``nn.quantize`` (group size 64, the layers mlx-audio's converter would pick)."""

    BF16 = "bf16"  # no quantization: the checkpoint's own weights
    Q8 = "8bit"
    Q6 = "6bit"
    Q4 = "4bit"

    @property
    def bits(self) -> int | None:
        return None if self is MlxQuantize.BF16 else int(self.value[0])


MLX_QUANTIZE = tuple(q.value for q in MlxQuantize)


def resolve_engine(choice: str, data_dir: Path) -> str:
    """``auto`` is MLX on Apple Silicon once the MLX engine is installed, torch otherwise."""
    if choice != "auto":
        return choice
    return "mlx" if is_apple_silicon() and installed(data_dir) else "torch"


def attach_mlx(
    synthesis: SynthesisService, models: ModelManager, settings: Settings, quantize: str | None = None
) -> None:
    """Makes the MLX engine the synthesis service's engine (its models load through ``models``),
    with ``quantize`` or else ``settings.mlx_quantize`` for its weights."""
    from core.engine.mlx.engine import MlxEngine
    from core.engine.mlx.supervisor import MlxProcess

    process = MlxProcess(settings.data_dir, quantize=MlxQuantize(quantize or settings.mlx_quantize))
    synthesis.engine = MlxEngine(models, process)  # type: ignore[assignment]


def active_engine(synthesis: SynthesisService) -> str:
    """The engine the synthesis service generates with now ("torch" or "mlx")."""
    return str(getattr(synthesis.engine, "name", "torch"))


def switch_engine(
    synthesis: SynthesisService, models: ModelManager, settings: Settings, name: str, quantize: str | None = None
) -> str:
    """Switches the running studio's engine (the Models tab): every model is unloaded first, so
    the next take loads its checkpoint through the new engine. ``quantize`` (MLX only) changes the
    MLX weights too; the child then restarts on the next take. Returns the engine now in use."""
    from core.engine.model_manager import qwen_loader, smoke_generation
    from core.engine.torch_engine import TorchEngine
    from core.errors import InvalidInput

    if name not in ("torch", "mlx"):
        raise InvalidInput(f"Unknown engine '{name}': choose torch or mlx.")
    if quantize is not None and quantize not in MLX_QUANTIZE:
        raise InvalidInput(f"Unknown MLX weights '{quantize}': choose {', '.join(MLX_QUANTIZE)}.")
    if active_engine(synthesis) == name:
        process = getattr(synthesis.engine, "process", None)
        if name == "mlx" and quantize and process is not None and process.quantize.value != quantize:
            models.unload()  # frees through the engine: the child stops
            process.stop()
            process.quantize = MlxQuantize(quantize)
        return name
    if getattr(synthesis.engine, "name", "") not in ("torch", "mlx"):
        raise InvalidInput("The engine cannot be switched while remote engines are configured.")
    models.unload()
    old = synthesis.engine
    if name == "mlx":
        attach_mlx(synthesis, models, settings, quantize)
    else:
        process = getattr(old, "process", None)
        models.loader, models.verifier, models.on_release = qwen_loader, smoke_generation, None
        synthesis.engine = TorchEngine(models, quantize=settings.quantize)
        if process is not None:
            process.stop()
    return name
