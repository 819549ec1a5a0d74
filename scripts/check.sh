#!/usr/bin/env bash
# Static checks, as CI runs them (after scripts/test.sh has made .venv):
# ruff lint, ruff format, and mypy, all configured in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check core studio tests benchmarks
.venv/bin/ruff format --check core studio tests benchmarks
.venv/bin/mypy
