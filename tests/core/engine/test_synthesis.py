"""The synthesis service end to end on the tiny real checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.clip import Audio
from core.errors import InvalidInput
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Sampling
from tests.conftest import spoken

FAST = Sampling(seed=7, max_new_tokens=12)


def assert_real_audio(result):
    audio = result.audio
    assert audio.sample_rate == 24_000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.samples.size > 0 and np.all(np.isfinite(audio.samples))
    assert float(np.sqrt(np.mean(audio.samples**2))) > 1e-4, "audio is silent"
    assert result.duration == pytest.approx(audio.samples.size / 24_000)


@pytest.fixture
def reference() -> Audio:
    """3 s of real espeak-ng speech: clone references must pass the speech check."""
    return spoken(3.0)


def test_design_produces_audio_and_reports_everything(demo_context):
    result = demo_context.synthesis.design(
        DesignRequest(text="Hello there.", description="A calm low voice.", language="English", sampling=FAST)
    )
    assert_real_audio(result)
    assert result.seed == 7 and result.model == "demo-1.7B-VoiceDesign" and result.demo
    assert "demo model" in result.warnings[0]
    info = result.info()
    assert info["sample_rate"] == 24_000 and info["timings"]["generate_s"] > 0
    # Every take says its precision and why (the test settings pin exact fp32).
    assert info["dtype"] == "float32 (--dtype float32)"


def test_custom_voice_with_instruct_and_dialect_speaker(demo_context):
    for speaker in ("Ryan", "dylan", "Uncle Fu"):
        result = demo_context.synthesis.custom_voice(
            CustomVoiceRequest(
                text="Good morning.", speaker=speaker, instruct="Cheerfully.", size="1.7B", sampling=FAST
            )
        )
        assert_real_audio(result)


def test_small_custom_voice_reports_ignored_instruction(demo_context):
    result = demo_context.synthesis.custom_voice(
        CustomVoiceRequest(text="Hi.", speaker="Vivian", instruct="Whisper.", size="0.6B", sampling=FAST)
    )
    assert_real_audio(result)
    assert any("ignores style instructions" in w for w in result.warnings)


def test_clone_icl_and_x_vector_modes(demo_context, reference):
    icl = demo_context.synthesis.clone(
        CloneRequest(
            text="Testing one two.",
            reference=reference,
            reference_text="A reference sentence.",
            size="0.6B",
            sampling=FAST,
        )
    )
    assert_real_audio(icl)
    assert not any("x-vector" in w for w in icl.warnings)
    xvec = demo_context.synthesis.clone(
        CloneRequest(text="Testing one two.", reference=reference, size="0.6B", sampling=FAST)
    )
    assert_real_audio(xvec)
    assert any("x-vector-only" in w for w in xvec.warnings)


def test_same_seed_same_audio_and_other_seed_differs(demo_context):
    request = DesignRequest(text="Same seed.", description="Bright voice.", sampling=FAST)
    a = demo_context.synthesis.design(request).audio.samples
    b = demo_context.synthesis.design(request).audio.samples
    c = demo_context.synthesis.design(
        DesignRequest(text="Same seed.", description="Bright voice.", sampling=Sampling(seed=8, max_new_tokens=12))
    ).audio.samples
    assert np.array_equal(a, b)
    assert not (a.shape == c.shape and np.array_equal(a, c))


def test_random_seed_is_reported(demo_context):
    result = demo_context.synthesis.design(
        DesignRequest(text="Hi.", description="Any.", sampling=Sampling(max_new_tokens=4))
    )
    assert isinstance(result.seed, int) and result.seed >= 0


def test_frame_cap_derived_from_text_bounds_runaway_generation(demo_context):
    """Random weights never emit the stop token, so every take runs to its cap:
    a short text must therefore stay short even with no user cap."""
    result = demo_context.synthesis.design(DesignRequest(text="Hi.", description="Any.", sampling=Sampling(seed=1)))
    from core.text import estimate_max_new_tokens

    assert result.audio.samples.size <= estimate_max_new_tokens("Hi.") * 1920


def test_long_text_is_chunked_with_progress(demo_context):
    demo_context.synthesis.chunk_chars = 60
    messages = []
    text = " ".join(f"This is sentence number {i} of the test." for i in range(5))
    result = demo_context.synthesis.design(
        DesignRequest(text=text, description="Narrator.", sampling=Sampling(seed=2, max_new_tokens=6)),
        progress=lambda f, m: messages.append(m),
    )
    assert len(result.chunks) >= 3
    assert any(f"chunk 2 of {len(result.chunks)}" in m for m in messages)
    # pauses between chunks make the take longer than the chunks alone
    assert result.duration > len(result.chunks) * 6 * 1920 / 24_000


@pytest.mark.parametrize(
    "request_, words",
    [
        (DesignRequest(text="", description="x"), "Enter some text"),
        (DesignRequest(text="   \n\t ", description="x"), "Enter some text"),
        (DesignRequest(text="x" * 50_001, description="x"), "limit is 50,000"),
        (DesignRequest(text="Hi", description=""), "Describe the voice"),
        (DesignRequest(text="Hi", description="x", language="Klingon"), "Language 'Klingon' is not supported"),
        (CustomVoiceRequest(text="Hi", speaker="Bob"), "Unknown speaker 'Bob'"),
        (CloneRequest(text="Hi"), "Add a reference clip"),
        (DesignRequest(text="Hi", description="x", sampling=Sampling(temperature=9)), "Temperature is 9"),
        (DesignRequest(text="Hi", description="x", sampling=Sampling(top_p=0)), "Top-p"),
        (DesignRequest(text="Hi", description="x", sampling=Sampling(seed=-5)), "Seed"),
        (DesignRequest(text="Hi", description="x", size="0.6B"), "no 0.6B model"),
    ],
)
def test_validation_errors_are_clear_and_load_nothing(demo_context, request_, words):
    service = demo_context.synthesis
    method = {DesignRequest: service.design, CustomVoiceRequest: service.custom_voice, CloneRequest: service.clone}[
        type(request_)
    ]
    with pytest.raises(InvalidInput, match=words):
        method(request_)
    assert demo_context.models.resident_keys() == []


def test_stream_yields_chunks_before_the_result_and_matches_the_whole_take(demo_context):
    from core.engine.synthesis import ChunkAudio
    from core.types import SynthesisResult

    demo_context.synthesis.chunk_chars = 60
    text = " ".join(f"Streaming sentence number {i} is here." for i in range(4))
    request = DesignRequest(text=text, description="Narrator.", sampling=Sampling(seed=4, max_new_tokens=5))
    items = list(demo_context.synthesis.stream(request))
    chunks = [i for i in items if isinstance(i, ChunkAudio)]
    assert len(chunks) >= 2 and isinstance(items[-1], SynthesisResult)
    assert all(isinstance(i, ChunkAudio) for i in items[:-1])
    assert [c.index for c in chunks] == list(range(len(chunks)))
    result = items[-1]
    assert result.timings["first_audio_s"] < result.timings["total_s"]
    whole = demo_context.synthesis.design(request)
    assert np.array_equal(whole.audio.samples, result.audio.samples)


def test_stream_validates_before_anything_runs(demo_context):
    with pytest.raises(InvalidInput):
        demo_context.synthesis.stream(DesignRequest(text="", description="x"))


@pytest.mark.parametrize("batching", [False, True])
def test_a_failed_chunk_is_reported_and_a_retry_regenerates_only_from_it(demo_context, batching):
    """Fault injection around the real model: chunk 2 fails once (alone, or in the batch of chunks 2-3)."""
    from core.engine.synthesis import ChunkFailed
    from core.types import SynthesisResult

    demo_context.synthesis.batching = batching
    demo_context.synthesis.chunk_chars = 30
    text = "First sentence is here. Second sentence is here. Third sentence is here."
    request = DesignRequest(text=text, description="Narrator.", sampling=Sampling(seed=12, max_new_tokens=5))
    reference = demo_context.synthesis.design(request)
    assert len(reference.chunks) == 3

    loaded = demo_context.models.get(demo_context.catalog.resolve("design", None))
    real = loaded.model.generate_voice_design
    calls, failures = [], []

    def flaky(**kwargs):
        calls.append(kwargs["text"])
        if len(calls) == 2 and not failures:
            failures.append(kwargs["text"])
            raise RuntimeError("CUDA error: device-side assert")
        return real(**kwargs)

    loaded.model.generate_voice_design = flaky
    try:
        with pytest.raises(ChunkFailed) as info:
            demo_context.synthesis.design(request)
        failed = info.value
        assert failed.index == 1 and failed.text == "Second sentence is here."
        assert ("chunks 2-3 of 3" if batching else "chunk 2 of 3") in str(failed) and "Second sentence" in str(failed)
        assert len(failed.completed) == 1
        calls.clear()
        items = list(demo_context.synthesis.resume(failed))
    finally:
        loaded.model.generate_voice_design = real
    again = ["Second sentence is here.", "Third sentence is here."]
    assert calls == ([again] if batching else again)  # chunk 1 not regenerated
    result = items[-1]
    assert isinstance(result, SynthesisResult)
    assert np.array_equal(result.audio.samples, reference.audio.samples)


def test_post_processing_options_are_applied_and_validated(demo_context):
    from core.audio.edit import PostProcessing

    base = dict(text="Post.", description="Any.", sampling=Sampling(seed=3, max_new_tokens=10))
    plain = demo_context.synthesis.design(DesignRequest(**base)).audio.samples
    levelled = demo_context.synthesis.design(
        DesignRequest(**base, post=PostProcessing(normalize="peak", remove_dc=True))
    ).audio.samples
    assert abs(float(np.max(np.abs(levelled))) - 10 ** (-1 / 20)) < 0.01  # peak at -1 dBFS
    assert abs(float(np.mean(levelled))) < 1e-4  # no DC left
    faded = demo_context.synthesis.design(
        DesignRequest(**base, post=PostProcessing(fade_in_s=0.1, fade_out_s=0.1))
    ).audio.samples
    assert faded.shape == plain.shape
    assert abs(faded[0]) < 1e-6 and abs(faded[-1]) < 1e-3  # faded in and out
    middle = slice(len(plain) // 2 - 100, len(plain) // 2 + 100)
    assert np.allclose(faded[middle], plain[middle])  # untouched between the fades
    with pytest.raises(InvalidInput, match="Normalisation 'loud'"):
        demo_context.synthesis.design(DesignRequest(**base, post=PostProcessing(normalize="loud")))
    with pytest.raises(InvalidInput, match="Fade in"):
        demo_context.synthesis.design(DesignRequest(**base, post=PostProcessing(fade_in_s=-1)))


def test_one_structured_log_line_per_generation_without_the_text(demo_context, caplog):
    import logging

    secret = "My very private sentence about Zanzibar."
    with caplog.at_level(logging.INFO, logger="core"):
        demo_context.synthesis.synthesize(
            DesignRequest(text=secret, description="Calm.", sampling=Sampling(seed=1, max_new_tokens=4)),
            client="anna@192.168.1.20",
        )
    lines = [r.getMessage() for r in caplog.records if "event=generation" in r.getMessage()]
    assert len(lines) == 1
    for field in (
        "mode=voice_design",
        "model=demo-1.7B-VoiceDesign",
        f"chars={len(secret)}",
        "audio_s=",
        "wall_s=",
        "rtf=",
        "client=anna@192.168.1.20",
    ):
        assert field in lines[0]
    assert any("event=model_load" in r.getMessage() for r in caplog.records)
    assert not any("Zanzibar" in r.getMessage() for r in caplog.records)
