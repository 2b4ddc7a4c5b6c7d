"""Fit a linear mixed model: choose the path, optimise theta, check the optimum.

This is the only module that ties the pieces together (design -> system -> objective ->
optimiser); the rich result object lives in :mod:`backends.native.result`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .blas import single_threaded_blas
from .blocked import BlockedSystem
from .design import Design, DesignError
from .levels import refusal
from .newton import newton_fit
from .objective import Factorization, LmmSystem, profiled_deviance
from .optimizer import OptimResult, Polished, minimize_bobyqa, newton_polish
from .single import SingleFactorSystem
from .theta import ThetaLayout

Path = Literal["auto", "single", "blocked", "dense"]

SINGULAR_TOL = 1e-4  # lme4's isSingular() tolerance on diagonal theta elements


def make_system(design: Design, layout: ThetaLayout, path: Path = "auto") -> LmmSystem:
    """The fastest correct path: per-level blocks for one factor, blocked Cholesky otherwise.

    The system is built on the design's gaussian working form (prior weights and offset,
    :meth:`Design.weighted`). ``dense`` (the blocked code with no block-diagonal factor) exists
    for testing.
    """
    design = design.weighted()
    if path == "auto":
        path = "single" if len(design.factors) == 1 else "blocked"
    if path == "single":
        return SingleFactorSystem(design, layout)
    return BlockedSystem(design, layout, diag_first=(path == "blocked"))


def objective_function(system: LmmSystem, n: int, reml: bool):
    """theta -> profiled deviance (ML) or REML criterion; +inf where a factor is not PD."""
    def f(theta: np.ndarray) -> float:
        try:
            return profiled_deviance(system.factorize(np.asarray(theta, dtype=float)), n, reml)
        except np.linalg.LinAlgError:
            return math.inf
    return f


GRADIENT_WARN = 1e-3     # max |gradient| (theta units) above which the result warns
GRADIENT_FAIL = 1e-2     # ... and above which the fit is not converged
#: Newton decrement g' H^-1 g (deviance units) below which a gradient above GRADIENT_FAIL is
#: the finite differences' error, not distance from the optimum. Why: the criterion, its
#: curvature and the differences' truncation and rounding errors all grow with n; on 10^7 rows
#: (benchmarks.bigdata) the central-difference gradient was 0.015 at steps of 1e-4 (0.59 at
#: 1e-3, 0.0097 at 1e-5) while the Newton step was 2e-8 in theta, the decrement 2.8e-10 and no
#: step lowered the criterion. A decrement of 1e-6 bounds the log-likelihood a Newton step could
#: still gain by 2.5e-7, inside the 1e-6 accuracy target; lme4 scales its gradient check the
#: same way (max |chol(H)^-1 g| < 2e-3).
DECREMENT_TOL = 1e-6


@dataclass
class Checks:
    max_abs_gradient: float
    gradient: np.ndarray
    at_bound: np.ndarray
    hessian_pd: bool | None
    hessian_min_eigenvalue: float | None
    singular: bool
    warnings: list[str] = field(default_factory=list)
    #: why the fit is not a converged optimum (empty: it is); each reason is also a warning
    failures: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not self.failures


@dataclass
class LmmFit:
    design: Design
    layout: ThetaLayout
    system: LmmSystem
    reml: bool
    opt: OptimResult
    fact: Factorization
    checks: Checks
    seconds: float


def fit_design(design: Design, reml: bool = True, path: Path = "auto",
               theta0: np.ndarray | None = None, check: bool = True) -> LmmFit:
    """Optimise theta for a prepared design and run the post-fit checks."""
    with single_threaded_blas():
        return _fit_design(design, reml, path, theta0, check)


def _fit_design(design: Design, reml: bool, path: Path, theta0: np.ndarray | None,
                check: bool) -> LmmFit:
    t0 = time.perf_counter()
    refused = refusal(design, "lmer")
    if refused:
        raise DesignError(refused)
    design.outcome("gaussian")  # a categorical response is an error, not its level codes
    layout = ThetaLayout.for_factors(design.factors)
    system = make_system(design, layout, path)
    f = objective_function(system, design.n, reml)
    lower = layout.lower_bounds()
    x0 = layout.initial() if theta0 is None else np.asarray(theta0, dtype=float)
    by_newton = newton_fit(system, design.n, reml, x0, check)
    if by_newton is not None:       # scalar terms on the blocked path (backends/native/newton.py)
        opt, pol = by_newton
        checks = run_checks(pol, opt, layout, design) if pol is not None else _no_checks(opt)
        return _finish(design, layout, system, reml, opt, checks, t0)
    opt = minimize_bobyqa(f, x0, lower)
    # A diagonal element a hair above 0 is a boundary optimum: snap it if that is no worse up to
    # rounding (the criterion depends on theta^2, so 1e-8 and 0 differ by ~1e-16 relative).
    snapped = np.where((layout.diagonal_mask()) & (np.abs(opt.theta) < 1e-7), 0.0, opt.theta)
    if not np.array_equal(snapped, opt.theta):
        fs = f(snapped)
        opt.evaluations += 1
        if fs <= opt.value + 1e-12 * (1.0 + abs(opt.value)):
            opt.theta, opt.value = snapped, fs
    if check:
        pol = newton_polish(f, opt.theta, opt.value, lower)
        opt.evaluations += pol.evaluations
        if pol.value < opt.value:
            opt.messages.append(f"{pol.steps} Newton step(s) lowered the objective by "
                                f"{opt.value - pol.value:.3g}")
            opt.theta, opt.value = pol.x, pol.value
        checks = run_checks(pol, opt, layout, design)
    else:
        checks = _no_checks(opt)
    return _finish(design, layout, system, reml, opt, checks, t0)


def _no_checks(opt: OptimResult) -> Checks:
    """The result of a fit run without post-fit checks: only the optimiser's own verdict."""
    return Checks(math.nan, np.zeros(0), np.zeros(0, bool), None, None, False,
                  failures=[] if opt.converged else
                  ["the optimiser did not report convergence: "
                   + "; ".join(opt.messages or ["no detail"])])


def _finish(design: Design, layout: ThetaLayout, system: LmmSystem, reml: bool,
            opt: OptimResult, checks: Checks, t0: float) -> LmmFit:
    """Factorise at the optimum (kept for the result) and time the whole fit."""
    fact = system.factorize(opt.theta, keep=True)
    return LmmFit(design, layout, system, reml, opt, fact, checks, time.perf_counter() - t0)


def run_checks(pol: Polished, opt: OptimResult, layout: ThetaLayout, design: Design) -> Checks:
    """Gradient, Hessian and singularity checks, with plain-language warnings."""
    theta = opt.theta
    grad, at_bound = pol.gradient, pol.at_bound
    # At an active bound only a gradient pushing *into* the infeasible side is acceptable.
    free_grad = np.where(at_bound, np.minimum(grad, 0.0), grad)
    max_grad = float(np.max(np.abs(free_grad))) if grad.size else 0.0
    pd_ok: bool | None = None
    min_ev: float | None = None
    if pol.hessian is not None and pol.hessian.size:
        min_ev = float(np.min(np.linalg.eigvalsh(pol.hessian)))
        pd_ok = min_ev > 0
    diag = layout.diagonal_mask()
    singular = bool(np.any(diag & (np.abs(theta) < SINGULAR_TOL)))
    warnings: list[str] = []
    failures: list[str] = []
    if singular:
        names = _singular_groups(layout, design, theta)
        warnings.append(
            "singular fit: the estimated random-effects covariance for "
            f"{', '.join(names)} is degenerate (a variance at zero or a correlation at +/-1); "
            "the model is probably over-specified for these data")
    if not opt.converged:
        failures.append("the optimiser did not report convergence: "
                        + "; ".join(opt.messages or ["no detail"]))
    decrement = _newton_decrement(pol)
    # only the free parameters' gradient is judged by the decrement; one pushing out of a bound
    # is judged as before
    bound_ok = not np.any(at_bound & (grad < -GRADIENT_FAIL))
    if max_grad > GRADIENT_FAIL and bound_ok and decrement is not None \
            and decrement < DECREMENT_TOL:
        warnings.append(f"the finite-difference gradient at the optimum is {max_grad:.2g}, but "
                        f"a Newton step would lower the criterion by only {decrement / 2:.1g} "
                        "(the gradient's error grows with the number of rows): converged")
    elif max_grad > GRADIENT_FAIL:
        failures.append(f"not converged: the gradient of the objective at the optimum is "
                        f"{max_grad:.2g} (max |gradient| over theta; the limit is "
                        f"{GRADIENT_FAIL:g})")
    elif max_grad > GRADIENT_WARN:
        warnings.append(f"the gradient of the objective at the optimum is not small "
                        f"(max |gradient| = {max_grad:.2g}); the estimates may be imprecise")
    if pd_ok is False:
        failures.append("not converged: the Hessian of the objective over the free covariance "
                        f"parameters is not positive definite (smallest eigenvalue "
                        f"{min_ev:.3g}): a saddle point, or the model is weakly identified")
    warnings += failures
    warnings.extend(design.warnings())
    return Checks(max_grad, grad, at_bound, pd_ok, min_ev, singular, warnings, failures)


def _newton_decrement(pol: Polished) -> float | None:
    """``g' H^-1 g`` over the free parameters (twice the decrease a Newton step predicts), or
    None without a positive-definite Hessian of them."""
    free = ~pol.at_bound
    H = pol.hessian
    if H is None or H.shape[0] != int(free.sum()) or not free.any():
        return None
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    z = np.linalg.solve(L, pol.gradient[free])
    return float(z @ z)


def _singular_groups(layout: ThetaLayout, design: Design, theta: np.ndarray) -> list[str]:
    out = []
    for b, fb in zip(layout.blocks, design.factors):
        t = theta[b.offset:b.offset + b.size]
        if np.any((b.rows == b.cols) & (np.abs(t) < SINGULAR_TOL)):
            out.append(fb.name)
    return out
