"""EvidenceModel.conditional_modes: the random effects each engine reports, at any estimates.

At lme4's own estimates (lmer, glmer Laplace and AGHQ, clmm fits of course models through the
lme4 backend) the evidence engine reproduces lme4's ``ranef(condVar = TRUE)``; at native's
estimates it reproduces native's random_effects; MVAGHQ posterior means and SDs agree with a
direct numerical integral. Values are compared relative to the largest |value| of the model
(modes near zero make an element-wise relative difference meaningless); SDs element-wise.

Measured (R 4.2.2, lme4 1.1-31, ordinal 2022.11.16), max |difference| / max |value| for the
values and max relative difference of the SDs:

* lmer (ML / REML random slope, independent slopes, nested, crossed): <= 4.6e-14 / 6.2e-15;
* glmer Laplace logit random slope (glmer's path): 1.3e-11 / 5.0e-8;
* glmer AGHQ(7): logit 6.1e-10 / 1.3e-6, probit Laplace 1.9e-8 / 8.5e-8, Poisson 6.5e-14 /
  7.9e-9 (glmer's path restarts from its own nAGQ = 0 optimum, native's from native's);
* clmm Laplace and AGHQ(7): 8.7e-9 / 2.5e-5. clmm's conditional variance is ``1 / D`` with
  ``D`` the Newton Hessian computed *before* the last step of its inner iterations, which stop
  at max |gradient| < 1e-4 (ordinal's NRalgv3, src/utilityFuns.c): the same one-step lag as
  glmer's determinant, from a history-dependent start, so it is not reproduced; the exact
  conditional SDs are reported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad

from backends.native.evidence import EvaluationError, EvidenceModel, estimates_of
from harness.estimator import Estimator
from harness.spec import parse_spec
from tests.native.evidence_fits import (AGHQ7, BIN_INDEPENDENT, BIN_RI_AGHQ7, BIN_RS, GAUSSIAN,
                                        LAPLACE, ORDINAL_RI, POISSON_RI_AGHQ7, PROBIT_RI,
                                        SINGLE_LEVEL, evidence, fit, gcse)

# name -> (spec, path of lme4's values, tolerance on values, tolerance on SDs)
LME4 = {
    **{f"lmer {name}": (s, "exact", 1e-12, 1e-12) for name, s in GAUSSIAN.items()
       if "OLS" not in name and "single-level" not in name},
    "glmer logit random slope, Laplace": (BIN_RS, "glmer", 1e-9, 5e-7),
    "glmer logit random intercept, AGHQ(7)": (BIN_RI_AGHQ7, "glmer", 1e-8, 5e-6),
    "glmer probit random intercept, Laplace": (PROBIT_RI, "glmer", 1e-7, 5e-7),
    "glmer Poisson random intercept, AGHQ(7)": (POISSON_RI_AGHQ7, "glmer", 1e-10, 1e-7),
    "clmm random intercept, Laplace": (
        gcse(ORDINAL_RI, family="ordinal", integration=LAPLACE), "exact", 1e-7, 1e-4),
    "clmm random intercept, AGHQ(7)": (
        gcse(ORDINAL_RI, family="ordinal", integration=AGHQ7), "exact", 1e-7, 1e-4),
}


def _compare(result, modes, tol_value, tol_sd):
    reported = {(r.group, r.term, r.level): (r.estimate, r.std_error)
                for r in result.random_effects}
    assert set(modes) == set(reported)            # the same names, level for level
    keys = list(reported)
    a = np.array([reported[k] for k in keys])
    b = np.array([modes[k] for k in keys])
    scale = np.max(np.abs(a[:, 0]))
    assert np.max(np.abs(a[:, 0] - b[:, 0])) <= tol_value * scale
    np.testing.assert_allclose(b[:, 1], a[:, 1], rtol=tol_sd, atol=0)


@pytest.mark.needs_r
@pytest.mark.parametrize("name", list(LME4))
def test_lme4s_random_effects_at_lme4s_estimates(lme4_backend, data_dir, name):
    s, path, tol_value, tol_sd = LME4[name]
    r = fit(s, "lme4")
    modes = evidence(s, "lme4").conditional_modes(estimates_of(r), r.estimator, path=path)
    _compare(r, modes, tol_value, tol_sd)


NATIVE = {
    "lmer random slope ML": GAUSSIAN["gcse random slope ML"],
    "lmer crossed REML": GAUSSIAN["pupcross crossed REML"],
    "logit random slope, Laplace": BIN_RS,
    "Poisson random intercept, AGHQ(7)": POISSON_RI_AGHQ7,
    "logit independent slope, MVAGHQ(7)": gcse(BIN_INDEPENDENT, family="binomial",
                                               integration=AGHQ7),
    "ordinal random intercept, Laplace": gcse(ORDINAL_RI, family="ordinal", integration=LAPLACE),
}


@pytest.mark.parametrize("name", list(NATIVE))
def test_natives_random_effects_at_natives_estimates(data_dir, name):
    """A fresh evidence model gives what the fit reported (one implementation; the conditional
    modes of a new object start from zero instead of the fit's warm start)."""
    s = NATIVE[name]
    r = fit(s)
    modes = evidence(s).conditional_modes(estimates_of(r), r.estimator)
    _compare(r, modes, 1e-9, 1e-9)


def test_single_level_models_have_no_random_effects(data_dir):
    s = SINGLE_LEVEL["logit"]
    r = fit(s)
    assert evidence(s).conditional_modes(estimates_of(r), r.estimator) == {}


def test_what_cannot_be_computed_says_why(data_dir):
    r = fit(BIN_RS)
    ev = evidence(BIN_RS)
    est = estimates_of(r)
    del est["fixed/lrt"]
    with pytest.raises(EvaluationError, match="fixed/lrt"):
        ev.conditional_modes(est, r.estimator)
    with pytest.raises(EvaluationError, match="ML, not REML"):
        ev.conditional_modes(estimates_of(r), Estimator("REML"))
    mv = evidence(NATIVE["logit independent slope, MVAGHQ(7)"])
    mr = fit(NATIVE["logit independent slope, MVAGHQ(7)"])
    with pytest.raises(EvaluationError, match="glmer's PIRLS path"):
        mv.conditional_modes(estimates_of(mr), mr.estimator, path="glmer")


def _posterior_by_integral(y, eta, group, sd):
    """Posterior mean and SD of b_j ~ N(0, sd^2) given Bernoulli y (logit link), by adaptive
    scipy quadrature per group: independent of the native code."""
    out = {}
    for j in np.unique(group):
        i = group == j
        yy, e = y[i], eta[i]

        def logjoint(b, yy=yy, e=e):
            t = e + b
            return float(np.sum(yy * t - np.logaddexp(0.0, t)) - 0.5 * (b / sd) ** 2)

        peak = max(logjoint(b) for b in np.linspace(-4 * sd, 4 * sd, 81))
        moments = [quad(lambda b, k=k: b ** k * np.exp(logjoint(b) - peak), -12 * sd, 12 * sd,
                        epsabs=0, epsrel=1e-12, limit=200)[0] for k in range(3)]
        mean = moments[1] / moments[0]
        out[j] = (mean, np.sqrt(moments[2] / moments[0] - mean ** 2))
    return out


def test_mvaghq_posterior_moments_are_the_integrals():
    """Stata's predict, reffects / reses at given estimates: MVAGHQ(20) posterior means and
    SDs against direct integrals (measured: 1.5e-13 / 1.9e-12 absolute; with 7 points the
    quadrature's own error, 1.0e-5 / 1.2e-5, shows)."""
    rng = np.random.default_rng(21)
    G, n = 12, 15
    g = np.repeat(np.arange(G), n)
    x = rng.normal(size=g.size)
    eta = -0.4 + 0.7 * x + 0.9 * rng.normal(size=G)[g]
    y = (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    df = pd.DataFrame({"y": y, "x": x, "g": g + 1.0})
    s = parse_spec({"id": "mv", "title": "t", "source": "tests", "dataset": "unused",
                    "model": {"formula": "y ~ x + (1 | g)", "family": "binomial", "method": "ML",
                              "integration": {"method": "aghq", "points": 20}}})
    ev = EvidenceModel.build(s.model, df, [])
    est = {"fixed/(Intercept)": -0.35, "fixed/x": 0.65, "ran_pars/g/sd__(Intercept)": 0.8}
    modes = ev.conditional_modes(est, Estimator("ML", "mvaghq", 20))
    exact = _posterior_by_integral(y, -0.35 + 0.65 * x, g, 0.8)
    for j, (mean, sd) in exact.items():
        got = modes[("g", "(Intercept)", str(j + 1))]
        assert got[0] == pytest.approx(mean, abs=1e-10)
        assert got[1] == pytest.approx(sd, abs=1e-10)
