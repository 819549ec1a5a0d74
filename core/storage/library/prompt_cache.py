"""Clone prompts cached in each voice's folder, one safetensors file per Base checkpoint.

Encoding a reference takes a model load and a pass of the speaker encoder, so
the prompt is kept as ``<voice>/prompts/<checkpoint>.safetensors``. Why it is
safe to reuse:

- Prompts are always encoded from the reference file as stored, so a cached
  prompt and a fresh one see exactly the same samples.
- A cached prompt records the SHA-256 of the reference file and the
  transcript it was made from; it is used only while both still match the
  voice on disk, so a changed reference or transcript can never reuse a stale
  speaker embedding. A damaged prompt file is ignored and re-encoded.

torch is imported only when a prompt is actually read or written, so listing
and editing voices never loads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import safetensors

from core.audio.clip import Audio
from core.errors import LibraryError, VoiceNotFound
from core.storage.durable import write_atomic
from core.storage.library.records import (
    Voice,
    decode_reference,
    read_reference,
    voice_folder,
)
from core.types import ClonePrompt

log = logging.getLogger(__name__)

PROMPTS_DIR = "prompts"
PROMPT_FORMAT = "qwen-tts-studio-prompt/1"

_CHECKPOINT_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

Encoder = Callable[[Audio, str | None], ClonePrompt]


def cached_prompt(voice: Voice, checkpoint_key: str) -> ClonePrompt | None:
    """The cached prompt of ``voice`` (as it is on disk now), or None if absent, stale or damaged."""
    path = prompt_path(voice, checkpoint_key)
    if not path.is_file():
        return None
    data = read_reference(voice)
    return _load_prompt(path, checkpoint_key, hashlib.sha256(data).hexdigest(), voice.transcript)


def prompt_for(voice: Voice, checkpoint_key: str, encode: Encoder) -> tuple[ClonePrompt, bool]:
    """The prompt from the cache (True) or made by ``encode`` and stored (False).

    Failing to store is logged, never fatal: the prompt is still good.
    """
    path = prompt_path(voice, checkpoint_key)
    data = read_reference(voice)
    sha = hashlib.sha256(data).hexdigest()
    if path.is_file():
        cached = _load_prompt(path, checkpoint_key, sha, voice.transcript)
        if cached is not None:
            return cached, True
    prompt = encode(decode_reference(voice, data), voice.transcript)
    if not isinstance(prompt, ClonePrompt):
        raise TypeError(f"encode must return a ClonePrompt, not {type(prompt).__name__}")
    if prompt.checkpoint_key != checkpoint_key:
        raise LibraryError(
            f"The prompt was made with {prompt.checkpoint_key}, not {checkpoint_key}; "
            "encode it with the model the prompt is asked for."
        )
    try:
        write_prompt(voice, prompt, sha, voice.transcript)
    except (LibraryError, OSError) as exc:
        log.warning("Could not cache the prompt of voice '%s' for %s: %s", voice.name, checkpoint_key, exc)
    return prompt, False


def write_prompt(voice: Voice, prompt: ClonePrompt, reference_sha256: str, transcript: str | None) -> Path:
    """Stores ``prompt`` as made from that clip and transcript; ``voice`` must be read from disk just now."""
    import safetensors.torch

    if not isinstance(prompt, ClonePrompt):
        raise TypeError(f"prompt must be a ClonePrompt, not {type(prompt).__name__}")
    path = prompt_path(voice, prompt.checkpoint_key)
    tensors = {"speaker_embedding": prompt.speaker_embedding.detach().cpu().contiguous()}
    if prompt.ref_code is not None:
        tensors["ref_code"] = prompt.ref_code.detach().cpu().contiguous()
    metadata = {
        "format": PROMPT_FORMAT,
        "checkpoint_key": prompt.checkpoint_key,
        "reference_sha256": reference_sha256,
        # JSON keeps None distinct from "" in safetensors' string-only metadata.
        "transcript": json.dumps(transcript),
        "ref_text": json.dumps(prompt.ref_text),
        "x_vector_only": json.dumps(bool(prompt.x_vector_only)),
    }
    data = safetensors.torch.save(tensors, metadata=metadata)
    folder = voice_folder(voice.root, voice.id)
    try:
        # No parents=True: a voice deleted meanwhile must not be resurrected
        # as a folder holding only prompts.
        (folder / PROMPTS_DIR).mkdir(exist_ok=True)
    except FileNotFoundError:
        raise VoiceNotFound(f"The voice '{voice.name}' was deleted; its prompt was not cached.") from None
    write_atomic(path, data)
    return path


def prompt_path(voice: Voice, checkpoint_key: str) -> Path:
    if not isinstance(checkpoint_key, str) or not _CHECKPOINT_KEY_RE.fullmatch(checkpoint_key):
        raise LibraryError(f"'{checkpoint_key}' is not a valid model key for a cached prompt.")
    return voice.folder / PROMPTS_DIR / f"{checkpoint_key}.safetensors"


def _load_prompt(path: Path, checkpoint_key: str, reference_sha256: str, transcript: str | None) -> ClonePrompt | None:
    """The prompt in ``path`` if it is intact and made from this exact clip and transcript."""
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            if (
                meta.get("format") != PROMPT_FORMAT
                or meta.get("checkpoint_key") != checkpoint_key
                or meta.get("reference_sha256") != reference_sha256
                or meta.get("transcript") != json.dumps(transcript)
            ):
                log.debug("stale cached prompt %s", path)
                return None
            names = set(handle.keys())
            speaker_embedding = handle.get_tensor("speaker_embedding")
            ref_code = handle.get_tensor("ref_code") if "ref_code" in names else None
        ref_text = json.loads(meta["ref_text"])
        x_vector_only = json.loads(meta["x_vector_only"])
        if not (isinstance(x_vector_only, bool) and (ref_text is None or isinstance(ref_text, str))):
            raise ValueError("bad metadata types")
        if not x_vector_only and ref_code is None:
            raise ValueError("an in-context prompt without ref_code")
    except Exception as exc:  # a cache must never be fatal: any damage means "encode again"
        log.warning("Ignoring the damaged cached prompt %s (%s); it will be encoded again.", path, exc)
        return None
    return ClonePrompt(
        checkpoint_key=checkpoint_key,
        speaker_embedding=speaker_embedding,
        ref_code=ref_code,
        ref_text=ref_text,
        x_vector_only=x_vector_only,
    )
