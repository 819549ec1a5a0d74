"""Regenerating stored takes, including scripts, gives identical audio."""

from __future__ import annotations

import numpy as np

from core.takes.recipes import recipe_of, voice_summary
from core.takes.replay import replay
from core.takes.script_render import plan_script, render_script, script_recipe, script_voice_summary
from core.types import DesignRequest, Sampling


def test_replay_a_single_take(demo_context):
    request = DesignRequest(text="Again.", description="Calm.", sampling=Sampling(max_new_tokens=6))
    first = demo_context.synthesis.synthesize(request)
    again = replay(recipe_of(request, first.seed), voice_summary(request), demo_context.synthesis, demo_context.library)
    assert again.request is not None and again.result.seed == first.seed
    assert np.array_equal(first.audio.samples, again.result.audio.samples)


def test_replay_a_script_take(demo_context):
    script = "Narrator: It was late.\nAnna: Who is there?"
    casting = "Narrator = Ryan\nAnna = Sohee"
    sampling = Sampling(seed=5, max_new_tokens=6)
    plan = plan_script(demo_context.synthesis, demo_context.library, script, casting, size="1.7B", sampling=sampling)
    first = render_script(demo_context.synthesis, demo_context.library, plan)
    recipe = script_recipe(plan, first)
    again = replay(recipe, script_voice_summary(first), demo_context.synthesis, demo_context.library)
    assert again.request is None and again.recipe is recipe
    assert np.array_equal(first.to_synthesis_result().audio.samples, again.result.audio.samples)
