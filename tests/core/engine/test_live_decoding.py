"""The faster generation path (core/engine/live_decoding.py) on the tiny demo models.

Its promise is "same codes, same take, audio earlier": every mode is checked
element for element against the plain stock ``Qwen3TTSModel.generate_*`` call
with the same seed, with and without live pieces. No timing thresholds.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.engine.live_decoding import FastOptions, FastPath, LiveAudio
from core.engine.synthesis import ChunkAudio
from core.types import (
    CloneRequest,
    CustomVoiceRequest,
    DesignRequest,
    Sampling,
    SynthesisResult,
)
from tests.conftest import make_demo_settings

TEXT = "The quick brown fox jumps over the lazy dog."
FRAMES = 10  # the talker runs FRAMES steps and keeps FRAMES - 1 frames
SEED = 11


@pytest.fixture(scope="module")
def context(tmp_path_factory, demo_checkpoints):
    from core.context import build_context

    settings = make_demo_settings(tmp_path_factory.mktemp("fast-data"), demo_checkpoints, max_resident=3)
    return build_context(settings)


@pytest.fixture(scope="module")
def prompts(context):
    """An ICL clone prompt (reference codes decoded in front) and an x-vector-only one."""
    from core.tools.bench.common import synthetic_reference

    service = context.synthesis
    reference = synthetic_reference()
    return {
        "icl": service.create_clone_prompt(reference, "A calm reference voice."),
        "xvec": service.create_clone_prompt(reference, None, x_vector_only=True),
    }


def _request(mode: str, prompts, frames: int = FRAMES):
    sampling = Sampling(seed=SEED, max_new_tokens=frames)
    if mode == "voice_design":
        return DesignRequest(text=TEXT, description="A calm voice.", sampling=sampling)
    if mode == "custom_voice":
        return CustomVoiceRequest(text=TEXT, speaker="ryan", sampling=sampling)
    return CloneRequest(text=TEXT, prompt=prompts[mode], sampling=sampling)


def _stock(context, mode: str, prompts) -> tuple[np.ndarray, torch.Tensor]:
    """The plain package call, exactly as a script would make it, plus its talker codes."""
    from core.engine.device import seed_everything

    kind = "base" if mode in ("icl", "xvec") else mode
    model = context.models.get(context.synthesis.checkpoint_for(kind, None)).model
    codes: list[torch.Tensor] = []

    def hook(_m, _a, out):
        if out.hidden_states[1] is not None:
            codes.append(out.hidden_states[1][0].clone())

    handle = model.model.talker.register_forward_hook(hook)
    try:
        seed_everything(SEED)
        if mode == "voice_design":
            wavs, _ = model.generate_voice_design(
                text=TEXT, language="auto", instruct="A calm voice.", max_new_tokens=FRAMES
            )
        elif mode == "custom_voice":
            wavs, _ = model.generate_custom_voice(text=TEXT, language="auto", speaker="ryan", max_new_tokens=FRAMES)
        else:
            wavs, _ = model.generate_voice_clone(
                text=TEXT, language="auto", voice_clone_prompt=prompts[mode].to_qwen(), max_new_tokens=FRAMES
            )
    finally:
        handle.remove()
    return np.asarray(wavs[0], dtype=np.float32), torch.stack(codes)


@pytest.mark.parametrize("mode", ["voice_design", "custom_voice", "icl", "xvec"])
def test_same_codes_and_same_take_as_the_stock_call_in_every_mode(context, prompts, mode):
    stock_audio, stock_codes = _stock(context, mode, prompts)
    items = list(context.synthesis.stream(_request(mode, prompts), live=True))
    result = items[-1]
    assert isinstance(result, SynthesisResult)
    last = context.synthesis.engine.fast.last
    assert last.mode == "fast" and torch.equal(last.codes, stock_codes)
    assert np.array_equal(result.audio.samples, stock_audio)

    live = [i for i in items if isinstance(i, LiveAudio)]
    chunks = [i for i in items if isinstance(i, ChunkAudio)]
    assert len(chunks) == 1 and np.array_equal(chunks[0].audio.samples, stock_audio)
    assert len(live) >= 2 and live[-1].exact and not any(p.exact for p in live[:-1])
    # The pieces tile the chunk without gaps; windowed decoding is close to, not equal to, the take.
    joined = np.concatenate([p.audio.samples for p in live])
    assert joined.shape == stock_audio.shape
    offsets = np.cumsum([0] + [len(p.audio) for p in live[:-1]]) / 24_000
    assert np.allclose([p.offset_s for p in live], offsets)
    assert np.max(np.abs(joined - stock_audio)) < 0.05
    assert result.timings["first_audio_s"] <= result.timings["total_s"]


def test_without_live_the_stream_is_what_it_was(context, prompts):
    """No LiveAudio unless asked for: one ChunkAudio per chunk, then the result."""
    request = _request("custom_voice", prompts)
    items = list(context.synthesis.stream(request))
    assert [type(i) for i in items] == [ChunkAudio, SynthesisResult]
    stock_audio, _ = _stock(context, "custom_voice", prompts)
    assert np.array_equal(items[-1].audio.samples, stock_audio)


def test_the_off_switch_runs_the_plain_call(context, prompts):
    service, engine = context.synthesis, context.synthesis.engine
    saved = engine.fast
    engine.fast = FastPath(FastOptions(enabled=False))
    try:
        items = list(service.stream(_request("voice_design", prompts), live=True))
        assert engine.fast.last.mode == "stock"
    finally:
        engine.fast = saved
    assert not any(isinstance(i, LiveAudio) for i in items)
    stock_audio, _ = _stock(context, "voice_design", prompts)
    assert np.array_equal(items[-1].audio.samples, stock_audio)


def test_stopping_early_stops_the_worker_and_frees_the_device(context, prompts):
    threads_before = torch.get_num_threads()
    stream = context.synthesis.stream(_request("custom_voice", prompts, frames=60), live=True)
    first = next(stream)
    assert isinstance(first, LiveAudio) and not first.exact
    stream.close()
    assert not any(t.name == "qwen-tts-generate" and t.is_alive() for t in threading.enumerate())
    assert torch.get_num_threads() == threads_before
    # The device lock was released: the next take runs.
    assert isinstance(context.synthesis.synthesize(_request("custom_voice", prompts, frames=4)), SynthesisResult)


def test_a_failure_in_the_worker_reaches_the_caller_as_before(context, prompts, monkeypatch):
    from core.engine.synthesis import ChunkFailed

    model = context.models.get(context.synthesis.checkpoint_for("voice_design", None)).model

    def broken(*_a, **_k):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(model, "generate_voice_design", broken)
    with pytest.raises(ChunkFailed, match="synthetic failure"):
        list(context.synthesis.stream(_request("voice_design", prompts), live=True))
    assert "generate" not in vars(model.model)  # the instrumentation was undone
    assert not model.model.talker._forward_hooks


def test_int8_is_opt_in_and_still_makes_audio(demo_checkpoints):
    """Lossy: only checks that it quantises the talker and still generates finite audio."""
    from core.engine.live_decoding import quantize_int8
    from core.engine.model_manager import qwen_loader

    model = qwen_loader(demo_checkpoints["custom_voice"], "cpu", torch.float32)
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.model.talker.modules())
    assert quantize_int8(model) == linears > 0
    torch.manual_seed(0)
    wavs, sr = model.generate_custom_voice(text=TEXT, language="auto", speaker="ryan", max_new_tokens=6)
    assert sr == 24_000 and wavs[0].size == 5 * 1920 and np.isfinite(wavs[0]).all()
