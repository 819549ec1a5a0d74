"""Pieces every tab shares: error translation, progress, sampling widgets, takes.

This is the seam between Gradio and the engine: engine errors become
``gr.Error`` with the engine's own sentence, and Gradio's loosely typed
widget values become the engine's typed requests.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from core.audio import POST_NORMALIZE_MODES, SUPPORTED_OUTPUT_FORMATS, PostProcessing
from core.context import AppContext
from core.errors import InvalidInput, StudioError
from core.engine.model_store import ProgressCallback
from core.takes.recipes import recipe_of, voice_summary
from core.engine.live_decoding import LiveAudio
from core.serving.rate_limit import RateLimiter
from core.engine.synthesis import LANGUAGES, ChunkAudio, ChunkFailed, Request, Sampling, SynthesisResult

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 12.5
LANGUAGE_CHOICES = [lang.capitalize() for lang in LANGUAGES]
OUTPUT_FORMATS = [f for f in ("wav", "flac", "mp3", "ogg") if f in SUPPORTED_OUTPUT_FORMATS]
# Every event that touches a model shares this queue slot: two clicks can
# never run two generations (or a load and an unload) into the same memory.
DEVICE_QUEUE = "device"


@dataclass
class StudioContext:
    """The app context plus what only the web layer needs."""

    app: AppContext
    outputs_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="qwen-tts-studio-")))
    limiter: RateLimiter | None = None
    # Takes whose chunk failed, per browser session and tab, so "Retry failed
    # chunk" can continue them. Bounded: the oldest are dropped.
    failed: dict[str, tuple["TakeJob", ChunkFailed]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = RateLimiter(self.app.settings.rate_limit_per_minute)

    @property
    def demo(self) -> bool:
        return self.app.settings.demo_models

    def check_rate(self, request: gr.Request | None) -> None:
        """Counts one generation against the calling client's per-minute limit."""
        self.limiter.check(client_id(request))


def client_id(request: gr.Request | None) -> str:
    """user@address of the caller, for rate limits and logs."""
    host = getattr(getattr(request, "client", None), "host", None) or "local"
    username = getattr(request, "username", None)
    return f"{username}@{host}" if username else host


def friendly_errors(fn: Callable) -> Callable:
    """Engine errors reach the user as their own sentence; anything else is logged."""

    def translate(exc: Exception) -> gr.Error:
        if isinstance(exc, gr.Error):
            return exc
        if isinstance(exc, StudioError):
            return gr.Error(str(exc), title="Could not do that")
        log.exception("unexpected error in %s", fn.__name__)
        return gr.Error(
            f"Something went wrong ({type(exc).__name__}). The details are in the studio's log; "
            "please try again, and report it if it keeps happening.",
            title="Unexpected error",
        )

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc) from None
        gen_wrapper.__signature__ = inspect.signature(fn)
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc) from None
    wrapper.__signature__ = inspect.signature(fn)
    return wrapper


class StudioBlocks(gr.Blocks):
    """gr.Blocks that answers API inputs of the wrong JSON type with a sentence.

    Scripts can send anything: Gradio would speak a list given as text as the
    string "['a', 'b']", and answer a string seed with a developer report
    (component index, original exception). This names the parameter instead.
    """

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        for index, (block, value) in enumerate(zip(block_fn.inputs, inputs)):
            if value is None or index in block_fn.component_prop_inputs:
                continue
            if state is not None and block._id in state:
                block = state[block._id]  # this session's copy, as Gradio itself uses it
            if isinstance(block, gr.Dropdown) and block.multiselect:
                continue
            wanted = _expected_type(block)
            if wanted is None:
                continue
            types, what = wanted
            name = _input_name(block_fn, index, block)
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types) or (
                    types == (dict,) and not _is_file_data(value)):
                raise gr.Error(f"'{name}' must be {what}, not {_shown(value)}.", title="Could not do that")
            choices = [str(c[1]) for c in getattr(block, "choices", None) or []]
            if isinstance(block, gr.Radio) and value not in choices:
                raise gr.Error(f"'{name}' must be one of {', '.join(choices)}; not {_shown(value)}.",
                               title="Could not do that")
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)

    @staticmethod
    def _format_processing_error(block_fn, index, block, value, is_input, original_error):
        if not is_input:
            return gr.Blocks._format_processing_error(block_fn, index, block, value, is_input, original_error)
        what = "a file (send it with gradio_client.handle_file)" if isinstance(block, (gr.Audio, gr.File)) else \
            "a value it accepts"
        return f"'{_input_name(block_fn, index, block)}' must be {what}, not {_shown(value)}."


def _expected_type(block: Any) -> tuple[tuple[type, ...], str] | None:
    if isinstance(block, (gr.Textbox, gr.Dropdown, gr.Radio)):
        return (str,), "text"
    if isinstance(block, (gr.Number, gr.Slider)):
        return (int, float), "a number"
    if isinstance(block, gr.Checkbox):
        return (bool,), "true or false"
    if isinstance(block, gr.Audio) or isinstance(block, gr.File) and block.file_count == "single":
        return (dict,), "a file (send it with gradio_client.handle_file)"
    return None


def _is_file_data(value: dict) -> bool:
    """What gradio_client.handle_file sends (and Gradio requires) for a file."""
    return isinstance(value.get("path"), str) and (value.get("meta") or {}).get("_type") == "gradio.FileData"


def _input_name(block_fn: Any, index: int, block: Any) -> str:
    """The API parameter name of input ``index`` (what a script wrote), else the widget's label."""
    try:
        params = [p for p in inspect.signature(block_fn.fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return params[index].name
    except (TypeError, ValueError, IndexError):
        return str(getattr(block, "label", None) or block.get_block_name())


def _shown(value: Any) -> str:
    kind = {list: "a list", dict: "an object", bool: "true/false", str: "text"}.get(type(value))
    text = repr(value)
    text = text if len(text) <= 40 else text[:39] + "…"
    return f"{kind} ({text})" if kind else text


def gradio_progress(progress: gr.Progress | None) -> ProgressCallback | None:
    if progress is None:
        return None

    def report(fraction: float, message: str) -> None:
        try:
            progress(fraction, desc=message)
        except Exception:  # progress is best effort; never fail a take over it
            pass

    return report


def _optional_number(value: Any, name: str, cast: Callable[[Any], Any]) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = cast(float(value))
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, not {value!r}.") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidInput(f"{name} must be a finite number.")
    return number


def sampling_from_values(
    seed: Any = None,
    temperature: Any = None,
    top_k: Any = None,
    top_p: Any = None,
    repetition_penalty: Any = None,
    max_seconds: Any = None,
) -> Sampling:
    """Widget / API values to Sampling. A seed of -1 or empty means random;
    max_seconds of 0 or empty means the automatic cap derived from the text."""
    seed_value = _optional_number(seed, "Seed", float)
    if seed_value is not None and seed_value != int(seed_value):
        raise InvalidInput("Seed must be a whole number.")
    seed_int = None if seed_value is None or seed_value < 0 else int(seed_value)
    seconds = _optional_number(max_seconds, "Max length", float)
    if seconds is not None and seconds < 0:
        raise InvalidInput("Max length must be 0 (automatic) or a number of seconds.")
    top_k_value = _optional_number(top_k, "Top-k", float)
    if top_k_value is not None and top_k_value != int(top_k_value):
        raise InvalidInput("Top-k must be a whole number.")
    return Sampling(
        seed=seed_int,
        temperature=_optional_number(temperature, "Temperature", float),
        top_k=None if top_k_value is None else int(top_k_value),
        top_p=_optional_number(top_p, "Top-p", float),
        repetition_penalty=_optional_number(repetition_penalty, "Repetition penalty", float),
        max_new_tokens=None if not seconds else max(1, math.ceil(seconds * FRAMES_PER_SECOND)),
    ).validated()


def post_from_values(normalize: Any = "none", fade_in_s: Any = 0.0, fade_out_s: Any = 0.0,
                     trim_silence: Any = False, remove_dc: Any = False) -> PostProcessing:
    return PostProcessing(
        normalize=(str(normalize) if normalize else "none").strip().lower(),
        fade_in_s=_optional_number(fade_in_s, "Fade in", float) or 0.0,
        fade_out_s=_optional_number(fade_out_s, "Fade out", float) or 0.0,
        trim_silence=bool(trim_silence),
        remove_dc=bool(remove_dc),
    ).validated()


def output_format(value: Any) -> str:
    fmt = (str(value) if value else "wav").strip().lower().lstrip(".")
    if fmt not in OUTPUT_FORMATS:
        raise InvalidInput(f"Output format '{value}' is not supported; choose {', '.join(OUTPUT_FORMATS)}.")
    return fmt


def language_value(value: Any) -> str:
    return (str(value) if value else "auto").strip()


@dataclass
class TakeJob:
    """A parsed Generate click: the engine request plus what the studio adds."""

    request: Request
    fmt: str
    info: dict[str, Any] = field(default_factory=dict)  # merged into the details dict
    warnings: list[str] = field(default_factory=list)  # e.g. reference problems, shown first
    voice_id: str | None = None  # the library voice a clone used, for replaying it later
    voice_name: str | None = None


def finish_take(ctx: StudioContext, job: TakeJob, result: SynthesisResult) -> tuple[str, dict[str, Any]]:
    """Keeps the take in the history (with its recipe) and returns (file, details)."""
    result.warnings[1 if result.demo else 0:0] = job.warnings
    take = ctx.app.history.add(
        result,
        fmt=job.fmt,
        request=recipe_of(job.request, result.seed, voice_id=job.voice_id),
        voice=voice_summary(job.request, voice_name=job.voice_name),
        language=job.request.language,
    )
    info = result.info() | {"text": result.text, "take_id": take.id} | job.info
    return str(take.audio_path), info


def failed_key(request: gr.Request | None, parse: Callable[..., TakeJob]) -> str:
    """Where this browser session's failed take in this tab waits in ``ctx.failed``."""
    return f"{getattr(request, 'session_hash', '')}:{parse.__name__}"


def take_handlers(ctx: StudioContext, parse: Callable[..., TakeJob]) -> tuple[Callable, Callable, Callable]:
    """From one `parse(plain values) -> TakeJob`, the event handlers:

    - the API handler returns (file, details) — the scripting contract;
    - the UI handler streams each chunk to a live player as it is generated,
      then delivers the same (file, details);
    - the retry handler continues this session's last failed take from its
      failed chunk.
    The first two carry parse's signature, so the API shows its parameter names.
    """
    count = len(inspect.signature(parse).parameters)

    def split(args: tuple, progress: Any, request: Any) -> tuple[tuple, Any, Any]:
        """Gradio hands progress and request over positionally, right after parse's values: it only
        fills in positional parameters, so that is where the signature declared below puts them."""
        if len(args) > count:
            progress, request = [*args[count:], None][:2]
        return args[:count], progress, request

    def run(*args, progress=None, request: gr.Request = None, **kwargs):
        args, progress, request = split(args, progress, request)
        ctx.check_rate(request)
        job = parse(*args, **kwargs)
        result = ctx.app.synthesis.synthesize(job.request, gradio_progress(progress), client=client_id(request))
        return finish_take(ctx, job, result)

    def deliver(job: TakeJob, items, key: str):
        # Live pieces (core/engine/live_decoding.py) tile their chunk, so a chunk that
        # had them is not played again when its exact audio arrives.
        played_live: set[int] = set()
        try:
            for item in items:
                if isinstance(item, LiveAudio):
                    played_live.add(item.index)
                    yield (item.audio.sample_rate, item.audio.samples), gr.skip(), gr.skip()
                elif isinstance(item, ChunkAudio):
                    if item.index not in played_live:
                        yield (item.audio.sample_rate, item.audio.samples), gr.skip(), gr.skip()
                else:
                    path, info = finish_take(ctx, job, item)
                    yield gr.skip(), path, info
        except ChunkFailed as failed:
            ctx.failed[key] = (job, failed)
            while len(ctx.failed) > 50:
                ctx.failed.pop(next(iter(ctx.failed)))
            reason = str(failed).rstrip()
            reason += "" if reason.endswith((".", "!", "?")) else "."
            raise gr.Error(f"{reason} The {failed.index} chunk(s) before it are kept: press "
                           "'Retry failed chunk' to regenerate from this chunk on.", title="A chunk failed") from None

    def stream(*args, progress=None, request: gr.Request = None, **kwargs):
        args, progress, request = split(args, progress, request)
        ctx.check_rate(request)
        job = parse(*args, **kwargs)
        key = failed_key(request, parse)
        ctx.failed.pop(key, None)
        yield from deliver(job, ctx.app.synthesis.stream(job.request, gradio_progress(progress), live=True,
                                                         client=client_id(request)), key)

    def retry(progress=gr.Progress(), request: gr.Request = None):
        key = failed_key(request, parse)
        if key not in ctx.failed:
            raise InvalidInput("Nothing to retry: the last take in this tab did not fail.")
        ctx.check_rate(request)
        job, failed = ctx.failed.pop(key)
        yield from deliver(job, ctx.app.synthesis.resume(failed, gradio_progress(progress),
                                                         client=client_id(request)), key)

    # Positional (not keyword-only): Gradio injects Progress and Request only into positional parameters.
    extra = [
        inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=gr.Request),
    ]
    signature = inspect.signature(parse)
    signature = signature.replace(parameters=[*signature.parameters.values(), *extra],
                                  return_annotation=tuple[str, dict[str, Any]])
    for fn in (run, stream):
        fn.__signature__ = signature
        fn.__name__ = parse.__name__
        fn.__doc__ = parse.__doc__
    return friendly_errors(run), friendly_errors(stream), friendly_errors(retry)


@dataclass
class SamplingWidgets:
    seed: gr.Number
    random_seed: gr.Checkbox
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    repetition_penalty: gr.Slider
    max_seconds: gr.Slider
    output_format: gr.Dropdown
    output_normalize: gr.Dropdown
    output_fade_in_s: gr.Number
    output_fade_out_s: gr.Number
    output_trim_silence: gr.Checkbox
    output_remove_dc: gr.Checkbox

    @property
    def inputs(self) -> list[gr.components.Component]:
        """In the order every parse function takes them."""
        return [self.seed, self.temperature, self.top_k, self.top_p,
                self.repetition_penalty, self.max_seconds, self.output_format,
                self.output_normalize, self.output_fade_in_s, self.output_fade_out_s,
                self.output_trim_silence, self.output_remove_dc]


def sampling_widgets() -> SamplingWidgets:
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            random_seed = gr.Checkbox(value=True, label="Random seed", scale=1,
                                      info="Untick to reproduce a take exactly")
            seed = gr.Number(value=-1, label="Seed", precision=0, minimum=-1, interactive=False, scale=2,
                             info="-1 = random; the seed used is shown with each take")
        with gr.Row():
            temperature = gr.Slider(0.1, 1.5, value=0.9, step=0.05, label="Temperature",
                                    info="Higher = livelier and less predictable")
            top_k = gr.Slider(1, 100, value=50, step=1, label="Top-k")
        with gr.Row():
            top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
            repetition_penalty = gr.Slider(1.0, 1.5, value=1.05, step=0.01, label="Repetition penalty")
        with gr.Row():
            max_seconds = gr.Slider(0, 160, value=0, step=1, label="Max length per chunk (s)",
                                    info="0 = automatic, derived from the text")
            fmt = gr.Dropdown(OUTPUT_FORMATS, value="wav", label="Output format", allow_custom_value=True)
        gr.Markdown("**Finishing** (applied to the whole take)")
        with gr.Row():
            normalize = gr.Dropdown(list(POST_NORMALIZE_MODES), value="none", label="Normalise",
                                    info="peak: -1 dBFS · loudness: -20 LUFS", allow_custom_value=True)
            fade_in = gr.Number(0.0, label="Fade in (s)", minimum=0, maximum=10)
            fade_out = gr.Number(0.0, label="Fade out (s)", minimum=0, maximum=10)
        with gr.Row():
            trim = gr.Checkbox(False, label="Trim leading/trailing silence")
            dc = gr.Checkbox(False, label="Remove DC offset")
    random_seed.change(
        lambda random: gr.update(interactive=not random, value=-1 if random else 0),
        random_seed, seed, api_visibility="private", queue=False,
    )
    return SamplingWidgets(seed, random_seed, temperature, top_k, top_p, repetition_penalty, max_seconds, fmt,
                           normalize, fade_in, fade_out, trim, dc)


def demo_banner(ctx: StudioContext) -> None:
    if ctx.demo:
        gr.HTML(
            "<div class='demo-banner'>Demo models: outputs come from tiny random-weight models "
            "and sound like noise, not speech. Start without <code>--demo-models</code> to use "
            "the real Qwen3-TTS checkpoints.</div>"
        )


def summary_from_info(info: dict | None) -> str:
    """The one-line readout under a take, built from the JSON the API also returns."""
    if not info:
        return ""
    t = info.get("timings", {})
    parts = [
        f"**{info.get('duration_s', 0):.1f} s** of audio",
        f"seed `{info.get('seed')}`",
        f"model `{info.get('model')}`",
        f"generated in {t.get('generate_s', 0):.1f} s (RTF {t.get('rtf', 0):.2f})",
    ]
    if t.get("load_s", 0) > 0.5:
        parts.append(f"model load {t['load_s']:.1f} s")
    if info.get("chunks", 1) > 1:
        parts.append(f"{info['chunks']} chunks")
    return "\n\n".join([" · ".join(parts), *[f"⚠️ {w}" for w in info.get("warnings", [])]])


@dataclass
class TakePlayers:
    live: gr.Audio  # plays chunks as they arrive
    take: gr.Audio  # the finished take, with download
    retry: gr.Button  # continues a take whose chunk failed


def take_players(prefix: str) -> TakePlayers:
    # A short label: on a phone a long one runs under the player's download/share buttons.
    live = gr.Audio(label="Live (as it generates)", streaming=True, autoplay=True,
                    interactive=False, elem_id=f"{prefix}-live")
    take = gr.Audio(label="Take", type="filepath", interactive=False, buttons=["download"],
                    elem_id=f"{prefix}-audio")
    # Shown only while this session has a failed take in this tab to continue.
    retry = gr.Button("Retry failed chunk", size="sm", variant="secondary", visible=False,
                      elem_id=f"{prefix}-retry")
    return TakePlayers(live, take, retry)


def wire_generate(ctx: StudioContext, parse: Callable[..., TakeJob], api_name: str, button: gr.Button,
                  inputs: list, players: TakePlayers, info: gr.JSON, summary: gr.Markdown) -> None:
    """The visible button streams (UI only); a hidden twin is the stable named API endpoint."""
    live, take = players.live, players.take
    run, stream, retry = take_handlers(ctx, parse)
    api_endpoint(run, inputs, [take, info], api_name, concurrency_id=DEVICE_QUEUE, concurrency_limit=1)

    def offer_retry(request: gr.Request = None):
        return gr.update(visible=failed_key(request, parse) in ctx.failed)

    retried = players.retry.click(retry, None, [live, take, info], api_visibility="private",
                                  show_progress_on=[take], concurrency_id=DEVICE_QUEUE, concurrency_limit=1)
    # Progress shows on the take only, so the live player stays playable meanwhile.
    generated = button.click(stream, inputs, [live, take, info], api_visibility="private", show_progress_on=[take],
                             concurrency_id=DEVICE_QUEUE, concurrency_limit=1)
    for event in (retried, generated):
        event.success(summary_from_info, info, summary, api_visibility="private", queue=False)
        # Gradio 6.17 runs .then only after a success; .failure covers the rest.
        for after in (event.then, event.failure):
            after(offer_retry, None, players.retry, api_visibility="private", queue=False)


def api_endpoint(fn: Callable, inputs: list, outputs: Any, api_name: str, **kwargs: Any) -> None:
    """A named API endpoint on a hidden trigger, so the visible button can give
    the UI its own outputs while scripts get plain values."""
    # render=False keeps the trigger out of the layout: a stray child of gr.Tabs
    # breaks the tab bar and stops Tab.select from firing.
    gr.Button(visible=False, render=False).click(fn, inputs, outputs, api_name=api_name, **kwargs)
