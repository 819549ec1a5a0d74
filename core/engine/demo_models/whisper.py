"""The demo ASR model: a tiny random-weight Whisper, built offline like the TTS checkpoints.

It is the real ``transformers`` Whisper architecture (``WhisperForConditionalGeneration``)
with a tiny ``WhisperConfig``, a byte-level BPE tokenizer trained on the same small
corpus as the demo text tokenizer, Whisper's special tokens (start of transcript, one
language token per studio language (so what the demo "detects" is always one the
studio can put in its language field), task, no-timestamps) and the stock
``WhisperFeatureExtractor``. Everything the real code path reads is there, so
:mod:`core.engine.transcription` runs unchanged on it; the text it writes is noise.

Its ``generation_config.json`` caps ``max_new_tokens`` low: random weights rarely
emit the end token, and a demo transcription must finish in well under a second.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from pathlib import Path

from core.engine.demo_models.build import TMP_PREFIX, build_lock, install, remove_leftovers, sub_seed
from core.engine.demo_models.layout import DEMO_CONFIG_KEY, write_json
from core.engine.demo_models.text_tokenizer import _CORPUS
from core.engine.demo_models.weights import randomize
from core.engine.transcription import WHISPER_CODES
from core.errors import ModelUnavailable

log = logging.getLogger(__name__)

ASR_BUILDER_VERSION = 4  # bump when the layout changes; older cached builds are rebuilt
ASR_MARKER_NAME = ".demo-asr-build.json"
DEMO_ASR_FOLDER = "asr"  # under the demo models folder, next to base/, custom_voice/, voice_design/

# After the BPE vocabulary, in the real tokenizer's relative order.
_SPECIALS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    *(f"<|{code}|>" for code in WHISPER_CODES.values()),
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
)
_BPE_VOCAB_SIZE = 384
DEMO_MAX_NEW_TOKENS = 24  # bounded: a random decoder seldom says "end"

REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
)


def demo_asr_complete(path: Path) -> bool:
    """True when ``path`` holds a finished demo ASR model of this builder version."""
    import json

    try:
        marker = json.loads((Path(path) / ASR_MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("builder_version") != ASR_BUILDER_VERSION:
        return False
    return all((Path(path) / name).is_file() for name in REQUIRED_FILES)


def build_demo_asr(out_dir: Path, *, force: bool = False, seed: int = 0) -> Path:
    """Builds (or reuses) the tiny Whisper in ``out_dir/asr`` and returns that folder.

    Written to a temporary sibling and renamed into place under the demo builder's
    lock, so a crash never leaves a folder that looks complete.
    """
    out_dir = Path(out_dir)
    target = out_dir / DEMO_ASR_FOLDER
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with build_lock(out_dir):
            if not force and demo_asr_complete(target):
                return target
            remove_leftovers(out_dir)
            started = time.perf_counter()
            tmp = out_dir / f"{TMP_PREFIX}{DEMO_ASR_FOLDER}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            try:
                _write(tmp, sub_seed(seed, "whisper"))
                write_json(tmp / ASR_MARKER_NAME, {"builder_version": ASR_BUILDER_VERSION, "seed": seed})
                install(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            log.info("Built the demo ASR model in %s (%.1f s)", target, time.perf_counter() - started)
    except OSError as exc:
        raise ModelUnavailable(
            f"Cannot write the demo ASR model to {out_dir}: {exc.strerror or exc}. "
            "Check that the folder is writable and the disk has space."
        ) from exc
    return target


def _write(folder: Path, seed: int) -> None:
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    tokenizer = _tokenizer(folder)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in _SPECIALS}
    vocab_size = len(tokenizer)
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=1,
        encoder_attention_heads=2,
        decoder_layers=1,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,  # 30 s of 10 ms frames after the stride-2 convolution
        max_target_positions=64,
        pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    with torch.random.fork_rng(devices=[]):
        model = WhisperForConditionalGeneration(config)
    randomize(model, torch.Generator().manual_seed(seed))
    model.config.update({DEMO_CONFIG_KEY: True})
    # save_pretrained, not save_weights: Whisper ties proj_out to the token embedding.
    model.save_pretrained(folder, safe_serialization=True)
    generation = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids[f"<|{code}|>"] for code in WHISPER_CODES.values()},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        # Never say a control token or a byte that is not a whole printable character
        # (a lone UTF-8 byte decodes to "\ufffd"): the noise stays readable text.
        suppress_tokens=[ids[t] for t in _SPECIALS if t != "<|endoftext|>"] + _unprintable(tokenizer),
        begin_suppress_tokens=[ids["<|endoftext|>"]],
        max_length=64,
        max_new_tokens=DEMO_MAX_NEW_TOKENS,
        # A random decoder repeats one token forever; forbidding repeats makes its noise read as noise.
        no_repeat_ngram_size=1,
    )
    generation.save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)


def _unprintable(tokenizer) -> list[int]:
    out = []
    for token_id in range(len(tokenizer)):
        if token_id in tokenizer.all_special_ids:
            continue
        text = tokenizer.decode([token_id])
        if not text.strip() or not text.isprintable() or "\ufffd" in text:
            out.append(token_id)
    return out


def _tokenizer(folder: Path):
    """A byte-level BPE with Whisper's special tokens, as ``WhisperTokenizerFast``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import WhisperTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    bpe.train_from_iterator(list(_CORPUS), trainer=trainer)
    bpe.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in _SPECIALS])
    raw = folder / ".bpe"
    raw.mkdir()
    try:
        bpe.model.save(str(raw))  # vocab.json + merges.txt
        bpe.save(str(raw / "tokenizer.json"))
        tokenizer = WhisperTokenizerFast(
            vocab_file=str(raw / "vocab.json"),
            merges_file=str(raw / "merges.txt"),
            tokenizer_file=str(raw / "tokenizer.json"),
            unk_token="<|endoftext|>",
            bos_token="<|endoftext|>",
            eos_token="<|endoftext|>",
            pad_token="<|endoftext|>",
            additional_special_tokens=list(_SPECIALS[1:]),
            model_max_length=64,
        )
    finally:
        shutil.rmtree(raw, ignore_errors=True)
    return tokenizer
