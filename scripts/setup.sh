#!/usr/bin/env bash
# Set up everything alphacut needs in this checkout: a virtual environment with the
# package (and, with --dev, the test and benchmark tools), the default model and the
# in-browser runtime.
# Idempotent: a second run only checks. Needs python3 (3.11+), pip, node and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

extra="."
tools=""
[ "${1:-}" = "--dev" ] && extra=".[dev]" && tools="--test-tools"

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

# The model and the browser runtime are fetched with npm, verified, and cached outside the
# checkout (ALPHACUT_HOME moves the cache); a second run finds them and fetches nothing.
.venv/bin/alphacut models pull medium >&2
.venv/bin/alphacut runtime pull $tools >/dev/null
