"""Voice library figures: listing a large library, and cached versus fresh cloning.

    .venv/bin/python benchmarks/library_bench.py [--voices 1000] [--runs 5] [--json]

1. Builds a library of N voices (1 s references) in a scratch folder and times
   `VoiceLibrary.list()` cold (a new instance: every voice.json parsed) and warm
   (the same instance: two stats per voice), plus a search. Goal: < 200 ms.
2. On the demo models, times a clone generation from a cached library voice
   (prompt loaded from its .safetensors) against a fresh upload of the same clip
   (decode, resample, trim, normalise, encode the reference, then generate), with
   the same seed and text, alternating the two, and counts speech-tokenizer
   encoder calls on each path: the cached path must make none.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.audio.clip import Audio  # noqa: E402
from core.audio.io import load_audio, write_audio  # noqa: E402
from core.audio.reference import ReferenceOptions, prepare_reference  # noqa: E402
from core.context import build_context  # noqa: E402
from core.engine.demo_models.build import build_demo_checkpoints  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.storage.library import VoiceLibrary  # noqa: E402
from core.takes.recipes import clone_request_for_voice  # noqa: E402
from core.types import CloneRequest, Sampling  # noqa: E402

GOAL_LIST_MS = 200.0


def speech(seconds: float) -> Audio:
    """Real espeak-ng speech, ``seconds`` long: clone references must pass the speech check."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("library_bench needs espeak-ng for its reference clips (apt install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        text = "The quick brown fox jumps over the lazy dog, then rests in the warm afternoon sun."
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
        samples = load_audio(path).samples
    n = int(24_000 * seconds)
    return Audio(np.resize(samples, n).astype(np.float32), 24_000)


def measure_listing(root: Path, voices: int, runs: int) -> dict:
    library = VoiceLibrary(root)
    clip = speech(1.5)
    start = time.perf_counter()
    for i in range(voices):
        library.save(
            name=f"Voice {i:04d}",
            kind="clone" if i % 3 else "design",
            reference=clip,
            transcript=f"Reference number {i}.",
            tags=("bench", f"group{i % 10}"),
            language="english" if i % 2 else "auto",
        )
    build_s = time.perf_counter() - start
    cold, warm, search = [], [], []
    for _ in range(runs):
        fresh = VoiceLibrary(root)
        t0 = time.perf_counter()
        listed = fresh.list()
        cold.append(time.perf_counter() - t0)
        assert len(listed) == voices, f"listed {len(listed)} of {voices}"
        t0 = time.perf_counter()
        fresh.list()
        warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fresh.list(query="number 99", tag="group9")
        search.append(time.perf_counter() - t0)
    return {
        "voices": voices,
        "build_s": build_s,
        "cold_ms": 1000 * statistics.median(cold),
        "warm_ms": 1000 * statistics.median(warm),
        "search_ms": 1000 * statistics.median(search),
    }


def measure_cloning(data_dir: Path, runs: int) -> dict:
    demo = build_demo_checkpoints(data_dir / "demo-models")
    settings = Settings(
        data_dir=data_dir, demo_models=True, device="cpu", dtype="float32", checkpoint_base=demo["base"], offline=True
    )
    ctx = build_context(settings)
    clip_path = data_dir / "reference.wav"
    write_audio(speech(6.0), clip_path)
    options = ReferenceOptions(trim_silence=True, normalize=True)
    voice = ctx.library.save(
        name="Bench voice",
        kind="clone",
        reference=prepare_reference(clip_path, options).audio,
        transcript="The quick brown fox jumps over the lazy dog.",
    )
    sampling = Sampling(seed=7, max_new_tokens=24)
    loaded = ctx.models.get(ctx.catalog.resolve("clone", "0.6B"))
    tokenizer = loaded.model.model.speech_tokenizer
    real_encode = tokenizer.encode
    calls = {"n": 0}

    def counting_encode(*args, **kwargs):
        calls["n"] += 1
        return real_encode(*args, **kwargs)

    tokenizer.encode = counting_encode
    # Warm the cache (first use stores the prompt) and both code paths.
    clone_request_for_voice(ctx.library, ctx.synthesis, voice.id, text="Warm.", size="0.6B", sampling=sampling)

    def cached() -> float:
        t0 = time.perf_counter()
        request, hit = clone_request_for_voice(
            ctx.library, ctx.synthesis, voice.id, text="Hello there.", size="0.6B", sampling=sampling
        )
        assert hit
        ctx.synthesis.synthesize(request)
        return time.perf_counter() - t0

    def fresh() -> float:
        t0 = time.perf_counter()
        prepared = prepare_reference(clip_path, options)
        ctx.synthesis.synthesize(
            CloneRequest(
                text="Hello there.",
                reference=prepared.audio,
                reference_text="A steady test tone.",
                size="0.6B",
                sampling=sampling,
            )
        )
        return time.perf_counter() - t0

    cached(), fresh()  # warm-up
    cached_s, fresh_s, cached_calls, fresh_calls = [], [], [], []
    for _ in range(runs):
        calls["n"] = 0
        cached_s.append(cached())
        cached_calls.append(calls["n"])
        calls["n"] = 0
        fresh_s.append(fresh())
        fresh_calls.append(calls["n"])
    tokenizer.encode = real_encode
    c, f = statistics.median(cached_s), statistics.median(fresh_s)
    return {
        "runs": runs,
        "cached_s": c,
        "fresh_s": f,
        "ratio_cached_over_fresh": c / f,
        "encoder_calls_cached": max(cached_calls),
        "encoder_calls_fresh": min(fresh_calls),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="library-bench-"))
    try:
        listing = measure_listing(scratch / "voices-big", args.voices, args.runs)
        cloning = measure_cloning(scratch / "clone", args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {"listing": listing, "cloning": cloning}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ok = "PASS" if listing["cold_ms"] < GOAL_LIST_MS else "WARN"
    less_work = cloning["encoder_calls_cached"] == 0 < cloning["encoder_calls_fresh"]
    print(f"Voice library bench ({listing['voices']} voices built in {listing['build_s']:.1f} s)")
    print(f"  list, cold (new instance)     {listing['cold_ms']:8.1f} ms   {ok}  (goal < {GOAL_LIST_MS:.0f} ms)")
    print(f"  list, warm                    {listing['warm_ms']:8.1f} ms")
    print(f"  search + tag filter           {listing['search_ms']:8.1f} ms")
    print(f"Clone: cached library voice vs fresh upload of the same clip (demo 0.6B, median of {cloning['runs']})")
    print(
        f"  cached library voice          {cloning['cached_s']:8.3f} s   encoder calls {cloning['encoder_calls_cached']}"
    )
    print(
        f"  fresh upload                  {cloning['fresh_s']:8.3f} s   encoder calls {cloning['encoder_calls_fresh']}"
    )
    print(
        f"  ratio cached/fresh            {cloning['ratio_cached_over_fresh']:8.3f} x   "
        f"{'PASS' if less_work else 'FAIL'}  (the cached path skips the reference encoder)"
    )
    return 0 if less_work else 1


if __name__ == "__main__":
    sys.exit(main())
