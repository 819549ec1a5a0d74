"""Voice Library: browse, edit, share and reuse the voices a creator has saved.

The tab is a thin view over ``core.storage.library.VoiceLibrary``; every rule (names,
limits, safe imports) lives there. Scripts get the same operations as named
API endpoints with plain values and JSON results:

- ``/voices`` (query, kind, language, tag) -> list of voice records
- ``/voice_rename`` (voice, new_name) -> the renamed record
- ``/voice_update`` (voice, notes, tags, transcript, language, consent) -> the record
- ``/voice_delete`` (voice) -> {"deleted": id, "name": name}
- ``/voice_export`` (voices) -> a zip file
- ``/voice_import`` (file) -> list of the imported records

A ``voice`` argument is a voice's id or its name (case-insensitive).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.errors import InvalidInput, LibraryError, StudioError, VoiceNotFound
from core.storage.library import Voice, VoiceLibrary
from studio.ui.context import StudioContext
from studio.ui.errors import friendly_errors
from studio.ui.handlers import api_endpoint, api_function
from studio.ui.tabs.clone import NO_VOICE, library_choices
from studio.ui.tabs.lexicon import build_lexicon_panel
from studio.ui.transcribe import (
    fill_if_empty,
    library_transcript_offer,
    make_fill_library_transcript,
    use_heard_language,
)
from studio.ui.widgets import LANGUAGE_CHOICES

PLAY = "▶"  # each row's first cell: clicking it plays that voice in the tab's one player
COLUMNS = ["Play", "Name", "Kind", "Language", "Tags", "Length (s)", "Created", "Notes"]
NAME_COLUMN = COLUMNS.index("Name")
# Presses the player's Play once the clip a row's ▶ chose is loaded (retried for up to 5 s: the
# player may still be loading the new clip).
# Downloads the file a File component just received (its url), as a link click would.
DOWNLOAD_JS = """(file) => {
  if (!file || !file.url) return;
  const link = Object.assign(document.createElement('a'), {href: file.url, download: file.orig_name || ''});
  document.body.appendChild(link); link.click(); link.remove();
}"""

PLAY_JS = """(request) => {
  if (!request) return;
  const started = Date.now();
  const press = () => {
    const player = document.querySelector('#library-player');
    const button = player && player.querySelector('button.play-pause-button');
    const time = player && player.querySelector('#time');
    if (button && button.getAttribute('aria-label') === 'Play' && !button.disabled) button.click();
    const moving = time && !/^\\s*0:00\\s*$/.test(time.textContent);
    if (!moving && Date.now() - started < 5000) setTimeout(press, 250);
  };
  setTimeout(press, 150);
}"""
ALL = ""  # the "no filter" value of the kind, language and tag filters
KIND_CHOICES = [("All", ALL), ("Clone", "clone"), ("Design", "design")]
LANGUAGE_FILTER_CHOICES = [("All", ALL)] + [(lang, lang.lower()) for lang in LANGUAGE_CHOICES]
NOTES_PREVIEW_CHARS = 60
MAX_EXPORT_ITEMS = 1_000  # pieces of a comma-separated /voice_export list

CONFIRM_LABEL = "Yes, delete this voice"
EMPTY_HELP = (
    "No voices yet. Save one from **Voice Clone** → *Save the reference to the library*, "
    "or import a .zip made with Export."
)


# --- plain helpers ----------------------------------------------------------


def _filter_value(value: Any) -> str | None:
    """'' / 'all' / 'any' / None mean "no filter"."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in ("", "all", "any", "*") else text


def _when(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return stamp or ""


def _preview(text: str | None, limit: int = NOTES_PREVIEW_CHARS) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _md(text: str) -> str:
    """User text shown inside Markdown: no accidental emphasis, links or HTML."""
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~])", r"\\\1", text)


def _language_label(language: str) -> str:
    return (language or "auto").capitalize()


def _rows(voices: list[Voice]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            [
                PLAY,
                v.name,
                v.kind.capitalize(),
                _language_label(v.language),
                ", ".join(v.tags),
                round(v.reference_seconds, 1),
                _when(v.created_at),
                _preview(v.notes),
            ]
            for v in voices
        ],
        columns=COLUMNS,
    )


def _tag_choices(library: VoiceLibrary) -> list[tuple[str, str]]:
    tags: dict[str, str] = {}
    for voice in library.list():
        for tag in voice.tags:
            tags.setdefault(tag.casefold(), tag)
    return [("All", ALL)] + [(t, t) for t in sorted(tags.values(), key=str.casefold)]


def _picker_choices(library: VoiceLibrary) -> list[tuple[str, str]]:
    return [(v.name, v.id) for v in library.list()]


def _count_line(shown: int, total: int) -> str:
    if total == 0:
        return EMPTY_HELP
    if shown == total:
        return f"**{total}** voice{'s' if total != 1 else ''} in the library."
    return f"Showing **{shown}** of **{total}** voices. Clear the search or filters to see them all."


def _notice(library: VoiceLibrary) -> str:
    if not library.warnings:
        return ""
    lines = "\n".join(f"- {_md(w)}" for w in library.warnings)
    return "⚠️ **Some folders in the voice library were skipped** (they are left untouched on disk):\n\n" + lines


def _split_voices(library: VoiceLibrary, text: str) -> list[Voice]:
    """Names or ids separated by commas or new lines; a name that itself holds
    commas is recognised by trying the longest run of pieces first."""
    pieces = [p for line in text.splitlines() for p in line.split(",")]
    if len(pieces) > MAX_EXPORT_ITEMS:
        raise InvalidInput(f"List at most {MAX_EXPORT_ITEMS:,} voices to export, or leave it empty for all.")
    voices: list[Voice] = []
    i = 0
    while i < len(pieces):
        if not pieces[i].strip():
            i += 1
            continue
        for j in range(len(pieces), i, -1):
            candidate = ",".join(pieces[i:j]).strip()
            try:
                voices.append(library.get(candidate))
            except VoiceNotFound:
                if j == i + 1:
                    raise
                continue
            i = j
            break
    return voices


def export_voices(ctx: StudioContext, voices: list[Voice] | None) -> Path:
    """Writes a zip of ``voices`` (all when None) into a fresh folder under outputs_dir."""
    library = ctx.app.library
    chosen = library.list() if voices is None else voices
    if not chosen:
        raise LibraryError(
            "The voice library is empty; there is nothing to export yet."
            if voices is None
            else "Choose at least one voice to export."
        )
    folder = Path(ctx.outputs_dir) / "exports" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{chosen[0].id}.zip" if len(chosen) == 1 else f"qwen-tts-voices-{stamp}.zip"
    return library.export_zip(chosen, folder / name)


# --- the named API ------------------------------------------------------------


def make_library_api(ctx: StudioContext) -> dict[str, Any]:
    """The endpoint functions, typed for ``gr.api`` and wrapped by ``friendly_errors``."""
    library = ctx.app.library

    @friendly_errors
    def voices(query: str = "", kind: str = "all", language: str = "all", tag: str = "") -> list[dict[str, Any]]:
        """Library voices sorted by name. Every filter given must match: `query` (words found in the
        name, tags, notes, description or transcript), `kind` ("clone", "design" or "all"),
        `language` (e.g. "English", or "all") and `tag` (one tag, case-insensitive; empty = any)."""
        found = library.list(
            query=query or None, kind=_filter_value(kind), language=_filter_value(language), tag=_filter_value(tag)
        )
        return [v.as_dict() for v in found]

    @friendly_errors
    def voice_rename(voice: str, new_name: str) -> dict[str, Any]:
        """Renames a voice (by id or name). The id, reference and cached prompts stay."""
        return library.rename(voice or "", new_name if isinstance(new_name, str) else "").as_dict()

    @friendly_errors
    def voice_update(
        voice: str,
        notes: str | None = None,
        tags: str | list[str] | None = None,
        transcript: str | None = None,
        language: str | None = None,
        consent: str | None = None,
    ) -> dict[str, Any]:
        """Edits a voice's details (by id or name). A field that is omitted or null is left as it is;
        an empty string clears it (notes, tags, transcript, consent) or resets the language to "Auto".
        `tags` is a list or a comma-separated string and replaces all tags. A new transcript makes the
        voice's cached clone prompts stale; they are rebuilt on the next clone."""
        return library.update(
            voice or "", notes=notes, tags=tags, transcript=transcript, language=language, consent=consent
        ).as_dict()

    @friendly_errors
    def voice_delete(voice: str) -> dict[str, Any]:
        """Deletes a voice (by id or name) with its reference clip and cached prompts."""
        entry = library.get(voice or "")
        library.delete(entry.id)
        return {"deleted": entry.id, "name": entry.name}

    @friendly_errors
    def voice_export(voices: str | None = None) -> str:
        """A zip of the voices given as names or ids separated by commas (or new lines);
        empty exports the whole library. Import it with /voice_import or the Library tab."""
        chosen = _split_voices(library, voices) if voices and voices.strip() else None
        return str(export_voices(ctx, chosen))

    @friendly_errors
    def voice_import(file: str | None = None) -> list[dict[str, Any]]:
        """Imports every voice in a zip made by /voice_export, or none if anything in it is unsafe or
        damaged. A name already in the library gets " (imported)" appended."""
        if not file:
            raise InvalidInput("Choose a .zip file made with Export to import.")
        return [v.as_dict() for v in library.import_zip(file)]

    return {
        "voices": voices,
        "voice_rename": voice_rename,
        "voice_update": voice_update,
        "voice_delete": voice_delete,
        "voice_export": voice_export,
        "voice_import": voice_import,
    }


def register_library_api(ctx: StudioContext, api: dict[str, Any]) -> None:
    api_function(api["voices"], "voices", queue=False)
    api_function(api["voice_rename"], "voice_rename")
    api_function(api["voice_update"], "voice_update")
    api_function(api["voice_delete"], "voice_delete")
    # Files travel through components so the client uploads and downloads them.
    export_names = gr.Textbox(visible=False)
    export_file = gr.File(visible=False)
    api_endpoint(api["voice_export"], [export_names], export_file, "voice_export")
    import_file = gr.File(visible=False, type="filepath")
    import_result = gr.JSON(visible=False)
    api_endpoint(api["voice_import"], [import_file], import_result, "voice_import")


# --- the tab ------------------------------------------------------------------


def build_library_tab(ctx: StudioContext, *, clone_voice: gr.Dropdown, tabs: gr.Tabs) -> None:
    library = ctx.app.library
    api = make_library_api(ctx)
    # Filled at build time so the first view is right; refreshed whenever the tab opens.
    initial = library.list()

    with gr.Tab("Voice Library", id="library", elem_id="library-tab") as tab:
        gr.Markdown(
            "Every voice you saved, ready to reuse. Search and filter, pick one to hear it and edit "
            "its details, send it to **Voice Clone**, or export voices as a .zip to back them up or "
            "share them."
        )
        with gr.Row(equal_height=True):
            search = gr.Textbox(
                label="Search",
                placeholder="Name, tag, notes or transcript…",
                scale=3,
                min_width=220,
                elem_id="library-search",
            )
            kind = gr.Dropdown(KIND_CHOICES, value=ALL, label="Kind", scale=1, min_width=140, elem_id="library-kind")
            language = gr.Dropdown(
                LANGUAGE_FILTER_CHOICES, value=ALL, label="Language", scale=1, min_width=140, elem_id="library-language"
            )
            tag = gr.Dropdown(
                _tag_choices(library), value=ALL, label="Tag", scale=1, min_width=140, elem_id="library-tag"
            )
        with gr.Row(equal_height=True):
            count = gr.Markdown(_count_line(len(initial), len(initial)), elem_id="library-count")
            reload = gr.Button("↻ Refresh", size="sm", scale=0, min_width=110, elem_id="library-refresh")
        notice = gr.Markdown(_notice(library), elem_id="library-notice")
        # Content-sized columns: on a phone the table scrolls sideways with the name pinned.
        table = gr.Dataframe(
            _rows(initial),
            headers=COLUMNS,
            interactive=False,
            max_height=360,
            wrap=True,
            column_widths=[56, 200, 80, 100, 160, 95, 150, 300],
            pinned_columns=2,
            elem_id="library-table",
        )

        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                picker = gr.Dropdown(
                    [(v.name, v.id) for v in initial],
                    value=None,
                    label="Voice",
                    info="Pick a voice, or click its row in the table",
                    elem_id="library-voice",
                )
                details = gr.Markdown("Pick a voice to see its details." if initial else "", elem_id="library-details")
                # The one player: a row's ▶ plays its voice here (never by itself on a refresh).
                player = gr.Audio(
                    label="Reference clip",
                    type="filepath",
                    interactive=False,
                    buttons=["download"],
                    elem_id="library-player",
                )
                # Set when a row's ▶ was clicked; its change presses Play in the page (PLAY_JS).
                play_request = gr.Textbox(visible=False)
                use = gr.Button("Use in Voice Clone", variant="primary", elem_id="library-use")
                new_name = gr.Textbox(
                    label="Name", elem_id="library-new-name", info="Type a new name, then press Rename (or Enter)"
                )
                with gr.Row():
                    rename = gr.Button("Rename", min_width=90, elem_id="library-rename")
                    duplicate = gr.Button("Duplicate", min_width=90, elem_id="library-duplicate")
                    export_one = gr.Button("Export", min_width=90, elem_id="library-export-one")
                with gr.Group():
                    confirm = gr.Checkbox(value=False, label=CONFIRM_LABEL, elem_id="library-confirm")
                    delete = gr.Button("Delete", variant="stop", elem_id="library-delete")
            with gr.Column(scale=3, min_width=300):
                transcript = gr.Textbox(
                    label="Transcript",
                    lines=3,
                    elem_id="library-transcript",
                    info="What the reference says, word for word. Changing it re-encodes the voice on its next clone.",
                )
                # Fills the transcript and the language from the voice's own clip (studio/ui/transcribe.py).
                transcribe = gr.Button("Transcribe", size="sm", scale=0, min_width=130, elem_id="library-transcribe")
                transcribe_note = gr.Markdown(elem_id="library-transcribe-note")
                use_language = gr.Button("Use it", size="sm", visible="hidden", elem_id="library-use-language")
                with gr.Row():
                    edit_language = gr.Dropdown(
                        LANGUAGE_CHOICES,
                        value="Auto",
                        label="Language",
                        scale=1,
                        min_width=140,
                        elem_id="library-edit-language",
                    )
                    # Wide enough that a phone puts it under Language instead of clipping the placeholder.
                    tags = gr.Textbox(
                        label="Tags",
                        placeholder="comma separated, e.g. warm, narrator",
                        scale=2,
                        min_width=200,
                        elem_id="library-tags",
                    )
                notes = gr.Textbox(label="Notes", lines=3, elem_id="library-notes")
                consent = gr.Textbox(
                    label="Consent / licence note",
                    lines=2,
                    elem_id="library-consent",
                    placeholder="e.g. My own voice; or: recorded with permission of …",
                )
                save = gr.Button("Save edits", variant="primary", elem_id="library-save")
                status = gr.Markdown(elem_id="library-status")
                with gr.Accordion("Export and import", open=True, elem_id="library-transfer"):
                    export_all = gr.Button("Export all voices", elem_id="library-export-all")
                    # Never shown: an export downloads at once (DOWNLOAD_JS); the status line names the file.
                    exported = gr.File(interactive=False, visible=False, elem_id="library-exported")
                    upload = gr.File(
                        label="Import voices from a .zip export",
                        file_types=[".zip"],
                        type="filepath",
                        height=140,
                        elem_id="library-import",
                    )
                    # What the last import did, next to the box it was dropped on (a toast goes by).
                    import_status = gr.Markdown(elem_id="library-import-status", elem_classes=["inline-status"])

        # The pronunciation lexicon: kept with the voices, used by every take (studio/ui/tabs/lexicon.py).
        build_lexicon_panel(ctx)
        # Inside the tab: a stray child of gr.Tabs breaks the tab bar in the browser.
        outcome = gr.State()  # what the last action did, for the step that redraws the view
        register_library_api(ctx, api)

    # --- view state ---------------------------------------------------------

    filters = [search, kind, language, tag]
    detail_outputs = [picker, details, player, new_name, transcript, edit_language, tags, notes, consent, confirm]
    view_outputs = [table, count, notice, tag, clone_voice, *detail_outputs]

    def detail_values(voice_id: str | None) -> tuple:
        voice = None
        if voice_id:
            try:
                voice = library.get(voice_id)
            except VoiceNotFound:
                voice = None
        choices = _picker_choices(library)
        if voice is None:
            return (
                gr.update(choices=choices, value=None),
                "Pick a voice to see its details." if choices else "",
                None,
                "",
                "",
                "Auto",
                "",
                "",
                "",
                False,
            )
        lines = [
            f"### {_md(voice.name)}",
            f"**{voice.kind.capitalize()}** · {_language_label(voice.language)} · "
            f"{voice.reference_seconds:.1f} s · id `{voice.id}`",
            f"Created {_when(voice.created_at)} · updated {_when(voice.updated_at)}",
        ]
        if voice.source_name:
            lines.append(f"**Source file:** {_md(voice.source_name)}")
        if voice.description:
            lines.append(f"**Design description:** {_md(voice.description)}")
        if not voice.consent:
            lines.append("_No consent note yet: record whose voice this is and that you may use it._")
        return (
            gr.update(choices=choices, value=voice.id),
            "\n\n".join(lines),
            str(voice.reference_path),
            voice.name,
            voice.transcript or "",
            _language_label(voice.language),
            ", ".join(voice.tags),
            voice.notes,
            voice.consent,
            False,
        )

    def clone_value(current: str | None, renamed: tuple[str, str] | None = None) -> Any:
        value = current or NO_VOICE
        if renamed and value and value.casefold() == renamed[0].casefold():
            value = renamed[1]
        elif value:
            try:
                value = library.get(value).name
            except VoiceNotFound:
                value = NO_VOICE
        return gr.update(choices=library_choices(ctx), value=value)

    def view(query, kind_v, language_v, tag_v, voice_id, clone_current, renamed=None) -> tuple:
        everything = library.list()
        shown = library.list(
            query=query or None,
            kind=_filter_value(kind_v),
            language=_filter_value(language_v),
            tag=_filter_value(tag_v),
        )
        warnings = _notice(library)  # listing refreshed the library's warnings
        tag_choices = _tag_choices(library)
        tag_value = tag_v if tag_v in {value for _, value in tag_choices} else ALL
        if shown and not any(v.id == voice_id for v in everything):
            voice_id = shown[0].id  # nothing (or a deleted voice) selected: show the first one
        return (
            _rows(shown),
            _count_line(len(shown), len(everything)),
            warnings,
            gr.update(choices=tag_choices, value=tag_value),
            clone_value(clone_current, renamed),
            *detail_values(voice_id),
        )

    view_inputs = [*filters, picker, clone_voice]

    # --- events -------------------------------------------------------------
    #
    # An action that can fail runs first with a gr.State as its only output, so a
    # refusal is one clear toast instead of an "Error" badge over every widget;
    # only on success does a second step redraw the view from the outcome.

    @friendly_errors
    def refresh(*values):
        return view(*values)

    @friendly_errors
    def filter_only(query, kind_v, language_v, tag_v):
        shown = library.list(
            query=query or None,
            kind=_filter_value(kind_v),
            language=_filter_value(language_v),
            tag=_filter_value(tag_v),
        )
        total = len(library.list())
        return _rows(shown), _count_line(len(shown), total), _notice(library)

    @friendly_errors
    def pick(voice_id):
        return detail_values(voice_id)

    @friendly_errors
    def pick_row(evt: gr.SelectData):
        row = evt.row_value or []
        if len(row) <= NAME_COLUMN:
            return (*(gr.skip() for _ in detail_outputs), gr.skip())
        column = evt.index[1] if isinstance(evt.index, (list, tuple)) and len(evt.index) > 1 else None
        voice = library.get(str(row[NAME_COLUMN]))
        play = f"{voice.id} {uuid.uuid4().hex[:8]}" if column == 0 else gr.skip()  # a new value each click
        return (*detail_values(voice.id), play)

    @friendly_errors
    def do_rename(voice_id, name):
        voice = library.get(voice_id or "")
        renamed = library.rename(voice.id, name if isinstance(name, str) else "")
        if renamed.name == voice.name:
            return {"message": "The name is unchanged."}
        return {
            "message": f"Renamed **{_md(voice.name)}** to **{_md(renamed.name)}**.",
            "renamed": [voice.name, renamed.name],
        }

    @friendly_errors
    def do_save(voice_id, transcript_v, language_v, tags_v, notes_v, consent_v):
        voice = library.get(voice_id or "")
        # --auto-transcribe: an empty transcript is filled from the voice's own clip.
        transcript_v, _ = fill_if_empty(ctx, library.reference_audio(voice.id), transcript_v)
        updated = library.update(
            voice.id,
            transcript=transcript_v or "",
            language=language_v or "auto",
            tags=tags_v or "",
            notes=notes_v or "",
            consent=consent_v or "",
        )
        if updated.updated_at == voice.updated_at:
            return {"message": "Nothing to save: no field was changed."}
        return {"message": f"Saved the changes to **{_md(updated.name)}**."}

    @friendly_errors
    def do_duplicate(voice_id):
        copy = library.duplicate(library.get(voice_id or "").id)
        return {
            "select": copy.id,
            "message": f"Made a copy named **{_md(copy.name)}**; it is selected now, rename it above.",
        }

    @friendly_errors
    def do_delete(voice_id, confirmed):
        voice = library.get(voice_id or "")
        if not confirmed:
            raise gr.Error(
                f"Tick “{CONFIRM_LABEL}” first, then press Delete again. Deleting removes the reference clip for good.",
                title="Please confirm",
            )
        library.delete(voice.id)
        return {"select": None, "message": f"Deleted **{_md(voice.name)}**."}

    def do_import(file):
        """The outcome and the line under the import box; a refusal is told there too (and as a toast)."""
        try:
            if not file:
                raise InvalidInput("Choose a .zip file made with Export to import.")
            imported = library.import_zip(file)
        except StudioError as exc:
            gr.Warning(str(exc), title="Nothing was imported")
            return {}, f"**Nothing was imported.** {_md(str(exc))}"
        names = ", ".join(f"**{_md(v.name)}**" for v in imported)
        plural = "s" if len(imported) != 1 else ""
        message = f"Imported {len(imported)} voice{plural}: {names}."
        return {"select": imported[0].id, "message": message}, f"✅ {message}"

    @friendly_errors
    def do_use(voice_id):
        return {"name": library.get(voice_id or "").name}

    @friendly_errors
    def do_export_one(voice_id):
        voice = library.get(voice_id or "")
        path = export_voices(ctx, [voice])
        return {
            "file": str(path),
            "message": f"Exported **{_md(voice.name)}**: the download of `{path.name}` has started.",
        }

    @friendly_errors
    def do_export_all():
        path = export_voices(ctx, None)
        total = len(library.list())
        plural = "s" if total != 1 else ""
        return {
            "file": str(path),
            "message": f"Exported all **{total}** voice{plural}: the download of `{path.name}` has started.",
        }

    @friendly_errors
    def show_outcome(outcome, query, kind_v, language_v, tag_v, voice_id, clone_current):
        outcome = outcome or {}
        if "select" in outcome:
            voice_id = outcome["select"]
        renamed = tuple(outcome["renamed"]) if outcome.get("renamed") else None
        return (
            *view(query, kind_v, language_v, tag_v, voice_id, clone_current, renamed=renamed),
            outcome.get("message", ""),
        )

    def show_file(outcome):
        outcome = outcome or {}
        return gr.update(value=outcome.get("file"), visible=False), outcome.get("message", "")

    def switch_to_clone(outcome):
        return gr.update(choices=library_choices(ctx), value=(outcome or {}).get("name", NO_VOICE)), gr.Tabs(
            selected="clone"
        )

    private: dict[str, Any] = dict(api_visibility="private")

    def action(trigger, fn, inputs, show=show_outcome, show_inputs=None, show_outputs=None):
        show_inputs = [outcome, *view_inputs] if show_inputs is None else show_inputs
        show_outputs = [*view_outputs, status] if show_outputs is None else show_outputs
        event = trigger(fn, inputs, outcome, **private)
        event.success(show, show_inputs, show_outputs, **private)
        return event

    # The listings answer in the order they were asked: unqueued, a slow listing for the tab's
    # opening could land after the search typed just after it and show every voice again (seen
    # on a busy CI machine). One queue lane of their own keeps them in order, off the device's.
    in_order: dict[str, Any] = {"concurrency_id": "library-listing", "concurrency_limit": 1, "show_progress": "hidden"}
    for event in (search.change, kind.change, language.change, tag.change):
        event(filter_only, filters, [table, count, notice], trigger_mode="always_last", **in_order, **private)
    # Other tabs, windows and scripts change the library: show the truth whenever the tab opens.
    tab.select(refresh, view_inputs, view_outputs, **in_order, **private)
    reload.click(refresh, view_inputs, view_outputs, **in_order, **private)
    # Picks too (made during the opening listing, one landed first and was then undone).
    picker.input(pick, picker, detail_outputs, **in_order, **private)
    table.select(pick_row, None, [*detail_outputs, play_request], **in_order, **private)
    play_request.change(None, play_request, None, js=PLAY_JS, queue=False, **private)
    action(rename.click, do_rename, [picker, new_name])
    action(new_name.submit, do_rename, [picker, new_name])
    action(save.click, do_save, [picker, transcript, edit_language, tags, notes, consent])
    save.click(
        lambda v, t: library_transcript_offer(ctx, v, t), [picker, transcript], transcribe_note, queue=False, **private
    )
    transcribe.click(
        make_fill_library_transcript(ctx),
        [picker, edit_language],
        [transcript, edit_language, transcribe_note, use_language],
        **private,
    )
    for picked in (picker.input, table.select):
        picked(lambda: ("", gr.update(visible="hidden")), None, [transcribe_note, use_language], queue=False, **private)
    use_language.click(use_heard_language, use_language, [edit_language, use_language], queue=False, **private)
    action(duplicate.click, do_duplicate, [picker])
    action(delete.click, do_delete, [picker, confirm])
    # The upload box is emptied whatever happened, so the same file can be chosen again.
    imported = upload.upload(friendly_errors(do_import), [upload], [outcome, import_status], **private)
    imported.success(show_outcome, [outcome, *view_inputs], [*view_outputs, status], **private)
    imported.then(lambda: None, None, upload, queue=False, **private)
    # A new import, or an export, starts with a clean line under the box.
    export_all.click(lambda: "", None, import_status, queue=False, **private)
    action(use.click, do_use, [picker], switch_to_clone, [outcome], [clone_voice, tabs])
    # One step: the export is written, then the browser downloads it (no link to press after).
    for export_click, export_fn, export_inputs in (
        (export_one.click, do_export_one, [picker]),
        (export_all.click, do_export_all, []),
    ):
        export_event = export_click(export_fn, export_inputs, outcome, **private)
        export_event.success(show_file, [outcome], [exported, status], **private).then(
            None, exported, None, js=DOWNLOAD_JS, **private
        )
