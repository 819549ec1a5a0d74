"""How fast Stop stops the model: the time from cancelling a take's token to the engine letting go,
next to the time of one generated frame (issue 14: "stops within about one frame").

On the demo VoiceDesign model, a take with one long chunk is cancelled after a second, with live
decoding (the Generate button's path: generation in a worker thread) and without; each is run
``--runs`` times and the medians are printed. Run: ``.venv/bin/python benchmarks/stop_latency.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.context import build_context  # noqa: E402
from core.engine.cancel import CancelToken, cancellable  # noqa: E402
from core.engine.demo_models.build import build_demo_checkpoints  # noqa: E402
from core.errors import Stopped  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import DesignRequest, Mode, Sampling  # noqa: E402


def measure(ctx, live: bool, runs: int, after_s: float) -> tuple[float, float, float]:
    """(median stop latency, worst stop latency, median frame time), in seconds."""
    synthesis = ctx.synthesis
    loaded = synthesis.engine.load(synthesis.checkpoint_for(Mode.VOICE_DESIGN, None))
    request = DesignRequest(
        text="One long chunk, to be stopped.", description="Calm.", sampling=Sampling(seed=1, max_new_tokens=2000)
    )
    latencies, frames = [], []
    for _ in range(runs):
        token, steps, cancelled_at = CancelToken(), [], []
        hook = loaded.model.model.talker.register_forward_hook(
            lambda *_, steps=steps: steps.append(time.perf_counter())
        )

        def cancel_later(token=token, cancelled_at=cancelled_at) -> None:
            time.sleep(after_s)
            cancelled_at.append(time.perf_counter())
            token.cancel()

        threading.Thread(target=cancel_later, daemon=True).start()
        try:
            with cancellable(token):
                for _ in synthesis.stream(request, live=live):
                    pass
            raise SystemExit("the take finished before Stop: raise max_new_tokens")
        except Stopped:
            stopped_at = time.perf_counter()
        finally:
            hook.remove()
        latencies.append(stopped_at - cancelled_at[0])
        frames.append(statistics.median(b - a for a, b in zip(steps, steps[1:], strict=False)))
    return statistics.median(latencies), max(latencies), statistics.median(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--after", type=float, default=1.0, help="seconds into the take to press Stop")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="stop-latency-"))
    demo = build_demo_checkpoints(data / "demo-models")
    settings = Settings(
        data_dir=data,
        demo_models=True,
        device="cpu",
        dtype="float32",
        checkpoint_voice_design=demo["voice_design"],
        offline=True,
    )
    ctx = build_context(settings)
    print(f"Stop latency on the demo VoiceDesign model (median of {args.runs}, Stop after {args.after:g} s)")
    for live in (True, False):
        median, worst, frame = measure(ctx, live, args.runs, args.after)
        print(
            f"  {'live decoding' if live else 'plain call   '}: stopped in {median * 1000:.0f} ms "
            f"(worst {worst * 1000:.0f} ms); one frame takes {frame * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
