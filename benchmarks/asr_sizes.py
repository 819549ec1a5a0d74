"""Whisper sizes on this machine's CPU: one 30 s window encoded plus 40 greedy tokens decoded.

Random weights of the real sizes (the arithmetic is the real one; nothing is downloaded), one
thread, CPU seconds, so the figures hold on a shared machine. docs/ASR.md records the run that
chose the studio's default transcription model.

    .venv/bin/python benchmarks/asr_sizes.py                 # base, small, large-v3-turbo
    .venv/bin/python benchmarks/asr_sizes.py whisper-small   # one size
"""

from __future__ import annotations

import json
import resource
import sys
import time

import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration
from transformers.generation.utils import GenerationMixin

SIZES = {
    "whisper-base": dict(d_model=512, encoder_layers=6, decoder_layers=6, heads=8, ffn=2048, mels=80, vocab=51865),
    "whisper-small": dict(d_model=768, encoder_layers=12, decoder_layers=12, heads=12, ffn=3072, mels=80, vocab=51865),
    "whisper-large-v3-turbo": dict(
        d_model=1280, encoder_layers=32, decoder_layers=4, heads=20, ffn=5120, mels=128, vocab=51866
    ),
}
TOKENS = 40  # about a 10 s English reference


def measure(name: str) -> dict:
    s = SIZES[name]
    config = WhisperConfig(
        vocab_size=s["vocab"],
        num_mel_bins=s["mels"],
        d_model=s["d_model"],
        encoder_layers=s["encoder_layers"],
        decoder_layers=s["decoder_layers"],
        encoder_attention_heads=s["heads"],
        decoder_attention_heads=s["heads"],
        encoder_ffn_dim=s["ffn"],
        decoder_ffn_dim=s["ffn"],
        decoder_start_token_id=50258,
        pad_token_id=50257,
        eos_token_id=50257,
        bos_token_id=50257,
    )
    model = WhisperForConditionalGeneration(config).eval()
    params = sum(p.numel() for p in model.parameters())
    features = torch.randn(1, config.num_mel_bins, 3000)  # Whisper always hears 30 s
    prompt = torch.tensor([[50258, 50259, 50360, 50364]])  # start, language, task, no timestamps
    with torch.inference_mode():
        for _ in range(2):  # the second run is the figure (the first warms the allocator)
            t = time.process_time()
            encoded = model.model.encoder(features)
            encoder_s = time.process_time() - t
            t = time.process_time()
            GenerationMixin.generate(
                model,
                encoder_outputs=encoded,
                decoder_input_ids=prompt,
                max_new_tokens=TOKENS,
                min_new_tokens=TOKENS,
                do_sample=False,
            )
            decode_s = time.process_time() - t
    return {
        "model": name,
        "params_m": round(params / 1e6, 1),
        "fp32_mb": round(params * 4 / 1e6),
        "encoder_s": round(encoder_s, 2),
        f"decode_{TOKENS}_tokens_s": round(decode_s, 2),
        "total_s": round(encoder_s + decode_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    torch.set_num_threads(1)  # CPU seconds on one thread: comparable on a shared machine
    for name in sys.argv[1:] or list(SIZES):
        print(json.dumps(measure(name)), flush=True)
