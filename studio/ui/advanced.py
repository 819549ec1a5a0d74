"""The Advanced fields, in one table: the accordion's widgets and the named API's parameters.

Each row is one field: its widget (kind, label, starting value, range or
choices, help), the default a handler's signature gives it, and its name — the
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
from enum import Enum
from typing import Any

import gradio as gr

from core.audio.edit import POST_NORMALIZE_MODES
from core.takes.values import OUTPUT_FORMATS, options_from_values
from studio.ui.widgets import MAX_TAKES


class Widget(str, Enum):
    NUMBER = "number"
    SLIDER = "slider"
    DROPDOWN = "dropdown"
    CHECKBOX = "checkbox"


@dataclass(frozen=True)
class Field:
    name: str  # the named API's parameter; the OpenAI body field and CLI option of the same name where they exist
    label: str
    widget: Widget
    value: Any  # what the widget starts at, so what gradio_client sends when a script leaves it out
    default: Any  # the handler's default: a direct call that leaves it out
    annotation: Any
    row: int  # fields with the same row share one line of the accordion
    range: tuple[float, float, float] | None = None  # minimum, maximum, step
    choices: tuple[str, ...] = ()
    info: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # widget arguments of this field alone


FINISHING_ROW = 4  # the rows from here on finish the whole take
ADVANCED: tuple[Field, ...] = (
    # One seed control: empty means random; a number repeats a take exactly. -1 still means random,
    # for scripts written against the old checkbox + "-1" pair.
    Field(
        "seed",
        "Seed",
        Widget.NUMBER,
        # A callable: Gradio shows (and sends) a Number's initial None as 0, a fixed seed; None
        # sent at page load shows as an empty box that sends None (random).
        lambda: None,
        None,
        float | None,
        0,
        info="Leave empty for a new random seed each take; type a take's seed to make it again exactly",
        extra=dict(placeholder="random", precision=0, minimum=-1, elem_classes=["seed-control"]),
    ),
    Field(
        "temperature",
        "Temperature",
        Widget.SLIDER,
        0.9,
        None,
        float | None,
        1,
        (0.1, 1.5, 0.05),
        info="Higher = livelier and less predictable",
    ),
    Field("top_k", "Top-k", Widget.SLIDER, 50, None, float | None, 1, (1, 100, 1)),
    Field("top_p", "Top-p", Widget.SLIDER, 1.0, None, float | None, 2, (0.05, 1.0, 0.05)),
    Field("repetition_penalty", "Repetition penalty", Widget.SLIDER, 1.05, None, float | None, 2, (1.0, 1.5, 0.01)),
    Field(
        "max_seconds",
        "Max length per chunk (s)",
        Widget.SLIDER,
        0,
        0,
        float | None,
        3,
        (0, 160, 1),
        info="0 = automatic, derived from the text",
    ),
    Field("format", "Output format", Widget.DROPDOWN, "wav", "wav", str, 3, choices=tuple(OUTPUT_FORMATS)),
    Field(
        "output_normalize",
        "Normalise",
        Widget.DROPDOWN,
        "none",
        "none",
        str,
        FINISHING_ROW,
        choices=tuple(POST_NORMALIZE_MODES),
        info="peak: -1 dBFS · loudness: -20 LUFS",
    ),
    Field(
        "output_fade_in_s",
        "Fade in (s)",
        Widget.NUMBER,
        0.0,
        0.0,
        float,
        FINISHING_ROW,
        extra=dict(minimum=0, maximum=10),
    ),
    Field(
        "output_fade_out_s",
        "Fade out (s)",
        Widget.NUMBER,
        0.0,
        0.0,
        float,
        FINISHING_ROW,
        extra=dict(minimum=0, maximum=10),
    ),
    Field("output_trim_silence", "Trim leading/trailing silence", Widget.CHECKBOX, False, False, bool, 5),
    Field("output_remove_dc", "Remove DC offset", Widget.CHECKBOX, False, False, bool, 5),
)
NAMES = tuple(f.name for f in ADVANCED)
SAMPLING_NAMES = NAMES[: NAMES.index("max_seconds") + 1]  # those that shape the generation itself


def make_widget(spec: Field) -> gr.components.Component:
    """The widget of one field of the table."""
    common: dict[str, Any] = dict(label=spec.label, info=spec.info, **spec.extra)
    if spec.widget is Widget.SLIDER:
        assert spec.range is not None
        minimum, maximum, step = spec.range
        return gr.Slider(minimum, maximum, value=spec.value, step=step, **common)
    if spec.widget is Widget.DROPDOWN:
        return gr.Dropdown(list(spec.choices), value=spec.value, allow_custom_value=True, **common)
    if spec.widget is Widget.CHECKBOX:
        return gr.Checkbox(spec.value, **common)
    return gr.Number(spec.value, **common)


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
        for row in sorted({f.row for f in ADVANCED}):
            if row == FINISHING_ROW:
                gr.Markdown("**Finishing** (applied to the whole take)")
            fields = [f for f in ADVANCED if f.row == row]
            if len(fields) == 1:
                inputs.append(make_widget(fields[0]))
                continue
            with gr.Row():
                inputs.extend(make_widget(f) for f in fields)
    return AdvancedWidgets(inputs, takes_slider)


PARAMETERS = [
    inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default, annotation=f.annotation)
    for f in ADVANCED
]
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
        return values | {"advanced": options_from_values(**{name: values.pop(name) for name in NAMES})}

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
    wrapper.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != "advanced"} | {
        f.name: f.annotation for f in ADVANCED
    }
    return wrapper
