"""`qwen-tts-studio models list|download|remove|build-demo`."""

from __future__ import annotations

import argparse
import sys

from core.engine.catalog import Catalog
from core.engine.demo_models.build import build_demo_checkpoints
from core.engine.demo_models.whisper import DEMO_ASR_FOLDER, build_demo_asr
from core.engine.model_manager import ModelManager
from core.engine.model_store import ModelStore
from core.engine.user_models import user_models_dir
from core.settings import Settings


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _print_progress(fraction: float, message: str) -> None:
    # A single updating line, like pip's bar, without a dependency.
    width = 30
    filled = int(width * fraction)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {message[:60]:<60}")
    sys.stderr.flush()
    if fraction >= 1.0:
        sys.stderr.write("\n")


def run_models(args: argparse.Namespace, settings: Settings) -> int:
    action = args.models_command
    if action == "build-demo":
        out = args.out or settings.demo_dir
        paths = build_demo_checkpoints(out, force=args.force)
        paths[DEMO_ASR_FOLDER] = build_demo_asr(out, force=args.force)
        for mode, path in paths.items():
            print(f"{mode}: {path}")
        return 0
    catalog = Catalog(demo=settings.demo_models, asr_repo=settings.asr_model, user_dir=user_models_dir(settings))
    store = ModelStore(settings)
    if action == "list":
        manager = ModelManager(catalog=catalog, store=store, device_preference="cpu", dtype_preference="float32")
        print(f"{'model':<24} {'mode':<13} {'size':<5} {'state':<15} {'disk':>9}  path")
        for row in manager.status():
            print(
                f"{row.key:<24} {row.mode.label:<13} {row.size:<5} {row.state:<15} "
                f"{_gb(row.disk_bytes) if row.disk_bytes else '-':>9}  {row.local_path or '-'}"
            )
        return 0
    keys = [c.key for c in catalog.every()] if args.keys == ["all"] else args.keys
    checkpoints = [catalog.get(key) for key in keys]  # validates every key first
    for checkpoint in checkpoints:
        if action == "download":
            path = store.download(checkpoint, _print_progress)
            print(f"{checkpoint.key}: {path}")
        else:
            freed = store.remove(checkpoint)
            print(
                f"{checkpoint.key}: removed ({_gb(freed)} freed)" if freed else f"{checkpoint.key}: was not downloaded"
            )
    return 0
