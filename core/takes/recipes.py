"""A take's recipe: the plain-data form of a request, to store and to replay.

History keeps a recipe with every take so "regenerate with the same settings"
rebuilds the exact request (same seed, same model size). Clones reference a
library voice by id; a clip uploaded for one take is not kept, so such takes
record that and cannot be replayed.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from core.audio.edit import PostProcessing
from core.engine.synthesis import SynthesisService
from core.errors import InvalidInput
from core.storage.library import VoiceLibrary
from core.storage.library.records import decode_reference, read_reference
from core.text_lexicon import EMPTY_VERSION
from core.types import (
    CloneRequest,
    CustomVoiceRequest,
    DesignRequest,
    Mode,
    Request,
    Sampling,
)

RECIPE_VERSION = 1


def recipe_of(request: Request, seed: int, *, voice_id: str | None = None) -> dict[str, Any]:
    """The request as JSON-able data, with the seed actually used."""
    sampling = asdict(request.sampling) | {"seed": seed}
    base = {
        "recipe": RECIPE_VERSION,
        "text": request.text,
        "language": request.language,
        "size": request.size,
        "sampling": sampling,
        "post": asdict(request.post),
        # Regenerate speaks with this same pronunciation lexicon (core/text_lexicon.py).
        "lexicon_version": request.lexicon_version,
    }
    if isinstance(request, DesignRequest):
        return base | {"kind": "design", "description": request.description}
    if isinstance(request, CustomVoiceRequest):
        return base | {"kind": "custom_voice", "speaker": request.speaker, "instruct": request.instruct}
    return base | {
        "kind": "clone",
        "voice_id": voice_id,
        "reference_text": request.reference_text,
        "x_vector_only": request.x_vector_only,
        # Trim and clean-up (high-pass, noise reduction) the reference was prepared with.
        "reference_options": request.reference_options,
    }


def voice_summary(request: Request, *, voice_name: str | None = None) -> dict[str, Any]:
    """Who is speaking, for the history list."""
    if isinstance(request, DesignRequest):
        return {"kind": "design", "description": request.description}
    if isinstance(request, CustomVoiceRequest):
        return {"kind": "speaker", "speaker": request.speaker}
    return {"kind": "clone", "voice": voice_name or "uploaded reference"}


def clone_request_for_voice(
    library: VoiceLibrary,
    synthesis: SynthesisService,
    voice: str,
    *,
    text: str,
    language: str = "auto",
    size: str | None = None,
    sampling: Sampling = Sampling(),
    lexicon_version: str | None = None,
) -> tuple[CloneRequest, bool]:
    """A clone request from a library voice, using its cached prompt for this
    checkpoint when there is one; returns (request, came_from_cache)."""
    entry = library.get(voice)
    checkpoint = synthesis.checkpoint_for(Mode.BASE, size)
    if synthesis.clones_from_clip(checkpoint):
        # A remote engine clones from the clip itself (ref_audio): no local encoding to cache or reuse.
        clip = decode_reference(entry, read_reference(entry))
        prompt, cached = synthesis.create_clone_prompt(clip, entry.transcript, size=checkpoint.size), False
    else:
        prompt, cached = library.prompt_for(
            entry,
            checkpoint.key,
            lambda audio, transcript: synthesis.create_clone_prompt(audio, transcript, size=checkpoint.size),
        )
    request = CloneRequest(
        text=text,
        language=language,
        prompt=prompt,
        size=checkpoint.size,
        reference_text=entry.transcript,
        sampling=sampling,
        lexicon_version=lexicon_version,
        reference_options=None if entry.trim is None else entry.trim.as_dict(),
    )
    return request, cached


def request_from_recipe(recipe: dict[str, Any], library: VoiceLibrary, synthesis: SynthesisService) -> Request:
    kind = recipe.get("kind")
    sampling = Sampling(**recipe.get("sampling", {}))
    post = PostProcessing(**recipe.get("post", {}))
    common = dict(
        text=recipe["text"],
        language=recipe.get("language", "auto"),
        size=recipe.get("size"),
        # A recipe from before the lexicon existed was spoken with none.
        lexicon_version=recipe.get("lexicon_version") or EMPTY_VERSION,
    )
    if kind == "design":
        return DesignRequest(description=recipe["description"], sampling=sampling, post=post, **common)
    if kind == "custom_voice":
        return CustomVoiceRequest(
            speaker=recipe["speaker"], instruct=recipe.get("instruct"), sampling=sampling, post=post, **common
        )
    if kind == "clone":
        if not recipe.get("voice_id"):
            raise InvalidInput(
                "This take cloned an uploaded clip, which the studio does not keep, so it cannot be "
                "regenerated. Save the reference to the Voice Library to make repeatable clones."
            )
        request, _ = clone_request_for_voice(library, synthesis, recipe["voice_id"], sampling=sampling, **common)
        return replace(request, post=post)
    raise InvalidInput("This take was made by a newer version of the studio and cannot be regenerated here.")
