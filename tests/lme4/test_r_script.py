"""The R script each result carries reproduces the backend's estimates when run with Rscript."""

from __future__ import annotations

import subprocess

import pytest

from backends.lme4.convert import group_name

from .helpers import GCSE_HI, POP3, make_spec

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

# Appended to the script: print canonical keys and values at full precision.
_EMIT = r"""
emit <- function(key, value) cat(sprintf("@@%s\t%.17g\n", key, value), sep = "")
if (inherits(fit, "merMod")) {
  fe <- fixef(fit); for (n in names(fe)) emit(paste0("fixed/", n), fe[[n]])
  vc <- as.data.frame(VarCorr(fit))
  for (i in seq_len(nrow(vc))) {
    if (is.na(vc$var2[i])) {
      term <- if (is.na(vc$var1[i])) "Observation" else vc$var1[i]
      emit(paste0("ran_pars/", vc$grp[i], "/var__", term), vc$vcov[i])
    }
  }
} else if (inherits(fit, "clmm")) {
  for (n in names(fit$beta)) emit(paste0("fixed/", n), fit$beta[[n]])
  for (n in names(fit$alpha)) emit(paste0("threshold/", n), fit$alpha[[n]])
  vc <- VarCorr(fit)
  for (g in names(vc)) emit(paste0("ran_pars/", g, "/var__(Intercept)"), attr(vc[[g]], "stddev")[[1]]^2)
} else {
  for (n in names(coef(fit))) emit(paste0("fixed/", n), coef(fit)[[n]])
  if (exists("V")) for (n in rownames(V)) emit(paste0("se/", n), sqrt(V[n, n]))
}
emit("stat/loglik", as.numeric(logLik(fit)))
"""

CASES = {
    "lmer_reml_factor_subset": dict(
        dataset="gcse", derive=[{"name": "lrt10", "expr": "lrt / 10"}], subset="schgend != 2",
        model={"formula": "gcse ~ lrt10 + girl + C(schgend) + (1 | school) + (0 + lrt10 | school)",
               "method": "REML", "reference_level": {"schgend": 3}}),
    "glmer_aghq": dict(
        dataset="gcse", derive=GCSE_HI,
        model={"formula": "hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school)", "family": "binomial",
               "method": "ML", "integration": {"method": "aghq", "points": 7}}),
    "clmm": dict(
        dataset="popular2", derive=POP3,
        model={"formula": "pop3 ~ sex + Cextrav + Ctexp + (1 | class)", "family": "ordinal",
               "method": "ML", "integration": {"method": "laplace"}}),
    "nested_ml": dict(
        dataset="nurses", model={"formula": "stress ~ 1 + (1 | hospital/ward)", "method": "ML"}),
    "lm_cluster": dict(
        dataset="gcse", model={"formula": "gcse ~ lrt + girl", "method": "OLS",
                               "cluster_se": "school"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_script_reproduces_backend(case, lme4, job_for, tmp_path):
    kw = dict(CASES[case])
    spec = make_spec(kw.pop("dataset"), kw.pop("model"), **kw)
    job = job_for(spec)
    result = lme4.fit(job)
    assert result.status == "ok", result.message
    script = result.provenance.script
    assert str(job.data_path) in script and result.provenance.call in script
    path = tmp_path / "fit.R"
    path.write_text(script + _EMIT)
    done = subprocess.run(["Rscript", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from_script: dict[str, float] = {}
    for line in done.stdout.splitlines():
        if line.startswith("@@"):
            key, value = line[2:].split("\t")
            if key.startswith("ran_pars/"):
                _, grp, term = key.split("/", 2)
                key = f"ran_pars/{group_name(grp, spec.model.parsed.grouping_factors)}/{term}"
            from_script[key] = float(value)
    ours = {p.key: p.estimate for p in result.parameters}
    ours["stat/loglik"] = result.statistics.loglik
    for p in result.parameters:
        if p.effect == "fixed" and spec.model.cluster_se:
            ours[f"se/{p.term}"] = p.std_error
    compared = [k for k in from_script if k in ours]
    assert len(compared) >= 3 and len(compared) == len(from_script), (from_script, ours)
    for key in compared:
        assert ours[key] == pytest.approx(from_script[key], rel=1e-8, abs=1e-12), key
    assert "Fixed effects" in done.stdout or "Coefficients" in done.stdout  # summary printed
