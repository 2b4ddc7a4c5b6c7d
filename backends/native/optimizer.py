"""Bound-constrained minimisation of the profiled objective over theta, and checks at the optimum.

BOBYQA (Powell 2009, via nlopt) is derivative-free and honours the lower bound 0 on diagonal
elements of theta, which is lme4's default choice for LMMs. Tolerances are tighter than lme4's
nloptwrap defaults (which sometimes stop early with convergence warnings): we stop only when
the deviance changes by less than ``ftol_abs`` and theta by less than ``xtol_abs``, then restart
once from the optimum with a small initial step to confirm it (a cheap guard against BOBYQA's
trust region having collapsed early).

The checks report what a user needs to judge the fit: the finite-difference gradient (one-sided
at active bounds, where a non-zero gradient pointing out of the feasible set is expected), and
whether the finite-difference Hessian over the free parameters is positive definite.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import nlopt
import numpy as np

Objective = Callable[[np.ndarray], float]


@dataclass
class OptimResult:
    theta: np.ndarray
    value: float
    evaluations: int
    converged: bool
    optimizer: str = "nlopt LN_BOBYQA"
    messages: list[str] = field(default_factory=list)


def minimize_bobyqa(fun: Objective, x0: np.ndarray, lower: np.ndarray,
                    ftol_abs: float = 1e-10, xtol_abs: float = 1e-9,
                    maxeval: int = 100_000) -> OptimResult:
    """Minimise ``fun`` from ``x0`` subject to ``x >= lower``; never raises for optimiser trouble."""
    n = x0.size
    count = 0
    messages: list[str] = []

    def wrapped(x: np.ndarray, grad: np.ndarray) -> float:
        nonlocal count
        count += 1
        v = fun(np.asarray(x))
        return v if math.isfinite(v) else 1e300

    best_x, best_f = np.array(x0, dtype=float), math.inf
    converged = True
    for attempt, step in enumerate((None, 1e-3)):
        opt = nlopt.opt(nlopt.LN_BOBYQA, n)
        opt.set_lower_bounds(lower.tolist())
        opt.set_min_objective(wrapped)
        opt.set_ftol_abs(ftol_abs)
        opt.set_xtol_abs(xtol_abs)
        opt.set_maxeval(maxeval)
        start = np.maximum(best_x if attempt else x0, lower)
        if step is not None:
            opt.set_initial_step(np.full(n, step).tolist())
        else:
            # Powell's advice: a first step of about a tenth of the expected change.
            opt.set_initial_step(np.maximum(0.25 * np.abs(start), 0.05).tolist())
        try:
            x = opt.optimize(start.tolist())
            f = opt.last_optimum_value()
            code = opt.last_optimize_result()
        except nlopt.RoundoffLimited:
            x, f, code = best_x, best_f, nlopt.ROUNDOFF_LIMITED
            messages.append("BOBYQA stopped because of round-off (the result is the best point)")
        except (nlopt.ForcedStop, RuntimeError, ValueError) as e:  # pragma: no cover
            messages.append(f"BOBYQA failed: {e}")
            converged = False
            break
        if code == nlopt.MAXEVAL_REACHED:
            converged = False
            messages.append(f"BOBYQA reached the evaluation limit ({maxeval})")
        if f <= best_f:
            best_x, best_f = np.asarray(x, dtype=float), float(f)
    return OptimResult(theta=best_x, value=best_f, evaluations=count,
                       converged=converged and math.isfinite(best_f), messages=messages)


def newton_polish(fun: Objective, x: np.ndarray, fx: float, lower: np.ndarray,
                  max_iter: int = 3) -> tuple[np.ndarray, float, int]:
    """A few projected Newton steps on the free parameters, with finite-difference derivatives.

    Why: BOBYQA stops on a flat deviance (changes below ``ftol_abs``), which for badly scaled
    theta (a slope sd of 0.01 next to an intercept of 0.4) can leave a visible gradient. A
    Newton step fixes that in one or two iterations and is accepted only if it lowers the
    objective, so it can never make the fit worse. Returns (x, f(x), evaluations used).
    """
    used = 0
    counted = _Counted(fun)
    for _ in range(max_iter):
        g, at_bound = fd_gradient(counted, x, lower)
        free = ~at_bound
        if not free.any():
            break
        H = fd_hessian(counted, x, free)
        try:
            step = np.linalg.solve(H, g[free])
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.min(np.linalg.eigvalsh(H)) <= 0:
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
        if not accepted or np.max(np.abs(step)) < 1e-10:
            break
    return x, fx, counted.calls


class _Counted:
    def __init__(self, fun: Objective):
        self.fun, self.calls = fun, 0

    def __call__(self, x: np.ndarray) -> float:
        self.calls += 1
        return self.fun(x)


def fd_gradient(fun: Objective, x: np.ndarray, lower: np.ndarray,
                h: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Central finite differences, forward differences at an active lower bound.

    Returns the gradient and a mask of parameters at their bound.
    """
    g = np.zeros_like(x)
    f0 = fun(x)
    at_bound = x - lower <= h
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        if at_bound[i]:
            g[i] = (fun(x + e) - f0) / h
        else:
            g[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g, at_bound


def fd_hessian_pd(fun: Objective, x: np.ndarray, free: np.ndarray,
                  h: float = 1e-4) -> tuple[bool | None, float | None]:
    """Whether the finite-difference Hessian over the ``free`` parameters is positive definite.

    Returns (is_pd, smallest eigenvalue); (None, None) when no parameter is free.
    """
    if not np.any(free):
        return None, None
    ev = float(np.min(np.linalg.eigvalsh(fd_hessian(fun, x, free, h))))
    return ev > 0, ev


def fd_hessian(fun: Objective, x: np.ndarray, free: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Finite-difference Hessian of ``fun`` over the ``free`` parameters."""
    idx = np.flatnonzero(free)
    f0 = fun(x)
    H = np.zeros((idx.size, idx.size))

    def shifted(*steps: tuple[int, float]) -> float:
        y = x.copy()
        for i, s in steps:
            y[i] += s
        return fun(y)

    for a, i in enumerate(idx):
        H[a, a] = (shifted((i, h)) - 2 * f0 + shifted((i, -h))) / h ** 2
        for b in range(a):
            j = idx[b]
            H[a, b] = H[b, a] = (shifted((i, h), (j, h)) - shifted((i, h), (j, -h))
                                 - shifted((i, -h), (j, h)) + shifted((i, -h), (j, -h))) / (4 * h * h)
    return H
