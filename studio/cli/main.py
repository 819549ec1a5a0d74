"""The `qwen-tts-studio` command.

With no sub-command it launches the studio. Every command shares the settings
flags; errors print one readable line and exit non-zero, never a traceback
(``--log-level debug`` shows the traceback for bug reports).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import StudioError
from core.settings import DEVICES, DTYPES, LOG_LEVELS, SIZES, Settings, load_settings

log = logging.getLogger("studio")

EXIT_USAGE = 2
EXIT_ERROR = 1

# Settings flags: dest must equal the Settings field name.
_SETTING_FLAGS: list[tuple[str, dict[str, Any]]] = [
    ("--host", dict(help="address to bind (default 127.0.0.1; 0.0.0.0 for the LAN)")),
    ("--port", dict(help="port to serve on (default 7860)")),
    ("--data-dir", dict(help="where voices, takes and demo models are kept")),
    ("--hf-cache-dir", dict(help="Hugging Face cache to download checkpoints into")),
    ("--models-dir", dict(help="plain folder of checkpoints (one sub-folder per repo name)")),
    ("--checkpoint-voice-design", dict(help="local VoiceDesign checkpoint folder")),
    ("--checkpoint-custom-voice", dict(help="local CustomVoice checkpoint folder")),
    ("--checkpoint-base", dict(help="local Base (clone) checkpoint folder")),
    ("--checkpoint-asr", dict(help="local Whisper folder for transcription")),
    ("--asr-model", dict(help="Hugging Face Whisper model for transcription (default openai/whisper-small)")),
    ("--device", dict(help=f"one of {', '.join(DEVICES)}")),
    ("--dtype", dict(help=f"one of {', '.join(DTYPES)}")),
    ("--quantize", dict(help="none (default) or int8: CPU only, faster, changes the audio")),
    ("--decode", dict(help="the generate loop: stock (default) or static (pre-allocated caches, same codes)")),
    ("--engine", dict(help="auto (default: MLX on Apple Silicon once installed, else torch), torch or mlx")),
    ("--mlx-quantize", dict(help="the MLX engine's weights: bf16 (default, as stored), 8bit, 6bit or 4bit")),
    ("--preferred-size", dict(help=f"default model size, one of {', '.join(SIZES)}")),
    ("--max-resident", dict(help="models kept in memory at once (default 1)")),
    ("--max-text-chars", dict(help="longest text accepted (default 50000)")),
    ("--chunk-chars", dict(help="characters per generated chunk of long text (default 300)")),
    ("--log-level", dict(help=f"one of {', '.join(LOG_LEVELS)}")),
    ("--auth", dict(help="user:password required for the UI, the API and scripts")),
    ("--auth-file", dict(help="file with one user:password per line")),
    ("--ssl-certfile", dict(help="TLS certificate (browsers allow the microphone only on https or localhost)")),
    ("--ssl-keyfile", dict(help="TLS private key")),
    ("--max-upload-mb", dict(help="largest upload accepted, in MB (default 200)")),
    ("--rate-limit-per-minute", dict(help="generation requests per client per minute (default 30; 0 = off)")),
    ("--history-max-takes", dict(help="takes kept in the history before the oldest are pruned (default 500)")),
    ("--history-max-mb", dict(help="history size in MB before the oldest takes are pruned (default 2000)")),
    ("--cors-origins", dict(help="browser origins allowed to call the HTTP API, comma-separated (default none)")),
    ("--shutdown-timeout", dict(help="seconds in-flight takes may finish on SIGTERM/Ctrl-C (default 30)")),
    ("--mcp-server", dict(help="serve the MCP server at /mcp (default true)")),
    (
        "--remote-engine",
        dict(
            action="append",
            metavar="URL",
            help="a Qwen3-TTS speech server to generate on (vLLM-Omni, another studio); repeatable; "
            "URL#key_env=NAME reads its bearer key from an environment variable",
        ),
    ),
    ("--engine-fallback", dict(help="none (default) or local: use the local model when every remote server is down")),
    ("--remote-timeout", dict(help="seconds one remote request may take (default 300)")),
    ("--remote-failures", dict(help="failures in a row that stop sending to a remote server (default 3)")),
    ("--remote-cooldown", dict(help="seconds before a failing remote server is probed again (default 30)")),
]
# On/off settings: the flag alone turns one on; without it, env vars and config.toml decide.
_SWITCH_FLAGS: list[tuple[str, str]] = [
    ("--offline", "never reach the network; fail clearly if a model is missing"),
    ("--demo-models", "use tiny random-weight models built locally (test output, not speech)"),
    ("--auto-transcribe", "fill an empty reference transcript by transcribing the clip at generate and save time"),
    ("--insecure-no-auth", "allow a non-loopback --host without a password (trusted networks only)"),
]


def _settings_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (also QWEN_TTS_STUDIO_* env vars and config.toml)")
    for flag, kwargs in _SETTING_FLAGS:
        group.add_argument(flag, default=argparse.SUPPRESS, **kwargs)
    for flag, help_text in _SWITCH_FLAGS:
        group.add_argument(flag, action="store_const", const=True, default=argparse.SUPPRESS, help=help_text)
    group.add_argument("--config", default=argparse.SUPPRESS, help="path of a TOML config file")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parent = _settings_parent()
    parser = argparse.ArgumentParser(
        prog="qwen-tts-studio",
        description="A local studio for Qwen3-TTS: design, cast, clone and keep voices.",
        parents=[parent],
    )
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[parent], help="launch the studio (the default)")
    serve.add_argument("--share", action="store_true", help="also open a public Gradio share link")

    synth = sub.add_parser("synth", parents=[parent], help="generate one file from the command line")
    synth.add_argument("--mode", required=True, choices=["design", "custom", "clone"])
    text = synth.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="text to speak ('-' reads it from stdin)")
    text.add_argument("--text-file", type=Path, help="read the text from a UTF-8 file")
    synth.add_argument("--language", default="auto", help="Auto, English, Chinese, ... (default auto)")
    synth.add_argument("--speaker", help="custom mode: a built-in speaker, e.g. Ryan")
    synth.add_argument("--instruct", help="design: the voice description; custom: a style instruction")
    synth.add_argument("--ref-audio", type=Path, help="clone mode: reference clip")
    synth.add_argument("--ref-text", help="clone mode: transcript of the reference clip")
    synth.add_argument("--x-vector-only", action="store_true", help="clone without a transcript")
    synth.add_argument("--size", choices=list(SIZES), help="model size (default: preferred size)")
    synth.add_argument("--seed", type=int)
    synth.add_argument("--temperature", type=float)
    synth.add_argument("--top-k", type=int)
    synth.add_argument("--top-p", type=float)
    synth.add_argument("--repetition-penalty", type=float)
    synth.add_argument("--max-new-tokens", type=int, help="cap on codec frames per chunk (12.5 per second)")
    synth.add_argument(
        "--format", choices=["wav", "flac", "mp3", "ogg"], help="default: from --out's suffix (wav for --out -)"
    )
    synth.add_argument("--out", type=Path, required=True, help="output file ('-' writes the audio to stdout)")

    models = sub.add_parser("models", parents=[parent], help="list, download, remove or build models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", parents=[parent], help="every checkpoint with its state and size")
    dl = msub.add_parser("download", parents=[parent], help="download checkpoints (resumable)")
    dl.add_argument("keys", nargs="+", help="model keys, e.g. 0.6B-Base, or 'all'")
    rm = msub.add_parser("remove", parents=[parent], help="delete downloaded checkpoints")
    rm.add_argument("keys", nargs="+", help="model keys")
    demo = msub.add_parser("build-demo", parents=[parent], help="build the tiny random-weight demo models")
    demo.add_argument("--out", type=Path, help="folder to write base/, custom_voice/, voice_design/ into")
    demo.add_argument("--force", action="store_true", help="rebuild even if a complete build exists")

    doctor = sub.add_parser("doctor", parents=[parent], help="check that this machine can run the studio")
    doctor.add_argument("--json", action="store_true", help="print the checks as a JSON list")

    engines = sub.add_parser("engines", parents=[parent], help="list, install or remove engines (MLX)")
    esub = engines.add_subparsers(dest="engines_command", metavar="ACTION", required=True)
    esub.add_parser("list", parents=[parent], help="each engine and its state")
    einstall = esub.add_parser("install", parents=[parent], help="create an engine's own environment")
    einstall.add_argument("engine_name", metavar="ENGINE", help="mlx")
    einstall.add_argument("--force", action="store_true", help="reinstall even if it is installed")
    eremove = esub.add_parser("remove", parents=[parent], help="delete an engine's environment")
    eremove.add_argument("engine_name", metavar="ENGINE", help="mlx")

    from studio.cli.commands.project import add_parser as add_project_parser

    add_project_parser(sub, parent)

    bench = sub.add_parser("bench", parents=[parent], help="measure load time, speed, API overhead and memory")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    bench.add_argument(
        "--runs",
        type=int,
        default=None,
        help="timed runs per figure, the median is reported (default 3; with --arch 2 pairs)",
    )
    bench.add_argument(
        "--frames",
        type=int,
        default=None,
        help="codec frames per generation (default 48; with --arch 25; 12.5 per second)",
    )
    # Studio path vs the stock qwen_tts call (core/tools/bench/compare_suite.py, docs/PERFORMANCE.md).
    bench.add_argument(
        "--arch",
        choices=("0.6b", "1.7b"),
        help="compare studio vs stock on random-weight models of the real size (built once, GBs)",
    )
    bench.add_argument("--compare", action="store_true", help="compare studio vs stock on the configured models")
    bench.add_argument("--int8", action="store_true", help="with --arch/--compare: also the opt-in, lossy int8 path")
    bench.add_argument(
        "--no-dtypes",
        action="store_true",
        help="with --arch: skip the fp32 / bf16 / int8 / static-decode side-by-side table",
    )
    bench.add_argument(
        "--profile",
        action="store_true",
        help="with --arch/--compare: time talker, code predictor and decoder separately",
    )
    bench.add_argument(
        "--long",
        action="store_true",
        help="also batched generation: a 16-chunk take vs the chunks one by one, 4 variants vs 1 take",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    names = {flag.lstrip("-").replace("-", "_") for flag, _ in _SETTING_FLAGS} | {
        "offline",
        "demo_models",
        "insecure_no_auth",
    }
    cli = {name: getattr(args, name) for name in names if hasattr(args, name)}
    config = getattr(args, "config", None)
    return load_settings(cli, config_path=Path(config) if config else None)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "debug":
        # The model stack is chatty at import and load time; keep our lines readable.
        for noisy in ("transformers", "httpx", "urllib3", "huggingface_hub", "numba", "matplotlib"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    # Idle OpenMP threads otherwise spin and steal CPU from generation on a
    # busy machine (docs/PERFORMANCE.md); must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = False
    try:
        settings = settings_from_args(args)
        debug = settings.log_level == "debug"
        configure_logging(settings.log_level)
        handler = _COMMANDS[args.command or "serve"]
        return handler(args, settings)
    except StudioError as exc:
        if debug:
            log.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one readable line
        if debug:
            log.exception("unexpected failure")
        print(
            f"unexpected error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(run with --log-level debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from studio.server import serve

    return serve(settings, share=getattr(args, "share", False))


def _cmd_synth(args: argparse.Namespace, settings: Settings) -> int:
    from studio.cli.commands.synth import run_synth

    return run_synth(args, settings)


def _cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from studio.cli.commands.models import run_models

    return run_models(args, settings)


def _cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from studio.cli.commands.doctor import run_doctor

    return run_doctor(args, settings)


def _cmd_engines(args: argparse.Namespace, settings: Settings) -> int:
    from studio.cli.commands.engines import run_engines

    return run_engines(args, settings)


def _cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    from studio.cli.commands.project import run_project

    return run_project(args, settings)


def _cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from studio.cli.commands.bench import run_bench

    return run_bench(args, settings)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "bench": _cmd_bench,
    "doctor": _cmd_doctor,
    "engines": _cmd_engines,
    "serve": _cmd_serve,
    "synth": _cmd_synth,
    "models": _cmd_models,
    "project": _cmd_project,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
