"""The sizes, ids and file conventions every part of a demo checkpoint shares.

Every value was chosen against qwen-tts 0.1.1 / transformers 4.57.3; the
comments say which constraint of that code a value satisfies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_CONFIG_KEY = "studio_demo"
"""Extra top-level key in each checkpoint's config.json. Qwen3TTSConfig keeps unknown
keys as attributes, so a loaded model exposes it as ``model.model.config.studio_demo``."""

SAMPLE_RATE = 24_000
SAMPLES_PER_FRAME = 1_920  # 12.5 Hz codec: encode and decode rates must both be this

# The 12 Hz codec: 2048 codes per codebook, 16 codebooks per frame. The talker's
# codec vocabulary (tts_model.py) starts with the 2048 speech codes.
CODEBOOK_SIZE = 2048
NUM_CODE_GROUPS = 16  # must equal the speech tokenizer's quantizer counts

# Tiny sizes: big enough to exercise every code path, small enough to build fast.
HEAD_DIM = 16


def write_json(path: Path, data: dict[str, Any]) -> None:
    """One config file of a checkpoint: indented, UTF-8, with a final newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
