"""The evidence engine at glmer's, clmm's, glm's and clm's estimates (through the lme4 backend).

glmer reports the log-likelihood of its PIRLS path, which the evidence engine reproduces from
its own nAGQ = 0 stage (``loglik_glmer``): the stage-1 optimum native finds is not glmer's to
the last digit, and the restart point of every PIRLS differs by that much, hence tolerances
between 1e-12 and 1e-8 (each set from the measured gap, in the comment). clmm's Laplace
log-likelihood is 3.8e-5 below the exact Laplace at its estimates (7.4e-9 relative); its
AGHQ(7) agrees to 1e-15.
"""

from __future__ import annotations

import pytest

from backends.native.evidence import estimates_of
from tests.native.evidence_fits import (AGHQ7, BIN_INDEPENDENT, BIN_RI_AGHQ7, BIN_RS, LAPLACE,
                                        ORDINAL_RI, POISSON_RI_AGHQ7, RI, SINGLE_LEVEL,
                                        evidence, fit, gcse)

pytestmark = pytest.mark.needs_r

ORDINAL_AGHQ7 = gcse(ORDINAL_RI, family="ordinal", integration=AGHQ7)
ORDINAL_LAPLACE = gcse(ORDINAL_RI, family="ordinal", integration=LAPLACE)

# name -> (spec, the value R reports: "glmer" path or "exact", relative tolerance)
CASES = {
    "glmer logit random slope, Laplace": (BIN_RS, "glmer", 3e-10),           # 6.8e-11
    "glmer logit independent slope, Laplace": (                               # 3.9e-9
        gcse(BIN_INDEPENDENT, family="binomial", integration=LAPLACE), "glmer", 1e-8),
    "glmer logit random intercept, AGHQ(3)": (
        gcse("hi_gcse ~ " + RI, family="binomial", integration={"method": "aghq", "points": 3}),
        "glmer", 1e-9),                                                       # 9.6e-11
    "glmer logit random intercept, AGHQ(7)": (BIN_RI_AGHQ7, "glmer", 1e-10),  # 5.6e-12
    "glmer probit random intercept, AGHQ(7)": (
        gcse("hi_gcse ~ " + RI, family="binomial", link="probit", integration=AGHQ7),
        "glmer", 1e-10),                                                      # 1.2e-13
    "glmer Poisson random intercept, AGHQ(7)": (POISSON_RI_AGHQ7, "glmer", 1e-12),  # 4e-16
    "clmm random intercept, AGHQ(7)": (ORDINAL_AGHQ7, "exact", 1e-12),        # 1.6e-15
    "clmm random intercept, Laplace": (ORDINAL_LAPLACE, "exact", 2e-8),       # 7.4e-9
    **{f"{'clm' if n.startswith('ordinal') else 'glm'} {n}": (s, "exact", 1e-12)  # <= 2e-16
       for n, s in SINGLE_LEVEL.items()},
}


@pytest.mark.parametrize("name", list(CASES))
def test_loglik_at_rs_estimates_is_rs(lme4_backend, data_dir, name):
    s, path, rel = CASES[name]
    r = fit(s, "lme4")
    at = evidence(s, "lme4").loglik(estimates_of(r), r.estimator)
    assert at.reason is None and at.unused == ()
    value = at.loglik_glmer if path == "glmer" else at.loglik
    assert value == pytest.approx(r.statistics.loglik, rel=rel, abs=0)


@pytest.mark.parametrize("name,rel", [
    ("glmer logit random slope, Laplace", 2e-4),        # measured: 8.4e-5 (lrt)
    ("glmer logit random intercept, AGHQ(7)", 2e-5),    # 4.1e-6
    ("glmer Poisson random intercept, AGHQ(7)", 2e-6),  # 4.1e-7
    ("clmm random intercept, AGHQ(7)", 1e-5),           # 1.9e-6
    ("clmm random intercept, Laplace", 2e-4),           # 6.7e-5 (thresholds)
])
def test_fixed_effect_ses_match_rs_hessian_based_ones(lme4_backend, data_dir, name, rel):
    """glmer (use.hessian) and clmm take their fixed-effect SEs from a finite-difference
    Hessian of the full deviance: the full-information SEs here, at R's own estimates."""
    s, path, _ = CASES[name]
    r = fit(s, "lme4")
    cov = evidence(s, "lme4").covariance(estimates_of(r), r.estimator, path=path)
    for p in r.parameters:
        if p.effect in ("fixed", "threshold"):
            assert cov.std_errors[p.key] == pytest.approx(p.std_error, rel=rel), p.key
