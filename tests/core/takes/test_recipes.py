"""Recipes: a stored take regenerates to identical audio with the demo models."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.edit import PostProcessing
from core.audio.io import load_audio
from core.errors import InvalidInput
from core.takes.recipes import (
    clone_request_for_voice,
    recipe_of,
    request_from_recipe,
    voice_summary,
)
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Sampling
from tests.conftest import spoken


def store_and_replay(ctx, request, *, voice_id=None):
    result = ctx.synthesis.synthesize(request)
    take = ctx.history.add(
        result,
        fmt="wav",
        request=recipe_of(request, result.seed, voice_id=voice_id),
        voice=voice_summary(request),
        language=request.language,
    )
    replayed = ctx.synthesis.synthesize(request_from_recipe(take.request, ctx.library, ctx.synthesis))
    return take, result, replayed


@pytest.mark.parametrize(
    "request_",
    [
        DesignRequest(text="Replay me.", description="A calm voice.", sampling=Sampling(max_new_tokens=8)),
        CustomVoiceRequest(
            text="Replay me.",
            speaker="Eric",
            instruct="Fast",
            size="1.7B",
            sampling=Sampling(temperature=0.7, top_k=20, max_new_tokens=8),
            post=PostProcessing(normalize="loudness", fade_in_s=0.05, remove_dc=True),
        ),
    ],
)
def test_regenerating_from_a_stored_recipe_is_identical(demo_context, request_):
    take, result, replayed = store_and_replay(demo_context, request_)
    assert replayed.seed == result.seed  # the random seed was recorded
    stored = load_audio(take.audio_path).samples
    again = demo_context.history.add(replayed, fmt="wav", request=take.request)
    assert np.array_equal(stored, load_audio(again.audio_path).samples)


def test_library_clone_recipe_replays_and_upload_recipe_explains(demo_context):
    reference = spoken(4.0)
    voice = demo_context.library.save(
        name="Replay Voice", kind="clone", reference=reference, transcript="A steady tone."
    )
    request, cached = clone_request_for_voice(
        demo_context.library,
        demo_context.synthesis,
        "replay voice",
        text="Hi.",
        size="0.6B",
        sampling=Sampling(seed=3, max_new_tokens=6),
    )
    assert cached is False
    take, result, replayed = store_and_replay(demo_context, request, voice_id=voice.id)
    assert np.array_equal(result.audio.samples, replayed.audio.samples)

    upload = CloneRequest(text="Hi.", reference=reference, size="0.6B", sampling=Sampling(seed=3, max_new_tokens=6))
    recipe = recipe_of(upload, 3)
    with pytest.raises(InvalidInput, match="does not keep"):
        request_from_recipe(recipe, demo_context.library, demo_context.synthesis)
