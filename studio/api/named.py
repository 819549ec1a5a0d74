"""Named API endpoints that have no widget of their own.

The synthesis endpoints (/design, /custom_voice, /clone) are the tabs' own
Generate buttons; these plain-JSON ones are registered with ``gr.api`` so that
scripts get typed parameters and the page stays uncluttered.
"""

from __future__ import annotations

from typing import Any

from core.engine.speakers import speakers
from core.errors import InvalidInput
from core.types import LANGUAGES, Mode
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_function


def register_api(ctx: StudioContext) -> None:
    manager = ctx.app.models

    def loaded_speaker_ids() -> set[str] | None:
        for loaded in manager.resident_models():
            if loaded.checkpoint.mode == Mode.CUSTOM_VOICE:
                return {s.lower() for s in loaded.speakers}
        return None

    @friendly_errors
    def list_speakers() -> list[dict[str, Any]]:
        """The built-in CustomVoice speakers with description and native language."""
        available = loaded_speaker_ids()
        return [
            {
                "id": s.id,
                "name": s.name,
                "gender": s.gender,
                "description": s.description,
                "native_language": s.native_language,
                "in_loaded_model": None if available is None else s.id in available,
            }
            for s in speakers()
        ]

    @friendly_errors
    def list_languages() -> list[str]:
        """Languages every mode accepts ("Auto" detects it from the text)."""
        return [lang.capitalize() for lang in LANGUAGES]

    @friendly_errors
    def list_models() -> dict[str, Any]:
        """Every checkpoint with its state, plus the device and dtype policy."""
        return {
            "device": manager.device,
            "dtype_policy": manager.dtype_policy,
            "max_resident": manager.max_resident,
            "engine": ctx.app.synthesis.engine.name,
            # The MLX engine's weights: "as stored" (bf16) or its quantization, e.g. "4bit".
            "engine_weights": ctx.app.synthesis.engine.weights,
            "demo": ctx.demo,
            "models": [row.as_dict() for row in manager.status()],
            # Remote engine servers per checkpoint: server URL, health, in-flight count (never a key).
            "remote": ctx.app.remote.rows() if ctx.app.remote else [],
        }

    @friendly_errors
    def load_model(model: str) -> dict[str, Any]:
        """Loads a checkpoint by key (see /models), evicting others beyond max_resident."""
        with ctx.jobs.device():  # a turn of the device, as a take is (core/takes/jobs.py)
            loaded = manager.get(ctx.app.catalog.get(model or ""))
        return {
            "model": loaded.checkpoint.key,
            "device": loaded.device,
            "dtype": loaded.dtype,
            "load_seconds": round(loaded.load_seconds, 3),
            "memory_bytes": loaded.memory_bytes,
        }

    @friendly_errors
    def unload_model(model: str = "") -> dict[str, Any]:
        """Unloads one checkpoint by key, or every loaded one when model is empty."""
        key = ctx.app.catalog.get(model).key if model else None
        with ctx.jobs.device():
            return {"unloaded": manager.unload(key), "resident": manager.resident_keys()}

    lexicon = ctx.app.synthesis.lexicon

    @friendly_errors
    def lexicon_list() -> dict[str, Any]:
        """The pronunciation lexicon: entries (pattern, spoken, regex, language) and its version."""
        current = lexicon.current() if lexicon else None
        return {
            "version": current.version if current else None,
            "entries": current.as_dicts() if current else [],
        }

    @friendly_errors
    def lexicon_set(entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Replaces the lexicon; each entry: {"pattern": "Qwen", "spoken": "Chwen", "regex": false, "language": "auto"}."""
        if lexicon is None:
            raise InvalidInput("This studio has no pronunciation lexicon.")
        saved = lexicon.save(entries)
        return {"version": saved.version, "entries": saved.as_dicts()}

    api_function(lexicon_list, "lexicon", queue=False)
    api_function(lexicon_set, "lexicon_set", queue=False)
    api_function(list_speakers, "speakers", queue=False)
    api_function(list_languages, "languages", queue=False)
    api_function(list_models, "models", queue=False)
    api_function(load_model, "load_model")
    api_function(unload_model, "unload_model")
