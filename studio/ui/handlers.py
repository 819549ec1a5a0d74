"""Event handlers made from a tab's parse function, and how they are wired to buttons.

A synthesis tab only writes ``parse(plain values) -> TakeJob``; from it come
the named API endpoint (blocking, returns (file, details)), the Generate
button's handler (streams chunks to a live player, then the same (file,
details)) and the "Retry failed chunk" handler. Every take is made and kept
through ``core.takes.service.TakeService``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gradio as gr
import numpy as np

from core.audio.io import load_audio
from core.engine.live_decoding import LiveAudio
from core.engine.synthesis import ChunkAudio, ChunkFailed
from core.errors import InvalidInput
from core.takes.service import KeptTake, TakeJob
from core.types import SynthesisResult
from studio.api.endpoints import declared
from studio.ui.context import StudioContext, client_id
from studio.ui.errors import friendly_errors
from studio.ui.progress import gradio_progress
from studio.ui.widgets import MAX_TAKES, TakePlayers, summary_from_info

# Every event that touches a model shares this queue slot: two clicks can
# never run two generations (or a load and an unload) into the same memory.
DEVICE_QUEUE = "device"
# Failed takes kept for "Retry failed chunk" across all sessions; the oldest are dropped.
MAX_FAILED_TAKES = 50

Parse = Callable[..., TakeJob]
Handler = Callable[..., Any]


def failed_key(request: gr.Request | None, parse: Parse) -> str:
    """Where this browser session's failed take in this tab waits in ``ctx.failed``."""
    return f"{getattr(request, 'session_hash', '')}:{parse.__name__}"


def takes_count(value: Any) -> int:
    """The Takes control's value (1-8; empty means 1)."""
    if value is None or value == "":
        return 1
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise InvalidInput("Takes must be a whole number from 1 to 8.")
    return int(value)


def take_handlers(
    ctx: StudioContext, parse: Parse, *, takes: bool = False, extra_outputs: int = 0
) -> tuple[Handler, Handler, Handler]:
    """From one `parse(plain values) -> TakeJob`, the event handlers:

    - the API handler returns (file, details) — the scripting contract;
    - the UI handler streams each chunk to a live player as it is generated,
      then delivers the same (file, details);
    - the retry handler continues this session's last failed take from its
      failed chunk.
    The first two carry parse's signature, so the API shows its parameter names.
    With ``takes``, a ``variants`` count (1-8) follows parse's values: several
    takes of the request generated together (``TakeService.make_variants``);
    the UI handler then also fills ``extra_outputs`` (the take gallery).
    """
    count = len(inspect.signature(parse).parameters)
    width = count + (1 if takes else 0)
    skips = (gr.skip(),) * extra_outputs

    def split(args: tuple[Any, ...], progress: Any, request: Any) -> tuple[tuple[Any, ...], int, Any, Any]:
        """Gradio hands progress and request over positionally, right after parse's values: it only
        fills in positional parameters, so that is where the signature declared below puts them."""
        if len(args) > width:
            progress, request = [*args[width:], None][:2]
        variants = takes_count(args[count]) if takes and len(args) > count else 1
        return args[:count], variants, progress, request

    def make(job: TakeJob, variants: int, progress: Any, request: Any) -> list[KeptTake]:
        ctx.check_request_rate(request)
        job.variants = variants
        if variants > 1:
            return ctx.takes.make_variants(job, gradio_progress(progress), client=client_id(request))
        return [ctx.takes.make(job, gradio_progress(progress), client=client_id(request))]

    def run(
        *args: Any, progress: Any = None, request: gr.Request | None = None, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        args, variants, progress, request = split(args, progress, request)
        kept = make(parse(*args, **kwargs), variants, progress, request)
        return kept[0].path, with_takes(kept)

    def deliver(
        job: TakeJob, items: Iterable[LiveAudio | ChunkAudio | SynthesisResult], key: str
    ) -> Iterator[tuple[Any, Any, Any]]:
        # Live pieces (core/engine/live_decoding.py) tile their chunk, so a chunk that
        # had them is not played again when its exact audio arrives.
        played_live: set[int] = set()
        try:
            for item in items:
                if isinstance(item, LiveAudio):
                    played_live.add(item.index)
                    yield (item.audio.sample_rate, item.audio.samples), gr.skip(), gr.skip(), *skips
                elif isinstance(item, ChunkAudio):
                    if item.index not in played_live:
                        yield (item.audio.sample_rate, item.audio.samples), gr.skip(), gr.skip(), *skips
                else:
                    kept = ctx.takes.keep(job, item)
                    yield gr.skip(), kept.path, kept.details, *gallery_updates([])
        except ChunkFailed as failed:
            ctx.failed[key] = (job, failed)
            while len(ctx.failed) > MAX_FAILED_TAKES:
                ctx.failed.pop(next(iter(ctx.failed)))
            reason = str(failed).rstrip()
            reason += "" if reason.endswith((".", "!", "?")) else "."
            raise gr.Error(
                f"{reason} The {failed.index} chunk(s) before it are kept: press "
                "'Retry failed chunk' to regenerate from this chunk on.",
                title="A chunk failed",
            ) from None

    def gallery_updates(kept: list[KeptTake]) -> tuple[Any, ...]:
        """Row, details state, then per take its column (shown or not) and its player."""
        if not extra_outputs:
            return ()
        shown = list(kept) if len(kept) > 1 else []
        columns = [gr.update(visible=i < len(shown)) for i in range(MAX_TAKES)]
        players = [
            gr.update(value=shown[i].path, label=f"Take {i + 1} · seed {shown[i].details.get('seed')}")
            if i < len(shown)
            else gr.update(value=None)
            for i in range(MAX_TAKES)
        ]
        return (gr.update(visible=bool(shown)), [k.details | {"path": k.path} for k in shown], *columns, *players)

    def stream(
        *args: Any, progress: Any = None, request: gr.Request | None = None, **kwargs: Any
    ) -> Iterator[tuple[Any, ...]]:
        args, variants, progress, request = split(args, progress, request)
        job = parse(*args, **kwargs)
        if variants > 1:  # generated together, shown side by side; the first is the take until one is picked
            kept = make(job, variants, progress, request)
            # The live player plays the first take (a streaming output must get a value once).
            first = load_audio(kept[0].path)
            yield (first.sample_rate, first.samples), gr.skip(), gr.skip(), *skips
            yield gr.skip(), kept[0].path, with_takes(kept), *gallery_updates(kept)
            return
        ctx.check_request_rate(request)
        key = failed_key(request, parse)
        ctx.failed.pop(key, None)
        yield from deliver(
            job,
            ctx.app.synthesis.stream(job.request, gradio_progress(progress), live=True, client=client_id(request)),
            key,
        )

    def retry(
        progress: gr.Progress = gr.Progress(), request: gr.Request | None = None
    ) -> Iterator[tuple[Any, Any, Any]]:
        key = failed_key(request, parse)
        if key not in ctx.failed:
            raise InvalidInput("Nothing to retry: the last take in this tab did not fail.")
        ctx.check_request_rate(request)
        job, failed = ctx.failed.pop(key)
        yield from deliver(
            job, ctx.app.synthesis.resume(failed, gradio_progress(progress), client=client_id(request)), key
        )

    # Positional (not keyword-only): Gradio injects Progress and Request only into positional parameters.
    extra = [
        *(
            [inspect.Parameter("variants", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=1, annotation=float)]
            if takes
            else []
        ),
        inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
    ]
    signature = inspect.signature(parse)
    signature = signature.replace(
        parameters=[*signature.parameters.values(), *extra], return_annotation=tuple[str, dict[str, Any]]
    )
    for fn in (run, stream):
        fn.__signature__ = signature  # type: ignore[union-attr]
        fn.__name__ = parse.__name__
        fn.__doc__ = parse.__doc__
    return friendly_errors(run), friendly_errors(stream), friendly_errors(retry)


def wire_generate(
    ctx: StudioContext,
    parse: Parse,
    api_name: str,
    button: gr.Button,
    inputs: list[Any],
    players: TakePlayers,
    info: gr.JSON,
    summary: gr.Markdown,
    status: gr.Markdown | None = None,
) -> None:
    """The visible button streams (UI only); a hidden twin is the stable named API endpoint.

    With a ``status`` line (under the button), a refused or failed take is told there in plain
    words and the players keep what they had; without it, the error goes to a toast.
    """
    live, take = players.live, players.take
    gallery = players.gallery
    outputs: list[Any] = []
    if players.takes is not None and gallery is not None:
        inputs = [*inputs, players.takes]
        outputs = [gallery.row, gallery.details, *gallery.columns, *gallery.players]
    run, stream, retry = take_handlers(ctx, parse, takes=bool(outputs), extra_outputs=len(outputs))
    ui_outputs: list[Any] = [live, take, info, *outputs]
    if status is not None:
        stream, retry = inline_errors(stream, len(ui_outputs)), inline_errors(retry, len(ui_outputs))
        ui_outputs.append(status)
    api_endpoint(run, inputs, [take, info], api_name, concurrency_id=DEVICE_QUEUE, concurrency_limit=1)

    def offer_retry(request: gr.Request | None = None) -> dict[str, Any]:
        return gr.update(visible=failed_key(request, parse) in ctx.failed)

    # A second click while this tab's take ran was refused by Gradio without a word (a 422 in the
    # log): the button first says a take is being made (chained, so it can never arrive after the
    # take is done), and comes back when it is.
    label = button.value
    retried = players.retry.click(busy_button, None, button, api_visibility="private", queue=False).then(
        retry,
        None,
        ui_outputs,
        api_visibility="private",
        show_progress_on=[take],
        concurrency_id=DEVICE_QUEUE,
        concurrency_limit=1,
    )
    # Progress shows on the take only, so the live player stays playable meanwhile.
    generated = button.click(busy_button, None, button, api_visibility="private", queue=False).then(
        stream,
        inputs,
        ui_outputs,
        api_visibility="private",
        show_progress_on=[take],
        concurrency_id=DEVICE_QUEUE,
        concurrency_limit=1,
    )
    for done in (generated, retried):
        for after in (done.success, done.failure):
            after(lambda: gr.update(value=label, interactive=True), None, button, api_visibility="private", queue=False)
    for event in (retried, generated):
        event.success(summary_from_info, info, summary, api_visibility="private", queue=False)
        # Gradio 6.17 runs .then only after a success; .failure covers the rest.
        for after in (event.then, event.failure):
            after(offer_retry, None, players.retry, api_visibility="private", queue=False)
    if gallery is not None:
        for number, pick in enumerate(gallery.picks):
            pick.click(
                lambda kept, n=number: (kept[n]["path"], kept[n]) if n < len(kept) else (gr.skip(), gr.skip()),
                gallery.details,
                [take, info],
                api_visibility="private",
                queue=False,
            ).success(summary_from_info, info, summary, api_visibility="private", queue=False)


def inline_errors(handler: Handler, width: int) -> Handler:
    """A UI generator handler whose errors become a sentence on the status line (its last output).

    A failed event makes Gradio put a red "Error" pill over every output, the Take player
    included; the handler ends normally instead, leaving the players as they were. The status
    line is cleared by the handler's first update. The API endpoints keep raising.
    """

    # wraps: Gradio reads the annotations (not only the signature) to inject gr.Request.
    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[tuple[Any, ...]]:
        try:
            for update in handler(*args, **kwargs):
                yield (*update, "")
        except gr.Error as exc:
            # Gradio ends every streaming output when a generator finishes, and fails the event
            # (the pill again) if the live player never started: it gets a moment of silence.
            silence = (24_000, np.zeros(2_400, dtype=np.float32))
            yield (silence, *(gr.skip(),) * (width - 1), f"⚠️ {exc.message}")

    wrapper.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    return wrapper


BUSY_LABEL = "Generating… (this tab's take is being made)"


def busy_button() -> dict[str, Any]:
    return gr.update(value=BUSY_LABEL, interactive=False)


def with_takes(kept: list[KeptTake]) -> dict[str, Any]:
    """The first take's details; with variants, also every take's id, seed and length."""
    details = dict(kept[0].details)
    if len(kept) > 1:
        details["takes"] = [
            {"take_id": k.take.id, "seed": k.details.get("seed"), "duration_s": k.details.get("duration_s")}
            for k in kept
        ]
    return details


def api_endpoint(fn: Handler, inputs: list[Any], outputs: Any, api_name: str, **kwargs: Any) -> None:
    """A named API endpoint on a hidden trigger, so the visible button can give
    the UI its own outputs while scripts get plain values."""
    endpoint = declared(api_name, fn)
    # render=False keeps the trigger out of the layout: a stray child of gr.Tabs
    # breaks the tab bar and stops Tab.select from firing.
    gr.Button(visible=False, render=False).click(fn, inputs, outputs, api_name=endpoint.name, **kwargs)


def api_function(fn: Handler, api_name: str, **kwargs: Any) -> None:
    """A named API endpoint with no widgets: plain JSON in and out, typed by ``fn``'s signature."""
    gr.api(fn, api_name=declared(api_name, fn).name, **kwargs)
