"""The static-cache decode loop (core/engine/static_decode.py) against the stock ``generate()``.

On the tiny real checkpoints, at the same dtype and seed, the codes (read where the
stock call hands them to the speech tokenizer) and the audio must be identical in
every mode, sampled and greedy, fp32 and bf16.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from core.audio.clip import Audio
from core.audio.io import load_audio
from core.context import build_context
from core.engine.interface import BatchItem
from core.engine.static_decode import StaticKV, static_decoding
from core.engine.torch_engine import TorchEngine
from core.types import Mode, Sampling
from tests.conftest import make_demo_settings
from tests.core.engine.test_torch_engine import recorded_codes

SAMPLED = Sampling(temperature=0.9, top_k=50, top_p=0.95, repetition_penalty=1.05)


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def context(request, tmp_path_factory, demo_checkpoints):
    settings = make_demo_settings(tmp_path_factory.mktemp("static"), demo_checkpoints, dtype=request.param)
    return build_context(settings)


@pytest.fixture(scope="module")
def reference(speech_wav) -> Audio:
    return load_audio(speech_wav)


def run(engine, loaded, mode, item, sampling, *, static, extra=None):
    kwargs = {**sampling.generate_kwargs(), **(extra or {}), "max_new_tokens": item.max_new_tokens}
    torch.manual_seed(item.seed)
    with recorded_codes(loaded) as seen, static_decoding(loaded.model) if static else contextlib.nullcontext():
        audio = engine._stock_call(loaded, mode, [item], kwargs)[0]
    assert len(seen) == 1
    return seen[0], audio


def assert_identical(engine, loaded, mode, item, sampling=SAMPLED, extra=None):
    stock_codes, stock_audio = run(engine, loaded, mode, item, sampling, static=False, extra=extra)
    static_codes, static_audio = run(engine, loaded, mode, item, sampling, static=True, extra=extra)
    assert stock_codes.shape == static_codes.shape and stock_codes.shape[0] > 3
    assert torch.equal(stock_codes, static_codes), f"codes differ at {(stock_codes != static_codes).nonzero()[:3]}"
    assert stock_audio.shape == static_audio.shape and (stock_audio == static_audio).all()
    return stock_codes


def test_custom_voice_sampled_and_greedy(context):
    engine = context.synthesis.engine
    loaded = engine.load(context.synthesis.checkpoint_for(Mode.CUSTOM_VOICE, None))
    assert loaded.dtype == str(next(loaded.model.model.talker.parameters()).dtype).removeprefix("torch.")
    item = BatchItem(
        "Hello there, this is a static cache.", seed=3, max_new_tokens=24, language="english", speaker="ryan"
    )
    sampled = assert_identical(engine, loaded, Mode.CUSTOM_VOICE, item)
    greedy = assert_identical(
        engine, loaded, Mode.CUSTOM_VOICE, item, extra={"do_sample": False, "subtalker_dosample": False}
    )
    assert not torch.equal(sampled, greedy)  # sampling really sampled: the check above could fail
    instructed = BatchItem(item.text, seed=9, max_new_tokens=16, language="auto", speaker="ryan", instruct="Slowly.")
    assert_identical(engine, loaded, Mode.CUSTOM_VOICE, instructed)


def test_voice_design(context):
    engine = context.synthesis.engine
    loaded = engine.load(context.synthesis.checkpoint_for(Mode.VOICE_DESIGN, None))
    item = BatchItem(
        "A designed voice says this.", seed=11, max_new_tokens=20, language="english", instruct="A calm low voice."
    )
    assert_identical(engine, loaded, Mode.VOICE_DESIGN, item)


def test_clone_icl_and_x_vector(context, reference):
    synthesis = context.synthesis
    engine = synthesis.engine
    loaded = engine.load(synthesis.checkpoint_for(Mode.BASE, None))
    icl = synthesis.create_clone_prompt(reference, "This is the reference text.")
    xvec = synthesis.create_clone_prompt(reference, None, x_vector_only=True)
    for k, prompt in enumerate((icl, xvec)):
        item = BatchItem("A cloned voice reads this line.", seed=21 + k, max_new_tokens=18, prompt=prompt)
        assert_identical(engine, loaded, Mode.BASE, item)


def test_the_engine_option_runs_the_static_loop_and_a_batch_stays_stock(context):
    synthesis = context.synthesis
    stock_engine = synthesis.engine
    static_engine = TorchEngine(synthesis.manager, decode="static")
    loaded = static_engine.load(synthesis.checkpoint_for(Mode.CUSTOM_VOICE, None))
    item = BatchItem("The engine option.", seed=5, max_new_tokens=14, language="english", speaker="ryan")
    caches = []
    original = StaticKV.__init__

    def counting(self, *args, **kwargs):
        caches.append(args)
        original(self, *args, **kwargs)

    StaticKV.__init__ = counting
    try:
        with recorded_codes(loaded) as static_codes:
            a = static_engine.generate_one(loaded, Mode.CUSTOM_VOICE, item, SAMPLED)
        assert len(caches) == 2  # the talker's and the code predictor's, once per take
        with recorded_codes(loaded) as stock_codes:
            b = stock_engine.generate_one(loaded, Mode.CUSTOM_VOICE, item, SAMPLED)
        assert torch.equal(static_codes[0], stock_codes[0]) and (a.samples == b.samples).all()
        caches.clear()
        batch = [item, BatchItem("A second one.", seed=6, max_new_tokens=10, language="english", speaker="ryan")]
        static_engine.generate_batch(loaded, Mode.CUSTOM_VOICE, batch, SAMPLED)
        assert caches == []  # 2+ rows: the stock loop
    finally:
        StaticKV.__init__ = original
    with pytest.raises(Exception, match="decode"):
        TorchEngine(synthesis.manager, decode="fast")
