#!/usr/bin/env bash
# The typing and lint gate: mypy --strict over src/ (settings in pyproject.toml) and ruff over the code.
# scripts/test.sh runs it before the tests, so CI (.ci/run) runs it too. Needs the dev extra installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
"$PY" -m mypy
"$PY" -m ruff check src tests scripts benchmarks
