"""`qwen-tts-studio synth`: one file from the command line, through the engine.

The take is a job of the take runner (core/takes/jobs.py), as every take is; it is written to
``--out``, not kept in History. Ctrl-C stops it within a frame.
"""

from __future__ import annotations

import argparse
import os
import sys

from core.audio.io import encode, load_audio, write_audio
from core.context import build_context
from core.errors import InvalidInput
from core.settings import Settings
from core.takes.jobs import JobRegistry, JobState
from core.takes.requests import Ask, request_for
from core.takes.service import TakeJob, TakeService
from core.takes.values import options_from_values
from core.types import Mode, Request, SynthesisResult

STDIO = "-"  # --text - reads the text from stdin; --out - writes the audio to stdout (Unix pipes)


def _read_text(args: argparse.Namespace) -> str:
    if args.text == STDIO:
        try:
            return sys.stdin.buffer.read().decode("utf-8")  # UTF-8 whatever the locale says
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"The text on stdin is not valid UTF-8: {exc}") from None
    if args.text is not None:
        return args.text
    try:
        return args.text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Could not read the text file {args.text_file}: {exc}") from None


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def run_synth(args: argparse.Namespace, settings: Settings) -> int:
    to_stdout = str(args.out) == STDIO
    if to_stdout and sys.stdout.isatty():
        raise InvalidInput("--out - writes audio to stdout; redirect it (> take.wav) or pipe it (| aplay).")
    text = _read_text(args)
    audio_fd = None
    if to_stdout:
        # The model stack prints notices to stdout (qwen_tts' flash-attn warning, at
        # load time); while it works, file descriptor 1 points at stderr so that the
        # pipe receives the audio bytes and nothing else.
        sys.stdout.flush()
        audio_fd = os.dup(1)
        os.dup2(2, 1)
    try:
        return _synthesize(args, settings, text, audio_fd)
    finally:
        if audio_fd is not None:
            sys.stdout.flush()
            os.dup2(audio_fd, 1)
            os.close(audio_fd)


def _synthesize(args: argparse.Namespace, settings: Settings, text: str, audio_fd: int | None) -> int:
    mode = Mode.from_user(args.mode)
    # The interface's own words for what a mode needs (they name the flags), before any model loads.
    if mode == Mode.VOICE_DESIGN and not args.instruct:
        raise InvalidInput("Design mode needs --instruct with a description of the voice.")
    if mode == Mode.CUSTOM_VOICE and not args.speaker:
        raise InvalidInput("Custom mode needs --speaker, e.g. --speaker Ryan.")
    if mode == Mode.BASE and args.ref_audio is None:
        raise InvalidInput("Clone mode needs --ref-audio with a reference clip.")
    names = ("seed", "temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens")
    options = options_from_values(**{name: getattr(args, name) for name in names})
    ask = Ask(
        mode,
        text,
        args.language,
        args.size,
        description=args.instruct,
        speaker=args.speaker,
        instruct=args.instruct,
        reference=None if args.ref_audio is None else load_audio(args.ref_audio),
        reference_text=args.ref_text,
        x_vector_only=args.x_vector_only,
        options=options,
    )
    context = build_context(settings)
    request, _, _ = request_for(ask, context.library, context.synthesis)
    result = _run(TakeService.for_app(context), request)
    if audio_fd is not None:
        with os.fdopen(os.dup(audio_fd), "wb") as pipe:
            pipe.write(encode(result.audio, args.format or "wav"))
        where = "stdout"
    else:
        where = str(write_audio(result.audio, args.out, args.format))
    t = result.timings
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"wrote {where}: {result.duration:.2f} s of audio at {result.sample_rate} Hz, "
        f"seed {result.seed}, model {result.model}, engine {result.engine}; load {t['load_s']:.2f} s, "
        f"generate {t['generate_s']:.2f} s, real-time factor {t['rtf']:.2f}",
        file=sys.stderr if audio_fd is not None else sys.stdout,
    )
    return 0


def _run(takes: TakeService, request: Request) -> SynthesisResult:
    """The take as a job of the take runner, its progress on stderr; Ctrl-C stops it."""
    jobs = JobRegistry(takes)
    job = jobs.start_whole([TakeJob(request, "wav")], client="cli", tab="cli", keep=False)[0]
    told = ""
    try:
        while not job.wait(0.2):
            if job.message != told:
                told = job.message
                _progress(job.fraction(), told)
    except KeyboardInterrupt:
        jobs.stop(job.id)
        job.wait(30)
        raise
    if job.state is not JobState.DONE or job.result is None:
        raise job.error or InvalidInput("The take was not made.")
    return job.result
