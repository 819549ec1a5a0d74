"""What a remote server serves, from its ``GET {URL}/models`` list, as our catalog's checkpoints.

* **vLLM-Omni** (and mlx-audio, or any OpenAI-compatible server) lists the
  model it serves by its Hugging Face id (``Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice``),
  or by a local folder whose name is the repo's name; that id is what
  ``model`` must say in each request.
* **Qwen TTS Studio** marks its entries ``owned_by: qwen-tts-studio`` and lists
  its catalog keys (``1.7B-Base``; ``demo-1.7B-Base`` on demo models) beside
  aliases and real ids it merely accepts, so only the keys count: a demo studio
  never passes for a real checkpoint, nor a real one for a demo checkpoint.
  A studio takes the studio's extra fields too (``seed``, sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from core.engine.catalog import Catalog

STUDIO_OWNER = "qwen-tts-studio"


class ServerKind(str, Enum):
    STUDIO = "qwen-tts-studio"  # accepts seed and sampling fields, answers X-Seed
    OPENAI = "openai-compatible"  # vLLM-Omni, mlx-audio: the vLLM-Omni dialect only

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Discovery:
    kind: ServerKind
    models: dict[str, str] = field(default_factory=dict)  # our checkpoint key -> the id the server wants


def discover(listing: dict[str, Any], catalog: Catalog) -> Discovery:
    entries = [e for e in listing.get("data", []) if isinstance(e, dict) and isinstance(e.get("id"), str)]
    studio = any(e.get("owned_by") == STUDIO_OWNER for e in entries)
    models: dict[str, str] = {}
    for entry in entries:
        remote_id = entry["id"].strip()
        wanted = remote_id.lower()
        for checkpoint in catalog:
            if studio:
                hit = wanted == checkpoint.key.lower()
            else:
                # vLLM serving a local folder lists the folder's path unless --served-model-name says otherwise.
                hit = wanted == checkpoint.repo_id.lower() or wanted.rstrip("/").split("/")[-1] == (
                    checkpoint.repo_name.lower()
                )
                hit = hit and not checkpoint.demo  # demo checkpoints exist only in studios
            if hit and checkpoint.key not in models:
                models[checkpoint.key] = remote_id
    return Discovery(ServerKind.STUDIO if studio else ServerKind.OPENAI, models)
