"""Live lme4/ordinal fits against numbers the course and lme4 print (needs R with lme4)."""

from __future__ import annotations

import math
import subprocess

import pytest

from backends.lme4 import translate

from .helpers import GCSE_HI, POP3, pmap

pytestmark = pytest.mark.needs_r

RI = "gcse ~ lrt + girl + factor(schgend) + (1 | school)"
HI = "hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school)"


def close(a: float | None, b: float, tol: float) -> bool:
    return a is not None and abs(a - b) <= tol


def test_gcse_random_intercept_ml_course_numbers(fit):
    r = fit("gcse", {"formula": RI, "method": "ML"})
    assert r.status == "ok", r.message
    p = pmap(r)
    assert round(p["ran_pars/school/var__(Intercept)"], 2) == 8.11  # course: 8.11
    assert close(p["ran_pars/school/var__(Intercept)"], 8.110688, 5e-7)
    assert close(p["ran_pars/school/sd__(Intercept)"], math.sqrt(8.110688), 1e-6)
    assert r.statistics.nobs == 4059 and r.statistics.ngroups == {"school": 65}
    assert r.statistics.deviance == pytest.approx(-2 * r.statistics.loglik)
    assert r.statistics.reml_criterion is None and r.statistics.df == 7
    assert r.provenance.method == "ML"
    assert r.provenance.call.endswith("REML = FALSE)")


def test_gcse_random_intercept_reml_course_numbers(fit):
    r = fit("gcse", {"formula": RI, "method": "REML"})
    assert r.status == "ok", r.message
    p = pmap(r)
    assert round(p["fixed/(Intercept)"], 4) == -1.6844  # course
    assert round(p["ran_pars/school/var__(Intercept)"], 2) == 8.58
    assert round(p["ran_pars/Residual/var__Observation"], 2) == 56.25
    assert close(p["fixed/(Intercept)"], -1.684442, 5e-7)  # lme4 printout
    assert close(p["ran_pars/school/var__(Intercept)"], 8.58281, 5e-6)
    assert close(p["ran_pars/Residual/var__Observation"], 56.25297, 5e-6)
    assert close(r.statistics.loglik, -14010.80393, 5e-6)
    assert r.statistics.reml_criterion == pytest.approx(-2 * r.statistics.loglik)
    assert r.statistics.deviance is None
    # all four scales, broom.mixed names; factor terms named as R names them
    assert {"fixed/factor(schgend)2", "fixed/factor(schgend)3",
            "ran_pars/school/sd__(Intercept)", "ran_pars/Residual/sd__Observation"} <= set(p)
    fe = {x.term: x for x in r.parameters if x.effect == "fixed"}
    assert fe["lrt"].std_error == pytest.approx(0.012449984, rel=1e-6)
    d = r.diagnostics
    assert d.converged is True and d.singular is False and d.warnings == []
    assert d.optimizer == "nloptwrap" and d.evaluations and d.evaluations > 0
    assert d.max_abs_gradient is not None and d.max_abs_gradient < 2e-3
    # conditional modes with conditional SEs, R's level labels
    re = {(x.group, x.level, x.term): x for x in r.random_effects}
    assert len(re) == 65
    one = re[("school", "1", "(Intercept)")]
    assert one.estimate == pytest.approx(4.702103, abs=1e-5)
    assert one.std_error == pytest.approx(0.8408941, abs=1e-6)
    prov = r.provenance
    assert prov.backend == "lme4" and prov.mode == "live" and prov.method == "REML"
    assert {"R", "lme4", "Matrix", "ordinal", "rpy2"} <= set(prov.software)
    assert prov.data_sha256 and len(prov.data_sha256) == 64
    assert prov.script and prov.call in prov.script
    assert {"fit_r", "round_trip"} <= set(r.timings)
    assert r.timings["transfer_bind"] < 0.5  # column-wise: milliseconds (see docs/rpy2.md)
    r.to_json()  # serialisable (no NaN)


@pytest.mark.parametrize("link, var, loglik", [
    ("logit", 0.9646958, -1304.335405),
    ("probit", 0.2871912, -1307.181962),
])
def test_binomial_links_laplace(fit, link, var, loglik):
    r = fit("gcse", {"formula": HI, "family": "binomial", "link": link, "method": "ML",
                     "integration": {"method": "laplace"}}, derive=GCSE_HI)
    assert r.status == "ok", r.message
    assert close(pmap(r)["ran_pars/school/var__(Intercept)"], var, 5e-7)
    assert close(r.statistics.loglik, loglik, 5e-6)
    assert "ran_pars/Residual/sd__Observation" not in pmap(r)  # no residual for binomial
    assert r.provenance.method == "Laplace"
    assert f'binomial(link = "{link}"), nAGQ = 1' in r.provenance.call
    assert r.diagnostics.optimizer == "Nelder_Mead"  # glmer default's final stage


def test_binomial_aghq7_against_course_and_lme4(fit):
    r = fit("gcse", {"formula": HI, "family": "binomial", "method": "ML",
                     "integration": {"method": "aghq", "points": 7}}, derive=GCSE_HI)
    assert r.status == "ok", r.message
    var = pmap(r)["ran_pars/school/var__(Intercept)"]
    assert close(var, 0.9776137, 5e-7)  # lme4 nAGQ = 7
    assert close(var, 0.9780233, 1e-3)  # the course's Stata melogit, intpoints(7)
    assert close(r.statistics.loglik, -1304.090976, 5e-6)
    assert r.provenance.method == "AGHQ(7)" and "nAGQ = 7" in r.provenance.call


def test_poisson_and_gaussian_single_level(fit):
    pois = fit("popular2", {"formula": "popteach ~ sex + Cextrav + (1 | class)",
                            "family": "poisson", "method": "ML",
                            "integration": {"method": "laplace"}})
    assert pois.status == "ok", pois.message
    assert close(pmap(pois)["fixed/sex"], 0.2656334, 5e-7)
    assert pois.statistics.ngroups == {"class": 100}
    ml = fit("gcse", {"formula": "gcse ~ lrt + girl", "method": "ML"})
    ols = fit("gcse", {"formula": "gcse ~ lrt + girl", "method": "OLS"})
    assert ml.status == ols.status == "ok"
    assert pmap(ml)["fixed/lrt"] == pytest.approx(pmap(ols)["fixed/lrt"], rel=1e-12)
    n, k = 4059, 3
    s_ml = pmap(ml)["ran_pars/Residual/sd__Observation"]
    s_ols = pmap(ols)["ran_pars/Residual/sd__Observation"]
    assert s_ml == pytest.approx(s_ols * math.sqrt((n - k) / n), rel=1e-10)  # ML sigma
    assert ml.statistics.loglik == pytest.approx(ols.statistics.loglik, rel=1e-12)
    assert any("sqrt(n/(n - p))" in m for m in ml.diagnostics.messages)


def test_cluster_robust_se_matches_stata_cr1(fit, lme4):
    r = fit("gcse", {"formula": "gcse ~ lrt + girl", "method": "OLS", "cluster_se": "school"})
    assert r.status == "ok", r.message
    assert r.statistics.ngroups == {"school": 65}
    se = {x.term: x.std_error for x in r.parameters if x.effect == "fixed"}
    # sandwich::vcovCL(type = "HC1") is Stata's CR1 for lm: check against it when installed
    code = ('d <- foreign::read.dta("%s", convert.factors = FALSE); '
            'f <- lm(gcse ~ lrt + girl, data = d); '
            'if (requireNamespace("sandwich", quietly = TRUE)) '
            'cat(sprintf("%%.15g", sqrt(diag(sandwich::vcovCL(f, cluster = ~school, '
            'type = "HC1")))), sep = "\\n")') % _data_path(r)
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=120)
    ref = [float(x) for x in out.stdout.split()]
    if not ref:
        pytest.skip("R package sandwich not installed: no independent reference")
    assert [se["(Intercept)"], se["lrt"], se["girl"]] == pytest.approx(ref, rel=1e-10)


def _data_path(result) -> str:
    line = next(ln for ln in result.provenance.script.splitlines() if "read.dta" in ln)
    return line.split('"')[1]


def test_clmm_popularity(fit):
    r = fit("popular2", {"formula": "pop3 ~ sex + Cextrav + Ctexp + (1 | class)",
                         "family": "ordinal", "method": "ML",
                         "integration": {"method": "laplace"}}, derive=POP3)
    assert r.status == "ok", r.message
    p = pmap(r)
    assert close(r.statistics.loglik, -1154.607727, 5e-6)
    assert close(p["threshold/1|2"], 1.378110, 5e-6)
    assert close(p["threshold/2|3"], 6.087167, 5e-6)
    assert close(p["fixed/sex"], 2.929593, 5e-6)
    assert close(p["ran_pars/class/var__(Intercept)"], 1.524711, 5e-6)
    th = [x for x in r.parameters if x.effect == "threshold"]
    assert [x.term for x in th] == ["1|2", "2|3"] and all(x.std_error for x in th)
    assert len(r.random_effects) == 100
    assert all(x.std_error and x.std_error > 0 for x in r.random_effects)
    assert r.diagnostics.converged is True and r.diagnostics.optimizer == "nlminb"
    assert r.provenance.call.startswith("ordinal::clmm(factor(pop3, ordered = TRUE) ~")


def test_clm_single_level(fit):
    r = fit("popular2", {"formula": "pop3 ~ sex + Cextrav", "family": "ordinal",
                         "method": "ML"}, derive=POP3)
    assert r.status == "ok", r.message
    assert r.diagnostics.converged is True and r.diagnostics.warnings == []
    assert {"threshold/1|2", "threshold/2|3", "fixed/sex"} <= set(pmap(r))


def test_crossed_and_three_level(fit):
    crossed = fit("pupcross", {"formula": "achiev ~ 1 + (1 | pschool) + (1 | sschool)",
                               "method": "REML"})
    assert crossed.status == "ok", crossed.message
    assert close(crossed.statistics.loglik, -1160.548624, 5e-6)
    assert crossed.statistics.ngroups == {"pschool": 50, "sschool": 30}
    three = fit("nurses", {"formula": "stress ~ 1 + (1 | hospital) + (1 | wardid)",
                           "method": "ML"})
    assert three.status == "ok", three.message
    assert close(three.statistics.loglik, -971.18059, 5e-6)
    nested = fit("nurses", {"formula": "stress ~ 1 + (1 | hospital/ward)", "method": "ML"})
    assert nested.statistics.loglik == pytest.approx(three.statistics.loglik, rel=1e-10)
    # a group interaction keeps its name, levels as R labels them
    assert nested.statistics.ngroups == {"hospital:ward": 100, "hospital": 25}
    assert "ran_pars/hospital:ward/var__(Intercept)" in pmap(nested)
    assert any(x.group == "hospital:ward" and ":" in x.level for x in nested.random_effects)


def test_convergence_warning_is_captured(fit):
    r = fit("gcse", {"formula": RI + " + (0 + lrt | school)", "method": "REML"})
    assert r.status == "ok", r.message
    d = r.diagnostics
    assert d.converged is False
    assert any("Model failed to converge with max|grad|" in w for w in d.warnings)
    assert d.max_abs_gradient == pytest.approx(0.142745, abs=5e-6)
    # the second term of the same factor ("school.1" in VarCorr) is mapped back to "school"
    p = pmap(r)
    assert {"ran_pars/school/var__(Intercept)", "ran_pars/school/var__lrt"} <= set(p)
    assert not any("school.1" in k for k in p)
    assert not any(k.startswith("ran_pars/school/cor__") for k in p)  # independent terms
    assert {x.term for x in r.random_effects} == {"(Intercept)", "lrt"}


def test_correlated_slope_has_all_four_scales(fit):
    r = fit("gcse", {"formula": "gcse ~ lrt + (1 + lrt | school)", "method": "ML"})
    assert r.status == "ok", r.message
    p = pmap(r)
    keys = {f"ran_pars/school/{s}" for s in ("sd__(Intercept)", "sd__lrt", "var__(Intercept)",
                                             "var__lrt", "cor__(Intercept).lrt",
                                             "cov__(Intercept).lrt")}
    assert keys <= set(p)
    assert p["ran_pars/school/cov__(Intercept).lrt"] == pytest.approx(
        p["ran_pars/school/cor__(Intercept).lrt"] * p["ran_pars/school/sd__(Intercept)"]
        * p["ran_pars/school/sd__lrt"], rel=1e-12)


def test_aghq_with_random_slope_is_not_estimable(fit):
    r = fit("gcse", {"formula": "hi_gcse ~ lrt + (1 + lrt | school)", "family": "binomial",
                     "method": "ML", "integration": {"method": "aghq", "points": 7}},
            derive=GCSE_HI)
    assert r.status == "not_estimable"
    assert r.message == translate.AGHQ_REASON


def test_reference_level_and_declared_factor(fit):
    r = fit("gcse", {"formula": "gcse ~ lrt + C(schgend) + (1 | school)", "method": "ML",
                     "reference_level": {"schgend": 3}})
    assert r.status == "ok", r.message
    assert {"fixed/factor(schgend)1", "fixed/factor(schgend)2"} <= set(pmap(r))
    base = fit("gcse", {"formula": "gcse ~ lrt + factor(schgend) + (1 | school)",
                        "method": "ML"})
    assert r.statistics.loglik == pytest.approx(base.statistics.loglik, rel=1e-9)
    # a 0/1 column stays numeric unless declared a factor: same fit, R names the term girl1
    declared = fit("gcse", {"formula": "gcse ~ lrt + girl + (1 | school)", "method": "ML"},
                   columns={"girl": "factor"})
    numeric = fit("gcse", {"formula": "gcse ~ lrt + girl + (1 | school)", "method": "ML"})
    assert "fixed/girl1" in pmap(declared) and "fixed/girl" in pmap(numeric)
    assert pmap(declared)["fixed/girl1"] == pytest.approx(pmap(numeric)["fixed/girl"],
                                                          rel=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt")
def test_subset_and_rows_dropped_for_missing_values(fit, data_dir):
    import numpy as np
    import pyreadstat

    raw, _ = pyreadstat.read_dta(str(data_dir / "gcse.dta"), apply_value_formats=False)
    girls = raw[raw.girl == 1]
    with np.errstate(invalid="ignore"):
        missing = int(np.isnan(np.sqrt(girls.lrt)).sum())
    assert missing > 0
    r = fit("gcse", {"formula": "gcse ~ rlrt + (1 | school)", "method": "ML"},
            subset="girl == 1", derive=[{"name": "rlrt", "expr": "sqrt(lrt)"}])
    assert r.status == "ok", r.message
    assert r.statistics.nobs == len(girls) - missing
    assert r.statistics.nobs_dropped == missing


def test_poisson_quadrature_loglik_has_the_full_constant(fit):
    """lme4 prints logLik without the saturated part for nAGQ > 1; the backend adds it back.

    Laplace keeps the constant, so the AGHQ(7) value must sit next to the Laplace one (the
    integral barely changes), not ~3390 above it as lme4 prints.
    """
    model = {"formula": "popteach ~ sex + Cextrav + (1 | class)", "family": "poisson",
             "method": "ML"}
    laplace = fit("popular2", {**model, "integration": {"method": "laplace"}})
    aghq = fit("popular2", {**model, "integration": {"method": "aghq", "points": 7}})
    assert laplace.status == aghq.status == "ok"
    assert aghq.statistics.loglik == pytest.approx(laplace.statistics.loglik, abs=1.0)
    assert aghq.statistics.deviance == pytest.approx(-2 * aghq.statistics.loglik)
    assert any("omits the saturated log-likelihood" in m for m in aghq.diagnostics.messages)
