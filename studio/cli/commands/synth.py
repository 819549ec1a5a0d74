"""`qwen-tts-studio synth`: one file from the command line, through the engine."""

from __future__ import annotations

import argparse
import sys

from core.audio.io import load_audio, write_audio
from core.context import build_context
from core.errors import InvalidInput
from core.settings import Settings
from core.types import CloneRequest, CustomVoiceRequest, DesignRequest, Sampling


def _read_text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return args.text
    try:
        return args.text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Could not read the text file {args.text_file}: {exc}") from None


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def run_synth(args: argparse.Namespace, settings: Settings) -> int:
    text = _read_text(args)
    sampling = Sampling(
        seed=args.seed,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        max_new_tokens=args.max_new_tokens,
    )
    context = build_context(settings)
    service = context.synthesis
    if args.mode == "design":
        if not args.instruct:
            raise InvalidInput("Design mode needs --instruct with a description of the voice.")
        result = service.design(
            DesignRequest(
                text=text, description=args.instruct, language=args.language, size=args.size, sampling=sampling
            ),
            _progress,
        )
    elif args.mode == "custom":
        if not args.speaker:
            raise InvalidInput("Custom mode needs --speaker, e.g. --speaker Ryan.")
        result = service.custom_voice(
            CustomVoiceRequest(
                text=text,
                speaker=args.speaker,
                language=args.language,
                instruct=args.instruct,
                size=args.size,
                sampling=sampling,
            ),
            _progress,
        )
    else:
        if args.ref_audio is None:
            raise InvalidInput("Clone mode needs --ref-audio with a reference clip.")
        reference = load_audio(args.ref_audio)
        result = service.clone(
            CloneRequest(
                text=text,
                language=args.language,
                reference=reference,
                reference_text=args.ref_text,
                x_vector_only=args.x_vector_only,
                size=args.size,
                sampling=sampling,
            ),
            _progress,
        )
    path = write_audio(result.audio, args.out, args.format)
    t = result.timings
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"wrote {path}: {result.duration:.2f} s of audio at {result.sample_rate} Hz, "
        f"seed {result.seed}, model {result.model}; load {t['load_s']:.2f} s, "
        f"generate {t['generate_s']:.2f} s, real-time factor {t['rtf']:.2f}"
    )
    return 0
