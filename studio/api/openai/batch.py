"""POST /v1/audio/speech/batch: 1-32 speech requests answered in one JSON body.

The body is ``{"items": [<speech request>, ...]}``; any other top-level field
(``model``, ``voice``, ``response_format``, ``task_type``, ``language``...) is a default
each item may override. Every item is checked before anything is generated: one
bad item refuses the whole batch with a 400 naming it (``items[3].voice``).
The answer is ``{"object": "list", "data": [...]}`` with one entry per item, in
order: the audio as base64 with its format, duration, seed and take id, or an
``error`` in OpenAI's shape when that item's generation failed (the others are
still returned).

Every item is a take of its own, a job of the one take runner (``core/takes/jobs.py``),
queued together: the runner serves items that share a checkpoint, mode and sampling
options in shared engine batches, each with its own text, voice, instructions,
reference and seed (``core/engine/request_batch.py``); each item sounds exactly as it
does when requested alone with the same seed. A client that goes away stops them all.

Variants: ``/v1/audio/speech`` with ``"variants": N`` (2-8) answers in this same
JSON shape, one entry per take, seeds ``s, s+1, ...`` (each entry says its
``variant`` and ``seed``, so any one can be made again alone).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool

from core.engine.synthesis import MAX_VARIANTS
from core.serving.context import ServingContext
from core.takes.job import Job
from core.takes.service import TakeJob
from core.types import MAX_SEED
from studio.api.openai.errors import ApiError, bad_request, error_for
from studio.api.openai.speech import SpeechPlan, build_job, parse_speech, respond, until_finished

MAX_ITEMS = 32


def parse_batch(ctx: ServingContext, body: Any) -> list[SpeechPlan]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with items: a list of speech requests.")
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        count = f" (got {len(items)})" if isinstance(items, list) else ""
        raise bad_request(f"items must be a list of 1 to {MAX_ITEMS} speech requests{count}.", "items")
    defaults = {k: v for k, v in body.items() if k != "items"}
    plans = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"items[{index}] must be a JSON object (a speech request).", f"items[{index}]")
        try:
            plans.append(parse_speech(ctx, {**defaults, **item}, allow_stream=False))
        except ApiError as exc:
            param = f"items[{index}].{exc.param}" if exc.param else f"items[{index}]"
            raise bad_request(f"items[{index}]: {exc.message}", param, exc.code) from None
    return plans


def parse_variants(body: Any) -> int:
    """The ``variants`` field of a speech request: 1 (absent) to MAX_VARIANTS takes."""
    value = body.get("variants") if isinstance(body, dict) else None
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VARIANTS:
        raise bad_request(
            f"variants must be a whole number from 1 to {MAX_VARIANTS} (takes of the same input).", "variants"
        )
    if value > 1 and (body.get("stream") or body.get("stream_format") == "sse"):
        raise bad_request("variants cannot stream; leave stream out to get every take as JSON.", "variants")
    return value


def variant_plans(plan: SpeechPlan, count: int) -> list[SpeechPlan]:
    """``count`` copies of ``plan`` with seeds s, s+1, ... (s: the request's seed, or a random one)."""
    base = plan.sampling.seed if plan.sampling.seed is not None else secrets.randbelow(2**31)
    return [replace(plan, sampling=replace(plan.sampling, seed=(base + k) % (MAX_SEED + 1))) for k in range(count)]


async def run_batch(
    request: Any, ctx: ServingContext, plans: list[SpeechPlan], client: str | None, *, variants: bool = False
) -> dict[str, Any]:
    """The items as jobs queued together (batched where they share a model); a failed item
    carries its error."""

    def start() -> list[Job | Exception]:
        takes: list[TakeJob | Exception] = []
        for plan in plans:
            try:
                takes.append(build_job(ctx, plan))  # a library voice may encode its prompt here
            except Exception as exc:  # noqa: BLE001 - reported per item, in OpenAI's shape
                takes.append(exc)
        ready = [take for take in takes if isinstance(take, TakeJob)]
        jobs = iter(ctx.jobs.start_whole(ready, client=client, owner=client or "", tab="api"))
        return [next(jobs) if isinstance(take, TakeJob) else take for take in takes]

    jobs = await run_in_threadpool(start)
    await until_finished(request, ctx, [job for job in jobs if isinstance(job, Job)])
    data = []
    for index, (plan, job) in enumerate(zip(plans, jobs, strict=True)):
        try:
            if not isinstance(job, Job):
                raise job
            audio, headers = await run_in_threadpool(respond, ctx, plan, job)
        except Exception as exc:  # noqa: BLE001 - reported per item, in OpenAI's shape
            data.append({"index": index, "object": "speech", **error_for(exc).body()})
            continue
        entry: dict[str, Any] = {"variant": index + 1} if variants else {}
        data.append(
            {
                "index": index,
                "object": "speech",
                **entry,
                "audio": base64.b64encode(audio).decode("ascii"),
                "response_format": plan.response_format,
                "content_type": plan.media_type,
                "model": headers["X-Model"],
                "seed": int(headers["X-Seed"]),
                "duration": float(headers["X-Duration"]),
                "sample_rate": int(headers["X-Sample-Rate"]),
                "take_id": headers.get("X-Take-Id"),
                "job_id": job.id,
                "warnings": headers.get("X-Warnings", "").split(" | ") if headers.get("X-Warnings") else [],
            }
        )
    return {"object": "list", "data": data}
