"""The Clone tab's trim bookkeeping: undo, the clip-length line and the stale-transcript warning.

Plain functions over a small JSON-able state (kept in a gr.State per browser session), so they are
tested without a browser. Every trim change, from the Start/End fields or the waveform's region,
goes through ``commit``; ``undo`` walks back through the earlier trims of the same clip.
"""

from __future__ import annotations

from typing import Any

from core.audio.speech_check import MIN_SPEECH_SECONDS

Trim = list[float | None]  # [start_s, end_s]; None = the clip's own start / end
MAX_UNDO = 50
# Below this many seconds of speech, saving a voice asks first (under 1 s is refused outright).
CONFIRM_SPEECH_S = 3.0


def _key(start: Any, end: Any) -> Trim:
    def one(value: Any) -> float | None:
        if value is None or value == "":
            return None
        try:
            number = round(float(value), 2)
        except (TypeError, ValueError):
            return None
        return number or None

    return [one(start), one(end)]


def new_state(transcript: str = "", clip: str | None = None) -> dict[str, Any]:
    """A fresh clip: no trim, nothing to undo; a transcript already typed is taken as written for
    the whole clip. ``clip``: the file it is (a later, different one replaces it)."""
    return {
        "last": [None, None],
        "stack": [],
        "transcript_trim": [None, None] if transcript.strip() else None,
        "clip": clip,
    }


def replaces_clip(state: dict[str, Any] | None, clip: str | None) -> bool:
    """Whether ``clip`` replaces (or removes) a clip the tab had: what was written for that one
    (its transcript, the language heard, the voice name) no longer applies."""
    previous = (state or {}).get("clip")
    return previous is not None and previous != clip


REPLACED_NOTE = (
    "ℹ️ **The clip changed**: the transcript, the language heard and the voice name of the previous "
    "clip were cleared. Write what the new clip says, or press **Transcribe**."
)


def commit(state: dict[str, Any] | None, start: Any, end: Any) -> dict[str, Any]:
    """Records a trim; the one before it goes on the undo stack when it changed."""
    state = dict(state or new_state())
    trim = _key(start, end)
    if trim != state["last"]:
        state["stack"] = [*state["stack"], state["last"]][-MAX_UNDO:]
        state["last"] = trim
    return state


def undo(state: dict[str, Any] | None) -> tuple[dict[str, Any], float | None, float | None]:
    """The state and trim before the last change (unchanged when there is nothing to undo)."""
    state = dict(state or new_state())
    if state["stack"]:
        *rest, previous = state["stack"]
        state["stack"] = rest
        state["last"] = previous
    start, end = state["last"]
    return state, start, end


def transcript_written(state: dict[str, Any] | None, transcript: str) -> dict[str, Any]:
    """The transcript was (re)written: it now belongs to the current trim."""
    state = dict(state or new_state())
    state["transcript_trim"] = list(state["last"]) if transcript.strip() else None
    return state


def _span(trim: Trim, duration: float | None) -> str:
    start = trim[0] or 0.0
    end = trim[1] if trim[1] is not None else duration
    return f"{start:.2f}–{end:.2f} s" if end is not None else f"{start:.2f} s to the end"


def transcript_warning(state: dict[str, Any] | None, transcript: str, duration: float | None = None) -> str:
    """A warning when the clip was trimmed after its transcript was written ('' when none)."""
    if not state or not transcript.strip() or state.get("transcript_trim") is None:
        return ""
    if state["transcript_trim"] == state["last"]:
        return ""
    return (
        f"⚠️ The transcript was written for {_span(state['transcript_trim'], duration)} of the clip, "
        f"which is now trimmed to {_span(state['last'], duration)}. Check that it still says exactly "
        "what the trimmed clip says, or re-transcribe it."
    )


def length_line(duration: float | None, start: Any, end: Any) -> str:
    """The uploaded clip's real length and the stretch the trim keeps."""
    if duration is None:
        return ""
    trim = _key(start, end)
    s = min(trim[0] or 0.0, duration)
    e = min(trim[1], duration) if trim[1] is not None else duration
    if trim == [None, None]:
        return f"Clip **{duration:.2f} s** · using all of it (drag on the waveform or type Start/End to trim)"
    return f"Clip **{duration:.2f} s** · using **{s:.2f}–{e:.2f} s** ({max(0.0, e - s):.2f} s)"


def save_question(speech_s: float | None) -> str:
    """The question asked before saving a clip with little speech ('' when it has enough, and
    when it has too little to be saved at all: the save then says why, never offering "Save
    anyway" for a clip it would refuse)."""
    if speech_s is None or speech_s >= CONFIRM_SPEECH_S or speech_s < MIN_SPEECH_SECONDS:
        return ""
    return (
        f"⚠️ This clip has only **{speech_s:.1f} s of speech**; clones are steadier from "
        f"{CONFIRM_SPEECH_S:.0f} s or more. Press **Save anyway** to keep it, or widen the trim first."
    )
