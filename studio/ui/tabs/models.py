"""Models: what is on disk, what is in memory, and buttons to change that."""

from __future__ import annotations

from typing import Any

import gradio as gr

from core.engine.mlx.install import installed as mlx_installed
from core.engine.mlx.install import is_apple_silicon
from core.engine.model_manager import ModelStatus
from core.engine.selection import SWITCHABLE, mlx_weights, switch_engine
from core.settings import MLX_QUANTIZE, EngineKind
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.progress import gradio_progress
from studio.ui.widgets import demo_banner

COLUMNS = ["Model", "Mode", "Size", "State", "On disk", "Device", "Dtype", "Memory", "Load time"]


def _mb(n: int | None) -> str:
    if not n:
        return "–"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def status_rows(rows: list[ModelStatus]) -> list[list[Any]]:
    return [
        [
            r.key,
            r.mode.label,
            r.size,
            r.state,
            _mb(r.disk_bytes),
            r.device or "–",
            r.dtype or "–",
            _mb(r.memory_bytes),
            f"{r.load_seconds:.1f} s" if r.load_seconds is not None else "–",
        ]
        for r in rows
    ]


def device_summary(ctx: StudioContext) -> str:
    m = ctx.app.models
    engine = ctx.app.synthesis.engine
    weights = engine.weights
    summary = (
        f"**Engine:** `{engine.name}`{f' ({weights})' if weights else ''} · "
        f"**Device:** `{m.device}` · **dtype:** `{m.dtype_policy}` ({m.dtype_reason}) · **max resident models:** {m.max_resident}"
    )
    return summary + remote_summary(ctx)


def current_mlx_quantize(ctx: StudioContext) -> str:
    """The MLX weights in use (the running MLX engine's, else the setting)."""
    return mlx_weights(ctx.app.synthesis.engine, ctx.app.settings)


def remote_summary(ctx: StudioContext) -> str:
    """The remote engine servers (core/engine/remote/): which checkpoints each serves, health, in flight."""
    if not ctx.app.remote:
        return ""
    lines = [
        "",
        "",
        "**Remote engines** (these checkpoints generate on the servers; the rest stay local)",
        "",
        "| Model | Server | Health | In flight | Requests | Errors | Last error |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in ctx.app.remote.rows():
        error = (row["last_error"] or "–").replace("|", "/")
        lines.append(
            f"| {row['key'] or '(not reached yet)'} | `{row['server']}` | {row['health']} | {row['in_flight']} "
            f"| {row['requests']} | {row['errors']} | {error} |"
        )
    return "\n".join(lines)


def build_models_tab(ctx: StudioContext) -> None:
    manager = ctx.app.models
    keys = [c.key for c in ctx.app.catalog.every()]  # the ASR model too
    with gr.Tab("Models", id="models") as tab:
        demo_banner(ctx)
        device_md = gr.Markdown(device_summary(ctx), elem_id="models-device")
        table = gr.Dataframe(
            status_rows(manager.status()), headers=COLUMNS, interactive=False, elem_id="models-table", wrap=True
        )
        with gr.Row():
            choice = gr.Dropdown(keys, value=keys[0], label="Model", scale=2)
            load = gr.Button("Load", variant="primary", scale=1)
            unload = gr.Button("Unload", scale=1)
            download = gr.Button("Download", scale=1)
            refresh = gr.Button("Refresh", scale=1)
        with gr.Row():
            max_resident = gr.Number(
                manager.max_resident, label="Max resident models", precision=0, minimum=1, maximum=8, scale=1
            )
            apply_max = gr.Button("Apply", scale=1)
            # torch runs qwen-tts here; mlx runs mlx-audio in its own process (docs/SELF_HOSTING.md "The MLX engine").
            # Shown only where MLX can help: Apple Silicon, or MLX installed (or in use) here.
            offer_mlx = (
                is_apple_silicon()
                or mlx_installed(ctx.app.settings.data_dir)
                or ctx.app.synthesis.engine.kind is EngineKind.MLX
            )
            engine = gr.Dropdown(
                [kind.value for kind in SWITCHABLE],
                value=ctx.app.synthesis.engine.kind.value,
                label="Engine",
                scale=1,
                visible=offer_mlx,
                elem_id="models-engine",
            )
            # The MLX engine's weights (docs/SELF_HOSTING.md "Memory: quantized weights"); torch ignores it.
            mlx_weights = gr.Dropdown(
                list(MLX_QUANTIZE),
                value=current_mlx_quantize(ctx),
                label="MLX weights",
                scale=1,
                visible=offer_mlx,
                elem_id="models-mlx-quantize",
            )
            switch = gr.Button("Switch engine", scale=1, visible=offer_mlx, elem_id="models-engine-switch")
        message = gr.Markdown()

    def snapshot():
        return status_rows(manager.status()), device_summary(ctx)

    @friendly_errors
    def do_load(key, progress=gr.Progress()):
        with ctx.jobs.device():  # a turn of the device, as a take is (core/takes/jobs.py)
            loaded = manager.get(ctx.app.catalog.get(key), gradio_progress(progress))
        return (
            *snapshot(),
            f"Loaded **{loaded.checkpoint.key}** on {loaded.device} ({loaded.dtype}) in {loaded.load_seconds:.1f} s.",
        )

    @friendly_errors
    def do_unload(key):
        with ctx.jobs.device():
            removed = manager.unload(ctx.app.catalog.get(key).key)
        return *snapshot(), f"Unloaded **{key}**." if removed else f"{key} was not loaded."

    @friendly_errors
    def do_download(key, progress=gr.Progress()):
        checkpoint = ctx.app.catalog.get(key)
        path = ctx.app.store.download(checkpoint, gradio_progress(progress))
        return *snapshot(), f"**{checkpoint.key}** is on disk at `{path}`."

    @friendly_errors
    def do_apply(value):
        if value is None or int(value) < 1 or int(value) > 8:
            raise gr.Error("Max resident models must be a whole number from 1 to 8.")
        manager.set_max_resident(int(value))
        return *snapshot(), f"At most {int(value)} model(s) stay in memory."

    @friendly_errors
    def do_switch(name, weights):
        used = switch_engine(ctx.app.synthesis, manager, ctx.app.settings, str(name), str(weights or "") or None)
        note = (
            " Install it first: `qwen-tts-studio engines install mlx`."
            if used is EngineKind.MLX and not mlx_installed(ctx.app.settings.data_dir)
            else ""
        )
        weights = f" with **{current_mlx_quantize(ctx)}** weights" if used is EngineKind.MLX else ""
        return (
            *snapshot(),
            f"Takes now use the **{used.value}** engine{weights}; models load again on the next take.{note}",
        )

    outputs = [table, device_md, message]
    switch.click(
        do_switch,
        [engine, mlx_weights],
        outputs,
        api_visibility="private",
    )
    load.click(do_load, choice, outputs, api_visibility="private")
    unload.click(do_unload, choice, outputs, api_visibility="private")
    download.click(do_download, choice, outputs, api_visibility="private")
    apply_max.click(do_apply, max_resident, outputs, api_visibility="private")
    refresh.click(lambda: (*snapshot(), ""), None, outputs, api_visibility="private", queue=False)
    # Other tabs and scripts load models too; show the truth whenever the tab opens.
    tab.select(lambda: (*snapshot(), ""), None, outputs, api_visibility="private", queue=False)
