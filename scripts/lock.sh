#!/usr/bin/env bash
# Refreshes the exact, known-good dependency sets in requirements/ from the
# ranges in pyproject.toml, for Linux x86_64/aarch64 and macOS arm64 and every
# supported Python (uv's universal resolution writes platform markers).
#   bash scripts/lock.sh                  # keep current pins where still allowed
#   bash scripts/lock.sh --upgrade        # move every package to its newest allowed release
# Then run `bash scripts/test.sh` and commit requirements/*.lock if it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-}"
if [ -z "$UV" ]; then
  if command -v uv >/dev/null; then UV=uv
  else
    python3 -m venv .lock-tools >/dev/null
    .lock-tools/bin/python -m pip install -q uv
    UV=.lock-tools/bin/uv
  fi
fi
common=(--universal --python-version 3.10 --no-header --quiet)
# The test set is resolved first; the studio set is the same pins minus the
# test-only tools, so both installs always agree.
"$UV" pip compile pyproject.toml --extra test "${common[@]}" "$@" -o requirements/test.lock
"$UV" pip compile pyproject.toml -c requirements/test.lock "${common[@]}" -o requirements/studio.lock
# The MLX engine's own environment (qwen-tts-studio engines install mlx): one universal
# lock, MLX with Metal on macOS and mlx-cpu on Linux, shipped inside the package.
"$UV" pip compile core/engine/mlx/engine.in --universal --python-version 3.10 --no-header --quiet "$@" \
  -o core/engine/mlx/engine.lock
echo "wrote requirements/test.lock, requirements/studio.lock and core/engine/mlx/engine.lock"
