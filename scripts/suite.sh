#!/usr/bin/env bash
# The main job: install what is missing, make sure the course datasets are here, run the course
# replication suite on every backend and write the HTML report to a new reports/<date-time>/.
# Extra arguments go to `mlm-harness run`, e.g. `scripts/suite.sh --out reports/latest --overwrite`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if ! .venv/bin/mlm-harness data verify >/dev/null 2>&1; then
  .venv/bin/mlm-harness data fetch
fi
exec .venv/bin/mlm-harness run specs/ --backends native,lme4,stata --jobs 2 "$@"
