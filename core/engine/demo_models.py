"""Tiny, randomly initialised Qwen3-TTS checkpoints, built offline in seconds.

Real Qwen3-TTS weights cannot be downloaded everywhere the studio runs (tests,
CI, offline demo mode, benchmarks of the plumbing). This module writes three
miniature checkpoints -- ``base`` (voice clone), ``custom_voice`` and
``voice_design`` -- that the *real* ``qwen_tts`` package loads with
``Qwen3TTSModel.from_pretrained(dir)`` and runs through its real generation
code. Their weights are random, so their "speech" is noise; every checkpoint is
marked as a demo (``"studio_demo": true`` in its ``config.json``) so the app can
label what it plays.

Every value below was chosen against qwen-tts 0.1.1 / transformers 4.57.3; the
comments say which constraint of that code a value satisfies. Nothing here
touches the network: configs are written by hand, models are constructed from
those configs, and the text tokenizer is trained on a small built-in corpus.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from core.errors import ModelUnavailable

if TYPE_CHECKING:  # heavy imports stay lazy: importing this module must be cheap
    import torch

logger = logging.getLogger(__name__)

DEMO_MODES: tuple[str, ...] = ("base", "custom_voice", "voice_design")
BUILDER_VERSION = 2  # bump when the layout changes; cached builds with another version are rebuilt

MARKER_NAME = ".demo-build.json"
"""Written last into each checkpoint; its presence (with our version) means complete."""

DEMO_CONFIG_KEY = "studio_demo"
"""Extra top-level key in each checkpoint's config.json. Qwen3TTSConfig keeps unknown
keys as attributes, so a loaded model exposes it as ``model.model.config.studio_demo``."""

_LOCK_NAME = ".demo-build.lock"
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"

# Files whose presence (besides the marker) a usable checkpoint needs.
_REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "speech_tokenizer/config.json",
    "speech_tokenizer/model.safetensors",
    "speech_tokenizer/preprocessor_config.json",
)

# ---------------------------------------------------------------------------
# Layout constants shared with the real checkpoints
# ---------------------------------------------------------------------------

SAMPLE_RATE = 24_000
SAMPLES_PER_FRAME = 1_920  # 12.5 Hz codec: encode and decode rates must both be this

# Special tokens of the text tokenizer, in Qwen's relative order. They are appended
# after the BPE vocabulary, as in the real tokenizer.
_TEXT_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<tts_pad>",
    "<tts_text_bos>",
    "<tts_text_eod>",
    "<tts_text_bos_single>",
    "<|audio_pad|>",
)
_BPE_VOCAB_SIZE = 512  # 256 byte symbols + 256 merges

# Qwen2's pre-tokenisation regex (what Qwen2TokenizerFast converts to).
_QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Codec vocabulary of the talker: 2048 speech codes, then control ids. The talker's
# sampler suppresses the top 1024 ids except EOS, so the vocab must exceed 1024 and
# every control / language / speaker id lives in that suppressed range.
_CODEC_VOCAB_SIZE = 3072
_CODEBOOK_SIZE = 2048
_NUM_CODE_GROUPS = 16  # must equal the speech tokenizer's quantizer counts
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

# Tiny sizes: big enough to exercise every code path, small enough to build fast.
_TALKER_HIDDEN = 32
_HEAD_DIM = 16

# Sentences the toy BPE is trained on. "assistant", "user" and the newline must end
# up as single tokens: qwen_tts slices the prompt "<|im_start|>assistant\n" as exactly
# 3 tokens and "<|im_end|>\n<|im_start|>assistant\n" as exactly 5.
_CORPUS = (
    "Hello, this is a short test of the studio. How are you today?",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please speak slowly and clearly, with a warm and friendly voice.",
    "A calm, deep male voice reading the evening news in English.",
    "She laughed, then whispered: it is only a demonstration model.",
    "Numbers like 1, 2, 3, 42 and 2048 are read digit by digit.",
    "Good morning! The weather is sunny and the sky is clear.",
    "你好，欢迎使用语音合成工作室。今天天气很好。",
    "我们正在测试一个很小的随机模型，它的声音只是噪音。",
    "请用温柔的声音慢慢地读这句话。北京话和四川话也可以。",
    "Guten Tag! Das ist nur ein kleines Testmodell für die Sprachsynthese.",
    "Bonjour, ceci est une voix de démonstration, pas une vraie voix.",
    "Hola, esta es una prueba corta del estudio de voz.",
    "こんにちは、これは音声合成のテストです。",
    "안녕하세요, 이것은 음성 합성 테스트입니다.",
    "Привет, это короткая проверка синтеза речи.",
    "Ciao, questa è una breve prova dello studio vocale.",
    "Olá, este é um pequeno teste do estúdio de voz.",
)
_ROLE_WORDS = "assistant\nuser\n"


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def demo_checkpoint_complete(path: Path) -> bool:
    """True when ``path`` holds a finished demo checkpoint of this builder version."""
    marker = _read_marker(Path(path))
    if marker is None or marker.get("builder_version") != BUILDER_VERSION:
        return False
    return all((Path(path) / name).is_file() for name in _REQUIRED_FILES)


def is_demo_checkpoint(path: Path) -> bool:
    """True when ``path/config.json`` carries the demo flag (random weights, noise output)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get(DEMO_CONFIG_KEY) is True


def build_demo_checkpoints(out_dir: Path, *, force: bool = False, seed: int = 0) -> dict[str, Path]:
    """Builds (or reuses a complete cached build of) the three tiny checkpoints.

    They land in ``out_dir/base``, ``out_dir/custom_voice`` and ``out_dir/voice_design``.
    A cached checkpoint is reused when it is complete, of this builder version and
    built from the same ``seed``; ``force=True`` rebuilds regardless. Each checkpoint
    is written to a temporary sibling and renamed into place, so a crash never leaves
    a directory that looks complete, and a lock serialises concurrent builders.

    Returns a mapping mode -> checkpoint directory.

    Raises:
        ModelUnavailable: the files could not be written, or qwen_tts is missing.
    """
    out_dir = Path(out_dir)
    targets = {mode: out_dir / mode for mode in DEMO_MODES}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with _build_lock(out_dir):
            todo = [
                mode for mode, path in targets.items() if force or not _cached_build_matches(path, seed)
            ]
            if not todo:
                logger.debug("Reusing cached demo checkpoints in %s", out_dir)
                return targets
            _remove_leftovers(out_dir)
            _build(out_dir, todo, seed)
    except ImportError as exc:
        raise ModelUnavailable(
            f"Cannot build the demo models: a required package is missing ({exc.name or exc}). "
            "Install the studio's requirements (qwen-tts, torch, tokenizers)."
        ) from exc
    except OSError as exc:
        raise ModelUnavailable(
            f"Cannot write the demo models to {out_dir}: {exc.strerror or exc}. "
            "Check that the folder is writable and the disk has space."
        ) from exc
    return targets


# ---------------------------------------------------------------------------
# Cache bookkeeping
# ---------------------------------------------------------------------------


def _read_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cached_build_matches(path: Path, seed: int) -> bool:
    if not demo_checkpoint_complete(path):
        return False
    marker = _read_marker(path) or {}
    return marker.get("seed") == seed


@contextlib.contextmanager
def _build_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive inter-process lock on ``out_dir``; the OS drops it if the holder dies."""
    with open(out_dir / _LOCK_NAME, "a+b") as handle:
        _lock_file(handle.fileno())
        try:
            yield
        finally:
            _unlock_file(handle.fileno())


if os.name == "nt":
    import msvcrt

    def _lock_file(fd: int) -> None:
        while True:  # LK_LOCK gives up after 10 s; a build may take longer on slow disks
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                time.sleep(0.2)

    def _unlock_file(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _remove_leftovers(out_dir: Path) -> None:
    # We hold the lock, so temp/old dirs can only be debris of builders that died.
    for child in out_dir.iterdir():
        if child.is_dir() and child.name.startswith((_TMP_PREFIX, _OLD_PREFIX)):
            shutil.rmtree(child, ignore_errors=True)


def _install(tmp: Path, target: Path) -> None:
    """Moves a finished build into place, replacing whatever was there."""
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f"{_OLD_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------
# Build orchestration
# ---------------------------------------------------------------------------


def _sub_seed(seed: int, name: str) -> int:
    """Independent, reproducible seed per component (changing one size never reshuffles others)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _build(out_dir: Path, modes: list[str], seed: int) -> None:
    import torch

    started = time.perf_counter()
    shared = out_dir / f"{_TMP_PREFIX}shared-{uuid.uuid4().hex[:8]}"
    shared.mkdir()
    try:
        # Weights come from private generators; fork_rng only undoes the global draws
        # that module constructors make, so the caller's RNG state is left as it was.
        with torch.random.fork_rng(devices=[]):
            text_info = _write_text_tokenizer(shared / "text")
            _write_speech_tokenizer(shared / "speech_tokenizer", _sub_seed(seed, "speech_tokenizer"))
            for mode in modes:
                tmp = out_dir / f"{_TMP_PREFIX}{mode}-{uuid.uuid4().hex[:8]}"
                tmp.mkdir()
                try:
                    for item in (shared / "text").iterdir():
                        shutil.copy2(item, tmp / item.name)
                    shutil.copytree(shared / "speech_tokenizer", tmp / "speech_tokenizer")
                    _write_tts_model(tmp, mode, text_info, _sub_seed(seed, f"talker:{mode}"))
                    _write_json(
                        tmp / MARKER_NAME,
                        {"builder_version": BUILDER_VERSION, "mode": mode, "seed": seed},
                    )
                    _install(tmp, out_dir / mode)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    logger.info(
        "Built demo checkpoints %s in %s (%.1f s)",
        ", ".join(modes),
        out_dir,
        time.perf_counter() - started,
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _save_weights(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save

    # Persistent buffers (codebooks, cluster usage) are part of state_dict and must be
    # saved too: anything missing from the file would be re-initialised randomly on load.
    state = {name: tensor.detach().contiguous() for name, tensor in module.state_dict().items()}
    # save() + write_bytes rather than save_file(), which creates the file with mode 0600
    # instead of honouring the umask like every other file of the checkpoint.
    path.write_bytes(save(state, metadata={"format": "pt"}))


# ---------------------------------------------------------------------------
# Text tokenizer
# ---------------------------------------------------------------------------


def _write_text_tokenizer(folder: Path) -> dict[str, int]:
    """Trains a byte-level BPE and saves it in Qwen2Tokenizer's layout.

    Returns the ids of the special tokens plus ``"vocab_size"`` (specials included).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import trainers

    folder.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    # Same pipeline as Qwen2TokenizerFast (a Sequence, like the real one: transformers'
    # fix_mistral_regex patch, which qwen_tts requests, indexes into it for vocabularies
    # above 100k tokens; ours is too small for that patch to apply).
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    # Repeating the role words makes their merges the most frequent ones.
    corpus = list(_CORPUS) + [_ROLE_WORDS] * 64
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in _TEXT_SPECIAL_TOKENS]
    )

    ids = {token: tokenizer.token_to_id(token) for token in _TEXT_SPECIAL_TOKENS}
    for word in ("assistant", "user", "\n"):
        if len(tokenizer.encode(word).ids) != 1:
            raise RuntimeError(f"demo tokenizer: {word!r} is not a single token")

    tokenizer.save(str(folder / "tokenizer.json"))
    tokenizer.model.save(str(folder))  # vocab.json + merges.txt (specials excluded, as in Qwen2)
    _write_json(
        folder / "tokenizer_config.json",
        {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": {
                str(ids[t]): {
                    "content": t,
                    "lstrip": False,
                    "normalized": False,
                    "rstrip": False,
                    "single_word": False,
                    "special": True,
                }
                for t in _TEXT_SPECIAL_TOKENS
            },
            "additional_special_tokens": list(_TEXT_SPECIAL_TOKENS[1:]),
            "bos_token": None,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "model_max_length": 32768,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        },
    )
    # The root preprocessor config only names the processor class for AutoProcessor.
    _write_json(folder / "preprocessor_config.json", {"processor_class": "Qwen3TTSProcessor"})
    info = dict(ids)
    info["vocab_size"] = tokenizer.get_vocab_size(with_added_tokens=True)
    return info


# ---------------------------------------------------------------------------
# Speech tokenizer (12 Hz codec)
# ---------------------------------------------------------------------------


def _speech_tokenizer_config() -> dict[str, Any]:
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
        "codebook_size": _CODEBOOK_SIZE,
        "codebook_dim": 16,
        "vector_quantization_hidden_dimension": 16,
        "num_quantizers": _NUM_CODE_GROUPS,
        "num_semantic_quantizers": 1,
        "use_conv_shortcut": False,
        # Mimi's transposed conv uses groups=upsample_groups, which must divide hidden_size.
        "upsample_groups": hidden,
        "num_hidden_layers": 1,
        "intermediate_size": 64,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": _HEAD_DIM,
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
        "codebook_size": _CODEBOOK_SIZE,
        "codebook_dim": 16,  # not a named argument of the config class, but read by the decoder
        "hidden_size": hidden,
        "latent_dim": hidden,
        "max_position_embeddings": 8000,
        "rope_theta": 10000,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": _HEAD_DIM,
        "attention_bias": False,
        "sliding_window": 72,
        "intermediate_size": 64,
        "hidden_act": "silu",
        "layer_scale_initial_scale": 0.01,
        "rms_norm_eps": 1e-5,
        "num_hidden_layers": 1,
        "num_quantizers": _NUM_CODE_GROUPS,
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
        "encoder_valid_num_quantizers": _NUM_CODE_GROUPS,
        "input_sample_rate": SAMPLE_RATE,
        "output_sample_rate": SAMPLE_RATE,
        "decode_upsample_rate": SAMPLES_PER_FRAME,
        "encode_downsample_rate": SAMPLES_PER_FRAME,
        "dtype": "float32",
        DEMO_CONFIG_KEY: True,
    }


def _write_speech_tokenizer(folder: Path, seed: int) -> None:
    import torch
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    folder.mkdir(parents=True)
    config_dict = _speech_tokenizer_config()
    kwargs = {k: v for k, v in config_dict.items() if k not in ("architectures", "model_type", "dtype")}
    model = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**kwargs)).eval()
    _init_speech_tokenizer(model, seed)
    _save_weights(model, folder / "model.safetensors")
    _write_json(folder / "config.json", config_dict)
    _write_json(
        folder / "preprocessor_config.json",
        {
            "feature_extractor_type": "EncodecFeatureExtractor",
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": True,
            "sampling_rate": SAMPLE_RATE,
            "chunk_length_s": None,
            "overlap": None,
        },
    )



def _randomize(model: torch.nn.Module, generator: torch.Generator, std: float = 0.02) -> None:
    """Redraws every random weight from ``generator`` (HF-style N(0, 0.02), zero biases).

    Constructors draw from the global RNG; redrawing makes the weights depend on the
    seed alone. Every other tensor the constructors create is a constant (norm
    weights, layer scales, Snake parameters, codebook usage counts).
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv1d, nn.ConvTranspose1d)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()


def _unit_gain_convs(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Re-initialises convolutions so activations keep their scale through deep conv stacks."""
    import torch
    from torch import nn

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.ConvTranspose1d):
                # Each output sample sums in_channels * kernel / stride inputs.
                fan_in = module.in_channels * module.kernel_size[0] / module.stride[0]
            elif isinstance(module, nn.Conv1d):
                fan_in = module.in_channels // module.groups * module.kernel_size[0]
            else:
                continue
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in**0.5)
            if module.bias is not None:
                module.bias.zero_()


def _init_speech_tokenizer(model: torch.nn.Module, seed: int) -> None:
    """Initialises the codec so it encodes to varied codes and decodes to audible noise.

    The default initialisation is degenerate here: codebook sums start at zero, so
    every code decodes to the same vector and every frame encodes to code 0, and the
    std-0.02 convolutions shrink the signal at each vocoder stage until the output is
    ~1e-8, i.e. silence. Random codebooks, unit-gain convolutions and a final gain
    calibration fix both.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    _randomize(model, generator)
    _unit_gain_convs(model, generator)
    with torch.no_grad():
        for name, tensor in list(model.named_buffers()) + list(model.named_parameters()):
            if name.endswith(("embed_sum", "embedding_sum")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
        _calibrate_vocoder(model.decoder, generator)


def _calibrate_vocoder(decoder: torch.nn.Module, generator: torch.Generator, target_rms: float = 0.1) -> None:
    """Scales the last convolution so random codes decode to zero-mean audio at ``target_rms``.

    The decoder clamps to [-1, 1], so the statistics are taken from the last
    convolution's raw output (a hook) and the correction is exact: that layer is linear.
    """
    import torch

    final_conv = decoder.decoder[-1].conv
    captured: list[torch.Tensor] = []
    hook = final_conv.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    try:
        codes = torch.randint(0, _CODEBOOK_SIZE, (1, _NUM_CODE_GROUPS, 12), generator=generator)
        decoder(codes)
    finally:
        hook.remove()
    raw = captured[-1]
    mean, std = raw.mean(), raw.std().clamp(min=1e-12)
    # SnakeBeta adds a positive sin^2 term at every stage, hence a DC offset to remove.
    final_conv.bias.sub_(mean)
    final_conv.weight.mul_(target_rms / std)
    final_conv.bias.mul_(target_rms / std)


# ---------------------------------------------------------------------------
# The TTS model (talker + code predictor [+ speaker encoder])
# ---------------------------------------------------------------------------

_GENERATION_CONFIG = {
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


def _tts_config(mode: str, text_info: dict[str, int]) -> dict[str, Any]:
    text_vocab_size = -(-text_info["vocab_size"] // 16) * 16  # must cover every text token id
    custom = mode == "custom_voice"
    talker = {
        "vocab_size": _CODEC_VOCAB_SIZE,
        "hidden_size": _TALKER_HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": _HEAD_DIM,
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
        "num_code_groups": _NUM_CODE_GROUPS,
        "text_hidden_size": _TALKER_HIDDEN,
        "text_vocab_size": text_vocab_size,
        **_CODEC_IDS,
        "codec_language_id": dict(_LANGUAGE_IDS),
        # Base and VoiceDesign have no built-in speakers, but the model reads both maps.
        "spk_id": dict(_SPEAKER_IDS) if custom else {},
        "spk_is_dialect": dict(_SPEAKER_DIALECTS) if custom else {},
        "code_predictor_config": {
            "vocab_size": _CODEBOOK_SIZE,  # predicts codebooks 1..15 of the speech tokenizer
            "hidden_size": _TALKER_HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": _HEAD_DIM,  # the default 128 would dwarf the tiny hidden size
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
            "num_code_groups": _NUM_CODE_GROUPS,
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


def _write_tts_model(folder: Path, mode: str, text_info: dict[str, int], seed: int) -> None:
    import torch
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    config_dict = _tts_config(mode, text_info)
    kwargs = {k: v for k, v in config_dict.items() if k not in ("architectures", "model_type", "dtype")}
    model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**kwargs)).eval()
    generator = torch.Generator().manual_seed(seed)
    _randomize(model, generator)
    if model.speaker_encoder is not None:
        # Unit gain so different references give clearly different x-vectors.
        _unit_gain_convs(model.speaker_encoder, generator)
    _save_weights(model, folder / "model.safetensors")
    # Written by hand rather than by save_pretrained: its config.json puts
    # "model_type": "" into speaker_encoder_config, which that config class rejects on load.
    _write_json(folder / "config.json", config_dict)
    _write_json(folder / "generation_config.json", _GENERATION_CONFIG)
