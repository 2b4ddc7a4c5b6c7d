"""GLMM boundary optima (a random-effect variance at zero) and non-converged fits.

Dyestuff2-like binary data: every group has exactly half successes, so the groups are less
alike than chance would make them and the ML variance is 0. At theta = 0 every GLMM likelihood
(Laplace, AGHQ, MVAGHQ, either path) is the single-level GLM's, whose maximum is computed here
independently by scipy. The fit must land there, say it converged and singular, and give the
sd no standard error (with the reason) while the fixed effects keep theirs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from backends.native.covariance import parameter_covariance
from backends.native.glmm import fit_glmm
from backends.native.glmm.evidence import GlmmLikelihood
from backends.native.glmm.fit import _failures
from backends.native.glmm.optim import Optimum
from backends.native.glmm.result import to_fit_result

SD = "ran_pars/g/sd__(Intercept)"


def _balanced(seed: int = 1, groups: int = 10, size: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), size)
    x = rng.normal(size=g.size)
    y = np.zeros(g.size)
    for j in range(groups):
        y[rng.choice(np.flatnonzero(g == j), size=size // 2, replace=False)] = 1.0
    third = (rng.random(g.size) < 0.5).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": g + 1.0, "yo": 1.0 + y + third})


def _logistic_max(df: pd.DataFrame) -> tuple[float, np.ndarray]:
    X = np.column_stack([np.ones(len(df)), df.x])
    y = df.y.to_numpy()

    def nll(b):
        eta = X @ b
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    res = minimize(nll, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    return -res.fun, res.x


@pytest.mark.parametrize("kw", [
    {}, {"laplace": "glmer"}, {"integration": "aghq", "points": 7},
    {"integration": "aghq", "points": 7, "adaptation": "mean-variance"}],
    ids=["exact Laplace", "glmer's Laplace", "AGHQ(7)", "MVAGHQ(7)"])
def test_binomial_variance_at_zero(kw):
    df = _balanced()
    glm_ll, glm_beta = _logistic_max(df)
    fit = fit_glmm("y ~ x + (1 | g)", df, "binomial", **kw)
    assert fit.theta.tolist() == [0.0]
    assert -fit.deviance / 2 == pytest.approx(glm_ll, abs=1e-9)
    np.testing.assert_allclose(fit.beta, glm_beta, atol=1e-5)
    r = to_fit_result(fit, "boundary")
    d = r.diagnostics
    assert d.converged and d.singular, d.warnings
    rows = r.parameter_map()
    assert rows[SD].estimate == 0.0 and rows[SD].std_error is None
    assert any(w.startswith(f"no standard error for {SD}") and "boundary" in w
               for w in d.warnings)
    assert all(rows[k].std_error > 0 for k in ("fixed/(Intercept)", "fixed/x"))


def test_ordinal_starts_at_one_and_reaches_zero():
    """Ordinal fits have no nAGQ = 0 stage: BOBYQA starts at theta = 1 and must find the
    bound (it needs the restart at the boundary here)."""
    fit = fit_glmm("yo ~ x + (1 | g)", _balanced(), "ordinal")
    assert fit.theta.tolist() == [0.0] and fit.converged and fit.singular


def test_estimates_off_the_optimum_are_not_converged_and_say_why():
    """The convergence decision reads the observed information at the reported estimates: half
    an SE from the optimum, the gradient is large and the result says converged: false, with
    the reason first among its warnings."""
    df = _balanced(seed=3, groups=40, size=10)
    df["y"] = ((df.x + np.repeat(np.random.default_rng(5).normal(0, 1, 40), 10)) > 0) * 1.0
    fit = fit_glmm("y ~ x + (1 | g)", df, "binomial")
    assert fit.converged and fit.max_abs_gradient < 1e-3 and not fit.singular
    moved = fit.x.copy()
    moved[1] += 0.5 * fit.std_errors["fixed/(Intercept)"]
    lik = GlmmLikelihood(fit.problem, fit.x_names, fit.threshold_names)
    cov = parameter_covariance(lik, lik.point(moved), fit.estimator, "exact")
    grad = 2.0 * max(abs(g) for g in cov.gradient.values())
    value = fit.objective(moved)
    failures = _failures(Optimum(moved, value, 1, True), value, cov, grad, [])
    assert grad > 0.5 and len(failures) == 1 and "gradient" in failures[0]
    d = to_fit_result(replace(fit, x=moved, deviance=value, covariance=cov,
                              failures=failures, max_abs_gradient=grad), "off").diagnostics
    assert d.converged is False and d.warnings[0] == failures[0]
    assert d.max_abs_gradient == grad
