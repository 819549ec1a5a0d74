"""The one explicit application context, built at start-up and passed down.

Nothing in the engine keeps global state: the UI, the API routes and the
command line all receive this object and reach every service through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.engine.catalog import Catalog
from core.engine.device import DeviceProbe, system_probe
from core.engine.model_manager import Loader, ModelManager, qwen_loader
from core.engine.model_store import ModelStore
from core.engine.selection import select_engine
from core.engine.synthesis import SynthesisService
from core.engine.transcription import Transcriber
from core.engine.user_models import user_models_dir
from core.events import Events
from core.finetune.dataset_store import DatasetStore
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
    # Fine-tuning datasets in <data_dir>/datasets/ (core/finetune/dataset_store.py).
    datasets: DatasetStore
    remote: Pool | None = None  # the remote engine servers, when configured (core/engine/remote/)
    # What the synthesis service, the library, the model manager and store emit (core/events.py).
    events: Events = field(default_factory=Events)


def build_context(
    settings: Settings,
    *,
    probe: DeviceProbe | None = None,
    loader: Loader = qwen_loader,
) -> AppContext:
    events = Events()
    catalog = Catalog(demo=settings.demo_models, asr_repo=settings.asr_model, user_dir=user_models_dir(settings))
    store = ModelStore(settings, events)
    models = ModelManager(
        catalog=catalog,
        store=store,
        device_preference=settings.device,
        dtype_preference=settings.dtype,
        max_resident=settings.max_resident,
        probe=probe or system_probe(settings.data_dir / "cache"),  # caches the CPU bf16 probe
        loader=loader,
        events=events,
    )
    synthesis = SynthesisService(
        models,
        max_text_chars=settings.max_text_chars,
        chunk_chars=settings.chunk_chars,
        preferred_size=settings.preferred_size,
        quantize=settings.quantize,
        events=events,
        decode=settings.decode,
    )
    synthesis.lexicon = LexiconStore(settings.data_dir / "lexicon")
    synthesis.engine, remote = select_engine(settings, models, synthesis.device)
    library = VoiceLibrary(settings.voices_dir, events=events)
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
        transcriber=Transcriber(models, device_lock=synthesis.device),
        datasets=DatasetStore(settings.datasets_dir),
        remote=remote,
        events=events,
    )
