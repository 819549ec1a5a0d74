"""The speech tokenizer: a tiny 12 Hz codec whose random codes decode to audible noise."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.engine.demo_models.layout import (
    CODEBOOK_SIZE,
    DEMO_CONFIG_KEY,
    HEAD_DIM,
    NUM_CODE_GROUPS,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    write_json,
)
from core.engine.demo_models.weights import randomize, save_weights, unit_gain_convs

if TYPE_CHECKING:  # heavy imports stay lazy: importing this module must be cheap
    import torch


def speech_tokenizer_config() -> dict[str, Any]:
    hidden = 32
    encoder = {
        # Mimi encoder: 960x conv downsampling (25 Hz) then one stride-2 conv to 12.5 Hz,
        # i.e. 1920 samples per frame like the real tokenizer.
        "sampling_rate": SAMPLE_RATE,
        "frame_rate": 12.5,
        "audio_channels": 1,
        "hidden_size": hidden,
        "num_filters": 4,
        "num_residual_layers": 1,
        "upsampling_ratios": [8, 6, 5, 4],
        "kernel_size": 7,
        "last_kernel_size": 3,
        "residual_kernel_size": 3,
        "dilation_growth_rate": 2,
        "use_causal_conv": True,
        "pad_mode": "constant",
        "compress": 2,
        "trim_right_ratio": 1.0,
        "codebook_size": CODEBOOK_SIZE,
        "codebook_dim": 16,
        "vector_quantization_hidden_dimension": 16,
        "num_quantizers": NUM_CODE_GROUPS,
        "num_semantic_quantizers": 1,
        "use_conv_shortcut": False,
        # Mimi's transposed conv uses groups=upsample_groups, which must divide hidden_size.
        "upsample_groups": hidden,
        "num_hidden_layers": 1,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": HEAD_DIM,
        "hidden_act": "gelu",
        "max_position_embeddings": 8000,
        "initializer_range": 0.02,
        "norm_eps": 1e-5,
        "use_cache": False,
        "use_streaming": False,
        "rope_theta": 10000.0,
        "sliding_window": 250,
        "attention_dropout": 0.0,
        "layer_scale_initial_scale": 0.01,
        "attention_bias": False,
    }
    decoder = {
        "codebook_size": CODEBOOK_SIZE,
        "codebook_dim": 16,  # not a named argument of the config class, but read by the decoder
        "hidden_size": hidden,
        "latent_dim": hidden,
        "max_position_embeddings": 8000,
        "rope_theta": 10000,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": HEAD_DIM,
        "attention_bias": False,
        "sliding_window": 72,
        "intermediate_size": 64,
        "hidden_act": "silu",
        "layer_scale_initial_scale": 0.01,
        "rms_norm_eps": 1e-5,
        "num_hidden_layers": 1,
        "num_quantizers": NUM_CODE_GROUPS,
        # 8*5*4*3 * 2*2 = 1920 samples per frame; decoder_dim halves per stage (32 -> 2).
        "upsample_rates": [8, 5, 4, 3],
        "upsampling_ratios": [2, 2],
        "decoder_dim": 32,
        "attention_dropout": 0.0,
    }
    return {
        "architectures": ["Qwen3TTSTokenizerV2Model"],
        "model_type": "qwen3_tts_tokenizer_12hz",
        "encoder_config": encoder,
        "decoder_config": decoder,
        "encoder_valid_num_quantizers": NUM_CODE_GROUPS,
        "input_sample_rate": SAMPLE_RATE,
        "output_sample_rate": SAMPLE_RATE,
        "decode_upsample_rate": SAMPLES_PER_FRAME,
        "encode_downsample_rate": SAMPLES_PER_FRAME,
        "dtype": "float32",
        DEMO_CONFIG_KEY: True,
    }


def write_speech_tokenizer(folder: Path, seed: int) -> None:
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    folder.mkdir(parents=True)
    config_dict = speech_tokenizer_config()
    kwargs = {k: v for k, v in config_dict.items() if k not in ("architectures", "model_type", "dtype")}
    model = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**kwargs)).eval()
    init_speech_tokenizer(model, seed)
    save_weights(model, folder / "model.safetensors")
    write_json(folder / "config.json", config_dict)
    write_json(folder / "preprocessor_config.json", preprocessor_config())


def preprocessor_config() -> dict[str, Any]:
    """The codec's feature-extractor file: the same for the demo codec and the real-size one."""
    return {
        "feature_extractor_type": "EncodecFeatureExtractor",
        "feature_size": 1,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": True,
        "sampling_rate": SAMPLE_RATE,
        "chunk_length_s": None,
        "overlap": None,
    }


def init_speech_tokenizer(model: torch.nn.Module, seed: int) -> None:
    """Initialises the codec so it encodes to varied codes and decodes to audible noise.

    The default initialisation is degenerate here: codebook sums start at zero, so
    every code decodes to the same vector and every frame encodes to code 0, and the
    std-0.02 convolutions shrink the signal at each vocoder stage until the output is
    ~1e-8, i.e. silence. Random codebooks, unit-gain convolutions and a final gain
    calibration fix both.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    randomize(model, generator)
    unit_gain_convs(model, generator)
    with torch.no_grad():
        for name, tensor in list(model.named_buffers()) + list(model.named_parameters()):
            if name.endswith(("embed_sum", "embedding_sum")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
        _calibrate_vocoder(model.decoder, generator)


def _calibrate_vocoder(decoder: Any, generator: torch.Generator, target_rms: float = 0.1) -> None:
    """Scales the last convolution so random codes decode to zero-mean audio at ``target_rms``.

    The decoder clamps to [-1, 1], so the statistics are taken from the last
    convolution's raw output (a hook) and the correction is exact: that layer is linear.
    """
    import torch

    final_conv = decoder.decoder[-1].conv
    captured: list[torch.Tensor] = []
    hook = final_conv.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        codes = torch.randint(0, CODEBOOK_SIZE, (1, NUM_CODE_GROUPS, 12), generator=generator)
        decoder(codes)
    finally:
        hook.remove()
    raw = captured[-1]
    mean, std = raw.mean(), raw.std().clamp(min=1e-12)
    # SnakeBeta adds a positive sin^2 term at every stage, hence a DC offset to remove.
    final_conv.bias.sub_(mean)
    final_conv.weight.mul_(target_rms / std)
    final_conv.bias.mul_(target_rms / std)
