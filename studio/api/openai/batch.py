"""POST /v1/audio/speech/batch: 1-32 speech requests answered in one JSON body.

The body is ``{"items": [<speech request>, ...]}``; any other top-level field
(``model``, ``voice``, ``response_format``, ``task_type``, ``language``...) is a default
each item may override. Every item is checked before anything is generated: one
bad item refuses the whole batch with a 400 naming it (``items[3].voice``).
The answer is ``{"object": "list", "data": [...]}`` with one entry per item, in
order: the audio as base64 with its format, duration, seed and take id, or an
``error`` in OpenAI's shape when that item's generation failed (the others are
still returned). Items run one after another on the device, like any takes.
"""

from __future__ import annotations

import base64
from typing import Any

from core.serving.context import ServingContext
from studio.api.openai.errors import ApiError, bad_request, error_for
from studio.api.openai.speech import SpeechPlan, generate, parse_speech

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


def run_batch(ctx: ServingContext, plans: list[SpeechPlan], client: str | None) -> dict[str, Any]:
    """Blocking: generates each item in turn; a failed item carries its error."""
    data = []
    for index, plan in enumerate(plans):
        try:
            audio, headers = generate(ctx, plan, client)
        except Exception as exc:  # noqa: BLE001 - reported per item, in OpenAI's shape
            data.append({"index": index, "object": "speech", **error_for(exc).body()})
            continue
        data.append(
            {
                "index": index,
                "object": "speech",
                "audio": base64.b64encode(audio).decode("ascii"),
                "response_format": plan.response_format,
                "content_type": plan.media_type,
                "model": headers["X-Model"],
                "seed": int(headers["X-Seed"]),
                "duration": float(headers["X-Duration"]),
                "sample_rate": int(headers["X-Sample-Rate"]),
                "take_id": headers.get("X-Take-Id"),
                "warnings": headers.get("X-Warnings", "").split(" | ") if headers.get("X-Warnings") else [],
            }
        )
    return {"object": "list", "data": data}
