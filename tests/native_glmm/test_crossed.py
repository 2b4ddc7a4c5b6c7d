"""GLMMs with several grouping factors (crossed and nested): the blocked algebra against a dense
computation, estimates near a known truth, a variance at its boundary, and the harness's
not-estimable reasons for what is not defined with several factors (AGHQ, ordinal).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from backends.native.glmm import fit_glmm
from backends.native.glmm.build import build_problem
from backends.native.glmm.crossed import MultiProblem
from backends.native.glmm.crossed_laplace import CrossedLaplace, crossed_joint_modes
from harness.spec import parse_spec


def _crossed(seed: int, n1: int, n2: int, reps: int, sd1: float, sd2: float,
             slope_sd: float = 0.0, poisson: bool = False) -> pd.DataFrame:
    """Every level of ``g1`` crossed with every level of ``g2``, ``reps`` rows per cell."""
    rng = np.random.default_rng(seed)
    g1 = np.repeat(np.arange(n1), n2 * reps)
    g2 = np.tile(np.repeat(np.arange(n2), reps), n1)
    x = rng.normal(size=g1.size)
    eta = (-0.3 + 0.8 * x + sd1 * rng.normal(size=n1)[g1] + sd2 * rng.normal(size=n2)[g2]
           + slope_sd * rng.normal(size=n1)[g1] * x)
    y = rng.poisson(np.exp(eta)) if poisson else rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y.astype(float), "x": x, "g1": g1, "g2": g2})


def _dense_laplace(prob: MultiProblem, theta: np.ndarray, beta: np.ndarray):
    """The Laplace deviance and conditional covariances with a dense ``Z Lambda``: Newton to the
    mode, ``log det(A'WA + I)`` with Fisher weights, ``(A'WA + I)^{-1}`` for the variances."""
    d = prob.data
    A = np.zeros((d.X.shape[0], prob.q))
    for i, (c, z) in enumerate(zip(d.codes, prob.zt(theta))):
        k = z.shape[1]
        for a in range(k):
            A[np.arange(c.size), prob.slices[i].start + c * k + a] = z[:, a]
    ef = prob.eta_fixed(beta)
    u = np.zeros(prob.q)
    for _ in range(100):
        eta = ef + A @ u
        d1, h = prob.family.derivs(eta)
        H = A.T @ (d.freq[:, None] * h[:, None] * A) + np.eye(prob.q)
        step = np.linalg.solve(H, A.T @ (d.freq * d1) - u)
        u += step
        if np.max(np.abs(step)) < 1e-12:
            break
    eta = ef + A @ u
    H = A.T @ (d.freq[:, None] * prob.family.fisher(eta)[:, None] * A) + np.eye(prob.q)
    dev = -2 * prob.loglik(eta) + u @ u + np.linalg.slogdet(H)[1]
    return dev, np.linalg.inv(H)


@pytest.mark.parametrize("formula", [
    "y ~ x + (1 + x | g1) + (1 | g2)",       # vector effect on the block-diagonal factor
    "y ~ x + (1 | g1) + (1 + x | g2)",       # vector effect in the dense tail
    "y ~ x + (1 | g1) + (1 | g2) + (1 | g1:g2)",  # three factors, one an interaction
])
def test_blocked_laplace_equals_the_dense_computation(formula):
    df = _crossed(1, 25, 6, 3, 0.8, 0.5, slope_sd=0.3)
    _, prob, x_names, _ = build_problem(formula, df, "binomial", "logit")
    assert isinstance(prob, MultiProblem)
    rng = np.random.default_rng(2)
    theta = np.where(prob.layout.diagonal_mask(), rng.uniform(0.3, 1.2, prob.layout.size),
                     rng.uniform(-0.3, 0.3, prob.layout.size))
    beta = np.array([-0.2, 0.7])
    lap = CrossedLaplace(prob)
    dev, Hinv = _dense_laplace(prob, theta, beta)
    assert lap(theta, beta) == pytest.approx(dev, abs=1e-8)
    bs, Vs = lap.conditional(theta, beta)
    for i, (f, T) in enumerate(zip(prob.factors, prob.Ts(theta))):
        s = prob.slices[i]
        P = np.stack([Hinv[s, s][j * f.k:(j + 1) * f.k, j * f.k:(j + 1) * f.k]
                      for j in range(f.m)])
        np.testing.assert_allclose(Vs[i], T @ P @ T.T, atol=1e-10)
        assert bs[i].shape == (f.m, f.k)


def test_joint_modes_solve_the_joint_system():
    """Stage 1's (u, beta) mode: the penalised score is zero in u and in beta."""
    df = _crossed(3, 20, 8, 2, 1.0, 0.5)
    _, prob, _, _ = build_problem("y ~ x + (1 | g1) + (1 | g2)", df, "binomial", "logit")
    theta = np.array([0.9, 0.4])
    jm = crossed_joint_modes(prob, theta, np.zeros(2), np.zeros(prob.q))
    zt, d = prob.zt(theta), prob.data
    d1, _ = prob.family.derivs(jm.eta)
    assert np.max(np.abs(prob.crossprod(zt, d.freq * d1) - jm.u)) < 1e-6
    assert np.max(np.abs(d.X.T @ (d.freq * d1))) < 1e-6


def test_crossed_binomial_recovers_the_truth():
    """60 x 40 crossed Bernoulli cells, 2 rows each (4,800 rows): estimates within about two
    standard errors of the truth (sd 1.0 and 0.6, beta -0.3 and 0.8)."""
    df = _crossed(11, 60, 40, 2, 1.0, 0.6)
    fit = fit_glmm("y ~ x + (1 | g1) + (1 | g2)", df, "binomial")
    assert fit.converged, fit.failures
    se = fit.std_errors
    truth = {"fixed/(Intercept)": -0.3, "fixed/x": 0.8, "ran_pars/g1/sd__(Intercept)": 1.0,
             "ran_pars/g2/sd__(Intercept)": 0.6}
    est = {"fixed/(Intercept)": fit.beta[0], "fixed/x": fit.beta[1],
           "ran_pars/g1/sd__(Intercept)": fit.theta[0], "ran_pars/g2/sd__(Intercept)": fit.theta[1]}
    for key, value in truth.items():
        assert abs(est[key] - value) < 2.5 * se[key], (key, est[key], se[key])
    b1, b2 = fit.ranef_by_factor()[0]
    assert b1.shape == (60, 1) and b2.shape == (40, 1)


def test_nested_poisson_recovers_the_truth():
    """Broods nested in 50 locations (a:b syntax), 8 chicks each: sds 0.5 and 0.4."""
    rng = np.random.default_rng(5)
    loc = np.repeat(np.arange(50), 32)
    brood = np.tile(np.repeat(np.arange(4), 8), 50)
    x = rng.normal(size=loc.size)
    eta = 0.5 + 0.3 * x + 0.5 * rng.normal(size=50)[loc] + 0.4 * rng.normal(size=200)[
        loc * 4 + brood]
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)).astype(float), "x": x, "loc": loc,
                       "brood": brood})
    fit = fit_glmm("y ~ x + (1 | loc) + (1 | loc:brood)", df, "poisson")
    assert fit.converged, fit.failures
    assert [f.name for f in fit.problem.factors] == ["loc", "loc:brood"]
    assert [f.m for f in fit.problem.factors] == [50, 200]
    se = fit.std_errors
    for key, value, truth in [("fixed/x", fit.beta[1], 0.3),
                              ("ran_pars/loc/sd__(Intercept)", fit.theta[0], 0.5),
                              ("ran_pars/loc:brood/sd__(Intercept)", fit.theta[1], 0.4)]:
        assert abs(value - truth) < 2.5 * se[key], (key, value, se[key])


def test_a_variance_at_zero_is_found_and_reported():
    """Every item holds identical data, so the item variance's ML estimate is 0: the fit puts
    theta there exactly, says singular, and the one-sided boundary check passes."""
    rng = np.random.default_rng(8)
    n1, n2 = 40, 6
    x = rng.normal(size=n1 * 3)
    g1 = np.repeat(np.arange(n1), 3)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.2 + x + rng.normal(size=n1)[g1]))))
    df = pd.DataFrame({"y": np.tile(y, n2).astype(float), "x": np.tile(x, n2),
                       "g1": np.tile(g1, n2), "g2": np.repeat(np.arange(n2), y.size)})
    fit = fit_glmm("y ~ x + (1 | g1) + (1 | g2)", df, "binomial")
    assert fit.theta[1] == 0.0
    assert fit.theta[0] > 0.3
    assert fit.singular
    assert fit.converged, fit.failures
    assert fit.std_errors["ran_pars/g2/sd__(Intercept)"] is None


def _spec(model: str):
    return parse_spec(yaml.safe_load(f"""
id: t.crossed
title: t
source: t
dataset: x.csv
model:
  method: ML
{model}
"""))


def test_what_several_factors_cannot_do_is_not_estimable_with_the_reason():
    from backends.native.backend import NativeBackend

    aghq = _spec("""  formula: "y ~ x + (1 | a) + (1 | b)"
  family: binomial
  integration: {method: aghq, points: 7}""")
    reason = NativeBackend().unsupported_reason(aghq.model)
    assert reason is not None and "adaptive quadrature needs one grouping factor" in reason
    ordinal = _spec("""  formula: "y ~ x + (1 | a) + (1 | b)"
  family: ordinal
  integration: {method: laplace}""")
    assert "one grouping factor" in NativeBackend().unsupported_reason(ordinal.model)
    laplace = _spec("""  formula: "y ~ x + (1 | a) + (1 | b)"
  family: poisson
  integration: {method: laplace}""")
    assert NativeBackend().unsupported_reason(laplace.model) is None
    with pytest.raises(ValueError, match="adaptive quadrature needs one grouping factor"):
        fit_glmm("y ~ x + (1 | g1) + (1 | g2)", _crossed(1, 5, 3, 2, 1, 1), "binomial",
                 integration="aghq", points=3)
