#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite.
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh -k clone   # extra arguments go to pytest
#   PYTEST_WORKERS=2 bash scripts/test.sh   # two pytest-xdist workers (faster, less steady)
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests use: espeak-ng speaks real test clips, ffmpeg encodes
# MP3/Ogg, sox silences a warning at `import qwen_tts`, chromium runs the
# browser tests (Playwright's own browser download is not needed).
need=()
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v sox >/dev/null || need+=(sox)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing ${need[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v brew >/dev/null; then
    brew install "${need[@]/chromium/}" || true
  else
    echo "warning: missing ${need[*]}; the tests that need them will be skipped" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The exact, known-good set (requirements/test.lock, refreshed by
# scripts/lock.sh), then the project itself on top of it.
.venv/bin/python -m pip install -q -r requirements/test.lock -e ".[test]"
# One process by default. PYTEST_WORKERS=2 runs the suite on two pytest-xdist workers (whole
# test files each), which took 25 instead of 39 minutes on a 2-core machine but failed a few
# tests under the contention in two of three full runs (docs/PERFORMANCE.md), so it is opt-in.
workers="${PYTEST_WORKERS:-0}"
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
