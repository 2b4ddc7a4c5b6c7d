"""Unit checks that could fail: derivatives, exact compression, quadrature limits, names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, norm, poisson

from backends.native.glmm import fit_glmm
from backends.native.glmm.aghq import AghqDeviance
from backends.native.glmm.families import Binomial, Cumulative, Poisson
from backends.native.glmm.fit import build_problem
from backends.native.glmm.laplace import LaplaceDeviance
from backends.native.glmm.mvaghq import MvaghqDeviance


def _fd(f, x, h=1e-5):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("fam", [
    Binomial(np.array([0., 1, 3, 5]), np.array([1., 1, 5, 5]), "logit"),
    Binomial(np.array([0., 1, 3, 5]), np.array([1., 1, 5, 5]), "probit"),
    Poisson(np.array([0., 1, 4, 9])),
    Cumulative(np.array([0, 1, 2, 1]), 3, "logit").with_thresholds(np.array([-0.5, 1.2])),
    Cumulative(np.array([0, 1, 2, 1]), 3, "probit").with_thresholds(np.array([-0.5, 1.2])),
])
def test_family_derivatives_match_finite_differences(fam):
    eta = np.array([-1.3, 0.2, 0.7, 2.1])
    d1, h = fam.derivs(eta)
    assert np.allclose(d1, _fd(fam.loglik, eta), atol=1e-6)
    assert np.allclose(h, -_fd(lambda e: fam.derivs(e)[0], eta), atol=1e-6)


def test_family_log_densities_include_constants():
    eta = np.array([-0.4, 0.3, 1.1])
    b = Binomial(np.array([0., 2, 4]), np.array([3., 4, 4]), "logit")
    p = 1 / (1 + np.exp(-eta))
    assert np.allclose(b.loglik(eta), binom.logpmf([0, 2, 4], [3, 4, 4], p))
    bp = Binomial(np.array([0., 2, 4]), np.array([3., 4, 4]), "probit")
    assert np.allclose(bp.loglik(eta), binom.logpmf([0, 2, 4], [3, 4, 4], norm.cdf(eta)))
    pois = Poisson(np.array([0., 3, 7]))
    assert np.allclose(pois.loglik(eta), poisson.logpmf([0, 3, 7], np.exp(eta)))
    c = Cumulative(np.array([0, 1, 2]), 3).with_thresholds(np.array([0.0, 1.0]))
    F = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expect = np.log([F(0 - eta[0]), F(1 - eta[1]) - F(0 - eta[1]), 1 - F(1 - eta[2])])
    assert np.allclose(c.loglik(eta), expect)


def _sim_binary(seed=1, groups=30, size=12):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), size)
    x = rng.integers(0, 3, g.size).astype(float)      # few values: compressible
    u = rng.normal(0, 0.8, groups)
    y = (rng.random(g.size) < 1 / (1 + np.exp(-(-0.5 + 0.6 * x + u[g])))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": g + 1.0})


def test_compression_is_exact():
    df = _sim_binary()
    _, comp, _, _ = build_problem("y ~ x + (1 | g)", df, "binomial", "logit")
    _, full, _, _ = build_problem("y ~ x + (1 | g)", df, "binomial", "logit", compress=False)
    assert comp.data.X.shape[0] < full.data.X.shape[0] == len(df)
    th, be = np.array([0.9]), np.array([-0.4, 0.5])
    for D in (LaplaceDeviance, lambda p: AghqDeviance(p, 5), lambda p: MvaghqDeviance(p, 5)):
        assert D(comp)(th, be) == pytest.approx(D(full)(th, be), rel=1e-12)


def test_quadrature_methods_converge_to_the_same_integral():
    """With many nodes, mode/curvature and mean/variance adaptation agree (the integral)."""
    df = _sim_binary(seed=3)
    _, prob, _, _ = build_problem("y ~ x + (1 | g)", df, "binomial", "logit")
    th, be = np.array([1.1]), np.array([-0.4, 0.5])
    a = AghqDeviance(prob, 25)(th, be)
    m = MvaghqDeviance(prob, 25)(th, be)
    assert a == pytest.approx(m, abs=1e-8)
    # ... and differ, slightly, with 3 nodes; Laplace is further off
    assert abs(AghqDeviance(prob, 3)(th, be) - a) < abs(LaplaceDeviance(prob)(th, be) - a)


def test_one_node_aghq_is_laplace():
    df = _sim_binary(seed=4)
    _, prob, _, _ = build_problem("y ~ x + (1 | g)", df, "binomial", "logit")
    th, be = np.array([0.7]), np.array([-0.2, 0.4])
    assert AghqDeviance(prob, 1)(th, be) == pytest.approx(LaplaceDeviance(prob)(th, be),
                                                          rel=1e-12)


def test_fit_result_contract():
    from harness.results import FitResult
    from backends.native.glmm.result import to_fit_result
    df = _sim_binary(seed=5)
    fit = fit_glmm("y ~ x + (1 | g)", df, "binomial", integration="aghq", points=5)
    res = to_fit_result(fit, "sim")
    again = FitResult.from_json(res.to_json())
    keys = again.parameter_map()
    assert {"fixed/(Intercept)", "fixed/x", "ran_pars/g/sd__(Intercept)",
            "ran_pars/g/var__(Intercept)"} <= set(keys)
    assert "ran_pars/Residual/sd__Observation" not in keys
    assert again.provenance.method == "AGHQ(5)"
    assert again.statistics.df == 3 and again.statistics.nobs == len(df)
    assert again.statistics.aic == pytest.approx(-2 * again.statistics.loglik + 6)
    assert len(again.random_effects) == 30
    # AGHQ(n) fits report conditional modes, as glmer's ranef
    assert any("conditional modes" in m for m in again.diagnostics.messages)
    # var SE by the delta method: 2 sd SE(sd)
    sd, var = keys["ran_pars/g/sd__(Intercept)"], keys["ran_pars/g/var__(Intercept)"]
    assert var.std_error == pytest.approx(2 * sd.estimate * sd.std_error, rel=1e-4)


def test_mean_variance_option_for_scalar_effect():
    df = _sim_binary(seed=6)
    a = fit_glmm("y ~ x + (1 | g)", df, "binomial", integration="aghq", points=7)
    m = fit_glmm("y ~ x + (1 | g)", df, "binomial", integration="aghq", points=7,
                 adaptation="mean-variance")
    assert (a.method, m.method) == ("AGHQ(7)", "MVAGHQ(7)")
    assert a.deviance == pytest.approx(m.deviance, abs=1e-3)


@pytest.mark.parametrize("points", [2, 3, 7])
def test_mvaghq_deviance_does_not_depend_on_history(points):
    """The adaptation starts from the Laplace mode/curvature at every evaluation: the deviance
    at a point is the same before and after evaluations elsewhere. (With warm starts, 2-point
    MVAGHQ on the census random slope gave 47460.86, then 47586.98 at the same point.)"""
    rng = np.random.default_rng(8)
    G, n = 40, 10
    g = np.repeat(np.arange(G), n)
    x = rng.normal(size=g.size)
    eta = -0.3 + 0.5 * x + 0.8 * rng.normal(size=G)[g] + 0.4 * rng.normal(size=G)[g] * x
    df = pd.DataFrame({"y": (rng.random(g.size) < 1 / (1 + np.exp(-eta))) * 1.0, "x": x,
                       "g": g + 1.0})
    _, prob, _, _ = build_problem("y ~ x + (1 + x | g)", df, "binomial", "logit")
    dev = MvaghqDeviance(prob, points)
    th, be = np.array([0.8, 0.1, 0.35]), np.array([-0.3, 0.5])
    first = dev(th, be)
    for far in ([0.1, -0.05, 0.05], [2.0, 0.5, 1.0], [0.5, 0.0, 0.01]):
        assert np.isfinite(dev(np.array(far), be + 0.3))
    # equal to rounding (the Laplace modes that start the adaptation are warm-started)
    assert dev(th, be) == pytest.approx(first, rel=1e-13)
    assert MvaghqDeviance(prob, points)(th, be) == pytest.approx(first, rel=1e-13)
