"""Which weights a run trains: LoRA adapters (peft) or the talker's own weights.

**LoRA** puts rank-``r`` adapters on every linear layer of the talker's transformer and of
its code predictor's transformer -- the attention projections ``q_proj``, ``k_proj``,
``v_proj``, ``o_proj`` and the MLP's ``gate_proj``, ``up_proj``, ``down_proj`` -- and
nothing else: the embeddings, the text projection, the output heads, the speaker encoder and
the speech tokenizer stay as they are. ``merge_and_unload`` folds them into the weights at
the end, so the trained checkpoint is a plain one.

**Full** fine-tuning trains every talker weight except the text-embedding table (151k rows in
the released models: 0.3-0.6 B weights whose AdamW state alone would take 2.5-5 GB, for the
few hundred tokens a voice's transcripts use). The speaker encoder is never trained: the
recipe detaches its embedding.
"""

from __future__ import annotations

from typing import Any

import torch

from core.finetune.config import TrainConfig, TrainMethod

# Relative to the talker: its transformer ("model.layers.N") and the code predictor's.
LORA_TARGETS = r"(model|code_predictor\.model)\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)"
LORA_LAYERS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def prepare_trainable(model: Any, config: TrainConfig) -> tuple[Any, list[torch.nn.Parameter]]:
    """Sets up ``model.talker`` for ``config.method``; returns (the peft model or None, the trained parameters)."""
    for param in model.parameters():
        param.requires_grad_(False)
    talker = model.talker
    if TrainMethod(config.method) is TrainMethod.LORA:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,  # no randomness in a step: Resume repeats a run exactly
            target_modules=LORA_TARGETS,
            bias="none",
        )
        # Injected in place: model.talker's linear layers become LoRA layers (fp32 adapters),
        # initialised from the run's seed (a second run of the same settings trains the same).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            peft_model = get_peft_model(talker, lora)
        return peft_model, [p for p in talker.parameters() if p.requires_grad]
    text_table = talker.get_text_embeddings().weight
    for param in talker.parameters():
        if param is not text_table:
            param.requires_grad_(True)
    return None, [p for p in talker.parameters() if p.requires_grad]


def trained_weights(model: Any) -> dict[str, torch.Tensor]:
    """The trained tensors by name (what a checkpoint keeps): adapters, or the trained talker weights."""
    return {name: p.detach() for name, p in model.talker.named_parameters() if p.requires_grad}


def load_trained_weights(model: Any, weights: dict[str, torch.Tensor]) -> None:
    """Puts kept tensors back into the talker (the same method and names as they were saved with)."""
    params = dict(model.talker.named_parameters())
    missing = [name for name in weights if name not in params]
    if missing:
        raise ValueError(f"the checkpoint names weights this model has not: {missing[:3]}")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))


def merge(peft_model: Any) -> None:
    """Folds the LoRA adapters into the talker's weights, in place (peft's merge_and_unload)."""
    if peft_model is not None:
        peft_model.merge_and_unload()


def training_dtype(device: str, method: TrainMethod, preference: str, cuda_bf16: bool) -> torch.dtype:
    """bf16 on CUDA (the recipe's precision) and for LoRA on MPS (frozen weights halve the memory;
    the adapters stay fp32); fp32 on the CPU and for full fine-tuning on MPS."""
    if preference != "auto":
        return {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[preference]
    if device.startswith("cuda"):
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if device == "mps" and TrainMethod(method) is TrainMethod.LORA:
        return torch.bfloat16
    return torch.float32
