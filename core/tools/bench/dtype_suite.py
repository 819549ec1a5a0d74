"""fp32, bf16 and int8 side by side (``bench --arch``), and the static-cache decode loop.

Per mode, one context per precision holds its own copy of the model -- fp32,
bf16 (what ``--dtype auto`` picks on a CPU with native bf16) and the opt-in
int8 (fp32 weights, Linears quantised) -- plus the static-cache decode loop
(:mod:`core.engine.static_decode`) at the auto dtype. Each round runs every
row once, in rotating order, so drifting background load hits all of them:

* the studio's live single-take path (``SynthesisService.stream(live=True)``):
  RTF, first audio, peak RSS, the talker's codes;
* the stock ``Qwen3TTSModel.generate_*`` call on the same model (so at the
  same dtype): its RTF, and whether the studio said exactly what it said
  (``same_as_stock``: the exactness check at the same dtype);
* agreement with fp32: the share of frames whose 16 codes equal fp32's, and
  the first frame that differs (None: all equal).

JSON: ``dtypes`` is a list of :class:`DtypeFigure` dicts, ``dtype_goals`` the
issue's goal (auto's RTF at most 0.6 of fp32's in the same run).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from core import text as textlib
from core.context import AppContext
from core.engine.torch_engine import TorchEngine
from core.settings import Settings
from core.tools.bench.common import BenchRequests, Progress, median, say
from core.tools.bench.compare_suite import _request, _run_stock, _run_studio, _same
from core.types import Mode, Sampling

GOAL_AUTO_VS_FP32 = 0.6  # issue 26: the single take with auto at most 0.6 of fp32's RTF
STATIC_ROW = "bfloat16+static"
ROWS = ("float32", "bfloat16", "int8", STATIC_ROW)


@dataclass(frozen=True)
class DtypeFigure:
    mode: str
    row: str  # float32 | bfloat16 | int8 | bfloat16+static
    dtype: str  # the weights' dtype as loaded
    decode: str  # stock | static (the generate loop)
    frames: int
    rtf: float  # studio live path, median of the rounds
    first_audio_s: float
    peak_bytes: int
    stock_rtf: float  # the stock call on the same model (same dtype)
    same_as_stock: bool  # the studio's codes == the stock call's at the same dtype, every round
    frames_equal_fp32: float  # share of frames whose 16 codes equal fp32's (1.0: identical)
    first_divergence: int | None  # first frame that differs from fp32 (None: none)
    rounds: int
    samples: list[float]  # per-round RTFs


def agreement(codes: Any, reference: Any) -> tuple[float, int | None]:
    """Share of frames equal to ``reference`` (all 16 codes) and the first that differs."""
    if codes is None or reference is None:
        return 0.0, 0
    n = max(int(codes.shape[0]), int(reference.shape[0]), 1)
    common = min(int(codes.shape[0]), int(reference.shape[0]))
    equal = (codes[:common] == reference[:common]).all(dim=-1)
    same = int(equal.sum())
    differs = (~equal).nonzero()
    first = int(differs[0, 0]) if differs.numel() else (None if common == n else common)
    return same / n, first


def measure_dtypes(
    contexts: dict[str, AppContext],
    modes: Sequence[str],
    *,
    frames: int,
    runs: int,
    seed: int,
    text: str,
    progress: Progress | None = None,
) -> list[DtypeFigure]:
    """Every row of ``contexts`` (keys from :data:`ROWS`) per mode, rounds interleaved."""
    figures: list[DtypeFigure] = []
    # The static row runs on the bf16 context's own model (one copy in memory), its loop switched.
    rows = [r for r in ROWS if r in contexts or (r == STATIC_ROW and "bfloat16" in contexts)]
    contexts = {**contexts, **({STATIC_ROW: contexts["bfloat16"]} if STATIC_ROW in rows else {})}
    decodes = {r: "static" if r == STATIC_ROW else "stock" for r in rows}
    service = next(iter(contexts.values())).synthesis
    (chunk,) = textlib.chunk_text(  # the stock call gets the text the studio's one chunk holds
        textlib.validate_text(text, max_chars=service.max_text_chars), max_chars=service.chunk_chars
    )
    for mode in modes:
        for ctx in contexts.values():
            ctx.models.unload()
        say(progress, f"dtypes: {mode} {frames} frames, {', '.join(rows)}, warm-up + {runs} round(s)")
        loaded = {}
        requests: dict[str, BenchRequests] = {}
        for row in rows:
            ctx = contexts[row]
            requests[row] = BenchRequests(ctx, text, Sampling(seed=seed, max_new_tokens=frames))
            requests[row].prepare(mode)
            loaded[row] = ctx.models.get(ctx.synthesis.checkpoint_for(mode, None))
            warm = BenchRequests(ctx, text, Sampling(seed=seed, max_new_tokens=3))
            warm._speaker, warm._prompt = requests[row]._speaker, requests[row]._prompt
            _run_studio(ctx, _request(warm, mode))
        studio: dict[str, list[dict]] = {r: [] for r in rows}
        stock: dict[str, list[dict]] = {r: [] for r in rows}
        for i in range(runs):
            order = rows[i % len(rows) :] + rows[: i % len(rows)]
            for row in order:
                ctx = contexts[row]
                engine = ctx.synthesis.engine
                assert isinstance(engine, TorchEngine)  # bench --arch measures the in-process engine
                engine.decode = decodes[row]
                try:
                    studio[row].append(_run_studio(ctx, _request(requests[row], mode)))
                finally:
                    engine.decode = "stock"
                stock[row].append(
                    _run_stock(loaded[row].model, mode, requests[row], chunk, frames, seed, in_thread=True)
                )
            say(
                progress,
                "  round "
                + str(i + 1)
                + ": "
                + ", ".join(f"{r} {studio[r][-1]['wall']:.1f} s (stock {stock[r][-1]['wall']:.1f} s)" for r in rows),
            )
        reference = studio["float32"][0]["codes"] if "float32" in studio else None
        for row in rows:
            s, k = studio[row], stock[row]
            audio_s = median([x["audio_s"] for x in s])
            share, first = agreement(s[0]["codes"], reference)
            figures.append(
                DtypeFigure(
                    mode=mode,
                    row=row,
                    dtype=loaded[row].dtype,
                    decode=decodes[row],
                    frames=frames,
                    rtf=median([x["wall"] for x in s]) / max(audio_s, 1e-9),
                    first_audio_s=median([x["ttfa"] for x in s]),
                    peak_bytes=max(x["peak"] for x in s),
                    stock_rtf=median([x["wall"] for x in k]) / max(audio_s, 1e-9),
                    same_as_stock=all(_same(a["codes"], b["codes"]) for a, b in zip(s, k)),
                    frames_equal_fp32=share,
                    first_divergence=first,
                    rounds=runs,
                    samples=[x["wall"] / max(audio_s, 1e-9) for x in s],
                )
            )
        loaded.clear()
    for ctx in contexts.values():
        ctx.models.unload()
    return figures


def dtype_contexts(settings: Settings, build: Callable[..., AppContext], int8_loader: Any) -> dict[str, AppContext]:
    """One context per row, on ``settings``' models (``build`` is ``core.context.build_context``)."""
    contexts = {
        "float32": build(settings.replace(dtype="float32")),
        "bfloat16": build(settings.replace(dtype="bfloat16")),
        "int8": build(settings.replace(dtype="float32"), loader=int8_loader),
    }
    contexts["int8"].synthesis.engine.name = "torch+int8"
    return contexts


def dtype_goals(figures: Sequence[DtypeFigure], auto_dtype: str) -> dict[str, Any]:
    """auto's single-take RTF against fp32's in the same run, per mode, with the exactness check."""
    out: dict[str, Any] = {"goal_auto_vs_fp32": GOAL_AUTO_VS_FP32, "auto_dtype": auto_dtype, "modes": {}}
    by = {(f.mode, f.row): f for f in figures}
    for mode in dict.fromkeys(f.mode for f in figures):
        fp32, auto = by.get((mode, "float32")), by.get((mode, auto_dtype))
        static = by.get((mode, STATIC_ROW))
        if fp32 is None or auto is None:
            continue
        ratio = auto.rtf / max(fp32.rtf, 1e-9)
        out["modes"][mode] = {
            "auto_vs_fp32": ratio,
            "met": ratio <= GOAL_AUTO_VS_FP32 and auto.same_as_stock,
            "exact_at_same_dtype": auto.same_as_stock and fp32.same_as_stock,
            "static_vs_stock_loop": None if static is None else static.rtf / max(by[(mode, "bfloat16")].rtf, 1e-9),
        }
    out["met_all"] = bool(out["modes"]) and all(m["met"] for m in out["modes"].values())
    return out


def as_json(figures: Sequence[DtypeFigure]) -> list[dict[str, Any]]:
    return [asdict(f) for f in figures]


def format_dtypes(figures: Sequence[DtypeFigure], goals: dict[str, Any]) -> list[str]:
    if not figures:
        return []
    lines = [
        "",
        "Precision side by side (studio live single take; stock = the plain call on the same model)",
        (
            f"  {'mode':<7} {'row':<16} {'RTF':>6} {'stock':>6} {'first audio':>11} {'peak RSS':>9}   "
            "same as stock   frames = fp32 (first divergence)"
        ),
    ]
    for f in figures:
        first = "-" if f.first_divergence is None else str(f.first_divergence)
        lines.append(
            f"  {Mode(f.mode).label:<7} {f.row:<16} {f.rtf:6.2f} {f.stock_rtf:6.2f} {f.first_audio_s:9.2f} s "
            f"{f.peak_bytes / 2**30:6.2f} GB   {'yes' if f.same_as_stock else 'NO':<14}  "
            f"{100 * f.frames_equal_fp32:5.1f}% ({first})"
        )
    for mode, g in goals.get("modes", {}).items():
        static = g["static_vs_stock_loop"]
        lines.append(
            f"  {Mode(mode).label}: auto ({goals['auto_dtype']}) / fp32 RTF = {g['auto_vs_fp32']:.2f} "
            f"(goal <= {goals['goal_auto_vs_fp32']}: {'met' if g['met'] else 'NOT met'}); exact at the same dtype: "
            f"{'yes' if g['exact_at_same_dtype'] else 'NO'}"
            + ("" if static is None else f"; static-cache loop / stock loop (bf16) = {static:.2f}")
        )
    return lines
