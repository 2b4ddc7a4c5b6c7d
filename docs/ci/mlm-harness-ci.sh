#!/usr/bin/env bash
# Check your own spec folder on every push: fit each spec with the native estimator and lme4,
# compare them (and the references you pasted), write the HTML report, and fail when a difference
# is unexplained. Generic: any Linux shell or CI with Python >= 3.11 and R with lme4 (see
# docs/ci.md; github-actions.yml in this folder runs this same script).
#
# Usage: bash mlm-harness-ci.sh [SPEC_FOLDER ...]          (default: specs)
# Environment:
#   MLM_HARNESS_SOURCE  where to install mlm-harness from (required): a pip requirement such as
#                       git+https://github.com/OWNER/mlm-harness.git@TAG, or a local checkout
#   MLM_REPORT_DIR      report folder (default: mlm-report); upload it as the CI artifact
#   MLM_CACHE_DIR       fit cache (default: ~/.cache/mlm-harness/fits); keep it between runs and
#                       unchanged specs are not refitted
#   MLM_JOBS            fits in parallel (default: 2)
#   MLM_FETCH_DATA      1: fetch the course datasets (specs that name gcse, popular2, ...)
#   MLM_VENV            virtual environment to create or reuse (default: .mlm-harness-venv)
#   PYTHON              interpreter for the virtual environment (default: python3)
# Exit status is mlm-harness run's: 0 every difference agreed or explained, 1 an unexplained
# difference or lme4 could not run, 2 a spec, data or usage error.
set -euo pipefail

: "${MLM_HARNESS_SOURCE:?set MLM_HARNESS_SOURCE to where mlm-harness is installed from (a pip requirement or a checkout path)}"
REPORT="${MLM_REPORT_DIR:-mlm-report}"
CACHE="${MLM_CACHE_DIR:-$HOME/.cache/mlm-harness/fits}"
JOBS="${MLM_JOBS:-2}"
VENV="${MLM_VENV:-.mlm-harness-venv}"
PYTHON="${PYTHON:-python3}"
if [ $# -eq 0 ]; then set -- specs; fi

command -v Rscript >/dev/null || { echo "R is not installed (lme4 needs it; see docs/ci.md)" >&2; exit 2; }
Rscript -e 'library(lme4)' >/dev/null 2>&1 || { echo "R has no lme4: install r-cran-lme4 or install.packages('lme4')" >&2; exit 2; }

# (re)install when the environment is new or MLM_HARNESS_SOURCE changed since the last install
stamp="$VENV/mlm-harness-source.txt"
if [ ! -x "$VENV/bin/mlm-harness" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$MLM_HARNESS_SOURCE" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "$MLM_HARNESS_SOURCE"
  "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$MLM_HARNESS_SOURCE"
  # rpy2 must match R: 3.6.x needs R >= 4.5, older R needs 3.5.x (mlm-harness docs/rpy2.md)
  if Rscript -e 'quit(status = as.integer(getRversion() < "4.5.0"))' >/dev/null 2>&1; then
    RPY2="rpy2>=3.6.6"
  else
    RPY2="rpy2>=3.5.17,<3.6"
  fi
  "$VENV/bin/python" -m pip install -q "$RPY2"
  printf '%s\n' "$MLM_HARNESS_SOURCE" > "$stamp"
fi
"$VENV/bin/mlm-harness" doctor || true   # what is installed, for the log

if [ "${MLM_FETCH_DATA:-0}" = "1" ]; then
  "$VENV/bin/mlm-harness" data verify >/dev/null 2>&1 || "$VENV/bin/mlm-harness" data fetch
fi

status=0
"$VENV/bin/mlm-harness" run "$@" --backends native,lme4 --require lme4 --jobs "$JOBS" \
  --cache-dir "$CACHE" --out "$REPORT" --overwrite --no-progress || status=$?
echo "mlm-harness-ci: report in $REPORT/index.html (exit $status)"
exit "$status"
