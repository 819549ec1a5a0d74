"""The pronunciation lexicon editor: word or regex → how to say it, per language.

It sits in the Voice Library tab (an accordion under the voices): the library is where a creator
keeps what they made once and reuse in every take, and the lexicon is that too; it applies to every
tab, the API and the CLI alike, so it does not belong to any one generating tab. The rules (what is
a valid entry, versions for regenerate) live in ``core/text_lexicon.py``; ``/lexicon`` and
``/lexicon_set`` are the same store for scripts. A refused entry is said under the form, in the
store's own words (e.g. a regular expression that does not compile), and the lexicon is unchanged.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from core.errors import StudioError
from core.text_lexicon import Lexicon, LexiconStore
from studio.ui.context import StudioContext
from studio.ui.tabs.history import refresh_rows_js
from studio.ui.widgets import LANGUAGE_CHOICES

COLUMNS = ["#", "Word or pattern", "Say it as", "Regex", "Language"]
ALL_LANGUAGES = "auto"
LANGUAGE_OPTIONS = [("All languages", ALL_LANGUAGES)] + [
    (lang, lang.lower()) for lang in LANGUAGE_CHOICES if lang != "Auto"
]
EMPTY = "No entries yet. Add a word the model says wrong and how to say it, e.g. **Qwen** → **Chwen**."


def _label(language: str) -> str:
    return "All" if language == ALL_LANGUAGES else language.capitalize()


def rows(lexicon: Lexicon) -> pd.DataFrame:
    return pd.DataFrame(
        [
            [i, e.pattern, e.spoken, "yes" if e.regex else "", _label(e.language)]
            for i, e in enumerate(lexicon.entries, start=1)
        ],
        columns=COLUMNS,
    )


def summary(lexicon: Lexicon) -> str:
    if not lexicon.entries:
        return EMPTY
    count = len(lexicon.entries)
    return f"**{count}** entr{'ies' if count != 1 else 'y'} · version `{lexicon.version}` (recorded with every take)"


def _entry(pattern: Any, spoken: Any, regex: Any, language: Any) -> dict[str, Any]:
    return {
        "pattern": pattern or "",
        "spoken": spoken or "",
        "regex": bool(regex),
        "language": language or ALL_LANGUAGES,
    }


def edited(
    lexicon: Lexicon, action: str, index: int | None, entry: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The entries after adding ``entry``, replacing entry ``index`` (0-based) with it, or deleting it."""
    entries = lexicon.as_dicts()
    if action == "add" and entry is not None:
        for number, old in enumerate(entries, start=1):
            same = old["pattern"].casefold() == str(entry["pattern"]).strip().casefold()
            if same and old["language"] == entry["language"]:
                raise StudioError(
                    f"Entry {number} already replaces '{old['pattern']}'; pick it in the table and press "
                    "Update selected to change it."
                )
        return [*entries, entry]
    if index is None or not 0 <= index < len(entries):
        raise StudioError("Pick an entry in the table first (click its row).")
    if action == "update" and entry is not None:
        entries[index] = entry
    elif action == "delete":
        del entries[index]
    return entries


def build_lexicon_panel(ctx: StudioContext) -> None:
    store: LexiconStore | None = ctx.app.synthesis.lexicon
    current = store.current() if store else Lexicon()
    with gr.Accordion("Pronunciation lexicon", open=False, elem_id="lexicon") as panel:
        gr.Markdown(
            "Words the model says wrong, and how to say them instead. The lexicon applies to every take "
            "in every tab, in scripts and through the API, before the text is split into chunks. A word "
            "matches whole and in any case; tick **Regex** for a regular expression."
        )
        count = gr.Markdown(summary(current), elem_id="lexicon-summary")
        table = gr.Dataframe(
            rows(current),
            headers=COLUMNS,
            interactive=False,
            wrap=True,
            max_height=300,
            column_widths=[40, 180, 180, 70, 110],
            elem_id="lexicon-table",
        )
        with gr.Row():
            pattern = gr.Textbox(label="Word or pattern", placeholder="Qwen", min_width=160, elem_id="lexicon-pattern")
            spoken = gr.Textbox(label="Say it as", placeholder="Chwen", min_width=160, elem_id="lexicon-spoken")
        with gr.Row(equal_height=True):
            regex = gr.Checkbox(False, label="Regex", min_width=90, elem_id="lexicon-regex")
            language = gr.Dropdown(
                LANGUAGE_OPTIONS, value=ALL_LANGUAGES, label="Language", min_width=160, elem_id="lexicon-language"
            )
        with gr.Row():
            add = gr.Button("Add", variant="primary", min_width=90, elem_id="lexicon-add")
            update = gr.Button("Update selected", min_width=90, elem_id="lexicon-update")
            delete = gr.Button("Delete selected", variant="stop", min_width=90, elem_id="lexicon-delete")
        # Why an entry was refused (a bad regex, an empty spoken form), under the form.
        status = gr.Markdown(elem_id="lexicon-status")
        with gr.Row(equal_height=True):
            sample = gr.Textbox(
                label="Try a sentence",
                placeholder="Qwen speaks clearly.",
                scale=3,
                min_width=220,
                elem_id="lexicon-try",
            )
            check = gr.Button("What the model reads", scale=1, min_width=120, elem_id="lexicon-try-button")
        heard = gr.Markdown(elem_id="lexicon-try-result")
        selected = gr.State(None)  # the 0-based index of the entry picked in the table

    private: dict[str, Any] = dict(api_visibility="private", queue=False)

    def view(lexicon: Lexicon, message: str, index: int | None = None) -> tuple[Any, ...]:
        return rows(lexicon), summary(lexicon), message, index

    def change(action: str, index, pattern_v, spoken_v, regex_v, language_v):
        if store is None:
            return gr.skip(), gr.skip(), "⚠️ This studio has no pronunciation lexicon.", index
        before = store.current()
        try:
            entry = None if action == "delete" else _entry(pattern_v, spoken_v, regex_v, language_v)
            lexicon = store.save(edited(before, action, index, entry))
        except StudioError as exc:
            return gr.skip(), gr.skip(), f"⚠️ {exc}", index
        if action == "add":
            done = f"Added **{pattern_v.strip()}** → **{spoken_v.strip()}**; the next take uses it."
            return view(lexicon, done, len(lexicon.entries) - 1)
        if action == "update":
            return view(lexicon, f"Updated entry {index + 1}; the next take uses it.", index)
        return view(lexicon, f"Deleted **{before.entries[index].pattern}**.", None)

    outputs = [table, count, status, selected]
    form = [selected, pattern, spoken, regex, language]
    add.click(lambda *v: change("add", *v), form, outputs, **private)
    update.click(lambda *v: change("update", *v), form, outputs, **private)
    delete.click(lambda *v: change("delete", *v), form, outputs, **private)

    def pick(evt: gr.SelectData):
        row = evt.row_value or []
        if not row or store is None:
            return (gr.skip(),) * 5
        index = int(row[0]) - 1
        entries = store.current().entries
        if not 0 <= index < len(entries):
            return (gr.skip(),) * 5
        e = entries[index]
        return index, e.pattern, e.spoken, e.regex, e.language

    table.select(pick, None, form, **private)
    # An added entry showed only after a reload: the table re-counts its rows on a scroll.
    table.change(None, None, None, js=refresh_rows_js("lexicon-table"), **private)
    # Scripts change the lexicon too (/lexicon_set): show the stored one whenever the panel opens.
    panel.expand(lambda index: view(store.current() if store else Lexicon(), "", index), selected, outputs, **private)

    def reads(text):
        if not (text or "").strip():
            return "Type a sentence to hear how the lexicon changes it."
        lexicon = store.current() if store else Lexicon()
        return f"The model reads: “{lexicon.apply(text)}”"

    check.click(reads, sample, heard, **private)
    sample.submit(reads, sample, heard, **private)
