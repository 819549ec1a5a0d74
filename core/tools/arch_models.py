"""Random-weight Qwen3-TTS checkpoints with the REAL 0.6B / 1.7B architectures.

For speed measurements only. Compute per generated codec frame depends on the
architecture (layer count, widths, heads), not on the weight values, so a
randomly initialised model of the real size measures the real speed -- as long
as the number of frames is fixed, which this module guarantees (see "Never
stops" below).

The checkpoints are built on demand (gigabytes: about 2.5 GB per 0.6B mode and
4.5 GB per 1.7B mode on disk), cached under ``<data_dir>/arch-models/<arch>/<mode>``
and loaded through exactly the same path as real ones:
``Qwen3TTSModel.from_pretrained(dir)``. They are never built by the default
test run; tests build :func:`scaled_spec` -- a few-MB model -- through the same
code.

Everything that is not a size is reused from :mod:`core.engine.demo_models`: the text
tokenizer, the config layout (special ids, languages, speakers, generation
defaults), the codec initialisation that makes random codes decode to audible
noise, the build lock and the atomic install. This module only swaps in the
real sizes.

Sizes come from ``/work/shared/notes/qwen3-tts-facts.md`` ("Real architecture
sizes"). Where that table is silent, the codec's transformer is the 1024 -> 512
bottleneck (8 layers, 16 heads of 64, ffn 1024, sliding window 72) that public
ports of the released tokenizer describe; with it the speech tokenizer has
about 175 M parameters, close to the released 682 MB of float32. The parts
that dominate decode time -- the vocoder's 1536-channel conv stack and its
8*5*4*3 * 2*2 = 1920x upsampling -- are fixed by the table. Weights are stored like the released files:
the TTS model in bfloat16, the speech tokenizer in float32; the studio loads
them in float32 on the CPU either way.

Never stops: random weights would emit the stop code with a chance of about
1/2049 per frame (top-k sampling over ~2049 allowed codes), so a fixed
``max_new_tokens`` alone would not give a fixed frame count. The row of the
talker's output head that scores the stop code is zeroed: its logit is then
exactly 0 while the others are random around 0, i.e. the stop code sits at
the median rank and never enters the top-50 the sampler draws from. Compute
is unchanged (the row is still multiplied).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.engine.demo_models import build as demo_build
from core.engine.demo_models import layout as demo_layout
from core.engine.demo_models import speech_tokenizer as demo_speech
from core.engine.demo_models import text_tokenizer as demo_text
from core.engine.demo_models import tts_model as demo_tts
from core.engine.demo_models import weights as demo_weights
from core.engine.dependencies import dependency_error, import_model_code
from core.errors import InvalidInput, ModelUnavailable
from core.types import MODES

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ARCH_BUILDER_VERSION = 1
ARCH_MARKER_NAME = ".arch-build.json"
ARCH_CONFIG_KEY = "studio_arch"
"""Extra top-level config.json key: the spec name ("0.6b", "1.7b", "tiny")."""


@dataclass(frozen=True)
class ArchSpec:
    """Every size of one Qwen3-TTS architecture (talker, code predictor, codec, speaker encoder)."""

    name: str
    tts_model_size: str  # the string qwen_tts tests ("0b6" drops custom-voice instruct)
    # Talker (the 12.5 Hz LM that emits codebook 0)
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    mrope_section: tuple[int, int, int]
    text_hidden: int = 2048
    text_vocab: int = 151_936
    # Code predictor (the 15 residual codebooks per frame)
    cp_hidden: int = 1024
    cp_layers: int = 5
    cp_heads: int = 16
    cp_kv_heads: int = 8
    cp_head_dim: int = 128
    cp_intermediate: int = 3072
    # Speaker encoder (ECAPA-TDNN, Base only); embedding size = talker hidden
    spk_channels: tuple[int, ...] = (512, 512, 512, 512, 1536)
    spk_kernel_sizes: tuple[int, ...] = (5, 3, 3, 3, 1)
    spk_dilations: tuple[int, ...] = (1, 2, 3, 4, 1)
    spk_attention_channels: int = 128
    spk_res2net_scale: int = 8
    spk_se_channels: int = 128
    # Speech tokenizer decoder (codes -> 24 kHz audio)
    dec_codebook_dim: int = 512  # codebook vectors of 256, projected to 512
    dec_hidden: int = 512  # the codec transformer is a 1024 -> 512 bottleneck
    dec_latent: int = 1024
    dec_layers: int = 8
    dec_heads: int = 16
    dec_head_dim: int = 64
    dec_intermediate: int = 1024
    dec_sliding_window: int = 72
    dec_dim: int = 1536
    # Speech tokenizer encoder (Mimi-style; used to encode clone references)
    enc_hidden: int = 512
    enc_layers: int = 8
    enc_heads: int = 8
    enc_intermediate: int = 2048
    enc_filters: int = 64
    enc_codebook_dim: int = 256
    weights_dtype: str = "bfloat16"

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


ARCH_SPECS: dict[str, ArchSpec] = {
    "0.6b": ArchSpec(
        name="0.6b",
        tts_model_size="0b6",
        hidden=1024,
        layers=28,
        heads=16,
        kv_heads=8,
        head_dim=128,
        intermediate=3072,
        mrope_section=(24, 20, 20),
    ),
    # FFN width 6144 (Qwen3-1.7B's), not the 8192 of the facts table: 8192 would make the
    # checkpoint 2.27 B parameters (4.5 GB in bf16), 6144 gives 1.93 B (3.9 GB), which matches
    # the released 1.7B files; the same count reproduces the 0.6B file (0.915 B, 1.83 GB) exactly.
    "1.7b": ArchSpec(
        name="1.7b",
        tts_model_size="1b7",
        hidden=2048,
        layers=28,
        heads=16,
        kv_heads=8,
        head_dim=128,
        intermediate=6144,
        mrope_section=(24, 20, 20),
    ),
}


def scaled_spec(name: str = "tiny") -> ArchSpec:
    """A few-MB spec of the same shape, for tests: every component, every code path.

    It keeps what the code constrains (16 code groups, 2048 codes, 1920 samples
    per frame, 128 mel bins) and shrinks every width and depth.
    """
    return ArchSpec(
        name=name,
        tts_model_size="1b7",
        hidden=32,
        layers=2,
        heads=2,
        kv_heads=1,
        head_dim=16,
        intermediate=64,
        mrope_section=(4, 2, 2),
        text_hidden=32,
        text_vocab=1024,
        cp_hidden=32,
        cp_layers=1,
        cp_heads=2,
        cp_kv_heads=1,
        cp_head_dim=16,
        cp_intermediate=64,
        spk_channels=(32, 32, 32, 32, 96),
        spk_attention_channels=16,
        spk_res2net_scale=4,
        spk_se_channels=16,
        dec_codebook_dim=16,
        dec_hidden=32,
        dec_latent=32,
        dec_layers=1,
        dec_heads=2,
        dec_head_dim=16,
        dec_intermediate=64,
        dec_dim=32,
        enc_hidden=32,
        enc_layers=1,
        enc_heads=2,
        enc_intermediate=64,
        enc_filters=4,
        enc_codebook_dim=16,
        weights_dtype="float32",
    )


def spec_for(arch: str) -> ArchSpec:
    key = str(arch).strip().lower().replace("b", "") + "b"
    if key not in ARCH_SPECS:
        raise InvalidInput(f"Unknown architecture {arch!r}; choose one of: {', '.join(ARCH_SPECS)}.")
    return ARCH_SPECS[key]


def default_arch_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "arch-models"


# ---------------------------------------------------------------------------
# Configs: the demo layout with real sizes
# ---------------------------------------------------------------------------


def tts_config(spec: ArchSpec, mode: str, text_info: dict[str, int]) -> dict[str, Any]:
    """The demo model's config.json for ``mode`` with ``spec``'s sizes."""
    if sum(spec.mrope_section) * 2 != spec.head_dim:
        raise ValueError("mrope sections must sum to head_dim / 2")
    config = demo_tts.tts_config(mode, text_info)
    config["tts_model_size"] = spec.tts_model_size
    config["dtype"] = spec.weights_dtype
    config[ARCH_CONFIG_KEY] = spec.name
    talker = config["talker_config"]
    talker.update(
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        head_dim=spec.head_dim,
        text_hidden_size=spec.text_hidden,
        text_vocab_size=max(spec.text_vocab, talker["text_vocab_size"]),
    )
    talker["rope_scaling"] = {"rope_type": "default", "mrope_section": list(spec.mrope_section), "interleaved": True}
    talker["code_predictor_config"].update(
        hidden_size=spec.cp_hidden,
        intermediate_size=spec.cp_intermediate,
        num_hidden_layers=spec.cp_layers,
        num_attention_heads=spec.cp_heads,
        num_key_value_heads=spec.cp_kv_heads,
        head_dim=spec.cp_head_dim,
        max_window_layers=spec.cp_layers,
    )
    config["speaker_encoder_config"].update(
        enc_dim=spec.hidden,
        enc_channels=list(spec.spk_channels),
        enc_kernel_sizes=list(spec.spk_kernel_sizes),
        enc_dilations=list(spec.spk_dilations),
        enc_attention_channels=spec.spk_attention_channels,
        enc_res2net_scale=spec.spk_res2net_scale,
        enc_se_channels=spec.spk_se_channels,
    )
    return config


def speech_tokenizer_config(spec: ArchSpec) -> dict[str, Any]:
    """The demo codec's config.json with ``spec``'s sizes (same 1920 samples per frame)."""
    config = demo_speech.speech_tokenizer_config()
    config[ARCH_CONFIG_KEY] = spec.name
    config["encoder_config"].update(
        hidden_size=spec.enc_hidden,
        num_filters=spec.enc_filters,
        num_hidden_layers=spec.enc_layers,
        num_attention_heads=spec.enc_heads,
        num_key_value_heads=spec.enc_heads,
        head_dim=spec.enc_hidden // spec.enc_heads,
        intermediate_size=spec.enc_intermediate,
        codebook_dim=spec.enc_codebook_dim,
        vector_quantization_hidden_dimension=spec.enc_codebook_dim,
        upsample_groups=spec.enc_hidden,
    )
    config["decoder_config"].update(
        codebook_dim=spec.dec_codebook_dim,
        hidden_size=spec.dec_hidden,
        latent_dim=spec.dec_latent,
        num_hidden_layers=spec.dec_layers,
        num_attention_heads=spec.dec_heads,
        num_key_value_heads=spec.dec_heads,
        head_dim=spec.dec_head_dim,
        intermediate_size=spec.dec_intermediate,
        sliding_window=spec.dec_sliding_window,
        decoder_dim=spec.dec_dim,
    )
    return config


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


@dataclass
class ArchBuild:
    spec: ArchSpec
    paths: dict[str, Path]
    built: list[str] = field(default_factory=list)  # modes built now (the rest came from the cache)
    seconds: float = 0.0


def arch_checkpoint_complete(path: Path, spec: ArchSpec, seed: int) -> bool:
    try:
        marker = json.loads((Path(path) / ARCH_MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("builder_version") == ARCH_BUILDER_VERSION
        and marker.get("spec") == spec.digest()
        and marker.get("seed") == seed
        and all((Path(path) / name).is_file() for name in demo_build.REQUIRED_FILES)
    )


def build_arch_checkpoints(
    out_dir: Path,
    spec: ArchSpec | str,
    modes: Sequence[str] = MODES,
    *,
    seed: int = 0,
    force: bool = False,
) -> ArchBuild:
    """Builds (or reuses) random-weight checkpoints of ``spec`` in ``out_dir/<spec.name>/<mode>``.

    Same guarantees as the demo builder: a lock serialises builders, each
    checkpoint is written to a temporary sibling and renamed into place, and a
    cached build is reused only when its marker matches this spec, seed and
    builder version.

    Raises:
        ModelUnavailable: the files could not be written, or a package is missing.
    """
    spec = spec if isinstance(spec, ArchSpec) else spec_for(spec)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise InvalidInput(f"Unknown mode(s) {unknown}; choose from {', '.join(MODES)}.")
    root = Path(out_dir) / spec.name
    targets = {mode: root / mode for mode in modes}
    started = time.perf_counter()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with demo_build.build_lock(root):
            todo = [m for m, p in targets.items() if force or not arch_checkpoint_complete(p, spec, seed)]
            if todo:
                demo_build.remove_leftovers(root)
                # A library that fails to load raises OSError too: import first, so
                # a broken install is never reported as a lack of disk space.
                import_model_code("building the benchmark models")
                _build(root, spec, todo, seed)
    except ImportError as exc:
        raise dependency_error(exc, "building the benchmark models") from exc
    except OSError as exc:
        raise ModelUnavailable(
            f"Cannot write the {spec.name} benchmark models to {root}: {exc.strerror or exc}. "
            "They need several GB of free disk space."
        ) from exc
    return ArchBuild(spec, targets, todo, time.perf_counter() - started)


def _build(root: Path, spec: ArchSpec, modes: list[str], seed: int) -> None:
    import torch

    started = time.perf_counter()
    shared = root / f"{demo_build.TMP_PREFIX}shared-{uuid.uuid4().hex[:8]}"
    shared.mkdir()
    try:
        with torch.random.fork_rng(devices=[]):
            text_info = demo_text.write_text_tokenizer(shared / "text")
            _write_speech_tokenizer(shared / "speech_tokenizer", spec, demo_build.sub_seed(seed, "speech_tokenizer"))
            for mode in modes:
                tmp = root / f"{demo_build.TMP_PREFIX}{mode}-{uuid.uuid4().hex[:8]}"
                tmp.mkdir()
                try:
                    for item in (shared / "text").iterdir():
                        shutil.copy2(item, tmp / item.name)
                    _link_tree(shared / "speech_tokenizer", tmp / "speech_tokenizer")
                    _write_tts_model(tmp, spec, mode, text_info, demo_build.sub_seed(seed, f"talker:{mode}"))
                    demo_layout.write_json(
                        tmp / ARCH_MARKER_NAME,
                        {
                            "builder_version": ARCH_BUILDER_VERSION,
                            "spec": spec.digest(),
                            "arch": spec.name,
                            "mode": mode,
                            "seed": seed,
                        },
                    )
                    demo_build.install(tmp, root / mode)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    logger.info(
        "Built %s benchmark checkpoints %s in %.1f s", spec.name, ", ".join(modes), time.perf_counter() - started
    )


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-links the (identical, 0.7 GB) codec into each mode; copies where links fail."""
    dst.mkdir()
    for item in src.iterdir():
        try:
            (dst / item.name).hardlink_to(item)
        except OSError:
            shutil.copy2(item, dst / item.name)


def _no_init():
    """Skips the constructors' own random init: every weight is redrawn from a seeded generator anyway."""
    import contextlib

    try:
        from transformers.modeling_utils import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        return contextlib.nullcontext()
    return no_init_weights()


def _save(module: torch.nn.Module, path: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import save_file

    target = getattr(torch, dtype)
    state = {}
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RuntimeError(f"arch build: {name} was left uninitialised")
        if tensor.is_floating_point():
            tensor = tensor.to(target)
        state[name] = tensor.contiguous()
    save_file(state, str(path), metadata={"format": "pt"})
    path.chmod(0o644)


def _write_speech_tokenizer(folder: Path, spec: ArchSpec, seed: int) -> None:
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    folder.mkdir(parents=True)
    config_dict = speech_tokenizer_config(spec)
    kwargs = {k: v for k, v in config_dict.items() if k not in ("architectures", "model_type", "dtype")}
    with _no_init():
        model = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**kwargs)).eval()
    demo_speech.init_speech_tokenizer(model, seed)  # random codebooks, unit-gain convs, calibrated output level
    _save(model, folder / "model.safetensors", "float32")
    demo_layout.write_json(folder / "config.json", config_dict)
    demo_layout.write_json(folder / "preprocessor_config.json", demo_speech.preprocessor_config())


def _write_tts_model(folder: Path, spec: ArchSpec, mode: str, text_info: dict[str, int], seed: int) -> None:
    import torch
    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration

    config_dict = tts_config(spec, mode, text_info)
    kwargs = {k: v for k, v in config_dict.items() if k not in ("architectures", "model_type", "dtype")}
    with _no_init():
        model = Qwen3TTSForConditionalGeneration(Qwen3TTSConfig(**kwargs)).eval()
    generator = torch.Generator().manual_seed(seed)
    demo_weights.randomize(model, generator)
    with torch.no_grad():
        for module in model.modules():  # constants the skipped init would have set
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
        model.talker.codec_head.weight[config_dict["talker_config"]["codec_eos_token_id"]].zero_()  # never stops
    if model.speaker_encoder is not None:
        demo_weights.unit_gain_convs(model.speaker_encoder, generator)
    _save(model, folder / "model.safetensors", spec.weights_dtype)
    del model
    demo_layout.write_json(folder / "config.json", config_dict)
    demo_layout.write_json(folder / "generation_config.json", dict(demo_tts.GENERATION_CONFIG, max_new_tokens=2048))


def describe(spec: ArchSpec) -> str:
    return (
        f"{spec.name}: talker {spec.hidden}x{spec.layers} layers (ffn {spec.intermediate}), "
        f"code predictor {spec.cp_hidden}x{spec.cp_layers}, codec decoder dim {spec.dec_dim}"
    )


def with_name(spec: ArchSpec, name: str) -> ArchSpec:
    return replace(spec, name=name)
