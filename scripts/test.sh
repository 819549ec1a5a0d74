#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite.
#   bash scripts/test.sh            # all tests
#   bash scripts/test.sh -k clone   # extra arguments go to pytest
#   PYTEST_WORKERS=0 bash scripts/test.sh   # one process (the default is two pytest-xdist workers)
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
# Two pytest-xdist workers (whole test files each) by default: the suite waits on browsers,
# servers and sockets more than it computes. On a 2-core machine the whole .ci/run took 31
# minutes this way, against about 44 in one process (docs/PERFORMANCE.md). The flows marked
# `serial` time a Stop or a playhead against a take being made and need the machine to
# themselves: they run afterwards, in one process. PYTEST_WORKERS=0 runs everything in one
# process, in file order.
workers="${PYTEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
# Exit 5 is "no test collected" (a file or -k that selects only one of the two groups).
status=0
.venv/bin/python -m pytest -n "$workers" --dist loadfile -m "not serial" "$@" || status=$?
serial=0
.venv/bin/python -m pytest -m serial "$@" || serial=$?
if [ "$status" = 5 ] && [ "$serial" != 5 ]; then status=0; fi
if [ "$status" = 0 ] && [ "$serial" != 5 ]; then status=$serial; fi
exit "$status"
