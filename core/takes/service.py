"""Synthesize, then keep the take in the history: the one way a take is made.

Every entry point that produces a take goes through ``TakeService``: the
tabs' Generate buttons and named API, the OpenAI-compatible route, the
Script tab and History's "Regenerate with the same settings". So every take
is stored the same way, with the recipe that regenerates it, and the details
dict the UI and the API return is built in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from core.audio.assembly import assemble
from core.context import AppContext
from core.engine.live_decoding import LiveAudio
from core.engine.model_store import ProgressCallback
from core.engine.synthesis import DEMO_WARNING, ChunkAudio, SynthesisService, TakeStopped, chunk_seeds
from core.errors import InvalidInput
from core.storage.history import History, KeptTake, Take
from core.storage.library import VoiceLibrary
from core.takes.recipes import recipe_of, request_from_recipe, voice_summary
from core.takes.replay import replay
from core.takes.requests import TakeJob  # made by the request factory; its users import it from here too
from core.takes.script_render import ScriptPlan, ScriptResult, script_recipe, script_voice_summary
from core.text import chunk_text
from core.types import SynthesisResult


@dataclass(frozen=True)
class Regenerated:
    """A stored take made again from its recipe."""

    original: Take
    kept: KeptTake
    seed: int


@dataclass(frozen=True)
class TakeService:
    synthesis: SynthesisService
    history: History
    library: VoiceLibrary  # library voices are looked up again when a clone take is regenerated

    @classmethod
    def for_app(cls, app: AppContext) -> TakeService:
        return cls(app.synthesis, app.history, app.library)

    def make(self, job: TakeJob, progress: ProgressCallback | None = None, *, client: str | None = None) -> KeptTake:
        """Synthesizes ``job`` in one go and keeps the take."""
        job = self.pin_lexicon(job)
        return self.keep(job, self.synthesis.synthesize(job.request, progress, client=client))

    def pin_lexicon(self, job: TakeJob) -> TakeJob:
        """``job`` speaking with the lexicon version current now, recorded in its recipe."""
        lexicon = self.synthesis.lexicon
        if lexicon is None or job.request.lexicon_version is not None:
            return job
        return replace(job, request=replace(job.request, lexicon_version=lexicon.current().version))

    def make_variants(
        self, job: TakeJob, progress: ProgressCallback | None = None, *, client: str | None = None
    ) -> list[KeptTake]:
        """``job.variants`` takes of ``job`` generated together, each kept as its own take.

        Each is an ordinary take with its own seed (the details say which variant it
        is), so History's "Regenerate" makes any of them again on its own.
        """
        job = self.pin_lexicon(job)
        results = self.synthesis.variants(job.request, job.variants, progress, client=client)
        kept = []
        for number, result in enumerate(results, start=1):
            one = self.keep(job, result)
            one.details.update({"variant": number, "variants": len(results)})
            kept.append(one)
        return kept

    def keep(
        self,
        job: TakeJob,
        result: SynthesisResult,
        *,
        stopped_at: int | None = None,
        total_chunks: int | None = None,
    ) -> KeptTake:
        """Keeps an already synthesized ``result`` of ``job`` (e.g. the end of a stream); with
        ``stopped_at`` / ``total_chunks``, a partial take the user stopped."""
        # The job's own warnings come first, after the demo-model notice when there is one.
        result.warnings[1 if result.demo else 0 : 0] = job.warnings
        job = self.pin_lexicon(job)  # a streamed take: the version that was current as it was made
        take = self._store(
            result,
            job.fmt,
            recipe=recipe_of(job.request, result.seed, voice_id=job.voice_id),
            voice=voice_summary(job.request, voice_name=job.voice_name),
            language=job.request.language,
            stopped_at=stopped_at,
            total_chunks=total_chunks,
        )
        details = result.info() | {"text": result.text, "take_id": take.id} | job.info
        if take.stopped:
            details |= {"status": take.status, "stopped_at": take.stopped_at, "total_chunks": take.total_chunks}
        return KeptTake(take, details)

    def keep_stopped(self, job: TakeJob, stopped: TakeStopped) -> KeptTake:
        """Keeps the chunks a stopped take finished as a partial take, "stopped at chunk k of n"
        (Resume finishes it: ``core/takes/jobs.py``)."""
        inner, kept = stopped.job, stopped.index
        assembled = assemble(stopped.completed, self.synthesis.pause_s, inner.post)
        chunks = chunk_text(inner.text, max_chars=self.synthesis.chunk_chars)[:kept]
        warnings = [DEMO_WARNING, *inner.warnings] if inner.checkpoint.demo else list(inner.warnings)
        result = inner.result(
            assembled.audio,
            seed=stopped.seed,
            chunks=chunks,
            timings={},
            warnings=warnings,
            engine=self.synthesis.engine.name,
        )
        # Its chunks are kept as parts (core/storage/take_parts.py): Resume continues from them,
        # in this process or after a restart.
        result.parts = assembled.parts(stopped.completed, chunks, chunk_seeds(stopped.seed, kept))
        result.pause_s = self.synthesis.pause_s
        return self.keep(job, result, stopped_at=kept, total_chunks=stopped.total)

    def resume_stored(
        self, take_id: str, progress: ProgressCallback | None = None, *, client: str | None = None, live: bool = False
    ) -> tuple[TakeJob, Iterator[ChunkAudio | LiveAudio | SynthesisResult]]:
        """A stopped take in History, continued from its stored chunks with the same seeds (seed + i):
        the TakeJob to keep the complete take with, and the stream that makes the rest."""
        take = self.history.get(take_id)
        if not take.stopped:
            raise InvalidInput("This take is complete; only a stopped take can be resumed.")
        if len(take.parts) != take.stopped_at:
            raise InvalidInput("This stopped take has lost its chunks, so it cannot be resumed; regenerate it.")
        if take.mode == "script":
            raise InvalidInput(
                "A stopped script resumes line by line: use Resume in History, the Script tab or /resume."
            )
        request = request_from_recipe(take.request, self.library, self.synthesis)
        done = [part.load() for part in sorted(take.parts, key=lambda p: p.index)]
        job = TakeJob(
            request,
            take.format,
            info=stored_info(take),
            voice_id=take.request.get("voice_id"),
            voice_name=take.voice.get("voice"),
        )
        return job, self.synthesis.continue_take(request, take.seed, done, progress, client=client, live=live)

    def keep_script(
        self,
        plan: ScriptPlan,
        result: ScriptResult,
        fmt: str,
        *,
        synthesis: SynthesisResult | None = None,
        stopped_at: int | None = None,
    ) -> KeptTake:
        """Keeps a rendered script's merged scene as one take, with the script as its recipe; with
        ``stopped_at``, the lines a stopped render made ("stopped at line k of n", given as
        ``synthesis``: core/takes/script_jobs.py)."""
        take = self._store(
            synthesis or result.to_synthesis_result(),
            fmt,
            recipe=script_recipe(plan, result, fmt=fmt),
            voice=script_voice_summary(result),
            language=plan.language,
            stopped_at=stopped_at,
            total_chunks=None if stopped_at is None else len(plan.lines),
        )
        details = result.info() | {"take_id": take.id, "format": fmt, "post": asdict(plan.post)}
        if take.stopped:
            details |= {"status": take.status, "stopped_at": take.stopped_at, "total_chunks": take.total_chunks}
        return KeptTake(take, details)

    def regenerate(
        self, take_id: str, progress: ProgressCallback | None = None, *, client: str | None = None
    ) -> Regenerated:
        """Makes a stored take again from its recipe, as a new take in the same format."""
        original = self.history.get(take_id)
        again = replay(original.request, original.voice, self.synthesis, self.library, progress, client=client)
        if again.request is not None:
            job = TakeJob(
                again.request,
                original.format,
                voice_id=original.request.get("voice_id"),
                voice_name=original.voice.get("voice"),
            )
            kept = self.keep(job, again.result)
        else:  # a script take: its recipe and voices are stored as they came
            take = self._store(
                again.result,
                original.format,
                recipe=again.recipe,
                voice=again.voice,
                language=again.recipe.get("language", "auto"),
            )
            kept = KeptTake(take, {"take_id": take.id})
        return Regenerated(original, kept, again.result.seed)

    def _store(
        self,
        result: SynthesisResult,
        fmt: str,
        *,
        recipe: dict[str, Any],
        voice: dict[str, Any],
        language: str,
        stopped_at: int | None = None,
        total_chunks: int | None = None,
    ) -> Take:
        return self.history.add(
            result,
            fmt=fmt,
            request=recipe,
            voice=voice,
            language=language,
            stopped_at=stopped_at,
            total_chunks=total_chunks,
        )


def stored_info(take: Take) -> dict[str, Any]:
    """What a tab added to a take's details (its description or speaker), read back from History."""
    info: dict[str, Any] = {"language": take.language}
    for key in ("description", "speaker", "instruct"):
        if isinstance(take.request.get(key), str):
            info[key] = take.request[key]
    return info
