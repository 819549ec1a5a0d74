"""Time to first audio against time to the full take, for a 2,000-character text.

    .venv/bin/python benchmarks/streaming_bench.py [--chars 2000] [--frames 48] [--json] [--openai]

Runs the studio's streaming path (`SynthesisService.stream`, what the UI's Live
player plays) on the demo models and prints when the first audio was ready,
when the whole take was, and their ratio. Demo models never stop on their own,
so every chunk is capped at `--frames` codec frames to keep the run short; the
ratio is what matters (real models stop at the end of each sentence).

With ``--openai`` it measures the same over HTTP instead: a real studio server on a
free localhost port, ``POST /v1/audio/speech`` with ``stream: true`` (raw pcm) read
with httpx, reporting when the first audio bytes arrived and when the last did,
then the same request without streaming (time to the whole response).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.context import build_context  # noqa: E402
from core.engine.demo_models.build import build_demo_checkpoints  # noqa: E402
from core.engine.synthesis import ChunkAudio  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import CustomVoiceRequest, Sampling, SynthesisResult  # noqa: E402

SENTENCES = [
    "The lighthouse keeper climbed the stairs every evening at dusk.",
    "From the top he could see the fishing boats returning to the harbour.",
    "Some nights the fog rolled in so thick that the beam seemed to stop in mid air.",
    "He kept a logbook of every ship, every storm and every quiet night.",
    "Years later, his granddaughter found it in a box beneath the stairs.",
]


def text_of(chars: int) -> str:
    out, i = [], 0
    while len(" ".join(out)) < chars:
        out.append(SENTENCES[i % len(SENTENCES)])
        i += 1
    return " ".join(out)[:chars].rsplit(" ", 1)[0] + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=48, help="codec frames per chunk (12.5 per second)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--openai", action="store_true", help="over HTTP: /v1/audio/speech with stream: true")
    parser.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="build (or reuse) the demo checkpoints here instead of in the scratch folder",
    )
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="streaming-bench-"))
    try:
        demo = build_demo_checkpoints(args.demo_dir or scratch / "demo-models")
        settings = Settings(
            data_dir=scratch,
            demo_models=True,
            device="cpu",
            dtype="float32",
            checkpoint_custom_voice=demo["custom_voice"],
            offline=True,
        )
        if args.openai:
            return openai_mode(settings, text_of(args.chars), args)
        ctx = build_context(settings)
        request = CustomVoiceRequest(
            text=text_of(args.chars), speaker="Ryan", size="0.6B", sampling=Sampling(seed=1, max_new_tokens=args.frames)
        )
        ctx.models.get(ctx.catalog.resolve("custom", "0.6B"))  # load outside the timing
        start = time.perf_counter()
        first = None
        chunks = 0
        for item in ctx.synthesis.stream(request):
            if isinstance(item, ChunkAudio):
                chunks += 1
                first = first if first is not None else time.perf_counter() - start
            elif isinstance(item, SynthesisResult):
                result = item
        total = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "chars": len(request.text),
        "chunks": chunks,
        "frames_per_chunk": args.frames,
        "first_audio_s": first,
        "full_take_s": total,
        "ratio_first_over_full": first / total,
        "audio_s": result.duration,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"Streaming a {report['chars']}-character text ({chunks} chunks, <= {args.frames} frames each, demo 0.6B)")
    print(f"  first audio ready        {first:8.2f} s")
    print(f"  full take ready          {total:8.2f} s   ({result.duration:.1f} s of audio)")
    print(f"  first / full             {first / total:8.3f}")
    return 0


def openai_mode(settings: Settings, text: str, args: argparse.Namespace) -> int:
    """First bytes vs the full response of /v1/audio/speech on a real local server."""
    import httpx

    from studio.server import serve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = settings.replace(port=port, rate_limit_per_minute=0, mcp_server=False)
    app, ctx = serve(settings, block=False)
    url = f"http://127.0.0.1:{port}/v1/audio/speech"
    body = {
        "model": "tts-1",
        "voice": "Ryan",
        "input": text,
        "seed": 1,
        "max_new_tokens": args.frames,
        "response_format": "pcm",
    }
    try:
        ctx.app.models.get(ctx.app.catalog.resolve("custom", "0.6B"))  # load outside the timing
        start = time.perf_counter()
        first = None
        received = 0
        with httpx.stream("POST", url, json={**body, "stream": True}, timeout=3600) as response:
            response.raise_for_status()
            for piece in response.iter_bytes():
                if piece and first is None:
                    first = time.perf_counter() - start
                received += len(piece)
        streamed = time.perf_counter() - start
        start = time.perf_counter()
        whole = httpx.post(url, json=body, timeout=3600)
        whole.raise_for_status()
        unstreamed = time.perf_counter() - start
    finally:
        app.close()
    assert first is not None, "the stream sent no audio"
    report = {
        "chars": len(text),
        "frames_per_chunk": args.frames,
        "stream_first_bytes_s": first,
        "stream_last_bytes_s": streamed,
        "no_stream_response_s": unstreamed,
        "ratio_first_over_full": first / unstreamed,
        "audio_s": received / 2 / 24_000,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"POST /v1/audio/speech, {len(text)} characters, <= {args.frames} frames per chunk, demo 0.6B, pcm")
    print(f"  stream: first bytes      {first:8.2f} s")
    print(f"  stream: last bytes       {streamed:8.2f} s   ({report['audio_s']:.1f} s of audio)")
    print(f"  no stream: response      {unstreamed:8.2f} s")
    print(f"  first bytes / response   {first / unstreamed:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
