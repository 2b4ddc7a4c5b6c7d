"""The post-fit gradient check judged against the curvature (fit.DECREMENT_TOL).

A finite-difference gradient above the limit is not convergence trouble when a Newton step would
lower the criterion by next to nothing (big n: the criterion, its curvature and the differences'
error all grow with the rows); with little curvature the same gradient still fails the fit, and
so does a gradient pushing out of a bound.
"""

from __future__ import annotations

import numpy as np
import pytest

from backends.native.design import build_design
from backends.native.fit import GRADIENT_FAIL, fit_design, run_checks
from backends.native.optimizer import Polished

from .simdata import two_level


@pytest.fixture(scope="module")
def fitted():
    return fit_design(build_design("y ~ x + (1 + x | g)", two_level(2, sd_slope=0.5)))


def _polished(fit, gradient, hessian, at_bound=None) -> Polished:
    k = fit.opt.theta.size
    return Polished(fit.opt.theta, fit.opt.value, 0, np.asarray(gradient, dtype=float),
                    np.zeros(k, bool) if at_bound is None else np.asarray(at_bound), hessian, 0)


def _checks(fit, pol):
    return run_checks(pol, fit.opt, fit.layout, fit.design)


def test_a_large_gradient_with_a_negligible_newton_step_is_converged(fitted):
    g = [0.015, -0.0005, -0.007]              # as measured on 10^7 rows (benchmarks.bigdata)
    checks = _checks(fitted, _polished(fitted, g, np.diag([4e5, 9e5, 1.6e6])))
    assert checks.converged
    assert any("Newton step would lower the criterion by only" in w for w in checks.warnings)


def test_the_same_gradient_with_little_curvature_is_not_converged(fitted):
    g = [0.015, -0.0005, -0.007]
    checks = _checks(fitted, _polished(fitted, g, np.diag([4.0, 9.0, 16.0])))
    assert not checks.converged
    assert any("gradient of the objective at the optimum" in f for f in checks.failures)


def test_a_gradient_pushing_out_of_a_bound_is_not_excused(fitted):
    g = [0.0, 0.0, -2 * GRADIENT_FAIL]        # the last parameter at its bound, f falls inside
    checks = _checks(fitted, _polished(fitted, g, np.diag([4e5, 9e5]),
                                       at_bound=[False, False, True]))
    assert not checks.converged


def test_without_a_positive_definite_hessian_the_gradient_decides(fitted):
    g = [0.015, 0.0, 0.0]
    checks = _checks(fitted, _polished(fitted, g, np.diag([4e5, -1.0, 1.0])))
    assert not checks.converged
