"""Bound-constrained minimisation of the profiled objective over theta, and checks at the optimum.

BOBYQA (Powell 2009, via nlopt) is derivative-free and honours the lower bound 0 on diagonal
elements of theta, which is lme4's default choice for LMMs. BOBYQA converges only linearly at the
end (on InstEval it spends ~100 evaluations on 3 parameters), so it is run to a relative change
of ``ftol_rel`` and then finished with Newton steps on finite-difference derivatives, which
converge quadratically near the optimum and are accepted only when they lower the objective (so
they can never make a fit worse). The same derivatives give the convergence checks: the gradient
(one-sided at active bounds, where a gradient pointing out of the feasible set is expected) and
whether the Hessian over the free parameters is positive definite.

Boundary optima (a variance at zero) get two guards, because BOBYQA handles them badly: on a
criterion that is flat at the bound (REML for Dyestuff2 is constant to 1e-16 below theta = 1e-8)
nlopt stops with "round-off limited" *after* it has found the bound, and nlopt's exception
carries no point. So every evaluation is recorded and the best point seen is the answer, never
the start. Then each bounded coordinate is probed at its bound: where the objective is lower
there than at the point found (the optimum is on the boundary and BOBYQA stopped short of it),
BOBYQA restarts from the bound. Finally, if a parameter ends at its bound, BOBYQA is restarted
once from the optimum with a small step (Newton steps cannot move bound parameters), as a guard
against an early stop there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import nlopt
import numpy as np

Objective = Callable[[np.ndarray], float]

FD_STEP = 1e-4  # relative step on theta, see fd_steps


def fd_steps(x: np.ndarray, rel: float = FD_STEP, floor: float = 0.05) -> np.ndarray:
    """Per-parameter finite-difference steps ``rel * max(|x|, floor)``.

    Why relative: theta mixes scales (0.4 for an intercept, 0.016 for a slope sd in GCSE), and
    the truncation error of a central difference grows like h^2 times the third derivative; an absolute step of
    1e-4 on a parameter of size 0.016 reported a gradient of 0.05 where the true one is ~1e-4.
    """
    return rel * np.maximum(np.abs(x), floor)


@dataclass
class OptimResult:
    theta: np.ndarray
    value: float
    evaluations: int
    converged: bool
    optimizer: str = "nlopt LN_BOBYQA + Newton polish"
    messages: list[str] = field(default_factory=list)


class _Counted:
    """Counts evaluations and remembers the best point seen (the answer when nlopt gives up)."""

    def __init__(self, fun: Objective):
        self.fun, self.calls = fun, 0
        self.best_x: np.ndarray | None = None
        self.best_f = math.inf

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        x = np.array(x, dtype=float)
        value = self.fun(x)
        if value < self.best_f:
            self.best_x, self.best_f = x, value
        return value


def _bobyqa(fun: _Counted, x0: np.ndarray, lower: np.ndarray, step: np.ndarray,
            ftol_rel: float, xtol_abs: float, maxeval: int) -> tuple[np.ndarray, float, str]:
    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_lower_bounds(lower.tolist())

    def wrapped(x: np.ndarray, grad: np.ndarray) -> float:
        v = fun(x)
        return v if math.isfinite(v) else 1e300

    opt.set_min_objective(wrapped)
    opt.set_ftol_rel(ftol_rel)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxeval)
    opt.set_initial_step(step.tolist())
    try:
        x = np.asarray(opt.optimize(np.maximum(x0, lower).tolist()))
        status = "maxeval" if opt.last_optimize_result() == nlopt.MAXEVAL_REACHED else "ok"
        return x, float(opt.last_optimum_value()), status
    except nlopt.RoundoffLimited:
        # nlopt raises without a point: the best point evaluated is where BOBYQA got to
        if fun.best_x is None:
            return x0, fun(x0), "roundoff"
        return fun.best_x.copy(), fun.best_f, "roundoff"


def _first_step(x: np.ndarray) -> np.ndarray:
    """A quarter of each start value, at least 0.05 (see :func:`minimize_bobyqa`)."""
    return np.maximum(0.25 * np.abs(x), 0.05)


def _lower_at_a_bound(fun: _Counted, x: np.ndarray, fx: float, lower: np.ndarray
                      ) -> tuple[np.ndarray, float] | None:
    """The best of ``x`` with one bounded coordinate moved to its bound, if it beats ``fx``."""
    best: tuple[np.ndarray, float] | None = None
    for i in np.flatnonzero(np.isfinite(lower) & (x - lower > 1e-6)):
        y = x.copy()
        y[i] = lower[i]
        fy = fun(y)
        if fy < (best[1] if best else fx):
            best = (y, fy)
    return best


def minimize_bobyqa(fun: Objective, x0: np.ndarray, lower: np.ndarray,
                    ftol_rel: float = 1e-9, xtol_abs: float = 1e-9,
                    maxeval: int = 100_000) -> OptimResult:
    """Minimise ``fun`` from ``x0`` subject to ``x >= lower``; never raises for optimiser trouble.

    The first step is a quarter of each start value (at least 0.05): Powell's advice is about a
    tenth of the expected change, and theta moves O(0.1..1) from lme4's start. The boundary
    guards are described in the module docstring.
    """
    counted = _Counted(fun)
    messages: list[str] = []
    x, f, status = _bobyqa(counted, x0, lower, _first_step(x0), ftol_rel, xtol_abs, maxeval)
    if status == "roundoff":
        messages.append("BOBYQA stopped because of round-off (at the best point it evaluated)")
    probe = _lower_at_a_bound(counted, x, f, lower)
    if probe is not None:
        x2, f2, status2 = _bobyqa(counted, probe[0], lower, _first_step(probe[0]), ftol_rel,
                                  xtol_abs, maxeval)
        if f2 < f:
            messages.append(f"the objective was lower at a bound than at BOBYQA's point; "
                            f"restarted from the bound, it fell by {f - f2:.3g}")
            x, f, status = x2, f2, status2
    if status == "maxeval":
        messages.append(f"BOBYQA reached the evaluation limit ({maxeval})")
    converged = status != "maxeval"
    if np.any(x - lower <= 1e-6):
        x2, f2, _ = _bobyqa(counted, x, lower, np.full(x.size, 1e-3), ftol_rel, xtol_abs,
                            maxeval)
        if f2 < f:
            messages.append(f"a BOBYQA restart at the boundary lowered the objective by "
                            f"{f - f2:.3g}")
            x, f = x2, f2
    return OptimResult(theta=x, value=f, evaluations=counted.calls,
                       converged=converged and math.isfinite(f), messages=messages)


@dataclass
class Derivatives:
    gradient: np.ndarray
    at_bound: np.ndarray
    hessian: np.ndarray | None  # over the free parameters (None when not computed / none free)


def fd_derivatives(fun: Objective, x: np.ndarray, f0: float, lower: np.ndarray,
                   hessian: bool = True) -> Derivatives:
    """Finite-difference gradient and (optionally) Hessian, sharing evaluations.

    Free parameters: central differences, and the Hessian diagonal from the same two points;
    parameters within their step ``h`` of the bound: forward differences (they do not enter the Hessian).
    Off-diagonal Hessian entries use one extra point per pair,
    ``(f(x + h e_i + h e_j) - f(x + h e_i) - f(x + h e_j) + f(x)) / h^2``.
    Cost: ``2 n_free + n_bound`` evaluations, plus ``n_free (n_free - 1) / 2`` for the Hessian.
    """
    n = x.size
    h = fd_steps(x)
    g = np.zeros(n)
    at_bound = x - lower <= h
    fp = np.zeros(n)
    hdiag = np.zeros(n)
    for i in range(n):
        e = np.zeros(n)
        e[i] = h[i]
        fp[i] = fun(x + e)
        if at_bound[i]:
            g[i] = (fp[i] - f0) / h[i]
        else:
            fm = fun(x - e)
            g[i] = (fp[i] - fm) / (2 * h[i])
            hdiag[i] = (fp[i] - 2 * f0 + fm) / h[i] ** 2
    free = np.flatnonzero(~at_bound)
    H = None
    if hessian and free.size:
        H = np.diag(hdiag[free])
        for a in range(free.size):
            for b in range(a):
                i, j = free[a], free[b]
                e = np.zeros(n)
                e[i], e[j] = h[i], h[j]
                H[a, b] = H[b, a] = (fun(x + e) - fp[i] - fp[j] + f0) / (h[i] * h[j])
    return Derivatives(g, at_bound, H)


@dataclass
class Polished:
    """The point after polishing, with the derivatives the post-fit checks need."""

    x: np.ndarray
    value: float
    evaluations: int
    gradient: np.ndarray
    at_bound: np.ndarray
    hessian: np.ndarray | None   # over the free parameters, where it was last computed
    steps: int


def newton_polish(fun: Objective, x: np.ndarray, fx: float, lower: np.ndarray,
                  max_steps: int = 3, gtol: float = 1e-6) -> Polished:
    """Newton steps on the free parameters with a finite-difference Hessian (computed once).

    The Hessian changes little this close to the optimum, so it is reused for later steps
    (a chord method); each step costs one gradient (``2 n`` evaluations) plus 1-3 trial points.
    Stops when no step lowers the objective or the free gradient is below ``gtol``.
    """
    counted = _Counted(fun)
    d = fd_derivatives(counted, x, fx, lower, hessian=True)
    H = d.hessian
    steps = 0
    while H is not None and steps < max_steps:
        free = ~d.at_bound
        if free.sum() != H.shape[0] or np.max(np.abs(d.gradient[free])) < gtol:
            break
        try:
            if np.min(np.linalg.eigvalsh(H)) <= 0:
                break
            step = np.linalg.solve(H, d.gradient[free])
        except np.linalg.LinAlgError:
            break
        accepted = False
        for scale in (1.0, 0.5, 0.25):
            y = x.copy()
            y[free] -= scale * step
            y = np.maximum(y, lower)
            fy = counted(y)
            if fy < fx:
                x, fx, accepted = y, fy, True
                break
        if not accepted:
            break
        steps += 1
        d = fd_derivatives(counted, x, fx, lower, hessian=False)
    return Polished(x, fx, counted.calls, d.gradient, d.at_bound, H, steps)
