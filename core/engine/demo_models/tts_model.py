"""The TTS model: talker, code predictor and (for Base) speaker encoder, at tiny sizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.engine.demo_models.layout import (
    CODEBOOK_SIZE,
    DEMO_CONFIG_KEY,
    HEAD_DIM,
    NUM_CODE_GROUPS,
    SAMPLE_RATE,
    write_json,
)
from core.engine.demo_models.weights import randomize, save_weights, unit_gain_convs
from core.types import Mode

# Codec vocabulary of the talker: 2048 speech codes, then control ids. The talker's
# sampler suppresses the top 1024 ids except EOS, so the vocab must exceed 1024 and
# every control / language / speaker id lives in that suppressed range.
_CODEC_VOCAB_SIZE = 3072
_CODEC_IDS = {
    "codec_pad_id": 2148,
    "codec_bos_id": 2149,
    "codec_eos_token_id": 2150,
    "codec_think_id": 2154,
    "codec_nothink_id": 2155,
    "codec_think_bos_id": 2156,
    "codec_think_eos_id": 2157,
}
# Real language ids where known; the two dialect ids only need to be unused slots.
_LANGUAGE_IDS = {
    "english": 2050,
    "german": 2053,
    "spanish": 2054,
    "chinese": 2055,
    "japanese": 2058,
    "french": 2061,
    "korean": 2064,
    "russian": 2069,
    "italian": 2070,
    "portuguese": 2071,
    "beijing_dialect": 2074,
    "sichuan_dialect": 2075,
}
# Keys must be lower case: qwen_tts looks speakers up with speaker.lower().
# vivian/serena/ryan carry their real ids; the others take free slots nearby.
_SPEAKER_IDS = {
    "ryan": 3061,
    "aiden": 3062,
    "dylan": 3063,
    "eric": 3064,
    "vivian": 3065,
    "serena": 3066,
    "uncle_fu": 3067,
    "ono_anna": 3068,
    "sohee": 3069,
}
_SPEAKER_DIALECTS: dict[str, str | bool] = {name: False for name in _SPEAKER_IDS}
_SPEAKER_DIALECTS.update({"dylan": "beijing_dialect", "eric": "sichuan_dialect"})

_TALKER_HIDDEN = 32  # tiny: big enough to exercise every code path, small enough to build fast

GENERATION_CONFIG = {
    # Read by qwen_tts as the defaults of every generate_* call. Random weights
    # almost never emit the stop code, so the default length cap is kept short
    # (96 frames, about 7.7 s); callers pass max_new_tokens to override it.
    "do_sample": True,
    "top_k": 50,
    "top_p": 1.0,
    "temperature": 0.9,
    "repetition_penalty": 1.05,
    "subtalker_dosample": True,
    "subtalker_top_k": 50,
    "subtalker_top_p": 1.0,
    "subtalker_temperature": 0.9,
    "max_new_tokens": 96,
}


def tts_config(mode: str, text_info: dict[str, int]) -> dict[str, Any]:
    text_vocab_size = -(-text_info["vocab_size"] // 16) * 16  # must cover every text token id
    custom = mode == Mode.CUSTOM_VOICE
    talker = {
        "vocab_size": _CODEC_VOCAB_SIZE,
        "hidden_size": _TALKER_HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-6,
        "use_cache": True,
        "tie_word_embeddings": False,
        "rope_theta": 1_000_000,
        # Multimodal RoPE as in the real model: interleaved sections summing to head_dim / 2.
        "rope_scaling": {"rope_type": "default", "mrope_section": [4, 2, 2], "interleaved": True},
        "attention_bias": False,
        "use_sliding_window": False,
        "attention_dropout": 0.0,
        "num_code_groups": NUM_CODE_GROUPS,
        "text_hidden_size": _TALKER_HIDDEN,
        "text_vocab_size": text_vocab_size,
        **_CODEC_IDS,
        "codec_language_id": dict(_LANGUAGE_IDS),
        # Base and VoiceDesign have no built-in speakers, but the model reads both maps.
        "spk_id": dict(_SPEAKER_IDS) if custom else {},
        "spk_is_dialect": dict(_SPEAKER_DIALECTS) if custom else {},
        "code_predictor_config": {
            "vocab_size": CODEBOOK_SIZE,  # predicts codebooks 1..15 of the speech tokenizer
            "hidden_size": _TALKER_HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": HEAD_DIM,  # the default 128 would dwarf the tiny hidden size
            "hidden_act": "silu",
            "max_position_embeddings": 65536,
            "initializer_range": 0.02,
            "rms_norm_eps": 1e-6,
            "use_cache": True,
            "tie_word_embeddings": False,
            "rope_theta": 1_000_000,
            "attention_bias": False,
            "use_sliding_window": False,
            "max_window_layers": 1,
            "attention_dropout": 0.0,
            "num_code_groups": NUM_CODE_GROUPS,
        },
    }
    # ECAPA-TDNN speaker encoder (used by Base only): 128 mel bins are hard-coded in
    # qwen_tts, enc_dim is the talker width (the embedding is fed as a talker input),
    # middle channels are equal (residual blocks), the last is their sum (concatenation),
    # and every channel count is divisible by the res2net scale.
    speaker_encoder = {
        "mel_dim": 128,
        "enc_dim": _TALKER_HIDDEN,
        "enc_channels": [32, 32, 32, 64],
        "enc_kernel_sizes": [5, 3, 3, 1],
        "enc_dilations": [1, 2, 3, 1],
        "enc_attention_channels": 16,
        "enc_res2net_scale": 4,
        "enc_se_channels": 16,
        "sample_rate": SAMPLE_RATE,
    }
    return {
        "architectures": ["Qwen3TTSForConditionalGeneration"],
        "model_type": "qwen3_tts",
        "tokenizer_type": "qwen3_tts_tokenizer_12hz",
        "tts_model_type": mode,
        # Must be a string (qwen_tts tests `tts_model_size in "0b6"`); "1b7" keeps the
        # custom-voice `instruct` path active, which the package drops for "0b6".
        "tts_model_size": "1b7",
        "im_start_token_id": text_info["<|im_start|>"],
        "im_end_token_id": text_info["<|im_end|>"],
        "tts_pad_token_id": text_info["<tts_pad>"],
        "tts_bos_token_id": text_info["<tts_text_bos>"],
        "tts_eos_token_id": text_info["<tts_text_eod>"],
        "dtype": "float32",
        DEMO_CONFIG_KEY: True,
        "talker_config": talker,
        "speaker_encoder_config": speaker_encoder,
    }


def write_tts_model(folder: Path, mode: str, text_info: dict[str, int], seed: int) -> None:
    import torch
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    config_dict = tts_config(mode, text_info)
    kwargs = {k: v for k, v in config_dict.items() if k not in ("architectures", "model_type", "dtype")}
    model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**kwargs)).eval()
    generator = torch.Generator().manual_seed(seed)
    randomize(model, generator)
    if model.speaker_encoder is not None:
        # Unit gain so different references give clearly different x-vectors.
        unit_gain_convs(model.speaker_encoder, generator)
    save_weights(model, folder / "model.safetensors")
    # Written by hand rather than by save_pretrained: its config.json puts
    # "model_type": "" into speaker_encoder_config, which that config class rejects on load.
    write_json(folder / "config.json", config_dict)
    write_json(folder / "generation_config.json", GENERATION_CONFIG)
