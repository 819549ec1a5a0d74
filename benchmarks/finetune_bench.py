"""Peak memory and time per optimizer step of fine-tuning, LoRA vs full, on the CPU (or a GPU).

Each (checkpoint, method) runs in a fresh child process, so its peak RSS is its own: the Base
model is loaded, the rows encoded, then ``--steps`` optimizer steps (batch ``--batch``,
gradient accumulation ``--accum``) are timed; no checkpoint or voice is written. Printed per
run: RSS after loading, the peak RSS while training (Linux: VmHWM reset after the load), the
CUDA peak when on a GPU, and the median seconds per step after the first (warm-up) step.

    .venv/bin/python benchmarks/finetune_bench.py                      # the tiny demo Base
    .venv/bin/python benchmarks/finetune_bench.py --base ~/.local/share/qwen-tts-studio/arch-models/0.6b/base
    .venv/bin/python benchmarks/finetune_bench.py --json               # one JSON line per run

Real-size random-weight Base checkpoints come from ``qwen-tts-studio bench --arch 0.6b``
(core/tools/arch_models.py): the compute and memory of a step depend on the sizes, not the values.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    import torch

    from core.audio.io import write_audio
    from core.finetune.config import TrainConfig
    from core.finetune.state import RunStore
    from core.finetune.train import Trainer
    from tests.conftest import spoken

    work = Path(tempfile.mkdtemp(prefix="ft-bench-"))
    rows = []
    for number in range(max(args.batch * args.accum, 2)):
        path = write_audio(spoken(args.seconds, seed=number), work / f"u{number}.wav")
        rows.append({"audio": str(path), "text": "A short sentence to train on, read aloud.", "ref_audio": str(path)})
    config = TrainConfig(
        speaker="Bench",
        method=args.method,
        epochs=1000,
        batch_size=args.batch,
        grad_accum=args.accum,
        min_rows=1,
        max_steps=args.steps,
        save_every=10**9,
        dtype=args.dtype,
    )
    run = RunStore(work / "runs").create(config.as_dict(), "bench", Path(args.base), rows)
    device = args.device
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    times: list[float] = []
    last = [0.0]

    def on_step(step) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    trainer = Trainer(run, device=device, dtype=dtype, dest_root=work / "models", on_step=on_step)
    trainer.setup()
    loaded_mb = _rss_mb("VmRSS")
    if Path("/proc/self/clear_refs").exists():
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM: the peak from here on
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trainable = sum(p.numel() for p in trainer.params)
    total = sum(p.numel() for p in trainer.tts.model.parameters())
    last[0] = time.perf_counter()
    trainer.train(finish=False)
    result = {
        "base": args.base,
        "method": args.method,
        "device": device,
        "dtype": args.dtype,
        "batch": args.batch,
        "accum": args.accum,
        "seconds_per_clip": args.seconds,
        "trainable_params": trainable,
        "params": total,
        "rss_loaded_mb": round(loaded_mb),
        "rss_peak_training_mb": round(_rss_mb("VmHWM")),
        "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20) if device.startswith("cuda") else None,
        "first_step_s": round(times[0], 2),
        "s_per_step": round(statistics.median(times[1:]) if len(times) > 1 else times[0], 2),
        "steps": len(times),
        "threads": torch.get_num_threads(),
    }
    print("RESULT " + json.dumps(result), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a Base checkpoint folder (default: the tiny demo Base, built if needed)")
    parser.add_argument("--methods", default="lora,full")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each training clip")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.method = args.child
        child(args)
        return 0
    if not args.base:
        from core.engine.demo_models.build import build_demo_checkpoints
        from core.settings import Settings

        args.base = str(build_demo_checkpoints(Settings().demo_dir)["base"])
    for method in args.methods.split(","):
        command = [sys.executable, __file__, "--child", method, "--base", args.base]
        for name in ("steps", "batch", "accum", "seconds", "device", "dtype"):
            command += [f"--{name}", str(getattr(args, name))]
        started = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{method}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            return 1
        result = json.loads(line.removeprefix("RESULT ")) | {"wall_s": round(time.perf_counter() - started, 1)}
        if args.json:
            print(json.dumps(result))
        else:
            print(
                f"{method:>4}: {result['trainable_params'] / 1e6:,.2f} M of {result['params'] / 1e6:,.1f} M params trained · "
                f"RSS {result['rss_loaded_mb']:,} MB loaded, peak {result['rss_peak_training_mb']:,} MB training · "
                f"{result['s_per_step']} s/step (batch {args.batch} x accum {args.accum}, {args.seconds:g} s clips; "
                f"first {result['first_step_s']} s) · {result['threads']} threads · wall {result['wall_s']} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
