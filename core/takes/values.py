"""Loosely typed option values to the engine's typed options.

Widgets, JSON bodies and scripts hand over numbers as floats, strings or
None; these turn them into ``Sampling``, ``PostProcessing``, an output format
and a language, with one clear sentence (``InvalidInput``) for a bad value.
``options_from_values`` takes the Advanced fields by the named API's parameter
names (studio/ui/advanced.py is their one table); the tabs, the OpenAI-compatible
routes and the CLI share these, so all accept and refuse exactly the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from core.audio.edit import PostProcessing
from core.audio.io import SUPPORTED_OUTPUT_FORMATS
from core.errors import InvalidInput
from core.types import FRAMES_PER_SECOND, Sampling

# The take formats offered everywhere, in menu order; those this machine cannot encode are left out.
OUTPUT_FORMATS = [f for f in ("wav", "flac", "mp3", "ogg") if f in SUPPORTED_OUTPUT_FORMATS]

Number = TypeVar("Number", int, float)


def optional_number(value: Any, name: str, cast: Callable[[float], Number]) -> Number | None:
    """``value`` as a finite number, or None when it is empty; ``name`` is used in the error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = cast(float(value))
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, not {value!r}.") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidInput(f"{name} must be a finite number.")
    return number


def sampling_from_values(
    seed: Any = None,
    temperature: Any = None,
    top_k: Any = None,
    top_p: Any = None,
    repetition_penalty: Any = None,
    max_seconds: Any = None,
) -> Sampling:
    """Widget / API values to Sampling. A seed of -1 or empty means random;
    max_seconds of 0 or empty means the automatic cap derived from the text."""
    seed_value = optional_number(seed, "Seed", float)
    if seed_value is not None and seed_value != int(seed_value):
        raise InvalidInput("Seed must be a whole number.")
    seed_int = None if seed_value is None or seed_value < 0 else int(seed_value)
    seconds = optional_number(max_seconds, "Max length", float)
    if seconds is not None and seconds < 0:
        raise InvalidInput("Max length must be 0 (automatic) or a number of seconds.")
    top_k_value = optional_number(top_k, "Top-k", float)
    if top_k_value is not None and top_k_value != int(top_k_value):
        raise InvalidInput("Top-k must be a whole number.")
    return Sampling(
        seed=seed_int,
        temperature=optional_number(temperature, "Temperature", float),
        top_k=None if top_k_value is None else int(top_k_value),
        top_p=optional_number(top_p, "Top-p", float),
        repetition_penalty=optional_number(repetition_penalty, "Repetition penalty", float),
        max_new_tokens=None if not seconds else max(1, math.ceil(seconds * FRAMES_PER_SECOND)),
    ).validated()


@dataclass(frozen=True)
class Options:
    """The Advanced values, checked: how a take is sampled, finished and stored."""

    sampling: Sampling = Sampling()
    post: PostProcessing = PostProcessing()
    fmt: str = "wav"  # the format the take is stored in (OUTPUT_FORMATS)


def options_from_values(
    seed: Any = None,
    temperature: Any = None,
    top_k: Any = None,
    top_p: Any = None,
    repetition_penalty: Any = None,
    max_seconds: Any = 0,
    format: Any = "wav",
    output_normalize: Any = "none",
    output_fade_in_s: Any = 0.0,
    output_fade_out_s: Any = 0.0,
    output_trim_silence: Any = False,
    output_remove_dc: Any = False,
    max_new_tokens: Any = None,
) -> Options:
    """The Advanced fields, by the named API's parameter names, to checked Options. ``max_new_tokens``
    (the CLI's and the OpenAI dialect's own cap, in codec frames) caps what ``max_seconds`` allows."""
    sampling = sampling_from_values(seed, temperature, top_k, top_p, repetition_penalty, max_seconds)
    tokens = optional_number(max_new_tokens, "Max new tokens", float)
    if tokens is not None:
        if tokens != int(tokens) or tokens < 1:
            raise InvalidInput(f"Max new tokens is {tokens:g}; it must be a whole number of at least 1.")
        cap = sampling.max_new_tokens
        sampling = replace(sampling, max_new_tokens=int(tokens) if cap is None else min(int(tokens), cap))
    post = post_from_values(
        output_normalize, output_fade_in_s, output_fade_out_s, output_trim_silence, output_remove_dc
    )
    return Options(sampling, post, output_format(format))


def post_from_values(
    normalize: Any = "none",
    fade_in_s: Any = 0.0,
    fade_out_s: Any = 0.0,
    trim_silence: Any = False,
    remove_dc: Any = False,
) -> PostProcessing:
    """Widget / API values to the finishing applied to a whole take."""
    return PostProcessing(
        normalize=(str(normalize) if normalize else "none").strip().lower(),
        fade_in_s=optional_number(fade_in_s, "Fade in", float) or 0.0,
        fade_out_s=optional_number(fade_out_s, "Fade out", float) or 0.0,
        trim_silence=bool(trim_silence),
        remove_dc=bool(remove_dc),
    ).validated()


def output_format(value: Any) -> str:
    """A take format from OUTPUT_FORMATS ("wav" when empty), case and a leading dot ignored."""
    fmt = (str(value) if value else "wav").strip().lower().lstrip(".")
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"Output format '{value}' is not supported; choose {', '.join(OUTPUT_FORMATS)}.")
    return fmt


def language_value(value: Any) -> str:
    """The language as given ("auto" when empty); the engine checks and normalises it."""
    return (str(value) if value else "auto").strip()
