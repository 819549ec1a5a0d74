"""The torch engine's batches on the tiny real checkpoints: each item as it would be alone.

Codes are read where the stock call hands them to the speech tokenizer (an
instance-level wrapper on ``decode``, which the engine's per-item decode calls
once per item), so "same codes" means what the model said, not just the audio.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from core.audio.clip import Audio
from core.engine.interface import BatchItem, Capabilities
from core.engine.torch_engine import TorchEngine, per_row_sampling
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Mode, Sampling

TEXTS = [
    "Hello there, this is one.",
    "A much longer sentence goes here for the second item, with more words in it.",
    "Short.",
    "Fourth one, of a medium length.",
]
GREEDY = {"do_sample": False, "subtalker_dosample": False}


@contextlib.contextmanager
def recorded_codes(loaded):
    """Every code sequence the stock call decodes, in order."""
    tokenizer = loaded.model.model.speech_tokenizer
    stock = tokenizer.decode
    seen: list[torch.Tensor] = []

    def decode(encoded):
        for one in encoded:
            seen.append(torch.as_tensor(one["audio_codes"]).clone())
        return stock(encoded)

    tokenizer.decode = decode
    try:
        yield seen
    finally:
        del tokenizer.decode


def engine_and_model(context, mode):
    synthesis = context.synthesis
    loaded = synthesis.engine.load(synthesis.checkpoint_for(mode, None))
    return synthesis.engine, loaded


def solo_codes(engine, loaded, mode, items, sampling, extra=None):
    """Each item alone through the stock single call (seeded with torch.manual_seed)."""
    codes, audio = [], []
    for item in items:
        with recorded_codes(loaded) as seen:
            if extra:
                torch.manual_seed(item.seed)
                kwargs = {**sampling.generate_kwargs(), **extra, "max_new_tokens": item.max_new_tokens}
                audio.append(engine._stock_call(loaded, mode, [item], kwargs)[0])
            else:
                audio.append(engine.generate_one(loaded, mode, item, sampling).samples)
        codes.append(seen[0])
    return codes, audio


def batch_codes(engine, loaded, mode, items, sampling, extra=None):
    with recorded_codes(loaded) as seen:
        out = engine.generate_batch(loaded, mode, items, sampling, extra=extra)
    return seen, [a.samples for a in out]


def assert_same(solo, batched):
    (codes_a, audio_a), (codes_b, audio_b) = solo, batched
    assert len(codes_a) == len(codes_b)
    for k, (a, b) in enumerate(zip(codes_a, codes_b, strict=True)):
        assert a.shape == b.shape, f"item {k}: {tuple(a.shape)} frames alone, {tuple(b.shape)} in the batch"
        assert torch.equal(a, b), f"item {k}: codes differ at {(a != b).nonzero()[:3].tolist()}"
    for k, (a, b) in enumerate(zip(audio_a, audio_b, strict=True)):
        assert np.array_equal(a, b), f"item {k}: audio differs by {np.abs(a - b).max()}"


def test_batched_greedy_codes_equal_unbatched(demo_context):
    engine, loaded = engine_and_model(demo_context, Mode.CUSTOM_VOICE)
    items = [BatchItem(t, seed=1, max_new_tokens=20, language="english", speaker="ryan") for t in TEXTS]
    sampling = Sampling()
    solo = solo_codes(engine, loaded, Mode.CUSTOM_VOICE, items, sampling, GREEDY)
    batched = batch_codes(engine, loaded, Mode.CUSTOM_VOICE, items, sampling, GREEDY)
    assert all(c.shape[0] == 19 for c in solo[0])  # a cap of N new tokens gives N - 1 frames
    assert_same(solo, batched)
    # The batch ran on pre-packed Linears (CPU), and the codes above are still the solo ones.
    from core.engine.torch_engine import PackedLinear

    talker = loaded.model.model.talker
    assert talker._studio_prepacked is True
    assert sum(isinstance(m, PackedLinear) for m in talker.modules()) > 10


def test_sampled_batch_items_keep_their_own_seeds_and_caps(demo_context):
    engine, loaded = engine_and_model(demo_context, Mode.CUSTOM_VOICE)
    caps = [18, 9, 14, 5]
    items = [
        BatchItem(t, seed=100 + 7 * k, max_new_tokens=c, language="english", speaker=s)
        for k, (t, c, s) in enumerate(zip(TEXTS, caps, ["ryan", "vivian", "ryan", "aiden"], strict=True))
    ]
    sampling = Sampling(temperature=0.9, top_k=50, top_p=1.0, repetition_penalty=1.05)
    solo = solo_codes(engine, loaded, Mode.CUSTOM_VOICE, items, sampling)
    batched = batch_codes(engine, loaded, Mode.CUSTOM_VOICE, items, sampling)
    assert [c.shape[0] for c in batched[0]] == [c - 1 for c in caps]
    assert_same(solo, batched)
    # Different seeds really sample differently (the check above could not pass by accident).
    assert not torch.equal(solo[0][0][:4], solo[0][2][:4])


def test_design_batch_with_different_descriptions(demo_context):
    engine, loaded = engine_and_model(demo_context, Mode.VOICE_DESIGN)
    items = [
        BatchItem(t, seed=5 + k, max_new_tokens=10, language="english", instruct=d)
        for k, (t, d) in enumerate(zip(TEXTS[:3], ["A calm low voice.", "Bright and quick.", "Whispering."]))
    ]
    sampling = Sampling(temperature=0.8)
    assert_same(
        solo_codes(engine, loaded, Mode.VOICE_DESIGN, items, sampling),
        batch_codes(engine, loaded, Mode.VOICE_DESIGN, items, sampling),
    )


def test_clone_batch_equals_each_clone_alone(demo_context, reference_audio):
    synthesis = demo_context.synthesis
    engine, loaded = engine_and_model(demo_context, Mode.BASE)
    icl = synthesis.create_clone_prompt(reference_audio, "This is the reference text.")
    xvec = synthesis.create_clone_prompt(reference_audio, None)
    items = [
        BatchItem(TEXTS[0], seed=11, max_new_tokens=12, prompt=icl),
        BatchItem(TEXTS[1], seed=12, max_new_tokens=8, prompt=xvec),
        BatchItem(TEXTS[2], seed=13, max_new_tokens=12, prompt=icl),
    ]
    sampling = Sampling()
    assert_same(
        solo_codes(engine, loaded, Mode.BASE, items, sampling), batch_codes(engine, loaded, Mode.BASE, items, sampling)
    )


def test_per_row_sampling_leaves_other_calls_alone():
    probs = torch.full((2, 50), 1 / 50)
    gens = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    with per_row_sampling(gens):
        rows = torch.multinomial(probs, 1)
        one = torch.multinomial(probs[:1], 1, generator=torch.Generator().manual_seed(1))  # explicit: untouched
    assert rows[0].item() == one.item()
    assert rows[1].item() == torch.multinomial(probs[:1], 1, generator=torch.Generator().manual_seed(2)).item()
    torch.manual_seed(9)
    outside = torch.multinomial(probs, 1)
    torch.manual_seed(9)
    assert torch.equal(outside, torch.multinomial(probs, 1))


def test_long_take_batched_equals_unbatched_and_names_the_engine(demo_settings):
    from core.context import build_context

    context = build_context(demo_settings.replace(chunk_chars=40))
    synthesis = context.synthesis
    text = "First sentence is here. Second one follows now. Third is short. Fourth goes on a little. Fifth, the last."
    request = CustomVoiceRequest(
        text=text, speaker="ryan", language="english", sampling=Sampling(seed=7, max_new_tokens=14)
    )
    batched = synthesis.synthesize(request)
    synthesis.batching = False
    alone = synthesis.synthesize(request)
    assert len(batched.chunks) >= 4
    assert np.array_equal(batched.audio.samples, alone.audio.samples)
    assert batched.info()["engine"] == "torch" and batched.engine == "torch"


def test_variants_are_ordinary_takes_with_consecutive_seeds(demo_context):
    synthesis = demo_context.synthesis
    request = DesignRequest(
        text="Hello there.", description="A calm voice.", sampling=Sampling(seed=40, max_new_tokens=12)
    )
    takes = synthesis.variants(request, 3)
    assert [t.seed for t in takes] == [40, 41, 42]
    for take in takes:
        again = synthesis.synthesize(
            DesignRequest(
                text="Hello there.", description="A calm voice.", sampling=Sampling(seed=take.seed, max_new_tokens=12)
            )
        )
        assert np.array_equal(take.audio.samples, again.audio.samples)
    assert not np.array_equal(takes[0].audio.samples, takes[1].audio.samples)


@pytest.mark.parametrize("count", [0, 9, 2.5, True])
def test_variants_refuse_a_bad_count(demo_context, count):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="Takes must be a whole number from 1 to 8"):
        demo_context.synthesis.variants(DesignRequest(text="Hi.", description="Calm."), count)


def test_capabilities_and_batch_size(demo_context):
    engine, loaded = engine_and_model(demo_context, Mode.CUSTOM_VOICE)
    caps = engine.capabilities(loaded)
    assert isinstance(caps, Capabilities) and caps.engine == "torch" and caps.per_item_seeds
    assert caps.max_batch == 8 and "int8" in caps.quantize
    items = [BatchItem("Hi.", seed=k, max_new_tokens=20) for k in range(12)]
    assert engine.batch_size(loaded, items) == 8
    assert engine.batch_size(loaded, items[:3]) == 3
    assert TorchEngine(demo_context.models, max_batch=2).batch_size(loaded, items) == 2


@pytest.fixture
def reference_audio(speech_wav) -> Audio:
    from core.audio.io import load_audio

    return load_audio(speech_wav)


def test_clone_request_through_the_service_batches_too(demo_settings, reference_audio):
    from core.context import build_context

    context = build_context(demo_settings.replace(chunk_chars=30))
    synthesis = context.synthesis
    request = CloneRequest(
        text="One line of text here. And a second line. A third line to end.",
        reference=reference_audio,
        reference_text="This is the reference text.",
        sampling=Sampling(seed=3, max_new_tokens=10),
    )
    batched = synthesis.synthesize(request)
    synthesis.batching = False
    assert np.array_equal(batched.audio.samples, synthesis.synthesize(request).audio.samples)


def test_quantize_int8_setting_is_named_in_the_take_and_changes_it(demo_settings):
    from core.context import build_context

    request = DesignRequest(
        text="Hello there.", description="A calm voice.", sampling=Sampling(seed=4, max_new_tokens=10)
    )
    exact = build_context(demo_settings).synthesis.synthesize(request)
    int8 = build_context(demo_settings.replace(quantize="int8")).synthesis.synthesize(request)
    assert exact.info()["engine"] == "torch" and int8.info()["engine"] == "torch+int8"
    assert not np.array_equal(exact.audio.samples, int8.audio.samples)


def test_quantize_refuses_an_unknown_kind(demo_context):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="Unknown quantization 'int4'"):
        TorchEngine(demo_context.models, quantize="int4")
