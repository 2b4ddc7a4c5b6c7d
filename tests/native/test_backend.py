"""The harness-facing NativeBackend: canonical names, statuses, OLS and cluster-robust SEs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backends.base import FitJob, get_backend
from backends.native.backend import NativeBackend
from backends.native.ols import ols
from harness.results import FitResult
from harness.spec import parse_spec

from .simdata import two_level


def spec(formula: str, method: str = "REML", family: str = "gaussian", **extra):
    model = {"formula": formula, "method": method, "family": family}
    model.update(extra.pop("model", {}))
    return parse_spec({"id": "t.spec", "title": "t", "source": "test", "dataset": "sim",
                       "model": model, **extra})


def run(s, data: pd.DataFrame) -> FitResult:
    return NativeBackend().fit(FitJob(spec=s, model=s.model_for("native"), data=data))


def test_registry_and_availability():
    b = get_backend("native")
    assert isinstance(b, NativeBackend) and b.name == "native"
    a = b.availability()
    assert a.ok and dict(a.versions).keys() == {"numpy", "scipy", "nlopt"}


def test_glmm_and_shared_intercept_multinomial_supported():
    # issue 7: one-factor GLMMs are native (backends/native/glmm); issue 13: so is the
    # multinomial logit with one shared random intercept, but not a random slope.
    b = NativeBackend()
    s = spec("y ~ x + (1 | g)", method="ML", family="binomial",
             model={"integration": {"method": "laplace"}})
    assert b.unsupported_reason(s.model) is None
    m = spec("y ~ x + (1 | g)", method="ML", family="multinomial",
             model={"integration": {"method": "laplace"}})
    assert b.unsupported_reason(m.model) is None
    rs = spec("y ~ x + (1 + x | g)", method="ML", family="multinomial",
              model={"integration": {"method": "laplace"}})
    assert "random slopes" in b.unsupported_reason(rs.model)
    assert b.unsupported_status == "pending"
    assert b.unsupported_reason(spec("y ~ x + (1 | g)").model) is None


def test_canonical_result_for_correlated_slopes():
    df = two_level(3, groups=25, size=8, sd_slope=0.5, corr=0.4)
    df.loc[0, "x"] = np.nan
    r = run(spec("y ~ x + (1 + x | g)"), df)
    assert r.status == "ok", r.message
    keys = set(r.parameter_map())
    assert {"fixed/(Intercept)", "fixed/x", "ran_pars/g/sd__(Intercept)", "ran_pars/g/sd__x",
            "ran_pars/g/cor__(Intercept).x", "ran_pars/g/cov__(Intercept).x",
            "ran_pars/g/var__x", "ran_pars/Residual/sd__Observation"} <= keys
    s = r.statistics
    assert s.nobs == len(df) - 1 and s.nobs_dropped == 1 and s.ngroups == {"g": 25}
    assert s.reml_criterion == pytest.approx(-2 * s.loglik) and s.deviance is None
    assert s.df == 2 + 3 + 1 and s.aic == pytest.approx(-2 * s.loglik + 2 * s.df)
    levels = {re.level for re in r.random_effects}
    assert levels == {str(i) for i in range(1, 26)}          # "1", not "1.0"
    assert all(re.std_error > 0 for re in r.random_effects)
    assert r.provenance.backend == "native" and r.provenance.method == "REML"
    assert r.provenance.call.startswith("lmm('y ~ x + (1 + x | g)', data, reml=True")
    assert r.diagnostics.optimizer and r.diagnostics.evaluations > 0
    assert FitResult.from_json(r.to_json()).parameter_map().keys() == r.parameter_map().keys()


def test_independent_terms_have_no_correlation_rows():
    df = two_level(4, groups=25, size=8, sd_slope=0.5)
    r = run(spec("y ~ x + (1 + x || g)"), df)
    terms = {p.term for p in r.parameters if p.group == "g"}
    assert terms == {"sd__(Intercept)", "sd__x", "var__(Intercept)", "var__x"}


def test_factor_columns_from_spec_and_ml_statistics():
    df = two_level(5, groups=20, size=6)
    df["grp3"] = (np.arange(len(df)) % 3 + 1).astype(float)
    s = spec("y ~ x + grp3 + (1 | g)", method="ML", columns={"grp3": "factor"})
    r = run(s, df)
    assert {"fixed/grp32", "fixed/grp33"} <= set(r.parameter_map())
    assert r.statistics.deviance == pytest.approx(-2 * r.statistics.loglik)
    assert r.statistics.reml_criterion is None
    assert "factors=['grp3']" in r.provenance.call


def test_ols_matches_normal_equations_and_cluster_robust_by_hand():
    df = two_level(6, groups=30, size=7, unbalanced=True)
    X = np.column_stack([np.ones(len(df)), df["x"]])
    y = df["y"].to_numpy()
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    e = y - X @ beta
    n, k = X.shape
    XtXi = np.linalg.inv(X.T @ X)
    res = ols("y ~ x", df)
    np.testing.assert_allclose(res.fixef, beta, rtol=1e-12)
    np.testing.assert_allclose(res.std_errors, np.sqrt(np.diag(e @ e / (n - k) * XtXi)), rtol=1e-10)
    meat = np.zeros((k, k))
    groups = df["g"].unique()
    for g in groups:
        idx = (df["g"] == g).to_numpy()
        sg = X[idx].T @ e[idx]
        meat += np.outer(sg, sg)
    G = len(groups)
    V = XtXi @ meat @ XtXi * G / (G - 1) * (n - 1) / (n - k)
    cl = ols("y ~ x", df, cluster="g")
    np.testing.assert_allclose(cl.std_errors, np.sqrt(np.diag(V)), rtol=1e-10)
    np.testing.assert_allclose(cl.fixef, beta, rtol=1e-12)
    ml = ols("y ~ x", df, method="ML")
    assert ml.sigma == pytest.approx(np.sqrt(e @ e / n))
    assert ml.loglik == pytest.approx(-0.5 * n * (np.log(2 * np.pi * e @ e / n) + 1))


def test_backend_single_level_with_cluster_se():
    df = two_level(7, groups=20, size=5)
    r = run(spec("y ~ x", method="OLS", model={"cluster_se": "g"}), df)
    assert r.status == "ok", r.message
    assert r.statistics.ngroups == {"g": 20}
    assert "cluster" in r.provenance.method and "cluster='g'" in r.provenance.call


def test_model_trouble_is_an_error_result_not_an_exception():
    df = two_level(8, groups=5, size=4)
    r = run(spec("y ~ x + (1 | nothere)"), df)
    assert r.status == "error" and "nothere" in r.message


def test_render_is_a_python_call():
    code = NativeBackend().render(spec("y ~ x + (1 | g)"))
    assert "from backends.native import lmm" in code and "lmm('y ~ x + (1 | g)'" in code
