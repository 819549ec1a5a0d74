"""Where checkpoints live on disk, and fetching them when they are not there.

Lookup order for a checkpoint: an explicit per-mode folder from the settings,
then the demo build (in demo mode), then ``--models-dir/<repo name>``, then
the Hugging Face cache. Loading always happens from a local folder, so the
model code never reaches the network on its own.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.engine.catalog import Checkpoint
from core.errors import ModelUnavailable
from core.events import Events, ModelAction, ModelChanged
from core.settings import Settings
from core.types import Mode

log = logging.getLogger(__name__)

# (fraction 0..1, human description)
ProgressCallback = Callable[[float, str], None]

_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def is_complete_checkpoint(path: Path) -> bool:
    """A folder that from_pretrained can load: config, weights and the speech tokenizer (with its weights).

    Each part needs its own weights: a download interrupted in the speech
    tokenizer's weights must not pass for a complete checkpoint.
    """
    return all(
        (folder / "config.json").is_file()
        and any(p.suffix in _WEIGHT_SUFFIXES for p in folder.iterdir() if p.is_file())
        for folder in (path, path / "speech_tokenizer")
    )


def is_complete_asr(path: Path) -> bool:
    """A Whisper folder transformers can load: config, weights, feature extractor and tokenizer."""
    if not path.is_dir():
        return False
    files = {p.name for p in path.iterdir() if p.is_file()}
    return (
        {"config.json", "preprocessor_config.json"} <= files
        and any(Path(name).suffix in _WEIGHT_SUFFIXES for name in files)
        and ("tokenizer.json" in files or {"vocab.json", "merges.txt"} <= files)
    )


def is_complete(checkpoint: Checkpoint, path: Path) -> bool:
    return is_complete_asr(path) if checkpoint.mode == Mode.ASR else is_complete_checkpoint(path)


# Whisper repos also carry PyTorch .bin, TensorFlow and Flax copies of the same weights:
# fetch the safetensors and the small files only (whisper-small: 0.97 GB instead of 3.9 GB).
ASR_FILES = ["*.json", "*.txt", "*.safetensors"]


def folder_size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                # resolve() follows the HF cache's symlinks to the real blobs.
                total += p.resolve().stat().st_size
        except OSError:
            continue
    return total


def download_command(checkpoint: Checkpoint) -> str:
    return f"qwen-tts-studio models download {checkpoint.key}"


@dataclass
class ModelStore:
    settings: Settings
    events: Events = field(default_factory=Events)  # downloads and removals, told to the audit log

    def download(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> Path:
        """Fetches a real checkpoint (resumable), or builds a demo one, and returns its local folder."""
        path = self._download(checkpoint, progress)
        self.events.emit(ModelChanged(ModelAction.DOWNLOAD, checkpoint.key))
        return path

    def remove(self, checkpoint: Checkpoint) -> int:
        """Deletes the downloaded files; returns the bytes freed."""
        freed = self._remove(checkpoint)
        self.events.emit(ModelChanged(ModelAction.REMOVE, checkpoint.key))
        return freed

    def local_path(self, checkpoint: Checkpoint) -> Path | None:
        """The folder holding a complete copy of the checkpoint, or None."""
        if checkpoint.folder is not None:  # a voice trained here (core/engine/user_models.py)
            return checkpoint.folder if is_complete_checkpoint(checkpoint.folder) else None
        override = self.settings.checkpoint_override(checkpoint.mode)
        if override is not None:
            return override if is_complete(checkpoint, override) else None
        if checkpoint.demo and checkpoint.mode == Mode.ASR:
            from core.engine.demo_models.whisper import DEMO_ASR_FOLDER, demo_asr_complete

            path = self.settings.demo_dir / DEMO_ASR_FOLDER
            return path if demo_asr_complete(path) else None
        if checkpoint.demo:
            from core.engine.demo_models.build import demo_checkpoint_complete

            path = self.settings.demo_dir / checkpoint.mode
            return path if demo_checkpoint_complete(path) else None
        if self.settings.models_dir is not None:
            path = self.settings.models_dir / checkpoint.repo_name
            return path if is_complete(checkpoint, path) else None
        return self._cached_snapshot(checkpoint)

    def _cached_snapshot(self, checkpoint: Checkpoint) -> Path | None:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            path = Path(
                snapshot_download(
                    checkpoint.repo_id,
                    cache_dir=self.settings.hf_cache_dir,
                    local_files_only=True,
                    allow_patterns=ASR_FILES if checkpoint.mode == Mode.ASR else None,
                )
            )
        except (LocalEntryNotFoundError, OSError, ValueError):
            return None
        return path if is_complete(checkpoint, path) else None

    def require(self, checkpoint: Checkpoint) -> Path:
        path = self.local_path(checkpoint)
        if path is not None:
            return path
        override = self.settings.checkpoint_override(checkpoint.mode)
        if override is not None and checkpoint.mode == Mode.ASR:
            raise ModelUnavailable(
                f"The folder {override} set as the transcription model does not hold a complete Whisper "
                "model (config.json, weights, preprocessor_config.json and the tokenizer are needed). "
                "Fix the path or remove the setting."
            )
        if override is not None:
            raise ModelUnavailable(
                f"The folder {override} set for {checkpoint.mode} models does not hold a complete "
                "checkpoint (config.json, weights and speech_tokenizer/ are needed). "
                "Fix the path or remove the setting."
            )
        if checkpoint.demo:
            raise ModelUnavailable(
                f"The demo model {checkpoint.key} has not been built yet. Run `qwen-tts-studio models build-demo`."
            )
        raise ModelUnavailable(
            f"{checkpoint.repo_id} is not downloaded (about {checkpoint.approx_gb:.1f} GB). "
            f"Run `{download_command(checkpoint)}` while online, or use Download in the Models tab."
        )

    def _download(self, checkpoint: Checkpoint, progress: ProgressCallback | None = None) -> Path:
        if checkpoint.folder is not None:
            if is_complete_checkpoint(checkpoint.folder):
                return checkpoint.folder  # nothing to fetch: it was made here
            raise ModelUnavailable(
                f"The trained voice {checkpoint.key} is not complete in {checkpoint.folder}; "
                "it cannot be downloaded. Remove it in Models and train it again."
            )
        if checkpoint.demo and checkpoint.mode == Mode.ASR:
            from core.engine.demo_models.whisper import build_demo_asr

            if progress:
                progress(0.0, "Building the demo transcription model")
            built = build_demo_asr(self.settings.demo_dir)
            if progress:
                progress(1.0, "Demo transcription model ready")
            return built
        if checkpoint.demo:
            from core.engine.demo_models.build import build_demo_checkpoints

            if progress:
                progress(0.0, "Building demo models")
            paths = build_demo_checkpoints(self.settings.demo_dir)
            if progress:
                progress(1.0, "Demo models ready")
            return paths[checkpoint.mode]
        if self.settings.offline:
            raise ModelUnavailable(
                f"{checkpoint.repo_id} is not downloaded and the studio is in offline mode. "
                f"Turn offline mode off and run `{download_command(checkpoint)}`."
            )
        from huggingface_hub import snapshot_download

        kwargs: dict = {"cache_dir": self.settings.hf_cache_dir}
        if self.settings.models_dir is not None:
            kwargs = {"local_dir": self.settings.models_dir / checkpoint.repo_name}
        if checkpoint.mode == Mode.ASR:
            kwargs["allow_patterns"] = ASR_FILES
        try:
            path = snapshot_download(checkpoint.repo_id, tqdm_class=_progress_tqdm(progress, checkpoint), **kwargs)
        except Exception as exc:  # network errors come in many types
            # huggingface_hub wraps the network error; the log keeps the one underneath.
            log.warning("download of %s failed: %s (%r)", checkpoint.repo_id, exc, exc.__cause__ or exc.__context__)
            raise ModelUnavailable(
                f"Could not download {checkpoint.repo_id}: {_short(exc)}. Check the internet "
                f"connection and run `{download_command(checkpoint)}` again; it resumes where it stopped."
            ) from None
        if progress:
            progress(1.0, f"Downloaded {checkpoint.repo_name}")
        return Path(path)

    def _remove(self, checkpoint: Checkpoint) -> int:
        path = self.local_path(checkpoint)
        if path is None:
            return 0
        if checkpoint.folder is None and self.settings.checkpoint_override(checkpoint.mode) is not None:
            raise ModelUnavailable(
                f"{path} was configured by hand; the studio does not delete folders it did not create."
            )
        size = folder_size(path)
        if checkpoint.folder is not None or checkpoint.demo or self.settings.models_dir is not None:
            shutil.rmtree(path)
            return size
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir(self.settings.hf_cache_dir)
        hashes = [
            rev.commit_hash for repo in cache.repos if repo.repo_id == checkpoint.repo_id for rev in repo.revisions
        ]
        cache.delete_revisions(*hashes).execute()
        return size


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _progress_tqdm(progress: ProgressCallback | None, checkpoint: Checkpoint):
    """A tqdm class that forwards huggingface_hub's progress to our callback.

    snapshot_download (huggingface_hub 0.3x) gives ``tqdm_class`` only to its
    files bar (unit "it", advanced by iterating over finished downloads), never
    to the per-file byte bars; a byte bar (unit "B") is forwarded as well.
    """
    from tqdm.auto import tqdm

    class ForwardingTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            if progress is not None:
                # tqdm calls update() while iterating only every mininterval: report every file.
                # The callback shows the progress; tqdm's own bar would fight it on stderr.
                kwargs.update(mininterval=0, miniters=1, file=io.StringIO())
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            result = super().update(n)
            if progress and self.total:
                if self.unit == "B":
                    done = f"{self.n / 1e9:.2f} of {self.total / 1e9:.2f} GB"
                else:
                    done = f"{self.n} of {self.total} files"
                progress(min(self.n / self.total, 1.0), f"Downloading {checkpoint.repo_name}: {done}")
            return result

    return ForwardingTqdm
