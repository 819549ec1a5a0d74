"""What GET /health reports: liveness for anyone, details for those allowed to see them."""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from core.serving.context import ServingContext


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def liveness(ctx: ServingContext) -> dict[str, Any]:
    """Up and taking work ("ok") or shutting down ("draining"); nothing about the engine."""
    return {"status": "draining" if ctx.lifecycle.draining else "ok"}


def details(ctx: ServingContext) -> dict[str, Any]:
    """Liveness plus readiness: versions, engine, each model's state, queue and in-flight work."""
    manager = ctx.app.models
    lifecycle = ctx.lifecycle
    models = [row.as_dict() for row in manager.status()]
    in_flight, depth = ctx.metrics.state.queue()
    return {
        **liveness(ctx),
        "ready": not lifecycle.draining,
        "version": _version("qwen-tts-studio"),
        "qwen_tts_version": _version("qwen-tts"),
        "uptime_s": round(time.time() - lifecycle.started_at, 1),
        "engine": {
            "device": manager.device,
            "dtype_policy": manager.dtype_policy,
            "max_resident": manager.max_resident,
            "demo": ctx.demo,
        },
        "models": models,
        "resident": manager.resident_keys(),
        # Remote engine servers (URLs, health, in flight; keys never appear: core/engine/remote/).
        "remote": ctx.app.remote.rows() if ctx.app.remote else [],
        "queue": {"in_flight": in_flight, "depth": depth},
    }
