"""Building the demo checkpoints, once, safely, and telling them apart.

The three checkpoints share their tokenizers: the text and speech tokenizers
are built once into a temporary folder and copied into each mode's folder,
next to that mode's own TTS model. A cached build is reused when its marker
says it is complete, of this builder version and from the same seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.engine.demo_models.layout import DEMO_CONFIG_KEY, write_json
from core.engine.demo_models.speech_tokenizer import write_speech_tokenizer
from core.engine.demo_models.text_tokenizer import write_text_tokenizer
from core.engine.demo_models.tts_model import write_tts_model
from core.engine.dependencies import dependency_error, import_model_code
from core.errors import ModelUnavailable
from core.types import Mode

logger = logging.getLogger(__name__)

DEMO_MODES: tuple[Mode, ...] = (Mode.BASE, Mode.CUSTOM_VOICE, Mode.VOICE_DESIGN)
BUILDER_VERSION = 2  # bump when the layout changes; cached builds with another version are rebuilt

MARKER_NAME = ".demo-build.json"
PURPOSE = "building the demo models"
"""Written last into each checkpoint; its presence (with our version) means complete."""

_LOCK_NAME = ".demo-build.lock"
TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"

# Files whose presence (besides the marker) a usable checkpoint needs.
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "speech_tokenizer/config.json",
    "speech_tokenizer/model.safetensors",
    "speech_tokenizer/preprocessor_config.json",
)


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def demo_checkpoint_complete(path: Path) -> bool:
    """True when ``path`` holds a finished demo checkpoint of this builder version."""
    marker = _read_marker(Path(path))
    if marker is None or marker.get("builder_version") != BUILDER_VERSION:
        return False
    return all((Path(path) / name).is_file() for name in REQUIRED_FILES)


def is_demo_checkpoint(path: Path) -> bool:
    """True when ``path/config.json`` carries the demo flag (random weights, noise output)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get(DEMO_CONFIG_KEY) is True


def build_demo_checkpoints(out_dir: Path, *, force: bool = False, seed: int = 0) -> dict[str, Path]:
    """Builds (or reuses a complete cached build of) the three tiny checkpoints.

    They land in ``out_dir/base``, ``out_dir/custom_voice`` and ``out_dir/voice_design``.
    A cached checkpoint is reused when it is complete, of this builder version and
    built from the same ``seed``; ``force=True`` rebuilds regardless. Each checkpoint
    is written to a temporary sibling and renamed into place, so a crash never leaves
    a directory that looks complete, and a lock serialises concurrent builders.

    Returns a mapping mode -> checkpoint directory.

    Raises:
        ModelUnavailable: the files could not be written.
        DependencyError: qwen_tts, torch or torchaudio is missing or does not load.
    """
    out_dir = Path(out_dir)
    # Keyed by the plain mode string: callers index it with "base" as often as with Mode.BASE.
    targets: dict[str, Path] = {mode: out_dir / mode for mode in DEMO_MODES}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with build_lock(out_dir):
            todo = [mode for mode, path in targets.items() if force or not _cached_build_matches(path, seed)]
            if not todo:
                logger.debug("Reusing cached demo checkpoints in %s", out_dir)
                return targets
            remove_leftovers(out_dir)
            # Imported here, outside the OSError handler's meaning: a library that
            # fails to load raises OSError too, and that is a broken install, not a disk.
            import_model_code(PURPOSE)
            _build(out_dir, todo, seed)
    except ImportError as exc:
        raise dependency_error(exc, PURPOSE) from exc
    except OSError as exc:
        raise ModelUnavailable(
            f"Cannot write the demo models to {out_dir}: {exc.strerror or exc}. "
            "Check that the folder is writable and the disk has space."
        ) from exc
    return targets


# ---------------------------------------------------------------------------
# Cache bookkeeping
# ---------------------------------------------------------------------------


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cached_build_matches(path: Path, seed: int) -> bool:
    if not demo_checkpoint_complete(path):
        return False
    marker = _read_marker(path) or {}
    return marker.get("seed") == seed


@contextlib.contextmanager
def build_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive inter-process lock on ``out_dir``; the OS drops it if the holder dies."""
    with open(out_dir / _LOCK_NAME, "a+b") as handle:
        _lock_file(handle.fileno())
        try:
            yield
        finally:
            _unlock_file(handle.fileno())


if sys.platform == "win32":  # mypy narrows platform checks, not os.name
    import msvcrt

    def _lock_file(fd: int) -> None:
        while True:  # LK_LOCK gives up after 10 s; a build may take longer on slow disks
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                time.sleep(0.2)

    def _unlock_file(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def remove_leftovers(out_dir: Path) -> None:
    # We hold the lock, so temp/old dirs can only be debris of builders that died.
    for child in out_dir.iterdir():
        if child.is_dir() and child.name.startswith((TMP_PREFIX, _OLD_PREFIX)):
            shutil.rmtree(child, ignore_errors=True)


def install(tmp: Path, target: Path) -> None:
    """Moves a finished build into place, replacing whatever was there."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f"{_OLD_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------
# Build orchestration
# ---------------------------------------------------------------------------


def sub_seed(seed: int, name: str) -> int:
    """Independent, reproducible seed per component (changing one size never reshuffles others)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _build(out_dir: Path, modes: list[str], seed: int) -> None:
    import torch

    started = time.perf_counter()
    shared = out_dir / f"{TMP_PREFIX}shared-{uuid.uuid4().hex[:8]}"
    shared.mkdir()
    try:
        # Weights come from private generators; fork_rng only undoes the global draws
        # that module constructors make, so the caller's RNG state is left as it was.
        with torch.random.fork_rng(devices=[]):
            text_info = write_text_tokenizer(shared / "text")
            write_speech_tokenizer(shared / "speech_tokenizer", sub_seed(seed, "speech_tokenizer"))
            for mode in modes:
                tmp = out_dir / f"{TMP_PREFIX}{mode}-{uuid.uuid4().hex[:8]}"
                tmp.mkdir()
                try:
                    for item in (shared / "text").iterdir():
                        shutil.copy2(item, tmp / item.name)
                    shutil.copytree(shared / "speech_tokenizer", tmp / "speech_tokenizer")
                    write_tts_model(tmp, mode, text_info, sub_seed(seed, f"talker:{mode}"))
                    write_json(
                        tmp / MARKER_NAME,
                        {"builder_version": BUILDER_VERSION, "mode": mode, "seed": seed},
                    )
                    install(tmp, out_dir / mode)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    logger.info(
        "Built demo checkpoints %s in %s (%.1f s)",
        ", ".join(modes),
        out_dir,
        time.perf_counter() - started,
    )
