"""POST /v1/audio/speech/batch against the same items requested one by one.

    .venv/bin/python benchmarks/openai_batch_bench.py [--items 8] [--frames 24] [--json]

Starts a real studio server on the demo models (a scratch data folder, removed
afterwards), sends ``--items`` CustomVoice items (different speakers and seeds,
each capped at ``--frames`` codec frames) as one batch, then the same items one
request at a time, and prints both walls, their ratio, how many engine calls each
made, and whether every item came out identical. It asserts no timings.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.engine.demo_models.build import build_demo_checkpoints  # noqa: E402
from core.settings import Settings  # noqa: E402

SPEAKERS = ["Ryan", "Vivian", "Aiden", "Serena"]


def main(argv: list[str] | None = None) -> int:
    import httpx

    from studio.server import serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--frames", type=int, default=24, help="codec frames per item (12.5 per second)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    items = [
        {"input": f"Item number {k + 1} of the batch.", "voice": SPEAKERS[k % len(SPEAKERS)], "seed": 100 + k}
        for k in range(args.items)
    ]
    common = {"model": "tts-1", "response_format": "pcm", "max_new_tokens": args.frames}
    try:
        demo = build_demo_checkpoints(scratch / "demo-models")
        settings = Settings(
            data_dir=scratch,
            demo_models=True,
            device="cpu",
            dtype="float32",
            checkpoint_custom_voice=demo["custom_voice"],
            offline=True,
            port=port,
            rate_limit_per_minute=0,
            mcp_server=False,
        )
        app, ctx = serve(settings, block=False)
        engine = ctx.app.synthesis.engine
        calls = {"n": 0}
        for name in ("generate_batch", "generate_one"):  # wrapped, not replaced: counts engine calls
            original = getattr(engine, name)

            def counted(*a, _original=original, **kw):
                calls["n"] += 1
                return _original(*a, **kw)

            setattr(engine, name, counted)
        base = f"http://127.0.0.1:{port}/v1/audio/speech"
        try:
            ctx.app.models.get(ctx.app.catalog.resolve("custom", "0.6B"))  # load outside the timing
            start = time.perf_counter()
            response = httpx.post(f"{base}/batch", json={**common, "items": items}, timeout=3600)
            response.raise_for_status()
            batch_s = time.perf_counter() - start
            batch_calls, calls["n"] = calls["n"], 0
            batched = [base64.b64decode(d["audio"]) for d in response.json()["data"]]
            start = time.perf_counter()
            alone = []
            for item in items:
                one = httpx.post(base, json={**common, **item}, timeout=3600)
                one.raise_for_status()
                alone.append(one.content)
            alone_s = time.perf_counter() - start
            alone_calls = calls["n"]
        finally:
            app.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "items": args.items,
        "frames_per_item": args.frames,
        "batch_s": batch_s,
        "one_by_one_s": alone_s,
        "ratio": batch_s / alone_s,
        "engine_calls_batch": batch_calls,
        "engine_calls_one_by_one": alone_calls,
        "identical": batched == alone,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.items} CustomVoice items, <= {args.frames} frames each, demo 0.6B, pcm")
    print(f"  batch endpoint          {batch_s:8.2f} s   ({batch_calls} engine calls)")
    print(f"  one request per item    {alone_s:8.2f} s   ({alone_calls} engine calls)")
    print(f"  batch / one by one      {batch_s / alone_s:8.3f}")
    print(f"  every item identical    {report['identical']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
