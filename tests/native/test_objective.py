"""The objective at a fixed theta against a plain dense marginal-likelihood reference.

The reference does not use lme4's Cholesky formulation at all: it builds the n x n marginal
covariance ``V0 = Z Lambda Lambda' Z' + I``, profiles beta by GLS and sigma^2 in closed form, and
adds the REML term ``log det(X' V0^{-1} X)``. Agreement to 1e-10 (relative) checks the algebra of
every path (per-level, blocked, dense) and the theta -> Lambda mapping.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backends.native.design import build_design
from backends.native.fit import make_system
from backends.native.objective import profiled_deviance, sigma_hat
from backends.native.theta import ThetaLayout

from .simdata import crossed, three_level, two_level


def dense_Z_lambda(design, layout, theta):
    """Dense Z (n x q) and Lambda (q x q), factors in design order, levels major."""
    Zs, lams = [], []
    for f, b in zip(design.factors, layout.blocks):
        Z = np.zeros((design.n, f.q))
        for a in range(f.k):
            Z[np.arange(design.n), f.codes * f.k + a] = f.Z[:, a]
        Zs.append(Z)
        lams.append(np.kron(np.eye(f.m), b.T(theta)))
    q = sum(l.shape[0] for l in lams)
    Lam = np.zeros((q, q))
    o = 0
    for l in lams:
        Lam[o:o + l.shape[0], o:o + l.shape[0]] = l
        o += l.shape[0]
    return np.hstack(Zs), Lam


def reference(design, layout, theta, reml):
    """(criterion, beta, sigma, b, condvar diag) from the marginal model, densely."""
    X, y, n, p = design.X, design.y, design.n, design.p
    Z, Lam = dense_Z_lambda(design, layout, theta)
    ZL = Z @ Lam
    V0 = ZL @ ZL.T + np.eye(n)
    Vi = np.linalg.inv(V0)
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    r2 = float(r @ Vi @ r)
    logdetV = np.linalg.slogdet(V0)[1]
    if reml:
        crit = logdetV + np.linalg.slogdet(XtViX)[1] + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p)))
        s2 = r2 / (n - p)
    else:
        crit = logdetV + n * (1 + np.log(2 * np.pi * r2 / n))
        s2 = r2 / n
    b = Lam @ Lam.T @ Z.T @ Vi @ r
    q = Lam.shape[0]
    cv = s2 * Lam @ np.linalg.inv(Lam.T @ Z.T @ Z @ Lam + np.eye(q)) @ Lam.T
    return crit, beta, np.sqrt(s2), b, np.diag(cv)


CASES = {
    "ri": ("y ~ x + (1 | g)", lambda: two_level(1, groups=8, size=6, unbalanced=True)),
    "rs_corr": ("y ~ x + (1 + x | g)",
                lambda: two_level(2, groups=9, size=7, sd_slope=0.5, corr=0.3, unbalanced=True)),
    "rs_indep": ("y ~ x + (1 | g) + (0 + x | g)",
                 lambda: two_level(3, groups=7, size=6, sd_slope=0.5, unbalanced=True)),
    "crossed": ("y ~ x + (1 | a) + (1 | b)", lambda: crossed(4, na=7, nb=5, n=80)),
    "crossed_slope": ("y ~ x + (1 + x | a) + (1 | b)", lambda: crossed(5, na=6, nb=5, n=90)),
    "rest_slope": ("y ~ x + (1 | a) + (1 + x | b)", lambda: crossed(10, na=20, nb=5, n=150)),
    "nested": ("y ~ x + (1 | top) + (1 | top:mid)",
               lambda: three_level(6, n_top=5, n_mid=3, n_low=4)),
}


def _thetas(layout: ThetaLayout, rng) -> list[np.ndarray]:
    diag = layout.diagonal_mask()
    out = [layout.initial()]
    for _ in range(2):
        t = rng.normal(scale=0.5, size=layout.size)
        t[diag] = rng.uniform(0.2, 1.5, size=diag.sum())
        out.append(t)
    t = out[-1].copy()
    t[np.flatnonzero(diag)[0]] = 0.0      # a boundary value
    out.append(t)
    return out


def _paths(n_factors: int) -> list[str]:
    return (["single"] if n_factors == 1 else []) + ["blocked", "dense"]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("reml", [False, True])
def test_objective_matches_dense_reference(case, reml):
    formula, make = CASES[case]
    design = build_design(formula, make())
    layout = ThetaLayout.for_factors(design.factors)
    rng = np.random.default_rng(123)
    for theta in _thetas(layout, rng):
        crit, beta, sigma, _, _ = reference(design, layout, theta, reml)
        for path in _paths(len(design.factors)):
            fact = make_system(design, layout, path).factorize(theta)
            got = profiled_deviance(fact, design.n, reml)
            assert got == pytest.approx(crit, rel=1e-10, abs=1e-10), (path, theta)
            np.testing.assert_allclose(fact.beta, beta, rtol=1e-8, atol=1e-10)
            assert sigma_hat(fact, design.n, reml) == pytest.approx(sigma, rel=1e-9)


@pytest.mark.parametrize("case", sorted(CASES))
def test_modes_and_conditional_variances_match_dense_reference(case):
    formula, make = CASES[case]
    design = build_design(formula, make())
    layout = ThetaLayout.for_factors(design.factors)
    theta = _thetas(layout, np.random.default_rng(7))[1]
    _, beta, sigma, b_ref, cv_ref = reference(design, layout, theta, reml=False)
    for path in _paths(len(design.factors)):
        system = make_system(design, layout, path)
        fact = system.factorize(theta, keep=True)
        modes = np.concatenate([m.ravel() for m in system.conditional_modes(fact, fact.beta)])
        np.testing.assert_allclose(modes, b_ref, rtol=1e-7, atol=1e-10, err_msg=path)
        cv = np.concatenate([np.diagonal(v, axis1=1, axis2=2).ravel()
                             for v in system.conditional_variances(fact)])
        np.testing.assert_allclose(sigma ** 2 * cv, cv_ref, rtol=1e-7, atol=1e-12, err_msg=path)


def test_single_factor_paths_agree_on_a_fitted_model():
    """The per-level path and the general blocked path give the same fit, not just objective."""
    from backends.native import lmm

    df = two_level(11, groups=30, size=12, sd_slope=0.4, corr=-0.4)
    fits = {p: lmm("y ~ x + (1 + x | g)", df, reml=True, path=p)
            for p in ("single", "blocked", "dense")}
    ref = fits["single"]
    for p in ("blocked", "dense"):
        assert fits[p].loglik == pytest.approx(ref.loglik, abs=1e-8)
        np.testing.assert_allclose(fits[p].fixef, ref.fixef, rtol=1e-6)
        np.testing.assert_allclose(fits[p].theta, ref.theta, rtol=1e-4, atol=1e-6)


def test_lambda_layout_follows_lme4_order():
    design = build_design("y ~ x + (1 + x | g)", two_level(0, groups=3, size=3))
    layout = ThetaLayout.for_factors(design.factors)
    T = layout.blocks[0].T(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(T, [[1.0, 0.0], [2.0, 3.0]])
    assert layout.lower_bounds().tolist() == [0.0, -np.inf, 0.0]


def test_missing_rows_are_dropped_and_counted():
    df = two_level(0, groups=5, size=4)
    df.loc[[0, 3], "x"] = np.nan
    df.loc[5, "y"] = np.nan
    design = build_design("y ~ x + (1 | g)", df)
    assert design.n == len(df) - 3 and design.nobs_dropped == 3
    assert not pd.isna(design.X).any()


@pytest.mark.parametrize("case", ["crossed", "crossed_slope", "rest_slope", "nested",
                                  "three_factors"])
@pytest.mark.parametrize("limits, mode", [((0, 10 ** 9), "gram"), ((0, 0), "sparse")])
def test_large_system_modes_match_dense_reference(case, limits, mode, monkeypatch):
    """The sparse and precomputed-pattern (gram) couplings, used for big data such as InstEval,
    are forced on small problems here so the dense reference can check them."""
    import backends.native.blocked as blocked

    monkeypatch.setattr(blocked, "DENSE_LIMIT", limits[0])
    monkeypatch.setattr(blocked, "GRAM_LIMIT", limits[1])
    formula, make = CASES[case] if case in CASES else THREE_FACTORS
    design = build_design(formula, make())
    layout = ThetaLayout.for_factors(design.factors)
    system = make_system(design, layout, "blocked")
    scalar = all(f.k == 1 for f in design.factors)
    assert system.mode == (mode if scalar or mode == "sparse" else "sparse")
    rng = np.random.default_rng(5)
    for theta in _thetas(layout, rng):
        for reml in (False, True):
            crit, beta, _, _, _ = reference(design, layout, theta, reml)
            fact = system.factorize(theta)
            assert profiled_deviance(fact, design.n, reml) == pytest.approx(crit, rel=1e-10)
            np.testing.assert_allclose(fact.beta, beta, rtol=1e-8, atol=1e-10)
    theta = _thetas(layout, rng)[1]
    _, _, sigma, b_ref, cv_ref = reference(design, layout, theta, reml=False)
    fact = system.factorize(theta, keep=True)
    modes = np.concatenate([m.ravel() for m in system.conditional_modes(fact, fact.beta)])
    np.testing.assert_allclose(modes, b_ref, rtol=1e-7, atol=1e-10)
    cv = np.concatenate([np.diagonal(v, axis1=1, axis2=2).ravel()
                         for v in system.conditional_variances(fact)])
    np.testing.assert_allclose(sigma ** 2 * cv, cv_ref, rtol=1e-7, atol=1e-12)


def _three_factor_data() -> pd.DataFrame:
    df = crossed(9, na=8, nb=6, n=120)
    df["c"] = np.random.default_rng(9).integers(1, 5, len(df))
    return df


THREE_FACTORS = ("y ~ x + (1 | a) + (1 | b) + (1 | c)", _three_factor_data)
