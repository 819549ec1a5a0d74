"""The MLX engine's child process: mlx-audio's own server, with the studio's few additions.

This file runs with the MLX engine's Python (``<data_dir>/engines/mlx/venv``), never
with the studio's: it imports only mlx-audio and the standard library, so it must
not import anything from ``core``. The studio starts it bound to loopback on a free
port (``core/engine/mlx/supervisor.py``) and talks to it over HTTP.

What it adds to ``mlx_audio.server`` (everything else is the stock server):

* **Seeds.** A ``/v1/audio/speech`` request may carry ``seed``; the request then
  runs alone (never in one of the server's batches) and MLX's random state is
  seeded right before generation, so the same seed gives the same take.
* **Demo checkpoints.** mlx-audio guesses from its shape whether a 1-D convolution
  weight is still in PyTorch's layout (``check_array_shape_qwen3``); at the tiny
  sizes of the studio's demo checkpoints (``"studio_demo": true`` in config.json)
  the guess is wrong (a ``(16, 8, 1)`` kernel-1 weight reads as kernel 8). Those
  checkpoints are always written in PyTorch's layout, so while one loads the guess
  answers "PyTorch layout" for every weight. Real checkpoints (Qwen's, or
  mlx-community's converted ones) load through the stock guess, untouched.
* **Quantization.** With ``--quantize 8bit|6bit|4bit`` every model is quantized
  right after it loads, with MLX's own quantized layers (``to_quantized``, group size 64) over the
  layers mlx-audio's converter (``mlx_audio.tts.utils.convert``) would pick: those
  that can quantize, whose input size is a multiple of 64, outside the embeddings,
  speech tokenizer and speaker encoder (the model's ``model_quant_predicate``). A
  checkpoint that is already quantized (mlx-community's) is left as stored.
  ``GET /studio/memory`` reports the setting and how many layers each model had
  quantized.
* **Memory.** Removing a model (``DELETE /v1/models``) also clears MLX's buffer
  cache, and ``GET /studio/memory`` reports MLX's active and cached bytes and the
  process's resident size, so the studio can check that an unload freed memory.
* **CPU-only MLX.** mlx-audio's inference worker makes a GPU stream next to its CPU
  one; MLX without a GPU backend (``mlx-cpu`` on Linux) refuses that, so there the
  worker gets a second CPU stream instead.
* **No PortAudio.** mlx-audio's reference-clip loader imports its audio player, which
  imports ``sounddevice``, which needs the PortAudio library (absent on a bare Linux
  server). The server never plays audio, so without PortAudio a stand-in module that
  refuses playback takes its place.
* **Batches.** ``POST /studio/batch`` runs several chunks of one mode and voice
  through the model's own ``batch_generate`` (texts, per-item voices/instructs, one
  shared reference clip and transcript for clone, one frame cap) and answers each
  item's audio as base64 float32 PCM. MLX's random state is shared by the batch, so
  it is seeded once, with ``seed`` (the first item's): the batch as a whole is
  reproducible, the items' own seeds are not applied.
* **Orphans.** The child exits by itself when the studio process that started it
  is gone (``--parent-pid``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

STUDIO_DEMO_KEY = "studio_demo"


def _is_demo_checkpoint(name: str) -> bool:
    try:
        config = json.loads((Path(name) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get(STUDIO_DEMO_KEY) is True


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


class _CpuOnlyMlx:
    """mlx.core as the inference worker sees it on a machine without a GPU backend."""

    def __init__(self, mx: Any):
        self._mx = mx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mx, name)

    def new_stream(self, device: Any) -> Any:
        return self._mx.new_stream(self._mx.cpu)


def _stand_in_sounddevice() -> None:
    try:
        import sounddevice  # noqa: F401
    except OSError:  # "PortAudio library not found"
        import types

        stand_in = types.ModuleType("sounddevice")

        def _refuse(*_args: Any, **_kwargs: Any) -> Any:
            raise OSError("no audio device in the studio's MLX engine (PortAudio is not installed)")

        for name in ("OutputStream", "InputStream", "play", "stop", "wait", "query_devices"):
            setattr(stand_in, name, _refuse)
        sys.modules["sounddevice"] = stand_in


GROUP_SIZE = 64
BITS = {"bf16": None, "8bit": 8, "6bit": 6, "4bit": 4}


def quantize_model(model: Any, bits: int) -> int:
    """Quantizes ``model`` in place (see the module notes); returns how many layers it quantized."""
    import mlx.core as mx

    own = getattr(model, "model_quant_predicate", None)
    picked: list[tuple[str, Any]] = []
    for path, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if (
            path
            and hasattr(module, "to_quantized")
            and weight is not None
            and weight.shape[-1] % GROUP_SIZE == 0
            and (own is None or bool(own(path, module)))
        ):
            picked.append((path, module))
    # Each layer is swapped in place rather than through nn.quantize: its update_modules walk
    # trips over a compiled function mlx-audio's Qwen3-TTS keeps as an attribute
    # ("argument of type '_gc_func' is not iterable").
    for path, module in picked:
        *parents, last = path.split(".")
        holder: Any = model
        for part in parents:
            holder = holder[int(part)] if isinstance(holder, list) else holder[part]
        quantized = module.to_quantized(group_size=GROUP_SIZE, bits=bits)
        if isinstance(holder, list):
            holder[int(last)] = quantized
        else:
            holder[last] = quantized
    mx.eval(model.parameters())
    gc.collect()
    mx.clear_cache()  # the full-precision weights just replaced
    return len(picked)


def _already_quantized(name: str) -> bool:
    try:
        config = json.loads((Path(name) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("quantization") or config.get("quantization_config"))


def patch_server(server: Any, quantize: str = "bf16") -> None:
    import mlx.core as mx
    from fastapi import Request
    from mlx_audio import server_inference
    from mlx_audio.tts.models.qwen3_tts import qwen3_tts

    if not mx.is_available(mx.gpu):
        server_inference.mx = _CpuOnlyMlx(mx)

    stock_check = qwen3_tts.check_array_shape_qwen3
    loading_demo = threading.local()

    def check_array_shape(arr: Any) -> bool:
        if getattr(loading_demo, "active", False):
            return False  # demo weights are always in PyTorch's layout: always convert
        return bool(stock_check(arr))

    qwen3_tts.check_array_shape_qwen3 = check_array_shape
    stock_load = server.load_model
    bits = BITS[quantize]
    quantized_layers: dict[str, int] = {}  # model name -> layers quantized at load (0: as stored)

    def load_model(name: str) -> Any:
        loading_demo.active = _is_demo_checkpoint(name)
        try:
            model = stock_load(name)
        finally:
            loading_demo.active = False
        quantized_layers[name] = 0
        if bits is not None and not _already_quantized(name):
            quantized_layers[name] = quantize_model(model, bits)
        return model

    server.load_model = load_model

    # Seeds: the speech route takes one more field (FastAPI validates against the class the
    # route was declared with, so the route is declared again with the extended request);
    # a seeded request runs alone and MLX's random state is seeded right before it generates.
    class StudioSpeechRequest(server.SpeechRequest):
        seed: int | None = None

    stock_route = server.tts_speech
    server.app.router.routes = [
        route for route in server.app.router.routes if getattr(route, "path", None) != "/v1/audio/speech"
    ]

    async def tts_speech(payload: StudioSpeechRequest, request: Request) -> Any:
        return await stock_route(payload, request)

    # Real classes, not this module's postponed (string) annotations: FastAPI resolves
    # strings in the module's globals, where the local class does not live.
    tts_speech.__annotations__ = {"payload": StudioSpeechRequest, "request": Request, "return": Any}
    server.app.post("/v1/audio/speech")(tts_speech)

    def seed_of(request: Any) -> int | None:
        seed = getattr(request.payload.request, "seed", None)
        return int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None

    adapter = server.TTSExecutionAdapter
    stock_serial = adapter.run_serial
    stock_batch = adapter.supports_batch
    stock_continuous = adapter.supports_continuous_batch

    def run_serial(self: Any, request: Any) -> None:
        seed = seed_of(request)
        if seed is not None:
            mx.random.seed(seed)
        stock_serial(self, request)

    adapter.run_serial = run_serial
    adapter.supports_batch = lambda self, request: seed_of(request) is None and stock_batch(self, request)
    adapter.supports_continuous_batch = lambda self, request: (
        seed_of(request) is None and stock_continuous(self, request)
    )

    # Unload: drop the model, then give its buffers back.
    provider = server.model_provider
    stock_remove = provider.remove_model

    async def remove_model(name: str) -> bool:
        removed = await stock_remove(name)
        gc.collect()
        mx.clear_cache()
        return bool(removed)

    provider.remove_model = remove_model

    # Batches: several chunks of one mode and voice through the model's own batch_generate,
    # run one at a time in a worker thread (the studio sends one batch at a time anyway).
    # MLX's random state is shared by the batch, so it is seeded once, with the first item's seed.
    batch_lock = threading.Lock()

    def run_batch(body: dict[str, Any]) -> dict[str, Any]:
        import base64

        import numpy as np

        texts = [str(t) for t in body["texts"]]
        options = {
            name: body[name]
            for name in ("voices", "instructs", "ref_text", "temperature", "top_k", "top_p", "repetition_penalty")
            if body.get(name) is not None
        }
        with batch_lock:
            model = provider.load_model(str(body["model"]))
            if body.get("ref_audio"):
                options["ref_audio"] = str(body["ref_audio"])
            seed = body.get("seed")
            if isinstance(seed, int) and not isinstance(seed, bool):
                mx.random.seed(seed)
            audio: list[Any] = [None] * len(texts)
            rate = int(model.sample_rate)
            for result in model.batch_generate(
                texts, lang_code=str(body.get("lang_code") or "auto"), max_tokens=int(body["max_tokens"]), **options
            ):
                if result.is_streaming_chunk:
                    continue
                audio[result.sequence_idx] = np.asarray(result.audio, dtype=np.float32).reshape(-1)
                rate = int(result.sample_rate)
        missing = [k for k, a in enumerate(audio) if a is None]
        if missing:
            raise RuntimeError(f"batch_generate gave no audio for items {missing}")
        return {
            "sample_rate": rate,
            "items": [base64.b64encode(a.astype("<f4").tobytes()).decode("ascii") for a in audio],
        }

    async def studio_batch(request: Request) -> Any:
        import asyncio

        from fastapi.responses import JSONResponse

        body = await request.json()
        try:
            return await asyncio.to_thread(run_batch, body)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": {"message": f"{type(exc).__name__}: {exc}"}}, status_code=400)
        except Exception as exc:  # the studio shows the child's own words
            return JSONResponse({"error": {"message": f"{type(exc).__name__}: {exc}"}}, status_code=500)

    studio_batch.__annotations__ = {"request": Request, "return": Any}  # real classes (see above)
    server.app.post("/studio/batch")(studio_batch)

    @server.app.get("/studio/memory")
    async def memory() -> dict[str, Any]:
        gc.collect()
        return {
            "active_bytes": int(mx.get_active_memory()),
            "cache_bytes": int(mx.get_cache_memory()),
            "rss_bytes": _rss_bytes(),
            "models": list(provider.models),
            "device": str(mx.default_device()),
            "quantize": quantize,
            "quantized_layers": {m: quantized_layers.get(m, 0) for m in provider.models},
        }


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        if os.getppid() == 1 and parent_pid != 1:
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description="mlx-audio's server for Qwen TTS Studio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--quantize", choices=sorted(BITS), default="bf16")
    args = parser.parse_args()

    _stand_in_sounddevice()
    import uvicorn
    from mlx_audio import server

    patch_server(server, args.quantize)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    uvicorn.run(server.app, host=args.host, port=args.port, workers=1, loop="asyncio", log_level="warning")


if __name__ == "__main__":
    main()
