"""The static-cache decode path: a manual decode loop for the talker and the code predictor.

``qwen_tts`` 0.1.1 generates with Hugging Face ``generate()`` twice over: once
for the talker (one step per codec frame) and, inside every talker step, once
more for the code predictor (15 steps per frame). Each predictor call builds a
generation config, logits processors, stopping criteria and a fresh
``DynamicCache``, and every cache step concatenates the whole K/V tensor again.
faster-qwen3-tts (andimarafioti/faster-qwen3-tts) replaces both with a manual
loop over a pre-allocated KV cache (and captures it in CUDA graphs on NVIDIA).
This module is our own version of the manual loop, built for exactness:

* the **same modules run**: every step is the stock ``talker(...)`` /
  ``code_predictor(...)`` forward (so forward hooks -- live decoding's frame
  tap, Stop's per-frame check -- see every step), fed exactly what
  ``generate()`` would feed it (cache positions, the growing attention mask,
  the model kwargs qwen_tts threads through);
* the **same sampling**: the logits processors and stopping criteria are built
  once per call by ``generate()``'s own builders from the same kwargs and the
  model's generation config, and a token is drawn as ``generate()`` draws it
  (fp32 logits, the processors, ``softmax``, ``torch.multinomial``), so the
  global RNG is consumed in the same order;
* the **static KV cache** (:class:`StaticKV`): each layer's K/V live in one
  buffer allocated for the whole call (the predictor's is reused for every
  frame); a step writes its K/V in place and attention reads the filled prefix
  -- the same shapes as the dynamic cache's, so the same kernels.

On the CPU this is bit-identical to the stock ``generate()`` at the same dtype
and seed, in all three modes (tests/core/engine/test_static_decode.py compares
the codes). One item at a time: a batch (2+ rows) goes through the stock
``generate()`` unchanged. CUDA-graph capture is NOT here: it needs a GPU to be
written and measured (issue 26 names what remains).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.generation import GenerateDecoderOnlyOutput, LogitsProcessorList, StoppingCriteriaList

log = logging.getLogger(__name__)

DECODE_CHOICES = ("stock", "static")


class _StaticLayer(DynamicLayer):
    """One layer's K/V in a buffer allocated once; ``keys``/``values`` are views of the filled prefix."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None

    def lazy_initialization(self, key_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        batch, heads, _, dim = key_states.shape
        shape = (batch, heads, self.capacity, dim)
        self._k = torch.empty(shape, dtype=key_states.dtype, device=key_states.device)
        self._v = torch.empty(shape, dtype=key_states.dtype, device=key_states.device)
        self.keys, self.values = self._k[:, :, :0], self._v[:, :, :0]
        self.is_initialized = True

    def update(self, key_states, value_states, cache_kwargs=None):
        if not self.is_initialized:
            self.lazy_initialization(key_states)
        assert self._k is not None and self._v is not None
        end = self.length + key_states.shape[-2]
        if end > self.capacity:  # never expected (capacity = prompt + cap); grow rather than fail
            extra = end - self.capacity
            self._k = torch.cat([self._k, self._k.new_empty(*self._k.shape[:2], extra, self._k.shape[-1])], dim=-2)
            self._v = torch.cat([self._v, self._v.new_empty(*self._v.shape[:2], extra, self._v.shape[-1])], dim=-2)
            self.capacity = end
        self._k[:, :, self.length : end].copy_(key_states)
        self._v[:, :, self.length : end].copy_(value_states)
        self.length = end
        self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
        return self.keys, self.values

    def rewind(self) -> None:
        """Empty again, keeping the buffers (the code predictor starts over every frame)."""
        self.length = 0
        if self._k is not None and self._v is not None:
            self.keys, self.values = self._k[:, :, :0], self._v[:, :, :0]


class StaticKV(DynamicCache):
    """A cache with the dynamic cache's interface over pre-allocated per-layer buffers."""

    def __init__(self, layers: int, capacity: int):
        super().__init__()
        self.layers = [_StaticLayer(capacity) for _ in range(layers)]
        self.layer_class_to_replicate = None  # all layers exist up front

    def rewind(self) -> None:
        for layer in self.layers:
            assert isinstance(layer, _StaticLayer)
            layer.rewind()


def _hf_pieces(model: Any, kwargs: dict[str, Any], inputs_embeds: torch.Tensor) -> tuple[Any, Any, Any]:
    """generate()'s own generation config, logits processors and stopping criteria for these kwargs."""
    config, _ = model._prepare_generation_config(None, **kwargs)
    model._prepare_special_tokens(config, True, device=inputs_embeds.device)
    config = model._prepare_generated_length(
        generation_config=config,
        has_default_max_length=kwargs.get("max_length") is None and config.max_length is not None,
        has_default_min_length=kwargs.get("min_length") is None and config.min_length is not None,
        model_input_name="inputs_embeds",
        inputs_tensor=inputs_embeds,
        input_ids_length=0,
    )
    processors = model._get_logits_processor(
        generation_config=config,
        input_ids_seq_length=0,
        encoder_input_ids=inputs_embeds,
        prefix_allowed_tokens_fn=None,
        logits_processor=LogitsProcessorList(),
        device=inputs_embeds.device,
        model_kwargs={},
    )
    criteria = model._get_stopping_criteria(generation_config=config, stopping_criteria=StoppingCriteriaList())
    return config, processors, criteria


def _next_token(outputs: Any, input_ids: torch.Tensor, processors: Any, do_sample: bool) -> torch.Tensor:
    """One token, drawn exactly as generate()'s sampling loop draws it."""
    logits = outputs.logits[:, -1, :].to(copy=True, dtype=torch.float32, device=input_ids.device)
    scores = processors(input_ids, logits)
    if do_sample:
        probs = torch.nn.functional.softmax(scores, dim=-1)
        return torch.multinomial(probs, num_samples=1).squeeze(1)
    return torch.argmax(scores, dim=-1)


class _Predictor:
    """The code predictor's 15 steps per frame, over one static cache reused for every frame."""

    def __init__(self, predictor: Any, kwargs: dict[str, Any], example: torch.Tensor):
        self.predictor = predictor
        self.kwargs = kwargs
        self.config, self.processors, self.criteria = _hf_pieces(predictor, kwargs, example)
        steps = int(kwargs["max_new_tokens"])
        self.cache = StaticKV(predictor.config.num_hidden_layers, example.shape[1] + steps)

    def generate(self, inputs_embeds: torch.Tensor, **kwargs: Any) -> Any:
        if kwargs != self.kwargs or inputs_embeds.shape[0] != 1:
            raise RuntimeError("static decode: the code predictor was called with other arguments")
        device = inputs_embeds.device
        self.cache.rewind()
        input_ids = torch.ones((1, 0), dtype=torch.long, device=device)
        mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=device)
        position = torch.arange(inputs_embeds.shape[1], device=device)
        step_kwargs: dict[str, Any] = {"inputs_embeds": inputs_embeds}
        while True:
            outputs = self.predictor(
                **step_kwargs,
                attention_mask=mask,
                position_ids=position.unsqueeze(0),
                cache_position=position,
                past_key_values=self.cache,
                use_cache=True,
                output_hidden_states=True,
                return_dict=True,
            )
            token = _next_token(outputs, input_ids, self.processors, self.config.do_sample)
            input_ids = torch.cat([input_ids, token[:, None]], dim=-1)
            if bool(self.criteria(input_ids, None).all()):
                break
            mask = torch.cat([mask, mask.new_ones((1, 1))], dim=-1)
            position = position[-1:] + 1
            step_kwargs = {"input_ids": input_ids[:, -1:], "generation_steps": outputs.generation_steps}
        sequences: Any = input_ids  # a LongTensor, as generate() returns
        return GenerateDecoderOnlyOutput(sequences=sequences)


def static_generate(talker: Any, stock_generate: Any, **kwargs: Any) -> Any:
    """The talker's ``generate()`` as qwen_tts calls it, as a manual loop over static caches."""
    inputs_embeds: torch.Tensor = kwargs["inputs_embeds"]
    if inputs_embeds.shape[0] != 1 or not kwargs.get("return_dict_in_generate"):
        return stock_generate(**kwargs)  # a batch: the stock loop (per-row seeds, caps) as before
    carried = {  # what qwen_tts threads through every talker step
        key: kwargs.pop(key)
        for key in (
            "attention_mask",
            "trailing_text_hidden",
            "tts_pad_embed",
            "subtalker_dosample",
            "subtalker_top_k",
            "subtalker_top_p",
            "subtalker_temperature",
        )
    }
    kwargs.pop("inputs_embeds")
    config, processors, criteria = _hf_pieces(talker, kwargs, inputs_embeds)
    device = inputs_embeds.device
    prompt = inputs_embeds.shape[1]
    cache = StaticKV(talker.config.num_hidden_layers, prompt + int(config.max_length))
    predictor = talker.code_predictor
    predictor_kwargs = dict(
        max_new_tokens=talker.config.num_code_groups - 1,
        do_sample=carried["subtalker_dosample"],
        top_p=carried["subtalker_top_p"],
        top_k=carried["subtalker_top_k"],
        temperature=carried["subtalker_temperature"],
        output_hidden_states=True,
        return_dict_in_generate=True,
    )
    fast_predictor = _Predictor(predictor, predictor_kwargs, inputs_embeds.new_zeros((1, 2, inputs_embeds.shape[-1])))
    input_ids = torch.ones((1, 0), dtype=torch.long, device=device)
    mask = carried.pop("attention_mask")
    position = torch.arange(prompt, device=device)
    step_kwargs: dict[str, Any] = {"inputs_embeds": inputs_embeds, "generation_step": None, "past_hidden": None}
    hidden: list[tuple] = []
    with torch.no_grad(), _predictor_generate(predictor, fast_predictor.generate):
        while True:
            outputs = talker(
                **step_kwargs,
                **carried,
                attention_mask=mask,
                cache_position=position,
                past_key_values=cache,
                use_cache=True,
                output_hidden_states=True,
                return_dict=True,
            )
            layers, codes = outputs.hidden_states
            hidden.append(((layers[-1],), codes))  # all qwen_tts reads: the last layer and the codes
            token = _next_token(outputs, input_ids, processors, config.do_sample)
            input_ids = torch.cat([input_ids, token[:, None]], dim=-1)
            if bool(criteria(input_ids, None).all()):
                break
            mask = torch.cat([mask, mask.new_ones((1, 1))], dim=-1)
            position = position[-1:] + 1
            step_kwargs = {
                "input_ids": input_ids[:, -1:],
                "past_hidden": outputs.past_hidden,
                "generation_step": outputs.generation_step,
            }
    sequences: Any = input_ids  # a LongTensor; hidden: what generate() returns, cut to what qwen_tts reads
    steps: Any = tuple(hidden)
    return GenerateDecoderOnlyOutput(sequences=sequences, hidden_states=steps, past_key_values=cache)


@contextlib.contextmanager
def _predictor_generate(predictor: Any, generate: Any) -> Iterator[None]:
    had = "generate" in vars(predictor)
    previous = vars(predictor).get("generate")
    predictor.generate = generate
    try:
        yield
    finally:
        if had:
            predictor.generate = previous
        else:
            del predictor.generate


@contextlib.contextmanager
def static_decoding(model: Any) -> Iterator[None]:
    """Within this block, ``model`` (a ``Qwen3TTSModel``) generates one item through :func:`static_generate`."""
    found = getattr(getattr(model, "model", None), "talker", None)
    if not isinstance(found, torch.nn.Module):
        yield
        return
    talker: Any = found  # its generate is replaced for the block (an instance attribute)
    had = "generate" in vars(talker)
    stock = talker.generate

    def generate(**kwargs: Any) -> Any:
        return static_generate(talker, stock, **kwargs)

    talker.generate = generate
    try:
        yield
    finally:
        if had:
            talker.generate = stock
        else:
            del talker.generate
