#!/usr/bin/env bash
# The test command: install what is missing, make sure the course datasets are here, then run the
# whole test suite. Extra arguments go to pytest, e.g. `scripts/test.sh --require-backend lme4`
# (what CI runs).
#
# The datasets are looked for where the README says ($MLM_HARNESS_DATA, then the user cache
# ~/.cache/mlm-harness/data) and fetched into the cache when absent. When they are here the run
# gets --require-data, so a test that still cannot find them fails instead of skipping; when they
# cannot be fetched (offline) the run goes on, the data tests skip, and pytest's summary says how
# many were skipped and why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
data=()
if .venv/bin/mlm-harness data verify >/dev/null 2>&1 || .venv/bin/mlm-harness data fetch; then
  data=(--require-data)
else
  echo "test.sh: the course datasets are not here and could not be fetched; the tests that" \
       "need them will be skipped (counted at the end of the run)" >&2
fi
exec .venv/bin/python -m pytest "${data[@]}" "$@"
