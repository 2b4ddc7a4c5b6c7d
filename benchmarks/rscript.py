"""Run lme4 through ``Rscript`` on a generated script and read its JSON answer.

Why not rpy2: the rpy2 backend is a separate piece of the project (backends/lme4); the native
estimator's tests and benchmark must not depend on it, and a subprocess keeps R's state (and
its BLAS threads) out of the Python process being timed. One R process fits a whole batch of
models so R and lme4 start once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any


# lme4 run to the optimum (BOBYQA via nloptwrap with tolerances at rounding level), so a
# native-vs-lme4 difference can be told apart from lme4's default early stop.
TIGHT = ('lmerControl(optimizer = "nloptwrap", optCtrl = list(ftol_abs = 1e-14, '
         'ftol_rel = 1e-15, xtol_abs = 1e-12, xtol_rel = 0, maxeval = 1e5))')


@dataclass(frozen=True)
class RModel:
    """One lmer fit: where the data are, derived columns, formula, method."""

    id: str
    data: str                      # path to a .dta or .csv file, or "r:<R expression>"
    formula: str
    reml: bool
    derive: tuple[tuple[str, str], ...] = ()   # (name, expression valid in R's with(d, ...))
    factors: tuple[str, ...] = ()
    repeats: int = 0               # >0: also time the fit this many times inside R
    control: str = ""              # e.g. "lmerControl(optCtrl = list(ftol_abs = 1e-12))"
    ranef: bool = True             # also write conditional modes (large for big data)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@lru_cache(maxsize=1)
def lme4_status() -> tuple[bool, str]:
    """(available, reason): Rscript on PATH and lme4 loadable."""
    if shutil.which("Rscript") is None:
        return False, "Rscript is not on PATH"
    try:
        out = subprocess.run(["Rscript", "-e", "cat(as.character(packageVersion('lme4')))"],
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"Rscript failed: {e}"
    if out.returncode != 0:
        return False, "R package lme4 is not installed"
    return True, out.stdout.strip()


def _r_string(s: str) -> str:
    return json.dumps(s)


def _model_block(m: RModel, out: str) -> str:
    if m.data.startswith("r:"):
        read = m.data[2:]
    elif m.data.endswith(".csv"):
        read = f"read.csv({_r_string(m.data)})"
    else:
        read = f"foreign::read.dta({_r_string(m.data)}, convert.factors = FALSE)"
    lines = [f"d <- {read}"]
    for name, expr in m.derive:
        lines.append(f"d[[{_r_string(name)}]] <- with(d, {expr})")
    for v in m.factors:
        lines.append(f"d[[{_r_string(v)}]] <- factor(d[[{_r_string(v)}]])")
    control = f", control = {m.control}" if m.control else ""
    fit = f"lmer({m.formula}, data = d, REML = {'TRUE' if m.reml else 'FALSE'}{control})"
    lines.append(f"m <- {fit}")
    timing = "NULL"
    if m.repeats:
        # elapsed and CPU (user + system) seconds of each repeat, data already in R
        lines.append(f"tm <- replicate({m.repeats}, {{st <- system.time({fit}); "
                     "c(elapsed = st[['elapsed']], cpu = st[['user.self']] + st[['sys.self']])})")
        lines.append("tm <- list(elapsed = tm['elapsed', ], cpu = tm['cpu', ])")
        timing = "tm"
    lines.append(f"write_fit(m, {_r_string(out)}, {timing}, "
                 f"{'TRUE' if m.ranef else 'FALSE'})")
    return "\n".join(lines)


_HEADER = r"""
suppressPackageStartupMessages(library(lme4))
write_fit <- function(m, path, timing, ranef_out = TRUE) {
  re <- if (ranef_out) as.data.frame(ranef(m, condVar = TRUE)) else
    data.frame(grpvar = character(), term = character(), grp = character(),
               condval = numeric(), condsd = numeric())
  vc <- as.data.frame(VarCorr(m))
  out <- list(
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    theta = as.list(getME(m, "theta")),
    sigma = sigma(m),
    loglik = as.numeric(logLik(m)),
    reml = isREML(m),
    reml_criterion = if (isREML(m)) REMLcrit(m) else NA,
    deviance = if (!isREML(m)) deviance(m) else NA,
    nobs = nobs(m),
    ngrps = as.list(ngrps(m)),
    varcorr = list(grp = vc$grp, var1 = vc$var1, var2 = vc$var2, vcov = vc$vcov,
                   sdcor = vc$sdcor),
    ranef = list(grp = as.character(re$grpvar), term = as.character(re$term),
                 level = as.character(re$grp), estimate = re$condval, sd = re$condsd),
    warnings = as.list(c(m@optinfo$conv$lme4$messages, m@optinfo$warnings)),
    feval = m@optinfo$feval,
    optimizer = m@optinfo$optimizer,
    seconds = timing,
    version = as.character(packageVersion("lme4")))
  jsonlite::write_json(out, path, digits = NA, auto_unbox = TRUE, na = "null")
}
"""


def run_lme4(models: list[RModel], timeout: float = 3600) -> dict[str, dict[str, Any]]:
    """Fit every model in one R session; returns id -> parsed JSON (or {'error': ...})."""
    ok, reason = lme4_status()
    if not ok:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory(prefix="mlm_native_r_") as tmp:
        blocks, outs = [], {}
        for i, m in enumerate(models):
            out = os.path.join(tmp, f"fit{i}.json")
            block = _model_block(m, out)
            outs[m.id] = out
            blocks.append(f"tryCatch({{\n{block}\n}}, error = function(e) "
                          f"writeLines(conditionMessage(e), {_r_string(out + '.err')}))")
        script = Path(tmp) / "fits.R"
        script.write_text(_HEADER + "\n".join(blocks) + "\n")
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        proc = subprocess.run(["Rscript", str(script)], capture_output=True, text=True,
                              timeout=timeout, env=env)
        results: dict[str, dict[str, Any]] = {}
        for mid, out in outs.items():
            if os.path.exists(out):
                results[mid] = json.loads(Path(out).read_text())
            elif os.path.exists(out + ".err"):
                results[mid] = {"error": Path(out + ".err").read_text().strip()}
            else:
                results[mid] = {"error": f"R produced no output (rc={proc.returncode}): "
                                         f"{proc.stderr[-2000:]}"}
        return results
