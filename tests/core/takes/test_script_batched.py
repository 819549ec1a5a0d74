"""Scripts rendered with their lines batched sound exactly as each line rendered alone."""

from __future__ import annotations

import numpy as np

from core.audio.io import load_audio
from core.takes.script_render import line_seed, plan_script, render_script
from core.types import CloneRequest, CustomVoiceRequest, Sampling

SCRIPT = """\
Narrator: It was a dark night.
Anna: Who's there?
Bob: Only me, and my long shadow on the wall.
Narrator: They laughed.
Anna: Then they went home.
"""
CASTING = "Narrator = Ryan\nAnna = voice: Quick Fox\nBob = Vivian"
SAMPLING = Sampling(seed=33, max_new_tokens=8)


def test_batched_script_equals_each_line_alone_with_fewer_engine_calls(demo_context, speech_wav, monkeypatch):
    ctx = demo_context
    ctx.models.set_max_resident(2)  # both models fit: script order, one window
    ctx.library.save(
        name="Quick Fox",
        kind="clone",
        reference=load_audio(speech_wav),
        transcript="The quick brown fox jumps over the lazy dog.",
    )
    engine = ctx.synthesis.engine
    calls: dict[str, list[int]] = {"generate_batch": [], "generate_one": [], "stream_chunk": []}
    for name in ("generate_batch", "generate_one", "stream_chunk"):
        original = getattr(engine, name)

        def counted(loaded, mode, items, *args, _name=name, _original=original, **kwargs):
            calls[_name].append(len(items) if isinstance(items, list) else 1)
            return _original(loaded, mode, items, *args, **kwargs)

        monkeypatch.setattr(engine, name, counted)
    messages: list[str] = []
    batched = render_script(
        ctx.synthesis,
        ctx.library,
        SCRIPT,
        CASTING,
        sampling=SAMPLING,
        size="0.6B",
        progress=lambda f, m: messages.append(m),
    )
    # Line 1 alone (its stream_chunk runs generate_one), then two calls of two: the clone lines
    # 2 and 5 (one voice prompt), and lines 3 and 4 (CustomVoice, two speakers in one call).
    assert calls == {"generate_batch": [2, 2], "generate_one": [1], "stream_chunk": [1]}, calls
    assert "Lines 2-5 of 5 together" in messages
    assert [r.seed for r in batched.lines] == [line_seed(33, i) for i in range(5)]

    # Each line rendered alone (the regenerate-one-line path) sounds the same.
    plan = plan_script(ctx.synthesis, ctx.library, SCRIPT, CASTING, sampling=SAMPLING, size="0.6B")
    for index, line in enumerate(plan.lines):
        voice = plan.voice_of(line)
        sampling = Sampling(seed=line_seed(33, index), max_new_tokens=8)
        request: CustomVoiceRequest | CloneRequest
        if voice.speaker is not None:
            request = CustomVoiceRequest(
                text=line.text, speaker=voice.speaker.id, language=voice.language, size="0.6B", sampling=sampling
            )
        else:
            from core.takes.recipes import clone_request_for_voice

            assert voice.voice is not None
            request, _ = clone_request_for_voice(
                ctx.library,
                ctx.synthesis,
                voice.voice.id,
                text=line.text,
                language=voice.language,
                size="0.6B",
                sampling=sampling,
            )
        alone = ctx.synthesis.synthesize(request)
        assert np.array_equal(alone.audio.samples, batched.lines[index].audio.samples), line.text

    # And the whole script rendered line by line (no batching) is the same scene.
    ctx.synthesis.batching = False
    try:
        one_by_one = render_script(ctx.synthesis, ctx.library, SCRIPT, CASTING, sampling=SAMPLING, size="0.6B")
    finally:
        ctx.synthesis.batching = True
    assert np.array_equal(one_by_one.audio.samples, batched.audio.samples)
