"""The fields /v1/audio/speech knows, in OpenAI's, vLLM-Omni's and mlx-audio's words.

One rule for every route: a field the studio does not know is refused with a
400 that names it (and suggests the closest known name, so ``instruction``
points at ``instructions``), never silently dropped. mlx-audio's names are
read as the studio's own (``instruct`` = ``instructions``, ``lang_code`` =
``language``, ``max_tokens`` = ``max_new_tokens``). A vLLM-Omni field the
studio cannot honour is refused with a 400 naming it, unless the value asks
for nothing (``speaker_embedding: null``, ``pitch: 1.0``...). docs/API.md's field table lists every field.
"""

from __future__ import annotations

import difflib
from typing import Any

from studio.api.openai.errors import bad_request

# Every field a speech request may carry (after the aliases below are folded in).
SPEECH_FIELDS = frozenset(
    {
        # OpenAI
        "model",
        "input",
        "voice",
        "instructions",
        "response_format",
        "speed",
        "stream_format",
        # vLLM-Omni (Qwen3-TTS)
        "task_type",
        "language",
        "ref_audio",
        "ref_text",
        "x_vector_only_mode",
        "max_new_tokens",
        "stream",
        "seed",
        "sample_rate",
        "non_streaming_mode",
        "speaker_embedding",
        "word_timestamps",
        "initial_codec_chunk_frames",
        # mlx-audio (the ones that ask for nothing on Qwen3-TTS, or are ignored)
        "pitch",
        "gender",
        "streaming_interval",
        "verbose",
        # the studio's own
        "temperature",
        "top_k",
        "top_p",
        "repetition_penalty",
        "max_seconds",
        "variants",
    }
)
# mlx-audio's name (and vLLM-Omni's ``speaker``) -> the studio's.
ALIASES = {"instruct": "instructions", "lang_code": "language", "max_tokens": "max_new_tokens", "speaker": "voice"}
# mlx-audio's Kokoro-style one-letter codes and ISO 639-1 codes -> the studio's languages.
LANG_CODES = {
    "a": "english",
    "b": "english",
    "en": "english",
    "z": "chinese",
    "zh": "chinese",
    "j": "japanese",
    "ja": "japanese",
    "ko": "korean",
    "de": "german",
    "f": "french",
    "fr": "french",
    "ru": "russian",
    "p": "portuguese",
    "pt": "portuguese",
    "e": "spanish",
    "es": "spanish",
    "i": "italian",
    "it": "italian",
}


def _refuse_unless(body: dict, name: str, neutral: tuple[Any, ...], why: str) -> None:
    value = body.get(name)
    if value is None or any(_same(value, n) for n in neutral):
        return
    raise bad_request(f"{name} is not supported: {why}", name, "unsupported_field")


def _same(value: Any, neutral: Any) -> bool:
    """Equal, with booleans equal only to booleans (``1 == True`` in Python)."""
    if isinstance(value, bool) or isinstance(neutral, bool):
        return value is neutral
    return bool(value == neutral)


def unknown_field(body: dict, known: frozenset[str] | set[str] | tuple[str, ...]) -> None:
    """Raises a 400 naming the first field of ``body`` that is not in ``known``."""
    unknown = sorted(set(body) - set(known))
    if not unknown:
        return
    name = unknown[0]
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise bad_request(
        f"Unknown field '{name}'.{hint} The studio refuses fields it does not know rather than ignore "
        "them; docs/API.md lists every field it reads.",
        name,
        "unknown_field",
    )


def speech_fields(body: dict) -> dict:
    """The request in the studio's own field names; refuses unknown and unsupported fields."""
    out = dict(body)
    for alias, name in ALIASES.items():
        if alias not in out:
            continue
        value = out.pop(alias)
        if out.get(name) is not None and value is not None and out[name] != value:
            raise bad_request(f"{alias} and {name} are the same field; send one of them.", alias)
        if out.get(name) is None:
            out[name] = value
    unknown_field(out, SPEECH_FIELDS)
    lang = out.get("language")
    if isinstance(lang, str) and lang.strip().lower() in LANG_CODES:
        out["language"] = LANG_CODES[lang.strip().lower()]
    _refuse_unless(
        out,
        "speaker_embedding",
        (),
        "the studio clones from audio; send ref_audio (with x_vector_only_mode true for the timbre "
        "only) or save the voice in the library and name it in voice.",
    )
    _refuse_unless(
        out,
        "initial_codec_chunk_frames",
        (),
        "it tunes vLLM-Omni's pipeline; the studio streams each piece as soon as it is decoded.",
    )
    _refuse_unless(out, "pitch", (1, 1.0), "Qwen3-TTS has no pitch control; send 1.0 or leave it out.")
    _refuse_unless(
        out,
        "gender",
        (),
        "Qwen3-TTS picks the voice from voice (a speaker) or instructions (a description); leave gender out.",
    )
    for name in ("streaming_interval", "verbose"):  # mlx-audio's client-side knobs: nothing to do here
        out.pop(name, None)
    return out
