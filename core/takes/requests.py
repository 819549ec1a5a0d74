"""The one request factory: what a user asks for, from any entry point, to the take to make.

A tab, the named API, the OpenAI-compatible route, the CLI and a script line all
describe a take the same way, as an ``Ask`` (the mode's own values plus the
checked Advanced ``Options`` of core/takes/values.py); ``request_for`` turns it
into the engine's request and ``take_job`` into the ``TakeJob`` the runner makes
and keeps. A bad or missing value is refused here with an ``InvalidInput`` that
names the field, so every entry point refuses it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core import text as textlib
from core.audio.clip import Audio
from core.engine.speakers import find_speaker
from core.engine.synthesis import SynthesisService
from core.errors import InvalidInput
from core.storage.library import Voice, VoiceLibrary
from core.takes.recipes import clone_request_for_voice
from core.takes.values import Options, language_value
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Mode, Request


@dataclass
class TakeJob:
    """One take to make: the engine request plus what is kept and reported with it."""

    request: Request
    fmt: str  # the format the take is stored in
    info: dict[str, Any] = field(default_factory=dict)  # merged into the details dict
    warnings: list[str] = field(default_factory=list)  # e.g. reference problems, shown first
    voice_id: str | None = None  # the library voice a clone used, for replaying it later
    voice_name: str | None = None
    variants: int = 1  # "Generate N takes": N takes of the request with seeds s, s+1, ... (1-8)


@dataclass(frozen=True)
class Ask:
    """What a user asks for. Which fields count follows from ``mode``: VoiceDesign speaks in the
    ``description``; CustomVoice as ``speaker`` with an optional ``instruct``; Base (a clone) in a
    library ``voice`` (name or id) or a prepared ``reference`` clip with its ``reference_text``."""

    mode: Mode
    text: str | None
    language: str | None = "auto"  # None: a library voice's own language, else auto
    size: str | None = None  # None: the preferred size
    description: str | None = None
    speaker: str | None = None
    instruct: str | None = None
    voice: str | None = None
    reference: Audio | None = None
    reference_text: str | None = None
    x_vector_only: bool = False
    reference_options: dict[str, Any] | None = None  # how the reference was trimmed and cleaned, kept with the take
    options: Options = Options()


def _text(value: Any, name: str) -> str:
    """A text field as given ("" when empty); anything but text is refused by name."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, not {type(value).__name__}.")
    return value


def _optional(value: Any, name: str) -> str | None:
    """A text field or None when empty: kept as given, as the model hears it (and replays it)."""
    return _text(value, name) or None


def request_for(
    ask: Ask, library: VoiceLibrary | None = None, synthesis: SynthesisService | None = None
) -> tuple[Request, Voice | None, bool]:
    """The engine request for ``ask``: (request, the library voice it clones or None, whether that
    voice's clone prompt came from its cache). A library voice needs ``library`` and ``synthesis``."""
    text = _text(ask.text, "Text")
    size = _text(ask.size, "Size").strip() or None
    sampling, post = ask.options.sampling, ask.options.post
    common: dict[str, Any] = dict(text=text, size=size, sampling=sampling, post=post)
    if ask.mode is Mode.VOICE_DESIGN:
        description = _text(ask.description, "Voice description")
        return DesignRequest(description=description, language=language_value(ask.language), **common), None, False
    if ask.mode is Mode.CUSTOM_VOICE:
        speaker = _text(ask.speaker, "Speaker")
        instruct = _optional(ask.instruct, "Style instruction")
        language = language_value(ask.language)
        return CustomVoiceRequest(speaker=speaker, instruct=instruct, language=language, **common), None, False
    if ask.mode is not Mode.BASE:
        raise InvalidInput(f"'{ask.mode}' cannot speak; choose VoiceDesign, CustomVoice or Base.")
    name = _text(ask.voice, "Voice").strip() or None
    if name is None:
        if ask.reference is None:
            raise InvalidInput("A clone needs a reference clip or a library voice.")
        request = CloneRequest(
            language=language_value(ask.language),
            reference=ask.reference,
            reference_text=None if ask.x_vector_only else _optional(ask.reference_text, "Transcript"),
            x_vector_only=ask.x_vector_only,
            reference_options=ask.reference_options,
            **common,
        )
        return request, None, False
    if library is None or synthesis is None:
        raise InvalidInput("Library voices are not available here; send a reference clip instead.")
    entry = library.get(name)
    # The text is checked before the (possibly slow) encoding of the voice's clone prompt.
    textlib.validate_text(text, max_chars=synthesis.max_text_chars)
    language = entry.language or "auto" if ask.language is None else language_value(ask.language)
    request, cached = clone_request_for_voice(
        library, synthesis, entry.id, text=text, language=language, size=size, sampling=sampling
    )
    return replace(request, post=post), entry, cached


def take_job(ask: Ask, library: VoiceLibrary | None = None, synthesis: SynthesisService | None = None) -> TakeJob:
    """The take to make for ``ask``, with what its details report about the voice."""
    request, voice, cached = request_for(ask, library, synthesis)
    info: dict[str, Any] = {"language": request.language.lower()}
    if isinstance(request, DesignRequest):
        info["description"] = request.description
    elif isinstance(request, CustomVoiceRequest):
        # A voice trained here is found through the synthesis service's catalog (core/engine/user_models.py).
        trained = synthesis.catalog.trained_speakers() if synthesis is not None else ()
        info["speaker"] = find_speaker(request.speaker, trained).name
    elif voice is not None:
        info |= {"voice": voice.name, "prompt_cached": cached, "reference_s": voice.reference_seconds}
        return TakeJob(request, ask.options.fmt, info=info, voice_id=voice.id, voice_name=voice.name)
    elif ask.reference is not None:
        info["reference_s"] = round(ask.reference.duration, 3)
    return TakeJob(request, ask.options.fmt, info=info)
