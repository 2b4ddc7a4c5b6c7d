"""Analytic derivatives of the profiled criterion (scalar terms) and the AI-Newton fit.

The gradient is checked against central differences of the criterion, the average-information
matrix against its definition evaluated with a dense ``n x n`` marginal covariance (no shared
code with the blocked algebra), on every coupling mode of the blocked path. The Newton fit must
reach the derivative-free optimiser's optimum, and hand boundary optima back to it.
"""

from __future__ import annotations

import numpy as np
import pytest

import backends.native.blocked as blocked
import backends.native.fit as fit_module
from backends.native import lmm
from backends.native.design import build_design
from backends.native.fit import make_system
from backends.native.objective import profiled_deviance
from backends.native.scalar_derivatives import ScalarTermDerivatives, supports
from backends.native.theta import ThetaLayout

from .simdata import crossed, three_level, two_level
from .test_objective import dense_Z_lambda

SCALAR = {
    "crossed": ("y ~ x + (1 | a) + (1 | b)", lambda: crossed(4, na=7, nb=5, n=80)),
    "nested": ("y ~ x + (1 | top) + (1 | top:mid)",
               lambda: three_level(6, n_top=5, n_mid=3, n_low=4)),
    "three": ("y ~ x + (1 | a) + (1 | b) + (0 + x | b)", lambda: crossed(8, na=9, nb=6, n=120)),
    "one_factor": ("y ~ x + (1 | g)", lambda: two_level(1, groups=8, size=6, unbalanced=True)),
}
# (DENSE_LIMIT, GRAM_LIMIT) forcing each coupling of block 2 with block 1
MODES = {"dense": (5_000_000, 30_000_000), "gram": (0, 10 ** 9)}


def _system(case: str, mode: str, monkeypatch, path: str = "blocked"):
    monkeypatch.setattr(blocked, "DENSE_LIMIT", MODES[mode][0])
    monkeypatch.setattr(blocked, "GRAM_LIMIT", MODES[mode][1])
    formula, make = SCALAR[case]
    design = build_design(formula, make())
    layout = ThetaLayout.for_factors(design.factors)
    return design, layout, make_system(design, layout, path)


def _ai_by_definition(design, layout, theta, reml):
    """``n_eff (a_s'P a_t / r^2 - (a_s'Py)(a_t'Py) / r^4)``, ``a_t = Z_t Z_t' P y``, densely."""
    X, y, n, p = design.X, design.y, design.n, design.p
    Z, Lam = dense_Z_lambda(design, layout, theta)
    ZL = Z @ Lam
    Vi = np.linalg.inv(ZL @ ZL.T + np.eye(n))
    P = Vi - Vi @ X @ np.linalg.solve(X.T @ Vi @ X, X.T @ Vi)
    r2 = float(y @ P @ y)
    cols = []
    for f in design.factors:                     # scalar terms: one column per factor
        Zt = np.zeros((n, f.m))
        Zt[np.arange(n), f.codes] = f.Z[:, 0]
        cols.append(Zt)
    A = np.column_stack([Zt @ (Zt.T @ (P @ y)) for Zt in cols])
    ae = A.T @ (P @ y)
    n_eff = n - p if reml else n
    return n_eff * (A.T @ P @ A / r2 - np.outer(ae, ae) / r2 ** 2)


@pytest.mark.parametrize("case", ["crossed", "nested"])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("reml", [False, True])
def test_gradient_matches_central_differences(case, mode, reml, monkeypatch):
    design, layout, system = _system(case, mode, monkeypatch)
    assert system.mode == mode and supports(system)
    model = ScalarTermDerivatives(system, design.n, reml)
    rng = np.random.default_rng(3)
    for theta in (np.ones(layout.size), rng.uniform(0.2, 1.8, layout.size)):
        der = model.derivatives(model.factorize(theta))
        assert der.value == pytest.approx(
            profiled_deviance(system.factorize(theta), design.n, reml), rel=1e-13)
        h = 1e-6
        fd = [(model.value(model.factorize(theta + h * e))
               - model.value(model.factorize(theta - h * e))) / (2 * h)
              for e in np.eye(theta.size)]
        np.testing.assert_allclose(der.gradient, fd, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(der.gradient_phi, der.gradient / (2 * theta), rtol=1e-12)


@pytest.mark.parametrize("case, path", [("crossed", "dense"), ("one_factor", "blocked")])
def test_gradient_without_coupling(case, path, monkeypatch):
    """``mode == "none"``: everything in block 2 (no block-diagonal factor), or block 1 alone."""
    design, layout, system = _system(case, "dense", monkeypatch, path)
    assert system.mode == "none" and supports(system)
    model = ScalarTermDerivatives(system, design.n, True)
    theta = np.linspace(0.4, 1.2, layout.size)
    der = model.derivatives(model.factorize(theta))
    h = 1e-6
    fd = [(model.value(model.factorize(theta + h * e))
           - model.value(model.factorize(theta - h * e))) / (2 * h) for e in np.eye(theta.size)]
    np.testing.assert_allclose(der.gradient, fd, rtol=1e-6, atol=1e-6)


def test_vector_terms_and_the_per_level_path_have_no_analytic_derivatives(monkeypatch):
    """``(1 | b) + (0 + x | b)`` puts k = 2 effects on b; one factor uses the per-level path."""
    _, _, system = _system("three", "dense", monkeypatch)
    assert not supports(system)
    _, _, system = _system("one_factor", "dense", monkeypatch, "auto")
    assert not supports(system)


@pytest.mark.parametrize("case", ["crossed", "nested"])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("reml", [False, True])
def test_average_information_matches_its_definition(case, mode, reml, monkeypatch):
    design, layout, system = _system(case, mode, monkeypatch)
    model = ScalarTermDerivatives(system, design.n, reml)
    theta = np.array([0.8, 0.5])
    ai = model.derivatives(model.factorize(theta)).ai
    np.testing.assert_allclose(ai, _ai_by_definition(design, layout, theta, reml), rtol=1e-8)
    assert np.min(np.linalg.eigvalsh(ai)) > 0


def test_analytic_derivatives_refuse_a_zero_theta(monkeypatch):
    design, layout, system = _system("crossed", "gram", monkeypatch)
    model = ScalarTermDerivatives(system, design.n, True)
    with pytest.raises(ValueError, match="theta_t > 0"):
        model.derivatives(model.factorize(np.array([0.0, 1.0])))


@pytest.mark.parametrize("case", ["crossed", "nested"])
@pytest.mark.parametrize("reml", [False, True])
def test_newton_reaches_the_derivative_free_optimum(case, reml, monkeypatch):
    formula, make = SCALAR[case]
    df = make()
    by_newton = lmm(formula, df, reml=reml)
    assert by_newton.diagnostics.optimizer.startswith("AI-Newton")
    monkeypatch.setattr(fit_module, "newton_fit", lambda *a, **k: None)
    by_bobyqa = lmm(formula, df, reml=reml)
    assert by_bobyqa.diagnostics.optimizer.startswith("nlopt")
    assert by_newton.objective <= by_bobyqa.objective + 1e-8
    np.testing.assert_allclose(by_newton.theta, by_bobyqa.theta, rtol=1e-4, atol=1e-6)
    d = by_newton.diagnostics
    assert d.converged and not d.warnings and d.max_abs_gradient < 1e-4
    assert by_newton._fit.checks.hessian_pd
    assert d.evaluations < by_bobyqa.diagnostics.evaluations


def test_boundary_optimum_goes_to_the_derivative_free_optimiser():
    """The b means of y are made equal (no spread at all between levels of b), so the REML
    estimate of b's variance is 0: AI-Newton gives up and BOBYQA finds the boundary."""
    df = crossed(3, na=12, nb=6, n=240, sd_b=0.0)
    df["y"] = df["y"] - df.groupby("b")["y"].transform("mean") + df["y"].mean()
    fit = lmm("y ~ x + (1 | a) + (1 | b)", df, reml=True)
    assert fit.diagnostics.optimizer.startswith("nlopt")
    assert fit.theta[1] == 0.0 and fit.diagnostics.singular
