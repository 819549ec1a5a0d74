"""Which engine generates: chosen at start (``--engine``), switched from the Models tab.

The one place that knows the concrete engines (core/engine/interface.py for the protocol):
``auto`` resolves to MLX on Apple Silicon once its environment is installed and to torch
otherwise; ``--remote-engine`` puts the router in front of the local engine (and then the
engine cannot be switched); switching unloads every model first, so the next take loads its
checkpoint through the new engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.engine.interface import Engine
from core.engine.mlx.install import installed, is_apple_silicon
from core.errors import InvalidInput
from core.settings import MLX_QUANTIZE, EngineKind, MlxQuantize, Settings

if TYPE_CHECKING:
    from core.engine.cancel import DeviceTurn
    from core.engine.model_manager import ModelManager
    from core.engine.remote.pool import Pool
    from core.engine.synthesis import SynthesisService

SWITCHABLE = (EngineKind.TORCH, EngineKind.MLX)


def resolve_engine(choice: str, data_dir: Path) -> EngineKind:
    """``auto`` is MLX on Apple Silicon once the MLX engine is installed, torch otherwise."""
    kind = EngineKind(choice)
    if kind is not EngineKind.AUTO:
        return kind
    return EngineKind.MLX if is_apple_silicon() and installed(data_dir) else EngineKind.TORCH


def local_engine(kind: EngineKind, models: ModelManager, settings: Settings, quantize: str | None = None) -> Engine:
    """The engine that generates on this machine: torch, or MLX with ``quantize`` (else
    ``settings.mlx_quantize``) for its weights. Either one loads through ``models``."""
    if kind is EngineKind.MLX:
        from core.engine.mlx.engine import MlxEngine
        from core.engine.mlx.supervisor import MlxProcess

        process = MlxProcess(settings.data_dir, quantize=MlxQuantize(quantize or settings.mlx_quantize))
        return MlxEngine(models, process)
    from core.engine.torch_engine import TorchEngine

    return TorchEngine(models, quantize=settings.quantize)


def select_engine(settings: Settings, models: ModelManager, device_lock: DeviceTurn) -> tuple[Engine, Pool | None]:
    """The engine takes go through at start, and the remote servers' pool when configured: with
    --remote-engine, discovered now and health-checked from now on, behind a router that sends
    each checkpoint to its servers (the rest stays local, under ``device_lock``)."""
    local = local_engine(resolve_engine(settings.engine, settings.data_dir), models, settings)
    if not settings.remote_engine:
        return local, None
    from core.engine.remote.config import servers_from_settings
    from core.engine.remote.pool import Pool
    from core.engine.remote.router import EngineRouter

    pool = Pool(
        servers_from_settings(settings.remote_engine),
        models.catalog,
        timeout_s=settings.remote_timeout,
        failures=settings.remote_failures,
        cooldown_s=settings.remote_cooldown,
    )
    pool.check()
    pool.start_monitor()
    return EngineRouter(local, pool, fallback=settings.engine_fallback, device_lock=device_lock), pool


def mlx_weights(engine: Engine, settings: Settings) -> str:
    """The MLX weights in use: the running MLX engine's, else the setting."""
    from core.engine.mlx.engine import MlxEngine

    return engine.process.quantize.value if isinstance(engine, MlxEngine) else settings.mlx_quantize


def switch_engine(
    synthesis: SynthesisService, models: ModelManager, settings: Settings, name: str, quantize: str | None = None
) -> EngineKind:
    """Switches the running studio's engine (the Models tab). ``quantize`` (MLX only) changes the
    MLX weights too; the child then restarts on the next take. Returns the engine now in use."""
    from core.engine.mlx.engine import MlxEngine

    if name not in SWITCHABLE:
        raise InvalidInput(f"Unknown engine '{name}': choose {' or '.join(k.value for k in SWITCHABLE)}.")
    if quantize is not None and quantize not in MLX_QUANTIZE:
        raise InvalidInput(f"Unknown MLX weights '{quantize}': choose {', '.join(MLX_QUANTIZE)}.")
    kind, old = EngineKind(name), synthesis.engine
    if old.kind not in SWITCHABLE:
        raise InvalidInput("The engine cannot be switched while remote engines are configured.")
    if old.kind is kind:
        if isinstance(old, MlxEngine) and quantize and old.process.quantize.value != quantize:
            models.unload()  # frees through the engine: the child stops
            old.process.stop()
            old.process.quantize = MlxQuantize(quantize)
        return kind
    models.unload()
    if kind is EngineKind.TORCH:  # the MLX engine had the manager load its handles instead
        from core.engine.model_manager import qwen_loader, smoke_generation

        models.loader, models.verifier, models.on_release = qwen_loader, smoke_generation, None
    synthesis.engine = local_engine(kind, models, settings, quantize)
    if isinstance(old, MlxEngine):
        old.process.stop()
    return kind
