#!/usr/bin/env bash
# The test command: install what is missing, then run the whole test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh --require-backend lme4` (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
