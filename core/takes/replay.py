"""Regenerating a stored take from its recipe ("regenerate with the same settings").

Single takes replay through `core.takes.recipes`; script takes through `core.takes.script_render`.
Either way the same seed and model give the same audio.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from core.audio.edit import PostProcessing
from core.engine.model_store import ProgressCallback
from core.engine.synthesis import SynthesisService
from core.storage.library import VoiceLibrary
from core.takes.recipes import request_from_recipe
from core.takes.script_render import render_script, script_voice_summary
from core.types import Request, Sampling, SynthesisResult


@dataclass
class Replay:
    result: SynthesisResult
    recipe: dict[str, Any]  # what to store with the new take
    voice: dict[str, Any]
    request: Request | None  # None for scripts and edited takes: stored with their recipe as it is


def replay(
    recipe: dict[str, Any],
    voice: dict[str, Any],
    synthesis: SynthesisService,
    library: VoiceLibrary,
    progress: ProgressCallback | None = None,
    *,
    client: str | None = None,
) -> Replay:
    if recipe.get("kind") == "script":
        result = render_script(
            synthesis,
            library,
            recipe["script"],
            recipe["casting"],
            language=recipe.get("language", "auto"),
            size=recipe.get("size"),
            sampling=Sampling(**recipe.get("sampling", {})),
            pause_s=recipe.get("pause_s", 0.4),
            post=PostProcessing(**recipe.get("post", {})),
            progress=progress,
        )
        made = Replay(result.to_synthesis_result(), recipe, script_voice_summary(result), None)
    else:
        request = request_from_recipe(recipe, library, synthesis)
        made = Replay(synthesis.synthesize(request, progress, client=client), recipe, voice, request)
    if recipe.get("edits"):
        made = _with_edits(made, synthesis, library, progress)
    return made


def _with_edits(
    made: Replay, synthesis: SynthesisService, library: VoiceLibrary, progress: ProgressCallback | None
) -> Replay:
    """A take whose parts were redone one by one (core/takes/part_edit.py): the original made
    again, then its edits applied again in order, so the same audio comes back."""
    from core.takes.part_edit import apply_edits, draft_text, reassemble

    result = made.result
    draft = apply_edits(made.recipe, result.mode, result.parts, synthesis, library, progress)
    audio, parts = reassemble(made.recipe, result.mode, draft, result.pause_s or 0.0)
    edited = replace(result, audio=audio, parts=parts, text=draft_text(result.mode, draft), chunks=list(draft.texts))
    # Stored with its recipe as it is (with the edits), not rebuilt from a request.
    return Replay(edited, made.recipe, made.voice, None)
