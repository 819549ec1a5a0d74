"""Script mode's rendering: a parsed script and casting, spoken line by line.

Everything — the script, the casting, every voice, language and size — is
checked before the first model loads. Line k (counting from 0) is generated
with seed ``seed + 1000·k``, so a script renders identically with the same
seed and any line can be redone on its own. With fewer resident model slots
than the script needs checkpoints, lines are generated grouped by checkpoint
(each model loads once) and assembled in script order.
"""

from __future__ import annotations

import difflib
import logging
import math
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from core.audio.assembly import EDGE_S, assemble
from core.audio.clip import Audio
from core.audio.edit import PostProcessing
from core.engine.catalog import Checkpoint
from core.engine.model_store import ProgressCallback
from core.engine.speakers import Speaker, find_speaker, speakers
from core.engine.synthesis import DEMO_WARNING, SynthesisService
from core.errors import GenerationError, InvalidInput, Stopped, StudioError
from core.storage.library import Voice, VoiceLibrary
from core.takes.recipes import RECIPE_VERSION
from core.takes.requests import Ask, request_for
from core.takes.script_grammar import (
    MAX_LINES,
    Casting,
    ScriptLine,
    VoiceSpec,
    casting_from,
    name_key,
    parse_script,
    preview,
    script_text,
    strip_group,
)
from core.takes.values import Options
from core.types import (
    MAX_SEED,
    CloneRequest,
    CustomVoiceRequest,
    Mode,
    PartAudio,
    Sampling,
    SynthesisResult,
    normalize_language,
)

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PAUSE_S",
    "LINE_SEED_STRIDE",
    "MAX_PAUSE_S",
    "CastVoice",
    "RenderedLine",
    "ScriptPlan",
    "ScriptResult",
    "line_seed",
    "plan_script",
    "render_script",
    "script_recipe",
    "script_voice_summary",
    "stream_script",
]

DEFAULT_PAUSE_S = 0.4
MAX_PAUSE_S = 10.0
LINE_SEED_STRIDE = 1000  # line k uses seed + 1000·k; its chunks use + 0, 1, 2, …
SCRIPT_WINDOW = 8  # lines handed to the engine together after the first (it sizes each call itself)


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class CastVoice:
    """A part whose voice has been checked: what will generate its lines."""

    name: str  # as first written in the script
    spec: VoiceSpec
    checkpoint: Checkpoint
    language: str
    speaker: Speaker | None = None
    voice: Voice | None = None

    @property
    def label(self) -> str:
        if self.speaker is not None:
            return self.speaker.name + (f" ({self.spec.instruct})" if self.spec.instruct else "")
        return f"{self.voice.name} (library)"  # type: ignore[union-attr]

    def summary(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "model": self.checkpoint.key, "language": self.language}
        if self.speaker is not None:
            row |= {"speaker": self.speaker.name, "instruct": self.spec.instruct}
        else:
            row |= {"voice": self.voice.name, "voice_id": self.voice.id}  # type: ignore[union-attr]
        return row


@dataclass
class ScriptPlan:
    """A validated script, ready to render (nothing has been generated yet)."""

    lines: list[ScriptLine]
    cast: dict[str, CastVoice]  # name_key → voice
    casting: Casting
    seed: int
    sampling: Sampling
    pause_s: float
    language: str
    size: str | None
    order: list[int]  # line indices in generation order
    post: PostProcessing = field(default_factory=PostProcessing)

    @property
    def line_post(self) -> PostProcessing:
        """What each line gets: DC removal and silence trim (so the pauses are what was asked)."""
        return PostProcessing(remove_dc=self.post.remove_dc, trim_silence=self.post.trim_silence)

    @property
    def scene_post(self) -> PostProcessing:
        """What the joined scene gets: level and fades (a gain and the edges: line starts stay put)."""
        return PostProcessing(
            normalize=self.post.normalize, fade_in_s=self.post.fade_in_s, fade_out_s=self.post.fade_out_s
        )

    def voice_of(self, line: ScriptLine) -> CastVoice:
        return self.cast[name_key(line.speaker)]

    @property
    def grouped(self) -> bool:
        return self.order != sorted(self.order)

    @property
    def text(self) -> str:
        return script_text(self.lines)


@dataclass
class RenderedLine:
    """One line's audio, yielded by :func:`stream_script` as soon as it exists."""

    index: int  # position in the script (from 0)
    total: int
    line: ScriptLine
    audio: Audio
    voice: str  # label of the voice that spoke it
    seed: int
    model: str
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    @property
    def speaker(self) -> str:
        return self.line.speaker

    @property
    def text(self) -> str:
        return self.line.text

    @property
    def duration(self) -> float:
        return self.audio.duration


@dataclass
class ScriptResult:
    audio: Audio  # every line joined, in script order
    lines: list[RenderedLine]  # script order
    starts: list[float]  # where each line begins in ``audio``, seconds
    seed: int
    pause_s: float
    demo: bool
    models: list[str]
    language: str
    cast: list[dict[str, Any]]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    engine: str = "torch"  # the engine that made the lines (core/engine/interface.py)

    @property
    def duration(self) -> float:
        return self.audio.duration

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def text(self) -> str:
        return script_text([r.line for r in self.lines])

    def info(self) -> dict[str, Any]:
        """The JSON-friendly summary returned to the UI and scripts."""
        return {
            "mode": "script",
            "models": list(self.models),
            "demo": self.demo,
            "engine": self.engine,
            "seed": self.seed,
            "duration_s": round(self.duration, 3),
            "sample_rate": self.sample_rate,
            "pause_s": self.pause_s,
            "language": self.language,
            "cast": self.cast,
            "lines": [
                {
                    "number": r.line.number,
                    "speaker": r.speaker,
                    "voice": r.voice,
                    "text": r.text,
                    "start_s": round(start, 3),
                    "duration_s": round(r.duration, 3),
                    "seed": r.seed,
                    "model": r.model,
                }
                for r, start in zip(self.lines, self.starts)
            ],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "warnings": list(self.warnings),
        }

    def to_synthesis_result(self) -> SynthesisResult:
        """The merged take in the form the history stores."""
        return SynthesisResult(
            audio=self.audio,
            mode="script",
            model=", ".join(self.models),
            seed=self.seed,
            demo=self.demo,
            text=self.text,
            chunks=[r.text for r in self.lines],
            timings=dict(self.timings),
            warnings=list(self.warnings),
            engine=self.engine,
            # Each line is a part (its audio as joined): History redoes lines one by one from these.
            parts=[
                PartAudio(
                    index=i,
                    text=r.text,
                    seed=r.seed,
                    audio=r.audio,
                    start_s=start,
                    end_s=min(start + r.duration, self.duration),
                    speaker=r.speaker,
                    voice=r.voice,
                )
                for i, (r, start) in enumerate(zip(self.lines, self.starts))
            ],
            pause_s=self.pause_s,
        )


# --------------------------------------------------------------------------- planning


def line_seed(seed: int, index: int) -> int:
    return (seed + LINE_SEED_STRIDE * index) % (MAX_SEED + 1)


def _uncast_message(missing: dict[str, list[int]]) -> str:
    def where(numbers: list[int]) -> str:
        shown = ", ".join(map(str, numbers[:5])) + (", …" if len(numbers) > 5 else "")
        return f"line {shown}" if len(numbers) == 1 else f"lines {shown}"

    listed = ", ".join(f"{name} ({where(numbers)})" for name, numbers in missing.items())
    example = next(iter(missing))
    noun = "this name" if len(missing) == 1 else f"these {len(missing)} names"
    return (
        f"No voice is cast for {noun}: {listed}. Add a casting line for each, e.g. "
        f"'{example} = Ryan' or '{example} = voice: My Voice'."
    )


def _check_pause(pause_s: Any) -> float:
    if pause_s is None:
        return DEFAULT_PAUSE_S
    if isinstance(pause_s, bool) or not isinstance(pause_s, (int, float)) or not math.isfinite(pause_s):
        raise InvalidInput("The pause between lines must be a number of seconds.")
    if not 0 <= pause_s <= MAX_PAUSE_S:
        raise InvalidInput(f"The pause between lines is {pause_s} s; it must be 0 to {MAX_PAUSE_S:g} seconds.")
    return float(pause_s)


def plan_script(
    synthesis: SynthesisService,
    library: VoiceLibrary,
    script: str | Sequence[ScriptLine],
    casting: Casting | Mapping[str, Any] | str | None,
    *,
    language: str = "auto",
    size: str | None = None,
    sampling: Sampling = Sampling(),
    pause_s: float = DEFAULT_PAUSE_S,
    post: PostProcessing = PostProcessing(),
    max_lines: int = MAX_LINES,
) -> ScriptPlan:
    """Checks everything a render needs — no model is loaded and nothing is generated."""
    if isinstance(script, str) or script is None:
        lines = parse_script(script, max_lines=max_lines, max_chars=synthesis.max_text_chars)
    else:
        lines = list(script)
        if not lines:
            raise InvalidInput("The script is empty.")
    cast_text = casting_from(casting)
    language = normalize_language(language)
    sampling = sampling.validated()
    post = post.validated()
    pause_s = _check_pause(pause_s)

    missing: dict[str, list[int]] = {}
    for line in lines:
        if line.speaker not in cast_text:
            key = next((n for n in missing if name_key(n) == name_key(line.speaker)), line.speaker)
            missing.setdefault(key, []).append(line.number)
    if missing:
        raise InvalidInput(_uncast_message(missing))

    cast: dict[str, CastVoice] = {}
    problems: list[str] = []
    checked: set[str] = set()
    for line in lines:
        key = name_key(line.speaker)
        if key in checked:
            continue
        checked.add(key)
        spec = cast_text.get(line.speaker)
        try:
            cast[key] = _cast_voice(synthesis, library, line.speaker, spec, language, size)  # type: ignore[arg-type]
        except StudioError as exc:
            problems.append(f"{line.speaker}: {exc}")
    if problems:
        raise InvalidInput(
            problems[0]
            if len(problems) == 1
            else "Some voices are not available:\n" + "\n".join(f"• {p}" for p in problems)
        )

    seed = sampling.seed if sampling.seed is not None else secrets.randbelow(2**31)
    order = _generation_order(synthesis, lines, cast)
    return ScriptPlan(
        lines=lines,
        cast=cast,
        casting=cast_text,
        seed=seed,
        sampling=sampling,
        pause_s=pause_s,
        language=language,
        size=size,
        order=order,
        post=post,
    )


def _cast_voice(
    synthesis: SynthesisService, library: VoiceLibrary, name: str, spec: VoiceSpec, language: str, size: str | None
) -> CastVoice:
    voice_language = normalize_language(spec.language or language)
    voice_size = spec.size or size or None
    if spec.speaker:
        speaker = find_speaker(spec.speaker)
        checkpoint = synthesis.checkpoint_for(Mode.CUSTOM_VOICE, voice_size)
        return CastVoice(name, spec, checkpoint, voice_language, speaker=speaker)
    try:
        entry = library.get(spec.voice or "")
    except StudioError as exc:
        bare, style = strip_group(spec.voice or "", ")")
        if style and bare:
            try:
                library.get(bare)
            except StudioError:
                pass
            else:
                raise InvalidInput(
                    f"'{bare}' is a library voice, and a style instruction ({style}) only works with "
                    "built-in speakers; library voices are cloned as recorded. Remove the (…)."
                ) from None
        if spec.guessed:
            names = {s.name.casefold(): s.name for s in speakers()}
            close = difflib.get_close_matches((spec.voice or "").casefold(), list(names), n=1, cutoff=0.6)
            hint = f" Did you mean the speaker '{names[close[0]]}'?" if close else ""
            if not close and "Did you mean" in str(exc):
                hint = " " + str(exc)[str(exc).index("Did you mean") :]
            raise InvalidInput(
                f"'{spec.voice}' is neither a built-in speaker nor a voice in the library.{hint} "
                f"Speakers: {', '.join(names.values())}."
            ) from None
        raise
    checkpoint = synthesis.checkpoint_for(Mode.BASE, voice_size)
    return CastVoice(name, spec, checkpoint, voice_language, voice=entry)


def _generation_order(synthesis: SynthesisService, lines: list[ScriptLine], cast: dict[str, CastVoice]) -> list[int]:
    """Script order, unless the script needs more models than may stay loaded at once:
    then grouped by checkpoint (the one already loaded first), so each loads once."""
    keys = list(dict.fromkeys(cast[name_key(line.speaker)].checkpoint.key for line in lines))
    manager = synthesis.manager
    if len(keys) <= max(1, int(getattr(manager, "max_resident", 1))):
        return list(range(len(lines)))
    resident = set(manager.resident_keys())
    ranked = sorted(keys, key=lambda k: (k not in resident, keys.index(k)))
    rank = {k: i for i, k in enumerate(ranked)}
    return sorted(range(len(lines)), key=lambda i: (rank[cast[name_key(lines[i].speaker)].checkpoint.key], i))


# --------------------------------------------------------------------------- rendering

ScriptRequest = CustomVoiceRequest | CloneRequest


def stream_script(
    synthesis: SynthesisService,
    library: VoiceLibrary,
    script: str | Sequence[ScriptLine] | ScriptPlan,
    casting: Casting | Mapping[str, Any] | str | None = None,
    *,
    language: str = "auto",
    size: str | None = None,
    sampling: Sampling = Sampling(),
    pause_s: float = DEFAULT_PAUSE_S,
    post: PostProcessing = PostProcessing(),
    progress: ProgressCallback | None = None,
    done: Mapping[int, RenderedLine] | None = None,
) -> Iterator[RenderedLine | ScriptResult]:
    """Yields each line's audio as it is produced (:class:`RenderedLine`, in generation
    order: see ``RenderedLine.index``), then the :class:`ScriptResult`. Lines in ``done``
    (a stopped render's, by index: core/takes/script_jobs.py) are reused, not made again.

    Everything is validated here, before the first model load, so bad input
    raises at the call, not during iteration.
    """
    plan = (
        script
        if isinstance(script, ScriptPlan)
        else plan_script(
            synthesis,
            library,
            script,
            casting,
            language=language,
            size=size,
            sampling=sampling,
            pause_s=pause_s,
            post=post,
        )
    )
    return _render(synthesis, library, plan, progress, dict(done or {}))


def render_script(*args: Any, **kwargs: Any) -> ScriptResult:
    """The whole script at once; same arguments as :func:`stream_script`."""
    for item in stream_script(*args, **kwargs):
        if isinstance(item, ScriptResult):
            return item
    raise AssertionError("stream_script always ends with a result")  # pragma: no cover


def _render(
    synthesis: SynthesisService,
    library: VoiceLibrary,
    plan: ScriptPlan,
    progress: ProgressCallback | None,
    rendered: dict[int, RenderedLine],
) -> Iterator[RenderedLine | ScriptResult]:
    total = len(plan.lines)
    started = time.perf_counter()
    templates: dict[str, CloneRequest] = {}
    cached_prompts: dict[str, bool] = {}
    templates_time: dict[str, float] = {}
    first_audio_s: float | None = None
    # ``rendered`` holds the lines a stopped render finished; the loop makes the others (same seeds).
    order = [i for i in plan.order if i not in rendered]
    position = len(plan.order) - len(order)
    first = position
    while position < total:
        # The first line goes alone, so first audio stays early; then lines go SCRIPT_WINDOW at a
        # time through synthesize_many, which batches the lines that share a checkpoint (each
        # line keeps its own seed, so it sounds as it does rendered alone).
        window = 1 if position == first or not synthesis.batching else SCRIPT_WINDOW
        indices = order[position - first : position - first + window]
        requests: list[ScriptRequest] = []
        outcomes: list[SynthesisResult | StudioError] = []
        for offset, index in enumerate(indices):
            line = plan.lines[index]
            label = f"Line {index + 1} of {total} ({line.speaker})"
            if len(indices) > 1:
                label = f"Lines {position + 1}-{position + len(indices)} of {total} together"
            if progress and offset == 0:
                progress(position / total, label)
            line_progress = _line_progress(progress, label, position, total)
            sampling = replace(plan.sampling, seed=line_seed(plan.seed, index))
            try:
                requests.append(
                    _line_request(
                        synthesis,
                        library,
                        plan.voice_of(line),
                        line,
                        sampling,
                        plan.line_post,
                        templates,
                        cached_prompts,
                        templates_time,
                        line_progress,
                    )
                )
                if len(indices) == 1:
                    outcomes.append(synthesis.synthesize(requests[0], line_progress))
            except StudioError as exc:
                raise _about_line(exc, line) from exc
        if len(indices) > 1:
            outcomes = synthesis.synthesize_many(requests, line_progress)
        for index, outcome in zip(indices, outcomes, strict=True):
            line = plan.lines[index]
            if isinstance(outcome, StudioError):  # the lines before it were yielded: nothing made is lost
                raise _about_line(outcome, line) from outcome
            if first_audio_s is None:
                first_audio_s = time.perf_counter() - started
            rendered[index] = RenderedLine(
                index=index,
                total=total,
                line=line,
                audio=outcome.audio,
                voice=plan.voice_of(line).label,
                seed=outcome.seed,
                model=outcome.model,
                timings=dict(outcome.timings),
                warnings=[w for w in outcome.warnings if w != DEMO_WARNING],
            )
            yield rendered[index]
        position += len(indices)

    lines = [rendered[i] for i in range(total)]
    # The scene's finishing is levels and fades only (lines were trimmed one by one), so no time moves.
    assembled = assemble([r.audio for r in lines], plan.pause_s, plan.scene_post, edge_s=EDGE_S)
    audio = assembled.audio
    starts = [start for start, _ in assembled.spans]
    demo = any(v.checkpoint.demo for v in plan.cast.values())
    warnings: list[str] = [DEMO_WARNING] if demo else []
    for r in lines:
        for w in r.warnings:
            tagged = f"{r.speaker}: {w}"
            if tagged not in warnings:
                warnings.append(tagged)
    models = list(dict.fromkeys(plan.voice_of(line).checkpoint.key for line in plan.lines))
    generate_s = sum(r.timings.get("generate_s", 0.0) for r in lines)
    total_s = time.perf_counter() - started
    timings = {
        "load_s": sum(r.timings.get("load_s", 0.0) for r in lines),
        "generate_s": generate_s,
        "prompt_s": sum(templates_time.values()),
        "first_audio_s": first_audio_s or total_s,
        "total_s": total_s,
        "rtf": generate_s / max(audio.duration, 1e-6),
    }
    cast = []
    for key in dict.fromkeys(name_key(line.speaker) for line in plan.lines):
        row = plan.cast[key].summary()
        if key in cached_prompts:
            row["prompt_cached"] = cached_prompts[key]
        cast.append(row)
    log.info(
        "event=script lines=%d voices=%d models=%s audio_s=%.2f wall_s=%.2f grouped=%s",
        total,
        len(plan.cast),
        ",".join(models),
        audio.duration,
        total_s,
        plan.grouped,
    )
    if progress:
        progress(1.0, f"Done: {total} lines, {audio.duration:.1f} s of audio")
    yield ScriptResult(
        audio=audio,
        lines=lines,
        starts=starts,
        seed=plan.seed,
        pause_s=plan.pause_s,
        demo=demo,
        models=models,
        language=plan.language,
        cast=cast,
        timings=timings,
        warnings=warnings,
        engine=synthesis.engine.name,
    )


def _line_request(
    synthesis: SynthesisService,
    library: VoiceLibrary,
    voice: CastVoice,
    line: ScriptLine,
    sampling: Sampling,
    post: PostProcessing,
    templates: dict[str, CloneRequest],
    cached_prompts: dict[str, bool],
    prompt_times: dict[str, float],
    progress: ProgressCallback | None,
) -> ScriptRequest:
    ask = Ask(Mode.CUSTOM_VOICE, line.text, voice.language, voice.checkpoint.size, options=Options(sampling, post))
    if voice.speaker is not None:
        request, _, _ = request_for(replace(ask, speaker=voice.speaker.id, instruct=voice.spec.instruct))
        assert isinstance(request, CustomVoiceRequest)
        return request
    key = name_key(line.speaker)
    if key not in templates:
        library_voice = voice.voice
        assert library_voice is not None, "a clone line is always cast to a library voice"
        # The voice's clone prompt: from its cache, or encoded once for the whole script.
        if progress:
            progress(0.0, f"preparing the voice '{library_voice.name}'")
        start = time.perf_counter()
        ask = replace(ask, mode=Mode.BASE, voice=library_voice.id)
        template, _, cached_prompts[key] = request_for(ask, library, synthesis)
        assert isinstance(template, CloneRequest)
        templates[key] = template
        prompt_times[key] = time.perf_counter() - start
    return replace(templates[key], text=line.text, sampling=sampling, post=post)


def _about_line(exc: StudioError, line: ScriptLine) -> StudioError:
    """The same error, saying which line it happened on."""
    if isinstance(exc, Stopped):  # Stop (core/engine/cancel.py) stays a stop, not a failure
        return Stopped(f"Stopped at line {line.number} ({line.speaker}).")
    message = f"Line {line.number} ({line.speaker}): {exc}"
    try:
        return type(exc)(message)
    except TypeError:  # errors with extra required fields (ChunkFailed)
        return GenerationError(message)


def _line_progress(progress: ProgressCallback | None, label: str, position: int, total: int) -> ProgressCallback | None:
    if progress is None:
        return None

    done = 0.0

    def report(fraction: float, message: str) -> None:
        nonlocal done
        # The engine's own "chunk 1 of 1" / "Done" add nothing to "Line k of n (Name)".
        quiet = message.startswith(("Generating chunk 1 of 1", "Done"))
        # Loading and generating each count from 0 to 1; the bar only moves forward.
        done = max(done, min(max(float(fraction), 0.0), 0.99))
        progress((position + done) / total, label if quiet else f"{label}: {message}")

    return report


def script_recipe(plan: ScriptPlan, result: ScriptResult, *, fmt: str | None = None) -> dict[str, Any]:
    """The plain-data record of a render, kept with the take in the history."""
    recipe = {
        "recipe": RECIPE_VERSION,
        "kind": "script",
        "script": plan.text,
        "casting": plan.casting.as_dict(),
        "language": plan.language,
        "size": plan.size,
        "pause_s": plan.pause_s,
        "sampling": asdict(plan.sampling) | {"seed": result.seed},
        "post": asdict(plan.post),
    }
    if fmt:
        recipe["format"] = fmt
    return recipe


def script_voice_summary(result: ScriptResult) -> dict[str, Any]:
    """Who speaks in a script take, for the history list."""
    names = ", ".join(f"{row['name']} ({row.get('speaker') or row.get('voice')})" for row in result.cast)
    return {"kind": "script", "voices": result.cast, "voice": preview(names, 80)}
