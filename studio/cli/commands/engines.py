"""`qwen-tts-studio engines list|install|remove`: the engines and their environments."""

from __future__ import annotations

import argparse
import sys

from core.engine.mlx import install as mlx_install
from core.engine.selection import resolve_engine
from core.errors import InvalidInput
from core.settings import Settings


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_engines(args: argparse.Namespace, settings: Settings) -> int:
    action = args.engines_command
    if action == "list":
        chosen = resolve_engine(settings.engine, settings.data_dir)
        print(f"{'engine':<8} {'state':<22} detail")
        for row in mlx_install.engine_states(settings.data_dir):
            mark = " (selected)" if row.name == chosen else ""
            weights = f"; weights {settings.mlx_quantize} (--mlx-quantize)" if row.name == mlx_install.ENGINE else ""
            print(f"{row.name:<8} {row.state + mark:<22} {row.detail}{weights}")
        return 0
    name = args.engine_name
    if name != mlx_install.ENGINE:
        raise InvalidInput(f"Only the MLX engine is installed separately ('{name}' is built in or unknown): try `mlx`.")
    if action == "install":
        state = mlx_install.install(settings.data_dir, _progress, force=args.force)
        print(f"mlx: {state.state} ({state.detail})")
        return 0
    removed = mlx_install.remove(settings.data_dir)
    root = mlx_install.engine_dir(settings.data_dir)
    print(f"mlx: removed {root}" if removed else f"mlx: was not installed ({root})")
    return 0
