"""Native single-level GLMs (backends/native/glm.py): catalogue refits and simulated recovery.

The catalogue numbers (models.md §4.7, R 4.2.2 glm / MASS::polr / ordinal::clm on the open
popular2 data) are stored in the specs; no R is needed here. polr's printout stops at its own
tolerance (~1e-6 relative from the exact optimum that clm and native reach), so the ordinal
coefficients are checked at 5e-6 relative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from backends.base import FitJob
from backends.native.backend import NativeBackend
from backends.native.glm import glm
from harness.runner import prepare_data
from harness.spec import load_spec, parse_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"


def _spec_fit(course_data, name: str):
    spec = load_spec(SPECS / "popular2" / name)
    data = prepare_data(spec, course_data).frame
    return NativeBackend().fit(FitJob(spec=spec, model=spec.model_for("native"), data=data))


CATALOGUE = {
    "lab1.ex1.3.b1a.yaml": (-917.5683926, {"fixed/(Intercept)": -1.214583, "fixed/sex": 2.501865,
                                          "fixed/Cextrav": .868044, "fixed/Ctexp": .172775}, 1e-6),
    "lab1.ex1.3.o1a.yaml": (-1284.614, {"threshold/1|2": 1.225625, "threshold/2|3": 4.979569,
                                       "fixed/sex": 2.5460718, "fixed/Cextrav": .8702557,
                                       "fixed/Ctexp": .1613244}, 5e-6),
    "lab1.ex1.3.o2a.yaml": (-1284.614, {"threshold/1|2": 1.225625, "threshold/2|3": 4.979569,
                                       "fixed/sex": 2.5460718, "fixed/Cextrav": .8702557,
                                       "fixed/Ctexp": .1613244}, 5e-6),
    "lab1.ex1.3.p1a.yaml": (-2259.200442, {"fixed/(Intercept)": -1.143460, "fixed/sex": 1.454847,
                                          "fixed/Cextrav": .397123, "fixed/Ctexp": .068510},
                            1e-5),
}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_catalogue_refits(course_data, name):
    ll, coefs, rtol = CATALOGUE[name]
    res = _spec_fit(course_data, name)
    assert res.status == "ok", res.message
    assert res.provenance.method == "ML" and res.diagnostics.converged
    st = res.statistics
    decimals = len(str(ll).split(".")[1])
    assert st.loglik == pytest.approx(ll, abs=0.6 * 10 ** -decimals)
    assert st.deviance == pytest.approx(-2 * st.loglik)
    assert st.aic == pytest.approx(-2 * st.loglik + 2 * st.df)
    assert st.nobs == 2000 and st.df == len(coefs)
    pm = res.parameter_map()
    assert set(pm) == set(coefs)
    for key, v in coefs.items():
        assert pm[key].estimate == pytest.approx(v, rel=rtol, abs=1e-6), key
        assert pm[key].std_error and pm[key].std_error > 0


def _sim(n=20000, seed=20250611):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, size=n).astype(float)
    g = rng.integers(0, 50, size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g}), rng


def test_simulated_recovery_binomial_poisson_ordinal():
    df, rng = _sim()
    eta = -0.5 + 0.8 * df.x1 - 0.6 * df.x2
    df["yl"] = rng.binomial(1, expit(eta))
    df["yp"] = rng.poisson(np.exp(0.3 + 0.4 * df.x1 - 0.6 * df.x2))
    lat = 0.8 * df.x1 - 0.6 * df.x2 + rng.logistic(size=len(df))
    df["yo"] = 1 + (lat > -1.0).astype(int) + (lat > 0.5).astype(int) + (lat > 2.0).astype(int)
    df["yb"] = (-0.5 + 0.8 * df.x1 - 0.6 * df.x2 + rng.normal(size=len(df)) > 0).astype(float)
    cases = [("yl", "binomial", "logit", {"(Intercept)": -0.5, "x1": 0.8, "x2": -0.6}),
             ("yb", "binomial", "probit", {"(Intercept)": -0.5, "x1": 0.8, "x2": -0.6}),
             ("yp", "poisson", "log", {"(Intercept)": 0.3, "x1": 0.4, "x2": -0.6}),
             ("yo", "ordinal", "logit", {"x1": 0.8, "x2": -0.6, "1|2": -1.0, "2|3": 0.5,
                                         "3|4": 2.0})]
    for y, fam, link, truth in cases:
        r = glm(f"{y} ~ x1 + x2", df, family=fam, link=link)
        assert r.converged and r.max_abs_gradient < 1e-6
        est = pd.concat([r.fixef, r.thresholds])
        se = r.std_errors
        assert list(est.index) == list(truth)
        for k, v in truth.items():
            assert abs(est[k] - v) < 4 * se[k], (fam, link, k, est[k], v, se[k])


def test_score_zero_and_information_conventions():
    df, rng = _sim(n=3000, seed=7)
    df["yb"] = (0.2 + 0.7 * df.x1 + rng.normal(size=len(df)) > 0).astype(float)
    r = glm("yb ~ x1 + x2", df, family="binomial", link="probit")
    X = r.design.X
    eta = X @ r.coef
    # glm's vcov: inverse expected information, phi^2 / (Phi (1 - Phi)) weights
    from scipy.stats import norm
    w = norm.pdf(eta) ** 2 / (norm.cdf(eta) * norm.sf(eta))
    np.testing.assert_allclose(r.vcov, np.linalg.inv(X.T @ (X * w[:, None])), rtol=1e-10)
    # ordinal: observed Hessian equals a finite-difference Hessian of the log-likelihood
    lat = 0.5 * df.x1 + rng.logistic(size=len(df))
    df["yo"] = 1 + (lat > 0).astype(int) + (lat > 1.5).astype(int)
    ro = glm("yo ~ x1 + x2", df, family="ordinal")
    from backends.native.glm import _ordinal_parts
    from backends.native.glmm.families import Cumulative
    yk = (df.yo.to_numpy() - 1).astype(np.int64)
    fam = Cumulative(yk.astype(float), 3)
    Xo = ro.design.X[:, 1:]
    p = Xo.shape[1]
    off = np.zeros(len(df))

    def ll(t):
        return _ordinal_parts(fam, Xo, yk, 3, t[:p], t[p:], off, np.ones(len(df)), False)[0]

    t0, h = ro.coef, 1e-4
    k = t0.size
    Hfd = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            Hfd[i, j] = (ll(t0 + ei + ej) - ll(t0 + ei - ej) - ll(t0 - ei + ej)
                         + ll(t0 - ei - ej)) / (4 * h * h)
    np.testing.assert_allclose(ro.vcov, np.linalg.inv(-Hfd), rtol=1e-5)


def test_cluster_robust_cr1():
    df, rng = _sim(n=4000, seed=3)
    df["yl"] = rng.binomial(1, expit(0.3 * df.x1))
    r = glm("yl ~ x1 + x2", df, family="binomial", cluster="g")
    plain = glm("yl ~ x1 + x2", df, family="binomial")
    X = plain.design.X
    u = df.yl.to_numpy() - expit(X @ plain.coef)
    S = np.zeros((50, 3))
    np.add.at(S, df.g.to_numpy(), X * u[:, None])
    V = plain.vcov @ S.T @ S @ plain.vcov * 50 / 49
    np.testing.assert_allclose(r.vcov, V, rtol=1e-10)
    assert r.n_clusters == 50


def _spec(formula, family, **model):
    return parse_spec({"id": "t.glm", "title": "t", "source": "test", "dataset": "sim",
                       "model": {"formula": formula, "method": "ML", "family": family, **model}})


def test_backend_dispatch():
    b = NativeBackend()
    for fam in ("binomial", "poisson", "ordinal", "multinomial"):
        assert b.unsupported_reason(_spec("y ~ x", fam).model) is None
    df, rng = _sim(n=500, seed=1)
    df["y"] = rng.binomial(1, 0.5, size=len(df))
    s = _spec("y ~ x1 + x2", "binomial", link="probit")
    res = b.fit(FitJob(spec=s, model=s.model_for("native"), data=df))
    assert res.status == "ok" and res.provenance.call.startswith("glm(")
    assert [p.term for p in res.parameters] == ["(Intercept)", "x1", "x2"]
