"""The MLX engine's ``--mlx-quantize`` on the tiny demo models: memory and audio per setting.

For each of bf16 (as stored), 8bit, 6bit and 4bit it starts the MLX engine's child
(core/engine/mlx/child_main.py) with that setting, generates one custom-voice take with
a fixed seed, then reads the child's ``/studio/memory``: MLX's active bytes (the weights
and what generation keeps), the child's resident size, and how many layers were
quantized. It also checks the take: finite, not silent, and its length.

The demo checkpoints are tiny random-weight models with mostly 32-wide layers; only the
layers whose input size is a multiple of 64 quantize, so the memory saved here says
nothing about the 1.7B model. Read it as "the quantized path loads and generates".

    .venv/bin/python benchmarks/mlx_quantize.py [--engine-home DIR] [--json]

``--engine-home`` is a data dir holding an installed MLX engine (``engines install mlx``);
by default the tests' cached one (installed there when missing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(data_dir: Path, checkpoints: dict[str, Path], quantize: str) -> dict[str, Any]:
    import numpy as np

    from core.context import build_context
    from core.settings import Settings
    from core.types import CustomVoiceRequest, Sampling

    settings = Settings(
        data_dir=data_dir,
        demo_models=True,
        device="cpu",
        dtype="float32",
        offline=True,
        engine="mlx",
        mlx_quantize=quantize,
        checkpoint_voice_design=checkpoints["voice_design"],
        checkpoint_custom_voice=checkpoints["custom_voice"],
        checkpoint_base=checkpoints["base"],
    )
    context = build_context(settings)
    process = context.synthesis.engine.process  # type: ignore[attr-defined]
    try:
        started = time.perf_counter()
        result = context.synthesis.synthesize(
            CustomVoiceRequest(
                text="Quantization check.", speaker="Vivian", sampling=Sampling(seed=11, max_new_tokens=24)
            )
        )
        seconds = time.perf_counter() - started
        memory = process.memory()
        samples = result.audio.samples
        return {
            "quantize": quantize,
            "engine": result.engine,
            "quantized_layers": sum(memory.get("quantized_layers", {}).values()),
            "active_mb": memory["active_bytes"] / 2**20,
            "rss_mb": memory["rss_bytes"] / 2**20,
            "audio_s": result.audio.duration,
            "peak": float(np.abs(samples).max()),
            "rms": float(np.sqrt(np.mean(np.square(samples)))),
            "finite": bool(np.all(np.isfinite(samples))),
            "take_s": seconds,
        }
    finally:
        process.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-home", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from core.engine.demo_models.build import build_demo_checkpoints
    from core.engine.mlx import install as mlx_install
    from core.settings import MLX_QUANTIZE

    home = args.engine_home
    if home is None:
        from tests.mlx_engine import engine_cache_home

        home = engine_cache_home()
        if not mlx_install.installed(home):
            mlx_install.install(home, lambda line: print(line, file=sys.stderr))
    rows = []
    with tempfile.TemporaryDirectory(prefix="mlx-quantize-") as scratch:
        data_dir = Path(scratch) / "data"
        target = mlx_install.engine_dir(data_dir)
        target.parent.mkdir(parents=True)
        target.symlink_to(mlx_install.engine_dir(home), target_is_directory=True)
        checkpoints = build_demo_checkpoints(Path(scratch) / "demo-models")
        for quantize in MLX_QUANTIZE:
            print(f"measuring {quantize} ...", file=sys.stderr)
            rows.append(measure(data_dir, checkpoints, quantize))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print("MLX engine --mlx-quantize on the tiny demo custom-voice model, MLX CPU backend (not Metal)")
    print(f"{'setting':<8} {'layers q.':>9} {'MLX active':>11} {'child RSS':>10} {'audio':>7} {'peak':>6} {'take':>7}")
    for r in rows:
        print(
            f"{r['quantize']:<8} {r['quantized_layers']:>9} {r['active_mb']:>9.2f}MB {r['rss_mb']:>8.0f}MB "
            f"{r['audio_s']:>6.2f}s {r['peak']:>6.3f} {r['take_s']:>6.1f}s" + ("" if r["finite"] else "  NOT FINITE")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
