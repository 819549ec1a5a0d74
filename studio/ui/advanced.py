"""The Advanced fields, in one table: the accordion's widgets and the named API's parameters.

Each entry is one field: its widget (Gradio class, label, starting value, range
or choices, help), the default a handler's signature gives it, and its name: the
named API's parameter and ``core.takes.values.options_from_values``' keyword.
``advanced_accordion`` lays the widgets out; ``with_advanced`` gives a tab's
handler the fields as parameters (in table order, where its ``advanced``
parameter stands) and hands it the checked ``Options``. The order and defaults
are the named API's: tests/studio/api/named_api_parameters.json pins them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from core.audio.edit import POST_NORMALIZE_MODES
from core.takes.values import OUTPUT_FORMATS, options_from_values
from studio.ui.widgets import MAX_TAKES

SAME = object()  # a handler default equal to the widget's starting value
Component = type[gr.components.Component]


@dataclass(frozen=True)
class Field:
    name: str  # the named API's parameter (and the OpenAI body field or CLI option of that name, where one exists)
    label: str
    widget: Component  # gr.Number, gr.Slider, gr.Dropdown or gr.Checkbox
    value: Any  # what the widget starts at, so what gradio_client sends when a script leaves it out
    kwargs: dict[str, Any] = field(default_factory=dict)  # the widget's own: range, choices, help...
    default: Any = SAME  # the handler's default, for a direct call that leaves it out (None: the model's own)

    def widget_of(self) -> gr.components.Component:
        return self.widget(value=self.value, label=self.label, **self.kwargs)

    @property
    def parameter(self) -> inspect.Parameter:
        default = self.value if self.default is SAME else self.default
        annotation = {gr.Dropdown: str, gr.Checkbox: bool}.get(self.widget, float | None)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Parameter(self.name, kind, default=default, annotation=annotation)


def slider(minimum: float, maximum: float, step: float, info: str | None = None) -> dict[str, Any]:
    return dict(minimum=minimum, maximum=maximum, step=step, info=info)


def menu(choices: Any, info: str | None = None) -> dict[str, Any]:
    return dict(choices=list(choices), info=info, allow_custom_value=True)


TEMPERATURE_HELP = "Higher = livelier and less predictable"
MAX_SECONDS_HELP = "0 = automatic, derived from the text"
NORMALISE_HELP = "peak: -1 dBFS · loudness: -20 LUFS"
SEED_HELP = "Leave empty for a new random seed each take; type a take's seed to make it again exactly"
SEED = dict(placeholder="random", precision=0, minimum=-1, info=SEED_HELP, elem_classes=["seed-control"])
FADE = dict(minimum=0, maximum=10)
# The accordion's rows, top to bottom; the rows from FINISHING on finish the whole take.
ROWS: tuple[tuple[Field, ...], ...] = (
    # One seed control: empty (or -1, as old scripts send) means random; a number repeats a take exactly.
    # Its value is a callable: Gradio shows (and sends) a Number's initial None as 0, a fixed seed;
    # None sent at page load shows as an empty box that sends None (random).
    (Field("seed", "Seed", gr.Number, lambda: None, SEED, default=None),),
    (
        Field("temperature", "Temperature", gr.Slider, 0.9, slider(0.1, 1.5, 0.05, TEMPERATURE_HELP), default=None),
        Field("top_k", "Top-k", gr.Slider, 50, slider(1, 100, 1), default=None),
    ),
    (
        Field("top_p", "Top-p", gr.Slider, 1.0, slider(0.05, 1.0, 0.05), default=None),
        Field("repetition_penalty", "Repetition penalty", gr.Slider, 1.05, slider(1.0, 1.5, 0.01), default=None),
    ),
    (
        Field("max_seconds", "Max length per chunk (s)", gr.Slider, 0, slider(0, 160, 1, MAX_SECONDS_HELP)),
        Field("format", "Output format", gr.Dropdown, "wav", menu(OUTPUT_FORMATS)),
    ),
    (
        Field("output_normalize", "Normalise", gr.Dropdown, "none", menu(POST_NORMALIZE_MODES, NORMALISE_HELP)),
        Field("output_fade_in_s", "Fade in (s)", gr.Number, 0.0, FADE),
        Field("output_fade_out_s", "Fade out (s)", gr.Number, 0.0, FADE),
    ),
    (
        Field("output_trim_silence", "Trim leading/trailing silence", gr.Checkbox, False),
        Field("output_remove_dc", "Remove DC offset", gr.Checkbox, False),
    ),
)
FINISHING = 4
ADVANCED: tuple[Field, ...] = tuple(f for row in ROWS for f in row)
NAMES = tuple(f.name for f in ADVANCED)


@dataclass
class AdvancedWidgets:
    inputs: list[gr.components.Component]  # one per field of ADVANCED, in its order
    takes: gr.Slider | None = None  # "Generate N takes" (only where a tab offers variants)

    @property
    def seed(self) -> gr.components.Component:
        return self.inputs[NAMES.index("seed")]


def advanced_accordion(*, takes: bool = False) -> AdvancedWidgets:
    """The Advanced accordion: the table's widgets, row by row (and the Takes count first, with ``takes``)."""
    inputs: list[gr.components.Component] = []
    with gr.Accordion("Advanced", open=False):
        takes_slider = None
        if takes:
            takes_slider = gr.Slider(
                1,
                MAX_TAKES,
                value=1,
                step=1,
                label="Takes",
                info="Generate several takes at once (seeds s, s+1, ...) to compare side by side",
                elem_id="takes-count",
            )
        for number, row in enumerate(ROWS):
            if number == FINISHING:
                gr.Markdown("**Finishing** (applied to the whole take)")
            if len(row) == 1:
                inputs.append(row[0].widget_of())
                continue
            with gr.Row():
                inputs.extend(f.widget_of() for f in row)
    return AdvancedWidgets(inputs, takes_slider)


PARAMETERS = [f.parameter for f in ADVANCED]
Handler = Callable[..., Any]


def with_advanced(fn: Handler) -> Handler:
    """``fn`` with its ``advanced`` parameter spread into the table's fields (the named API's parameters):
    a call's Advanced values are checked (``options_from_values``) and handed to ``fn`` as ``Options``."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("advanced")
    spread = signature.replace(parameters=[*params[:at], *PARAMETERS, *params[at + 1 :]])

    def unpack(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = spread.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        advanced = options_from_values(**{name: values.pop(name) for name in NAMES})
        return {**values, "advanced": advanced}

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await fn(**unpack(args, kwargs))
    elif inspect.isgeneratorfunction(fn):  # Gradio streams the outputs of a generator function only

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            yield from fn(**unpack(args, kwargs))
    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(**unpack(args, kwargs))

    wrapper.__signature__ = spread  # type: ignore[attr-defined]
    annotations = {p.name: p.annotation for p in PARAMETERS}
    wrapper.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != "advanced"} | annotations
    return wrapper
