#!/usr/bin/env bash
# Install everything mlm-harness needs on a fresh Debian/Ubuntu machine with Python >= 3.11:
#   * R with lme4, ordinal, mlmRev and glmmTMB, from the distribution's packages (apt);
#   * Chromium and its driver, for the report's browser test;
#   * a virtual environment .venv with the project (editable) and its test dependencies;
#   * an rpy2 release that loads with the installed R (scripts/install_rpy2.sh; see docs/rpy2.md).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v Rscript >/dev/null 2>&1 || missing+=(r-base-core)
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'library(lme4)' >/dev/null 2>&1; then
  missing+=(r-cran-lme4)
fi
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'library(ordinal)' >/dev/null 2>&1; then
  missing+=(r-cran-ordinal)
fi
# mlmRev ships gallery datasets (Contraception, Mmmec; data/gallery.yaml), exported by
# `mlm-harness data fetch --gallery`, which scripts/suite.sh runs
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'library(mlmRev)' >/dev/null 2>&1; then
  missing+=(r-cran-mlmrev)
fi
# lmerTest (Satterthwaite df and p-values) and pbkrtest (Kenward-Roger): the lme4 backend's
# fixed-effect tests (issue 15; backends/lme4/extract.R)
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'library(lmerTest)' >/dev/null 2>&1; then
  missing+=(r-cran-lmertest)
fi
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'library(pbkrtest)' >/dev/null 2>&1; then
  missing+=(r-cran-pbkrtest)
fi
# glmmTMB: the glmmtmb backend (backends/glmmtmb), fitted in the lme4 backend's R worker
if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e 'library(glmmTMB)' >/dev/null 2>&1; then
  missing+=(r-cran-glmmtmb)
fi
if [ "${MLM_HARNESS_NO_BROWSER:-0}" != "1" ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing with apt: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test,simulate,statsmodels,dask]"
PYTHON=.venv/bin/python bash scripts/install_rpy2.sh
