"""Redoing one part of a stored take: a chunk of a long take, or a line of a script.

A take keeps its parts (core/storage/take_parts.py). One of them can be made
again with its own seed (it sounds as it did: chunk i of a take is always made
with the take's seed + i, a script line with its own seed, batched or alone),
made again with a new seed, or removed; the take is then re-assembled from
its parts exactly as it was made (the same pause and edge fades, the same
finishing: core/audio/assembly.py) and kept as a NEW take. The original stays
in the history untouched, so nothing saved is lost and the two can be compared.

The new take's recipe is the original's plus the edits that made it::

    {..., "derived_from": "<take id>", "edits": [{"part": 2, "action": "new_seed", "seed": 1234}]}

so "Regenerate with the same settings" on it makes the original again and
re-applies the edits in order (:func:`apply_edits`), giving the same audio.

Why a chunk is made from its stored text with the lexicon switched off: the
chunk text is already what the model spoke (the pronunciation lexicon was
applied before the take was cut into chunks), so applying it again could
change it twice. A script line's text is the line as written (lines are
spoken through the lexicon one by one), so it is spoken through it again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Protocol

from core.audio.assembly import EDGE_S, assemble
from core.audio.clip import Audio
from core.audio.edit import PostProcessing
from core.engine.model_store import ProgressCallback
from core.engine.synthesis import SynthesisService
from core.errors import InvalidInput
from core.storage.history import History, KeptTake, Take
from core.storage.library import VoiceLibrary
from core.takes.recipes import request_from_recipe
from core.takes.script_grammar import ScriptLine, script_text
from core.takes.script_render import plan_script, render_script
from core.text_lexicon import EMPTY_VERSION
from core.types import MAX_SEED, PartAudio, Sampling, SynthesisResult


class Stores(Protocol):
    """Where a part edit reads and keeps takes (a ``TakeService``)."""

    @property
    def history(self) -> History: ...
    @property
    def synthesis(self) -> SynthesisService: ...
    @property
    def library(self) -> VoiceLibrary: ...


__all__ = ["PartAction", "PartEdit", "PartsDraft", "apply_edits", "draft_text", "edit_part", "reassemble"]

SCRIPT = "script"


class PartAction(str, Enum):
    """What to do with one part."""

    SAME_SEED = "same_seed"  # make it again with its own seed (sounds as it did)
    NEW_SEED = "new_seed"  # make it again with a new random seed
    DELETE = "delete"  # leave it out

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_user(cls, word: Any) -> PartAction:
        if isinstance(word, cls):
            return word
        key = str(word or "").strip().lower().replace("-", "_").replace(" ", "_")
        aliases = {"same": cls.SAME_SEED, "new": cls.NEW_SEED, "remove": cls.DELETE}
        try:
            return aliases.get(key) or cls(key)
        except ValueError:
            raise InvalidInput(f"Unknown part action '{word}'; choose same_seed, new_seed or delete.") from None


@dataclass
class PartsDraft:
    """A take's parts in memory while they are edited (audio as joined, texts, seeds, who speaks)."""

    audio: list[Audio]
    texts: list[str]
    seeds: list[int]
    speakers: list[str | None]
    voices: list[str | None]

    @classmethod
    def of_take(cls, take: Take) -> PartsDraft:
        return cls(
            [part.load() for part in take.parts],
            [part.text for part in take.parts],
            [part.seed for part in take.parts],
            [part.speaker for part in take.parts],
            [part.voice for part in take.parts],
        )

    @classmethod
    def of_result(cls, parts: Sequence[PartAudio]) -> PartsDraft:
        return cls(
            [p.audio for p in parts],
            [p.text for p in parts],
            [p.seed for p in parts],
            [p.speaker for p in parts],
            [p.voice for p in parts],
        )

    def __len__(self) -> int:
        return len(self.audio)


@dataclass(frozen=True)
class PartEdit:
    """One part redone (or removed): the original take, the new take, and what was done."""

    original: Take
    kept: KeptTake
    index: int  # the part, from 0
    action: PartAction
    seed: int | None  # the seed the part was made with again (None: deleted)
    part_audio: Audio | None  # the part as made again (None: deleted)


def edit_part(
    service: Stores,
    take_id: str,
    index: Any,
    action: PartAction | str,
    *,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
) -> PartEdit:
    """Redoes (or deletes) part ``index`` of a stored take and keeps the result as a new take.

    ``seed`` overrides the seed of a NEW_SEED redo (for scripts and tests; None: random).
    """
    action = PartAction.from_user(action)
    original = service.history.get(take_id)
    if not original.parts:
        raise InvalidInput(
            "This take was kept before takes stored their chunks and lines, so its parts cannot be "
            "redone one by one; use Regenerate for the whole take."
        )
    if getattr(original, "stopped", False):
        raise InvalidInput("This take was stopped part-way; resume it first, then redo its parts.")
    number = _part_index(index, len(original.parts))
    started = time.perf_counter()
    draft = PartsDraft.of_take(original)
    edit = _new_edit(number, action, draft.seeds[number], seed)
    made = _apply(original.request, original.mode, draft, edit, service.synthesis, service.library, progress)
    result = _assembled(original, draft, time.perf_counter() - started)
    recipe = original.request | {
        "derived_from": original.id,
        "edits": [*original.request.get("edits", []), edit],
    }
    take = service.history.add(
        result,
        fmt=original.format,
        request=recipe,
        voice=original.voice,
        language=original.language,
        sampling=original.sampling,
    )
    verb = {PartAction.SAME_SEED: "made again", PartAction.NEW_SEED: "made with a new seed"}
    details = result.info() | {
        "take_id": take.id,
        "derived_from": original.id,
        "part": number,
        "action": action.value,
        "parts": len(draft),
        "message": f"Part {number + 1} {verb.get(action, 'deleted')}; kept as a new take.",
    }
    if edit.get("seed") is not None:
        details["part_seed"] = edit["seed"]
    return PartEdit(original, KeptTake(take, details), number, action, edit.get("seed"), made)


def apply_edits(
    recipe: dict[str, Any],
    mode: str,
    parts: Sequence[PartAudio],
    synthesis: SynthesisService,
    library: VoiceLibrary,
    progress: ProgressCallback | None = None,
) -> PartsDraft:
    """The parts of a replayed take with the recipe's ``edits`` applied again, in order."""
    draft = PartsDraft.of_result(parts)
    for edit in recipe.get("edits", []):
        if not isinstance(edit, dict):
            raise InvalidInput("This take's record of part edits is damaged; it cannot be regenerated.")
        _apply(recipe, mode, draft, edit, synthesis, library, progress)
    return draft


def reassemble(recipe: dict[str, Any], mode: str, draft: PartsDraft, pause_s: float) -> tuple[Audio, list[PartAudio]]:
    """The parts joined and finished as the take was: a script's scene gets only levels and fades
    (its lines were trimmed one by one), any other take its whole finishing."""
    post = PostProcessing(**recipe.get("post", {}))
    if mode == SCRIPT:
        post = PostProcessing(normalize=post.normalize, fade_in_s=post.fade_in_s, fade_out_s=post.fade_out_s)
    made = assemble(draft.audio, pause_s, post, edge_s=EDGE_S)
    return made.audio, made.parts(draft.audio, draft.texts, draft.seeds, speakers=draft.speakers, voices=draft.voices)


def draft_text(mode: str, draft: PartsDraft) -> str:
    """What the edited take says: its script lines, or its chunks' texts."""
    if mode == SCRIPT:
        lines = [ScriptLine(i + 1, s or "", t) for i, (s, t) in enumerate(zip(draft.speakers, draft.texts))]
        return script_text(lines)
    return " ".join(draft.texts)


# --- internals ---------------------------------------------------------------


def _part_index(index: Any, count: int) -> int:
    if isinstance(index, bool):
        index = None
    try:
        number = int(index)
        if number != index and not (isinstance(index, str) and index.strip().isdigit()):
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidInput(f"Choose a part by its number, 0 to {count - 1}.") from None
    if not 0 <= number < count:
        raise InvalidInput(f"This take has {count} part(s), numbered 0 to {count - 1}; there is no part {number}.")
    return number


def _new_edit(index: int, action: PartAction, current: int, seed: int | None) -> dict[str, Any]:
    if action == PartAction.DELETE:
        return {"part": index, "action": action.value}
    if action == PartAction.SAME_SEED:
        return {"part": index, "action": action.value, "seed": current}
    if seed is None:
        seed = secrets.randbelow(2**31)
        while seed == current:
            seed = secrets.randbelow(2**31)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"A part's seed must be a whole number from 0 to {MAX_SEED}.")
    return {"part": index, "action": action.value, "seed": seed}


def _apply(
    recipe: dict[str, Any],
    mode: str,
    draft: PartsDraft,
    edit: dict[str, Any],
    synthesis: SynthesisService,
    library: VoiceLibrary,
    progress: ProgressCallback | None,
) -> Audio | None:
    """Applies one edit to ``draft`` in place; returns the part's new audio (None: deleted)."""
    index = _part_index(edit.get("part"), len(draft))
    action = PartAction.from_user(edit.get("action"))
    if action == PartAction.DELETE:
        if len(draft) == 1:
            raise InvalidInput("This is the take's only part; delete the whole take instead.")
        for column in (draft.audio, draft.texts, draft.seeds, draft.speakers, draft.voices):
            del column[index]
        return None
    seed = int(edit["seed"])
    if mode == SCRIPT:
        audio = _script_line(recipe, draft.speakers[index], draft.texts[index], seed, synthesis, library, progress)
    else:
        audio = _chunk(recipe, draft.texts[index], seed, synthesis, library, progress)
    draft.audio[index], draft.seeds[index] = audio, seed
    return audio


def _chunk(
    recipe: dict[str, Any],
    text: str,
    seed: int,
    synthesis: SynthesisService,
    library: VoiceLibrary,
    progress: ProgressCallback | None,
) -> Audio:
    """One chunk made alone, as it was made inside its take: its text, its seed, no finishing."""
    request = request_from_recipe(recipe, library, synthesis)
    sampling = replace(request.sampling, seed=seed)
    alone = replace(request, text=text, sampling=sampling, post=PostProcessing(), lexicon_version=EMPTY_VERSION)
    return synthesis.synthesize(alone, progress).audio


def _script_line(
    recipe: dict[str, Any],
    speaker: str | None,
    text: str,
    seed: int,
    synthesis: SynthesisService,
    library: VoiceLibrary,
    progress: ProgressCallback | None,
) -> Audio:
    """One script line made alone with the script's casting and settings: a one-line script whose
    seed is the line's own (line 0 of a script uses the script's seed), with the line's finishing."""
    if not speaker:
        raise InvalidInput("This script line has no speaker on record; regenerate the whole script instead.")
    plan = plan_script(
        synthesis,
        library,
        [ScriptLine(number=1, speaker=speaker, text=text)],
        recipe.get("casting"),
        language=recipe.get("language", "auto"),
        size=recipe.get("size"),
        sampling=Sampling(**(recipe.get("sampling") or {})) if recipe.get("sampling") else Sampling(),
        pause_s=recipe.get("pause_s", 0.4),
        post=PostProcessing(**recipe.get("post", {})),
    )
    plan.seed = seed
    return render_script(synthesis, library, plan, progress=progress).lines[0].audio


def _assembled(original: Take, draft: PartsDraft, generate_s: float) -> SynthesisResult:
    pause_s = original.parts_pause_s if original.parts_pause_s is not None else 0.0
    audio, parts = reassemble(original.request, original.mode, draft, pause_s)
    text = draft_text(original.mode, draft)
    return SynthesisResult(
        audio=audio,
        mode=original.mode,
        model=original.model,
        seed=original.seed,
        demo=original.demo,
        text=text,
        chunks=list(draft.texts),
        timings={"generate_s": generate_s, "total_s": generate_s},
        warnings=list(original.warnings),
        engine=original.engine,
        parts=parts,
        pause_s=pause_s,
    )
