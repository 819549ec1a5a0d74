"""The trained model written as a complete custom_voice checkpoint in the models dir.

What the official recipe does to a Base checkpoint, done crash-safe:

* ``config.json``: ``tts_model_type: "custom_voice"``, ``talker_config.spk_id`` =
  ``{speaker: 3000}`` and ``spk_is_dialect`` = ``{speaker: false}``; every other key as the
  Base had it. Written by us from the Base's own file: ``save_pretrained``'s config does not
  load (it puts ``model_type: ""`` into ``speaker_encoder_config``);
* ``model.safetensors``: the talker's weights (LoRA merged in first), row 3000 of
  ``talker.model.codec_embedding`` set to the speaker encoder's embedding of the reference,
  the speaker encoder's weights left out; in the Base file's precision;
* every other file of the Base (text tokenizer, processor, generation defaults, the
  ``speech_tokenizer/`` folder) copied as it is;
* ``studio-voice.json`` last (core/engine/user_models.py): what lists it in Models.

It is written into a hidden temporary folder beside its final place, fsynced, and renamed, so
the models dir holds the whole checkpoint or nothing; a full disk rolls it back (StorageFull).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from core.engine.user_models import MARKER, TrainedVoice, folder_name, size_label
from core.errors import InvalidInput
from core.finetune.config import SPEAKER_ID, TrainConfig, TrainMethod
from core.finetune.state import check_space, full_error, save_safetensors
from core.storage.durable import fsync_dir, fsync_file, write_file

_SKIP = {"config.json", "model.safetensors", "pytorch_model.bin", MARKER, ".demo-build.json", ".arch-build.json"}
_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
EMBEDDING_KEY = "talker.model.codec_embedding.weight"


def custom_voice_config(base_config: dict[str, Any], speaker_id: str) -> dict[str, Any]:
    """The Base's config.json turned into a custom_voice one with the single new speaker."""
    config = json.loads(json.dumps(base_config))  # a deep copy
    config["tts_model_type"] = "custom_voice"
    talker = config.setdefault("talker_config", {})
    talker["spk_id"] = {speaker_id: SPEAKER_ID}
    talker["spk_is_dialect"] = {speaker_id: False}
    return config


def export_state_dict(
    model: Any, speaker_embedding: torch.Tensor, dtype: torch.dtype | None
) -> dict[str, torch.Tensor]:
    """The merged model's weights as the checkpoint stores them (see the module notes)."""
    state = {
        name: tensor.detach().to("cpu").contiguous()
        for name, tensor in model.state_dict().items()
        if not name.startswith("speaker_encoder")
    }
    if any("lora_" in name or ".base_layer." in name for name in state):
        raise RuntimeError("the LoRA adapters must be merged before the checkpoint is written")
    table = state[EMBEDDING_KEY].clone()
    if table.shape[0] <= SPEAKER_ID:
        raise InvalidInput(f"This Base checkpoint's codec vocabulary has no row {SPEAKER_ID} for a new speaker.")
    table[SPEAKER_ID] = speaker_embedding.to(table.dtype)
    state[EMBEDDING_KEY] = table
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    return state


def stored_dtype(base_config: dict[str, Any]) -> torch.dtype | None:
    """The precision the Base file keeps its weights in (the released ones: bf16)."""
    return _DTYPES.get(str(base_config.get("torch_dtype") or base_config.get("dtype") or ""))


def write_checkpoint(
    model: Any,
    *,
    base_path: Path,
    dest_root: Path,
    config: TrainConfig,
    speaker_embedding: torch.Tensor,
    base_key: str,
    steps: int,
    reserve_bytes: int,
) -> TrainedVoice:
    """Writes the trained (merged) ``model`` as ``dest_root/custom-<name>``; returns what the catalog lists."""
    base_path = Path(base_path)
    base_config = json.loads((base_path / "config.json").read_text(encoding="utf-8"))
    dest_root.mkdir(parents=True, exist_ok=True)
    final = dest_root / folder_name(config.speaker)
    if final.exists():
        raise InvalidInput(
            f"A trained voice is already in {final}; remove it in Models first, or train under another name."
        )
    state = export_state_dict(model, speaker_embedding, stored_dtype(base_config))
    copied = [p for p in base_path.iterdir() if p.name not in _SKIP and not p.name.startswith(".")]
    need = sum(t.numel() * t.element_size() for t in state.values()) + sum(_size(p) for p in copied)
    what = f"the trained voice '{config.speaker}'"
    check_space(dest_root, need, reserve_bytes, what)
    voice = TrainedVoice(
        key=final.name,
        folder=final,
        speaker=config.speaker,
        speaker_id=config.speaker_id,
        # The catalog's key names the size ("0.6B-Base"); the config's own field says "1b7" for
        # every demo checkpoint (qwen_tts needs it), so it is only the fallback.
        size=next((z for z in ("0.6B", "1.7B") if z in base_key), None)
        or size_label(base_config.get("tts_model_size")),
        base=base_key,
        method=TrainMethod(config.method).value,
        steps=steps,
        demo=bool(base_config.get("studio_demo", False)),
        created=time.time(),
    )
    tmp = dest_root / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        for path in copied:
            if path.is_dir():
                shutil.copytree(path, tmp / path.name)  # follows the HF cache's symlinks
            else:
                shutil.copy2(path, tmp / path.name)
        for path in tmp.rglob("*"):
            if path.is_file():
                fsync_file(path)
        write_file(tmp / "config.json", _json(custom_voice_config(base_config, config.speaker_id)))
        save_safetensors(state, tmp / "model.safetensors")
        os.chmod(tmp / "model.safetensors", 0o644)  # safetensors creates it owner-only, unlike the copied files
        write_file(tmp / MARKER, _json(voice.as_record()))  # last: its presence means complete
        fsync_dir(tmp)
        os.rename(tmp, final)
        fsync_dir(dest_root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise full_error(exc, what, "") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return voice


def _json(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.resolve().stat().st_size for p in path.rglob("*") if p.is_file())
    return path.resolve().stat().st_size
