"""A running job's progress from the frames the model makes, not only from whole chunks.

A long take can sit on one chunk for a minute, and batched chunks finish together, so
"chunk k of n" alone looks hung and an estimate from finished chunks jumps. The torch
engine calls the job's cancel token on every talker step (one codec frame, 80 ms of audio,
per batch row; core/engine/cancel.py), and the token counts them. From that count:

- the line says how much audio is made so far ("12.4 s of audio made"), which moves
  several times a second while the model works;
- the time left is the frames still expected times the measured time per frame, so it
  counts down at the pace the model really works. The frames expected cover only this
  job's work: a resumed take counts the chunks it still has to make, not the whole text.
  Before a chunk is done they come from the text's length; after, from the chunks made.

Engines without a torch talker (MLX, remote) make no frame count; their jobs keep the
chunk-based estimate (:meth:`core.takes.jobs.Job.eta_s`).
"""

from __future__ import annotations

import time
from typing import Any

from core.engine.synthesis import ChunkAudio

FRAME_S = 0.08  # one codec frame of the 12.5 Hz tokenizer
MIN_FRAMES = 8  # fewer than this (under 0.7 s of audio) is too little to time
LAST_BIT = 0.05  # while the model works, at least this share of a chunk is still to come
UNITS = {"script": "Line", "train": "Step"}  # what a job's parts are called in its progress line


def format_seconds(seconds: float) -> str:
    """ "42 s" or "3 min 07 s": the one formatter of durations in progress lines."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s"


def audio_made_s(job: Any) -> float:
    """Seconds of audio the model made for this job so far (every batch row counted)."""
    return job.token.frames * FRAME_S


def frames_eta_s(job: Any, now: float | None = None) -> float | None:
    """Seconds left from the frames made and expected, or None when there are too few to time."""
    token = job.token
    frames = token.frames
    if frames < MIN_FRAMES or token.first_frame_at is None or not job.chunks_total:
        return None
    now = time.monotonic() if now is None else now
    per_frame = max(now - token.first_frame_at, 0.0) / frames
    made = [p for p in job.pieces if isinstance(p, ChunkAudio)]
    # Chunks this job had to make: a resume starts with the ones it kept.
    base = max(0, job.chunks_done - len(made))
    needed = max(job.chunks_total - base, 1)
    done_frames = sum(len(p.audio.samples) / p.audio.sample_rate for p in made) / FRAME_S
    if made:
        per_chunk = done_frames / len(made)
    else:
        text_frames = job.speech_s / FRAME_S * needed / job.chunks_total
        if job.kind == "variants":
            text_frames *= max(token.rows, 1)  # every take of the batch says the whole text
        per_chunk = text_frames / needed
    expected = done_frames + per_chunk * max(needed - len(made), 0)
    left = max(expected - frames, LAST_BIT * per_chunk)
    return left * per_frame


def running_line(job: Any, chunk_eta_s: float | None) -> str:
    """ "Chunk 2 of 14 · 24.6 s of audio made · 1 min 02 s elapsed · about 3 min 10 s left"."""

    parts = []
    if job.kind in ("project", "evaluate") and job.message:
        # "Chapter 2 of 3 · block 5 of 12" (core/projects/render.py), "Hearing take 4 of 6" (core/finetune/evaluate.py)
        parts.append(job.message)
    elif job.chunks_total:
        current = min(job.chunks_done + 1, job.chunks_total)
        parts.append(f"{UNITS.get(job.kind, 'Chunk')} {current} of {job.chunks_total}")
        if job.kind == "train" and job.message:
            parts.append(job.message)  # the last step's loss, or what training does before its first step
    else:
        parts.append(job.message)
    if job.token.frames:
        parts.append(f"{audio_made_s(job):.1f} s of audio made")
    parts.append(f"{format_seconds(job.elapsed_s())} elapsed")
    eta = frames_eta_s(job)
    if eta is None:
        eta = chunk_eta_s
    parts.append(f"about {format_seconds(eta)} left" if eta is not None else "estimating time left…")
    if job.token.cancelled:
        parts.insert(0, "Stopping…")
    return " · ".join(parts)
