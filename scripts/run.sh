#!/usr/bin/env bash
# Set everything up, then start the web app on the default model: http://127.0.0.1:8000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/alphacut serve "$@"
