#!/usr/bin/env bash
# Set up everything alphacut needs in this checkout: a virtual environment with the
# package (and, with --dev, the test tools), the web runtime and the default model.
# Idempotent: a second run only checks. Needs python3 (3.11+), pip, node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

extra="."
[ "${1:-}" = "--dev" ] && extra=".[dev]"

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$python" -m venv .venv
fi
stamp=".venv/.alphacut-installed-$(cat pyproject.toml | sha256sum | cut -c1-16)${extra//[^a-z]/}"
if [ ! -f "$stamp" ]; then
  echo "setup: installing alphacut ($extra) into .venv" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e "$extra"
  touch "$stamp"
fi

if [ -f package-lock.json ] && [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  echo "setup: installing the web runtime (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi

.venv/bin/alphacut models pull medium >&2
