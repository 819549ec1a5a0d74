"""`qwen-tts-studio doctor`: one line per check of the machine, then a summary.

Exits 0 when nothing failed (warnings allowed) and 1 when a check failed.
``--json`` prints the checks as a JSON list of {name, status, detail, fix}.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.settings import Settings
from core.tools.doctor import Check, exit_code, run_checks, summary

_LABELS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}


def format_check(check: Check) -> str:
    text = check.detail
    if check.fix and check.status == "fail":
        text += f" — fix: {check.fix}"
    elif check.fix:
        text += f" — {check.fix}"
    return f"{_LABELS[check.status]:<6}{check.name:<14}{text}"


def _print(line: str) -> None:
    # A console that cannot show "—" must not turn a report into a traceback.
    try:
        print(line, flush=True)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "ascii"
        print(line.encode(encoding, "replace").decode(encoding), flush=True)


def run_doctor(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "json", False):
        checks = run_checks(settings)
        print(json.dumps([c.to_dict() for c in checks], indent=2, ensure_ascii=False))
    else:
        checks = run_checks(settings, on_check=lambda check: _print(format_check(check)))
        _print(summary(checks))
    return exit_code(checks)
