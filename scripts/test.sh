#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite.
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh -k clone   # extra arguments go to pytest
#   PYTEST_WORKERS=0 bash scripts/test.sh   # one process, no workers
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
# Two workers (pytest-xdist), each given whole test files: a browser flow or a server test
# mostly waits on its page, its subprocess or its server, and the other worker's file fills
# the cores meanwhile. More workers than that only add contention on a small machine.
# PYTEST_WORKERS=0 runs everything in this one process (what a debugger wants).
cores="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)"
workers="${PYTEST_WORKERS:-$(( cores >= 8 ? 4 : 2 ))}"
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
