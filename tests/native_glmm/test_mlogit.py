"""The native random-intercept multinomial logit (backends/native/glmm/mlogit.py).

Checks against known truth (a simulation), against brute-force integration (the quadrature),
against the single-level model (the sd = 0 identity) and against statsmodels' MNLogit (the
single-level fit)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from backends.native.glmm.mlogit import (MlogitAghq, MlogitData, fit_mlogit_ri, fit_single,
                                         single_loglik)

TRUE_B = np.array([[0.5, -0.4], [-0.3, 0.8]])     # (K-1) x p: intercept, slope per category
TRUE_SD = 0.8


def simulate(seed: int = 1, m: int = 200, nj: int = 30, sd: float = TRUE_SD):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(m), nj)
    X = np.column_stack([np.ones(m * nj), rng.normal(size=m * nj)])
    b = sd * rng.normal(size=m)[g]
    eta = np.column_stack([np.zeros(m * nj), X @ TRUE_B.T + b[:, None]])
    P = np.exp(eta - logsumexp(eta, axis=1, keepdims=True))
    y = (rng.random(m * nj)[:, None] > P.cumsum(axis=1)).sum(axis=1)
    return X, y, g


@pytest.fixture(scope="module")
def sim():
    X, y, g = simulate()
    d = MlogitData.of(X, y, g)
    return d, fit_mlogit_ri(d, points=8)


def test_simulation_recovers_truth_within_2_5_se(sim):
    d, fit = sim
    assert fit.converged, fit.failures
    truth = np.r_[TRUE_B.ravel(), np.log(TRUE_SD)]
    z = (fit.x - truth) / fit.std_errors
    assert np.all(np.abs(z) < 2.5), z
    assert fit.sd_se == pytest.approx(fit.sd * fit.std_errors[-1])


def test_quadrature_converges_in_points(sim):
    """15 and 30 points agree to 1e-6; 7 points is already within 1e-3 (measured 1.3e-4 on this
    simulation: 30 rows per group with sd 0.8 make a peaked integrand)."""
    d, fit = sim
    ll = {q: MlogitAghq(d, q).loglik(fit.beta, fit.sd) for q in (7, 15, 30)}
    assert abs(ll[15] - ll[30]) < 1e-6
    assert abs(ll[7] - ll[30]) < 1e-3
    assert abs(ll[7] - ll[30]) > abs(ll[15] - ll[30])


def test_quadrature_matches_brute_force_integral(sim):
    """The AGHQ log-likelihood against a trapezoid rule on a fine grid over u (no adaptation)."""
    d, fit = sim
    ey, A = d.fixed_parts(fit.beta)
    u = np.linspace(-10.0, 10.0, 8001)
    b = fit.sd * u[None, :]
    ll = d.freq[:, None] * (ey[:, None] + (d.y > 0)[:, None] * b - np.logaddexp(0.0, A[:, None] + b))
    lj = np.add.reduceat(ll, d.starts, axis=0) - 0.5 * u ** 2 - 0.5 * np.log(2 * np.pi)
    brute = float(np.sum(logsumexp(lj, axis=1) + np.log(u[1] - u[0])))
    assert MlogitAghq(d, 30).loglik(fit.beta, fit.sd) == pytest.approx(brute, abs=1e-6)


def test_zero_sd_is_the_single_level_likelihood(sim):
    d, _ = sim
    beta, _, ll, ok = fit_single(d)
    assert ok
    for q in (1, 8, 15):
        assert MlogitAghq(d, q).loglik(beta, 0.0) == pytest.approx(ll, rel=1e-13, abs=1e-9)
    # and continuously: a tiny sd is the single-level likelihood to first order
    assert MlogitAghq(d, 8).loglik(beta, 1e-6) == pytest.approx(ll, abs=1e-6)
    assert single_loglik(d, beta) == ll


def test_single_level_fit_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.api")
    X, y, g = simulate(seed=2, m=50, nj=20)
    d = MlogitData.of(X, y)                     # one group: the single-level model
    beta, cov, ll, ok = fit_single(d)
    res = sm.MNLogit(y, X).fit(method="newton", tol=1e-12, disp=False)
    assert ok
    assert ll == pytest.approx(res.llf, rel=1e-10)
    np.testing.assert_allclose(beta, res.params.T.ravel(), atol=1e-7)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), np.asarray(res.bse).T.ravel(), rtol=1e-6)


def test_compression_is_exact():
    X, y, g = simulate(seed=3, m=20, nj=10)
    X = np.column_stack([X[:, 0], np.round(X[:, 1])])      # few patterns: rows compress
    d = MlogitData.of(X, y, g)
    assert d.X.shape[0] < X.shape[0] and d.freq.sum() == X.shape[0] == d.nobs
    beta = TRUE_B.ravel()
    eta = np.column_stack([np.zeros(y.size), X @ TRUE_B.T])
    direct = float(np.sum(eta[np.arange(y.size), y] - logsumexp(eta, axis=1)))
    assert single_loglik(d, beta) == pytest.approx(direct, rel=1e-13)


def test_bad_response_is_an_error():
    with pytest.raises(ValueError, match="codes 0..K-1"):
        MlogitData.of(np.ones((4, 1)), np.array([1, 2, 2, 1]))


# ---- the harness side: spec -> NativeBackend -> FitResult ----------------------------------------

def _spec(formula: str, **model):
    from harness.spec import parse_spec
    return parse_spec({"id": "t.mlogit", "title": "t", "source": "test", "dataset": "sim",
                       "model": {"formula": formula, "method": "ML", "family": "multinomial",
                                 **model}})


def _run(s, df):
    from backends.base import FitJob
    from backends.native.backend import NativeBackend
    return NativeBackend().fit(FitJob(spec=s, model=s.model_for("native"), data=df))


def test_backend_fit_keys_base_category_and_likelihood():
    """Response levels 5/6/7 with base 6 (the spec's reference_level): keys name the non-base
    categories, and the fit is the direct fit of the recoded data."""
    import pandas as pd
    X, y, g = simulate(seed=4, m=40, nj=15)
    labels = np.array([6, 5, 7])                        # code 0 (the simulated base) is level 6
    df = pd.DataFrame({"y": labels[y], "x": X[:, 1], "g": g})
    s = _spec("y ~ x + (1 | g)", integration={"method": "aghq", "points": 9},
              reference_level={"y": 6})
    res = _run(s, df)
    assert res.status == "ok" and res.diagnostics.converged
    assert [p.term for p in res.parameters] == ["5/(Intercept)", "5/x", "7/(Intercept)", "7/x",
                                                "sd__(Intercept)", "var__(Intercept)"]
    direct = fit_mlogit_ri(MlogitData.of(X, y, g), points=9)
    assert res.statistics.loglik == pytest.approx(direct.loglik, abs=1e-6)
    got = {p.term: p for p in res.parameters}
    assert got["5/x"].estimate == pytest.approx(direct.beta[1], abs=1e-4)
    assert got["sd__(Intercept)"].estimate == pytest.approx(direct.sd, abs=1e-4)
    assert res.estimator.label() == "AGHQ(9)"
    assert len(res.random_effects) == 40 and res.statistics.ngroups == {"g": 40}


def test_backend_not_estimable_and_bad_reference():
    import pandas as pd
    X, y, g = simulate(seed=5, m=10, nj=10)
    df = pd.DataFrame({"y": y + 1, "x": X[:, 1], "g": g})
    aghq = {"method": "aghq", "points": 7}
    rs = _run(_spec("y ~ x + (1 + x | g)", integration=aghq), df)
    assert rs.status == "not_estimable" and "random slopes" in rs.message
    bad = _run(_spec("y ~ x + (1 | g)", integration=aghq, reference_level={"y": 9}), df)
    assert bad.status == "error" and "reference_level 9" in bad.message


def test_reference_keys_are_checked_against_the_category_names(tmp_path):
    """The spec loader's key check knows the multinomial names (harness/model_keys.py)."""
    import pandas as pd
    from harness.model_keys import expected_keys
    X, y, g = simulate(seed=6, m=10, nj=10)
    df = pd.DataFrame({"y": y + 1, "x": X[:, 1], "g": g})
    s = _spec("y ~ x + (1 | g)", integration={"method": "aghq", "points": 7},
              reference_level={"y": 2})
    keys = expected_keys(s, df)
    assert {"fixed/1/x", "fixed/3/(Intercept)", "ran_pars/g/sd__(Intercept)"} <= keys
    assert "fixed/2/x" not in keys and "fixed/x" not in keys
    res = _run(s, df)
    assert {str(p.param_key) for p in res.parameters} <= keys


def test_rendered_script_reproduces_the_fit():
    import pandas as pd
    from backends.native.backend import NativeBackend
    X, y, g = simulate(seed=7, m=15, nj=12)
    df = pd.DataFrame({"y": y + 1, "x": X[:, 1], "g": g})
    s = _spec("y ~ x + (1 | g)", integration={"method": "aghq", "points": 7})
    src = NativeBackend().render(s)
    ns: dict = {"frame": df}
    exec(src, ns)                       # noqa: S102 - our own generated script
    assert ns["result"].loglik == pytest.approx(_run(s, df).statistics.loglik, abs=1e-9)
    assert ns["categories"] == ["1", "2", "3"]
