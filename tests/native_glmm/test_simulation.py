"""Seeded simulations: the estimator recovers known parameters (checked in SE units)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backends.native.glmm import fit_glmm
from backends.native.glmm.result import to_fit_result


def _check(fit, truth: dict[str, float], z: float = 3.5):
    """Each canonical parameter within ``z`` of its reported standard errors of the truth."""
    rows = to_fit_result(fit, "sim").parameter_map()
    for key, v in truth.items():
        p = rows[key]
        assert abs(p.estimate - v) < z * p.std_error, (key, p.estimate, v, p.std_error)


def test_binomial_trials_random_intercept_recovered():
    rng = np.random.default_rng(11)
    G, n = 150, 8
    g = np.repeat(np.arange(G), n)
    x = rng.normal(size=g.size)
    trials = rng.integers(1, 8, g.size).astype(float)
    sd = 0.7
    eta = -0.3 + 0.8 * x + sd * rng.normal(size=G)[g]
    y = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    df = pd.DataFrame({"y": y, "n": trials, "x": x, "g": g})
    fit = fit_glmm("y ~ x + (1 | g)", df, "binomial", trials="n")
    _check(fit, {"ran_pars/g/sd__(Intercept)": sd, "fixed/(Intercept)": -0.3, "fixed/x": 0.8})


def test_poisson_offset_random_slope_recovered():
    rng = np.random.default_rng(12)
    G, n = 120, 10
    g = np.repeat(np.arange(G), n)
    x = rng.normal(size=g.size)
    expo = rng.uniform(0.5, 3.0, g.size)
    L = np.array([[0.5, 0.0], [0.1, 0.25]])            # b = L e: sds .5, ~.27, corr ~.37
    b = rng.normal(size=(G, 2)) @ L.T
    eta = np.log(expo) + 0.4 + 0.3 * x + b[g, 0] + b[g, 1] * x
    df = pd.DataFrame({"y": rng.poisson(np.exp(eta)).astype(float), "x": x, "g": g,
                       "logexp": np.log(expo)})
    fit = fit_glmm("y ~ x + (1 + x | g)", df, "poisson", offset="logexp")
    sd_x = float(np.hypot(0.1, 0.25))                  # Var(b) = L L'
    _check(fit, {"ran_pars/g/sd__(Intercept)": 0.5, "ran_pars/g/sd__x": sd_x,
                 "ran_pars/g/cor__(Intercept).x": 0.1 / sd_x, "fixed/(Intercept)": 0.4,
                 "fixed/x": 0.3})
    no_offset = fit_glmm("y ~ x + (1 + x | g)", df, "poisson")
    assert no_offset.deviance > fit.deviance + 10


def test_ordinal_random_intercept_recovered_with_clmm_sign_convention():
    rng = np.random.default_rng(13)
    G, n = 120, 12
    g = np.repeat(np.arange(G), n)
    x = rng.normal(size=g.size)
    eta = 0.9 * x + 0.8 * rng.normal(size=G)[g]
    alpha = np.array([-0.5, 1.0])
    latent = eta + rng.logistic(size=g.size)          # P(y <= k) = F(alpha_k - eta)
    y = 1 + (latent > alpha[0]) + (latent > alpha[1])
    df = pd.DataFrame({"y": y.astype(float), "x": x, "g": g})
    fit = fit_glmm("y ~ x + (1 | g)", df, "ordinal")
    assert fit.x_names == ["x"] and fit.threshold_names == ["1|2", "2|3"]
    truth = {"ran_pars/g/sd__(Intercept)": 0.8, "fixed/x": 0.9, "threshold/1|2": -0.5,
             "threshold/2|3": 1.0}
    _check(fit, truth)
    q = fit_glmm("y ~ x + (1 | g)", df, "ordinal", integration="aghq", points=7)
    assert q.method == "AGHQ(7)"
    _check(q, truth)


def test_vector_effect_mvaghq_recovered():
    rng = np.random.default_rng(14)
    G, n = 100, 15
    g = np.repeat(np.arange(G), n)
    x = rng.integers(0, 4, g.size).astype(float)
    b0, b1 = 0.6 * rng.normal(size=G), 0.3 * rng.normal(size=G)
    eta = -0.5 + 0.4 * x + b0[g] + b1[g] * x
    y = (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(float)
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    fit = fit_glmm("y ~ x + (1 | g) + (0 + x | g)", df, "binomial", integration="aghq",
                   points=5)
    assert fit.method == "MVAGHQ(5)"
    _check(fit, {"ran_pars/g/sd__(Intercept)": 0.6, "ran_pars/g/sd__x": 0.3,
                 "fixed/(Intercept)": -0.5, "fixed/x": 0.4})
    assert fit.ranef.shape == (G, 2)
