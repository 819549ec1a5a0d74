"""Script mode: validation before generation, and rendering on the demo models."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.io import load_audio
from core.errors import InvalidInput
from core.takes.script_render import (
    RenderedLine,
    ScriptResult,
    line_seed,
    plan_script,
    render_script,
    script_recipe,
    script_voice_summary,
    stream_script,
)
from core.types import Sampling

FAST = Sampling(seed=21, max_new_tokens=6)


# --------------------------------------------------------------------------- validation


@pytest.fixture
def library_voice(demo_context, speech_wav):
    return demo_context.library.save(
        name="Quick Fox",
        kind="clone",
        reference=load_audio(speech_wav),
        transcript="The quick brown fox jumps over the lazy dog.",
    )


CASTING = "Narrator = Ryan (calm)\nAnna = voice: Quick Fox\nBob = Vivian"
THREE_VOICES = """\
Narrator: It was a dark night.
Anna: Who's there?
Bob: Only me.
Narrator: They laughed.
"""


def plan(ctx, script=THREE_VOICES, casting=CASTING, **kwargs):
    return plan_script(ctx.synthesis, ctx.library, script, casting, **({"sampling": FAST} | kwargs))


def test_every_uncast_name_is_listed_at_once(demo_context):
    script = THREE_VOICES + "Carol: Hello.\nDave: Hi.\ncarol: Again."
    with pytest.raises(InvalidInput) as info:
        plan(demo_context, script, "Narrator = Ryan\nUnused = Aiden")
    message = str(info.value)
    assert "these 4 names" in message
    for part in ("Anna (line 2)", "Bob (line 3)", "Carol (lines 5, 7)", "Dave (line 6)"):
        assert part in message
    assert "Narrator" not in message and "Unused" not in message
    assert demo_context.models.resident_keys() == []


def test_unknown_speakers_and_voices_fail_before_any_model_loads(demo_context, library_voice):
    bad = "Narrator = speaker: Rian\nAnna = voice: Quick Foxx\nBob = Vivien"
    with pytest.raises(InvalidInput) as info:
        plan(demo_context, casting=bad)
    message = str(info.value)
    assert message.startswith("Some voices are not available:")
    assert "Narrator: Unknown speaker 'Rian'. Choose one of: Vivian," in message
    assert "Anna: No voice named 'Quick Foxx' in the library. Did you mean 'Quick Fox'?" in message
    assert (
        "Bob: 'Vivien' is neither a built-in speaker nor a voice in the library. "
        "Did you mean the speaker 'Vivian'?" in message
    )
    with pytest.raises(InvalidInput, match="^Bob: 'Quick Fix' is neither .* Did you mean 'Quick Fox'"):
        plan(demo_context, casting="Narrator = Ryan\nAnna = Aiden\nBob = Quick Fix")
    with pytest.raises(InvalidInput, match="'Quick Fox' is a library voice, and a style instruction"):
        plan(demo_context, casting="Narrator = Ryan\nAnna = voice: Quick Fox (calm)\nBob = Aiden")
    with pytest.raises(InvalidInput, match="Narrator: Custom Voice has no 3B model"):
        plan(demo_context, casting="Narrator = Ryan [3B]\nAnna = Aiden\nBob = Aiden")
    with pytest.raises(InvalidInput, match="pause between lines is 11"):
        plan(demo_context, casting=CASTING, pause_s=11)
    with pytest.raises(InvalidInput, match="Language 'klingon'"):
        plan(demo_context, casting=CASTING, language="klingon")
    with pytest.raises(InvalidInput, match="Temperature"):
        plan(demo_context, casting=CASTING, sampling=Sampling(temperature=9.0))
    # stream_script validates at the call, before iterating.
    with pytest.raises(InvalidInput, match="Unknown speaker"):
        stream_script(demo_context.synthesis, demo_context.library, THREE_VOICES, bad)
    assert demo_context.models.resident_keys() == []


def test_plan_groups_lines_by_model_when_only_one_fits(demo_context, library_voice):
    p = plan(demo_context)
    assert demo_context.models.max_resident == 1
    # Ryan and Vivian share the CustomVoice model; Anna needs Base: it goes last.
    assert p.order == [0, 2, 3, 1] and p.grouped
    demo_context.models.set_max_resident(2)
    assert plan(demo_context).order == [0, 1, 2, 3]
    assert demo_context.models.resident_keys() == []


# --------------------------------------------------------------------------- rendering


def test_render_three_voices(demo_context, library_voice):
    progress: list[tuple[float, str]] = []
    result = render_script(
        demo_context.synthesis,
        demo_context.library,
        THREE_VOICES,
        CASTING,
        sampling=FAST,
        pause_s=0.4,
        size="0.6B",
        progress=lambda f, m: progress.append((f, m)),
    )
    assert isinstance(result, ScriptResult)
    assert [(r.speaker, r.text) for r in result.lines] == [
        ("Narrator", "It was a dark night."),
        ("Anna", "Who's there?"),
        ("Bob", "Only me."),
        ("Narrator", "They laughed."),
    ]
    assert [r.voice for r in result.lines] == ["Ryan (calm)", "Quick Fox (library)", "Vivian", "Ryan (calm)"]
    assert [r.seed for r in result.lines] == [line_seed(21, i) for i in range(4)] == [21, 1021, 2021, 3021]
    assert result.models == ["demo-0.6B-CustomVoice", "demo-0.6B-Base"]
    assert result.audio.sample_rate == 24_000 and result.demo
    for r in result.lines:
        assert r.audio.sample_rate == 24_000 and len(r.audio) > 0 and np.all(np.isfinite(r.audio.samples))

    # Merged = lines + pauses, and each line sits where ``starts`` says.
    gap = round(0.4 * 24_000)
    assert len(result.audio) == sum(len(r.audio) for r in result.lines) + 3 * gap
    assert result.duration == pytest.approx(sum(r.duration for r in result.lines) + 3 * 0.4, abs=1e-3)
    assert result.starts[0] == 0.0
    for r, start in zip(result.lines, result.starts):
        begin = round(start * 24_000)
        middle = slice(begin + 300, begin + len(r.audio) - 300)  # away from the fades
        assert np.allclose(result.audio.samples[middle], r.audio.samples[300:-300])
        silence = result.audio.samples[begin + len(r.audio) : begin + len(r.audio) + gap]
        assert not silence.any()

    # Warnings: the demo note once, the 0.6B style note tagged with the speaker.
    assert result.warnings[0].startswith("Made with a random-weight demo model")
    assert (
        "Narrator: The 0.6B CustomVoice model ignores style instructions; the instruction was not applied. "
        "Choose 1.7B to use it." in result.warnings
    )
    assert len(result.warnings) == 2
    info = result.info()
    assert info["mode"] == "script" and len(info["lines"]) == 4 and info["lines"][1]["voice"] == "Quick Fox (library)"
    assert {row["name"] for row in info["cast"]} == {"Narrator", "Anna", "Bob"}
    assert next(row for row in info["cast"] if row["name"] == "Anna")["prompt_cached"] is False
    assert {"load_s", "generate_s", "prompt_s", "first_audio_s", "total_s", "rtf"} <= set(info["timings"])

    messages = [m for _, m in progress]
    # Line 1 alone (first audio early), then the rest together (batched where models are shared).
    assert "Line 1 of 4 (Narrator)" in messages and "Lines 2-4 of 4 together" in messages
    assert "Lines 2-4 of 4 together: preparing the voice 'Quick Fox'" in messages
    assert messages[-1].startswith("Done: 4 lines")
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    # The history keeps the merged take with a script recipe.
    p = plan(demo_context, size="0.6B")
    take = demo_context.history.add(
        result.to_synthesis_result(),
        fmt="wav",
        request=script_recipe(p, result),
        voice=script_voice_summary(result),
        language="auto",
    )
    assert take.mode == "script" and take.request["kind"] == "script" and take.seed == 21
    assert take.request["casting"]["Anna"] == {"voice": "Quick Fox"}
    assert take.voice["kind"] == "script" and len(take.voice["voices"]) == 3
    assert take.duration_s == pytest.approx(result.duration, abs=1e-3)


def test_same_seed_same_script_and_the_prompt_is_cached(demo_context, library_voice):
    args = (demo_context.synthesis, demo_context.library, THREE_VOICES, CASTING)
    a = render_script(*args, sampling=FAST, size="0.6B")
    b = render_script(*args, sampling=FAST, size="0.6B")
    assert np.array_equal(a.audio.samples, b.audio.samples)
    assert next(row for row in b.cast if row["name"] == "Anna")["prompt_cached"] is True
    c = render_script(*args, sampling=Sampling(seed=22, max_new_tokens=6), size="0.6B")
    assert not np.array_equal(a.lines[0].audio.samples, c.lines[0].audio.samples)


def test_stream_yields_each_line_before_the_result(demo_context, library_voice):
    demo_context.models.set_max_resident(2)  # room for both models: script order
    items = list(
        stream_script(
            demo_context.synthesis, demo_context.library, THREE_VOICES, CASTING, sampling=FAST, size="0.6B", pause_s=0
        )
    )
    assert [type(i) for i in items] == [RenderedLine] * 4 + [ScriptResult]
    assert [i.index for i in items[:4]] == [0, 1, 2, 3] and items[0].total == 4
    result = items[-1]
    for line, rendered in zip(items[:4], result.lines):
        assert line is rendered
    # No pause: the lines overlap by the short crossfade.
    overlap = round(0.01 * 24_000)
    assert len(result.audio) == sum(len(r.audio) for r in result.lines) - 3 * overlap


def test_grouped_render_yields_in_generation_order_but_assembles_in_script_order(demo_context, library_voice):
    items = list(
        stream_script(demo_context.synthesis, demo_context.library, THREE_VOICES, CASTING, sampling=FAST, size="0.6B")
    )
    assert [i.index for i in items[:4]] == [0, 2, 3, 1]
    assert [r.speaker for r in items[-1].lines] == ["Narrator", "Anna", "Bob", "Narrator"]


def test_finishing_trims_lines_and_levels_the_scene(demo_context, library_voice):
    from core.audio.edit import PostProcessing

    post = PostProcessing(normalize="peak", fade_in_s=0.05, fade_out_s=0.05, remove_dc=True)
    result = render_script(
        demo_context.synthesis, demo_context.library, THREE_VOICES, CASTING, sampling=FAST, size="0.6B", post=post
    )
    # Level and fades go on the scene: a gain, so the lines still sit where ``starts`` says.
    assert np.max(np.abs(result.audio.samples)) == pytest.approx(10 ** (-1 / 20), abs=1e-3)
    assert result.audio.samples[0] == 0.0
    assert len(result.audio) == sum(len(r.audio) for r in result.lines) + 3 * round(0.4 * 24_000)
    # DC removal went on each line.
    for r in result.lines:
        assert abs(float(np.mean(r.audio.samples))) < 1e-4


def test_a_failing_line_is_named(demo_context, monkeypatch):
    """Fault injection at the real engine: line 2 fails whether batched or retried alone."""
    from core.errors import GenerationError

    engine = demo_context.synthesis.engine
    calls: list[list[str]] = []
    real_batch, real_one = engine.generate_batch, engine.generate_one

    def failing(texts):
        calls.append(texts)
        if "Two." in texts:
            raise GenerationError("Generation failed on chunk 1 of 1.")

    def batch(loaded, mode, items, *args, **kwargs):
        failing([i.text for i in items])
        return real_batch(loaded, mode, items, *args, **kwargs)

    def one(loaded, mode, item, *args, **kwargs):
        failing([item.text])
        return real_one(loaded, mode, item, *args, **kwargs)

    monkeypatch.setattr(engine, "generate_batch", batch)
    monkeypatch.setattr(engine, "generate_one", one)
    made = []
    with pytest.raises(GenerationError, match=r"^Line 2 \(B\): Generation failed on chunk 1 of 1\.$"):
        for item in stream_script(
            demo_context.synthesis,
            demo_context.library,
            "A: One.\nB: Two.\nA: Three.",
            "A = Ryan\nB = Aiden",
            sampling=FAST,
        ):
            made.append(item)
    # Line 1 alone (first audio early), then lines 2-3 together; the failed batch is retried
    # item by item, so the error names line 2 and line 1 was already delivered.
    assert [r.index for r in made] == [0]
    assert ["Two.", "Three."] in calls and ["Two."] in calls
