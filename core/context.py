"""The one explicit application context, built at start-up and passed down.

Nothing in the engine keeps global state: the UI, the API routes and the
command line all receive this object and reach every service through it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.engine.catalog import Catalog
from core.engine.device import DeviceProbe, system_probe
from core.engine.mlx import attach_mlx, resolve_engine
from core.engine.model_manager import Loader, ModelManager, qwen_loader
from core.engine.model_store import ModelStore
from core.engine.synthesis import SynthesisService
from core.engine.transcription import Transcriber
from core.settings import Settings
from core.storage.history import History
from core.storage.library import VoiceLibrary
from core.text_lexicon import LexiconStore

if TYPE_CHECKING:
    from core.engine.remote.pool import Pool


@dataclass
class AppContext:
    settings: Settings
    catalog: Catalog
    store: ModelStore
    models: ModelManager
    synthesis: SynthesisService
    library: VoiceLibrary
    history: History
    # Transcription (Mode.ASR) through the same model manager (core/engine/transcription.py).
    transcriber: Transcriber
    remote: Pool | None = None  # the remote engine servers, when configured (core/engine/remote/)


def build_context(
    settings: Settings,
    *,
    probe: DeviceProbe | None = None,
    loader: Loader = qwen_loader,
) -> AppContext:
    catalog = Catalog(demo=settings.demo_models, asr_repo=settings.asr_model)
    store = ModelStore(settings)
    models = ModelManager(
        catalog=catalog,
        store=store,
        device_preference=settings.device,
        dtype_preference=settings.dtype,
        max_resident=settings.max_resident,
        probe=probe or system_probe(settings.data_dir / "cache"),  # caches the CPU bf16 probe
        loader=loader,
    )
    synthesis = SynthesisService(
        models,
        max_text_chars=settings.max_text_chars,
        chunk_chars=settings.chunk_chars,
        preferred_size=settings.preferred_size,
        quantize=settings.quantize,
        decode=settings.decode,
    )
    synthesis.lexicon = LexiconStore(settings.data_dir / "lexicon")
    if resolve_engine(settings.engine, settings.data_dir) == "mlx":  # --engine (core/engine/mlx/)
        attach_mlx(synthesis, models, settings)
    remote = _remote_engines(settings, catalog, synthesis)
    library = VoiceLibrary(settings.voices_dir)
    history = History(
        settings.history_dir,
        max_takes=settings.history_max_takes,
        max_bytes=settings.history_max_mb * 1_000_000,
    )
    return AppContext(
        settings=settings,
        catalog=catalog,
        store=store,
        models=models,
        synthesis=synthesis,
        library=library,
        history=history,
        # The synthesis service's device lock: a transcription waits for a take and vice versa.
        transcriber=Transcriber(models, device_lock=getattr(synthesis, "_device_lock", contextlib.nullcontext())),
        remote=remote,
    )


def _remote_engines(settings: Settings, catalog: Catalog, synthesis: SynthesisService) -> Pool | None:
    """With --remote-engine: the server pool, discovered now and health-checked from now on,
    behind a router that sends each checkpoint to its servers (the rest stays local)."""
    if not settings.remote_engine:
        return None
    from core.engine.remote.config import servers_from_settings
    from core.engine.remote.pool import Pool
    from core.engine.remote.router import EngineRouter

    pool = Pool(
        servers_from_settings(settings.remote_engine),
        catalog,
        timeout_s=settings.remote_timeout,
        failures=settings.remote_failures,
        cooldown_s=settings.remote_cooldown,
    )
    pool.check()
    pool.start_monitor()
    synthesis.engine = EngineRouter(  # type: ignore[assignment]
        synthesis.engine, pool, fallback=settings.engine_fallback, device_lock=synthesis._device_lock
    )
    return pool
