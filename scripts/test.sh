#!/usr/bin/env bash
# Set everything up (test tools too), run the typing and lint gate (scripts/check.sh), then the full
# test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing Chromium for the browser tests (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: Chromium is missing, browser tests will be skipped (Debian: apt-get install chromium)" >&2
  fi
fi
bash scripts/check.sh
exec .venv/bin/python -m pytest "$@"
