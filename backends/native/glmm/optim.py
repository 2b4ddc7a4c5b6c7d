"""Optimising a GLMM deviance over all its parameters, on a scale where they are comparable.

The parameters (theta, fixed effects, thresholds) live on wildly different scales (a slope sd of
0.05 beside an intercept of -3.5). Both BOBYQA and finite-difference Newton behave far better
when each coordinate is measured in units of its (approximate) standard error, so the search
runs in ``z = (x - x0) / s + 4``: the shift makes the reused
:func:`backends.native.optimizer.minimize_bobyqa` (whose first step is a quarter of ``|start|``)
take a first step of one standard error in every coordinate. BOBYQA is followed by the LMM
code's projected Newton polish, which removes the small gradient BOBYQA leaves on flat deviances.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# Only the two optimiser entry points are reused (their signatures are the stable part of the
# LMM module); the finite differences here are in standard-error units, which theirs are not.
from ..optimizer import minimize_bobyqa, newton_polish

SHIFT = 4.0


@dataclass
class Optimum:
    x: np.ndarray
    value: float
    evaluations: int
    converged: bool
    messages: list[str] = field(default_factory=list)


def minimise(fun: Callable[[np.ndarray], float], x0: np.ndarray, lower: np.ndarray,
             scale: np.ndarray, polish: bool = True) -> Optimum:
    """Minimise ``fun`` from ``x0`` subject to ``x >= lower`` (BOBYQA, then Newton polish)."""
    s = np.asarray(scale, dtype=float)

    def to_x(z: np.ndarray) -> np.ndarray:
        return x0 + s * (np.asarray(z) - SHIFT)

    def g(z: np.ndarray) -> float:
        return fun(to_x(z))

    zl = np.where(np.isfinite(lower), (lower - x0) / s + SHIFT, -np.inf)
    z0 = np.full(x0.size, SHIFT)
    res = minimize_bobyqa(g, z0, zl)
    z, val, evals = res.theta, res.value, res.evaluations
    msgs = list(res.messages)
    if polish and math.isfinite(val):
        pol = newton_polish(g, z, val, zl)
        z2, v2 = pol.x, pol.value
        evals += pol.evaluations
        if v2 < val:
            msgs.append(f"Newton polish lowered the deviance by {val - v2:.3g}")
            z, val = z2, v2
    return Optimum(x=to_x(z), value=val, evaluations=evals, converged=res.converged,
                   messages=msgs)


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, free: np.ndarray,
            scale: np.ndarray, h: float = 1e-2) -> np.ndarray:
    """Finite-difference Hessian of ``fun`` over the ``free`` coordinates of ``x``.

    Steps are ``h`` standard errors (``scale``), large enough that the deviance's round-off and
    inner-iteration tolerance do not swamp the second differences, small enough that the
    deviance is quadratic over them. Returned on the original scale.
    """
    s = np.asarray(scale, dtype=float)
    idx = np.flatnonzero(free)
    f0 = fun(x)

    def at(*steps: tuple[int, float]) -> float:
        y = x.copy()
        for i, t in steps:
            y[i] += t * s[i]
        return fun(y)

    # Diagonal from f(x +- h e_i); off-diagonals from the symmetric 2-point formula
    # (f(++) - f(+.) - f(.+) + 2 f0 - f(-.) - f(.-) + f(--)) / 2h^2, O(h^2) like the 4-point one
    # at half the cost: 1 + n + n^2 evaluations.
    plus = {i: at((i, h)) for i in idx}
    minus = {i: at((i, -h)) for i in idx}
    Hz = np.zeros((idx.size, idx.size))
    for a, i in enumerate(idx):
        Hz[a, a] = (plus[i] - 2 * f0 + minus[i]) / h ** 2
        for b in range(a):
            j = idx[b]
            Hz[a, b] = Hz[b, a] = (at((i, h), (j, h)) - plus[i] - plus[j] + 2 * f0 - minus[i]
                                   - minus[j] + at((i, -h), (j, -h))) / (2 * h * h)
    sf = s[idx]
    return Hz / np.outer(sf, sf)


def gradient(fun: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray,
             scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference gradient on the original scale and the at-bound mask (steps of 1e-4
    standard errors; forward differences at an active bound)."""
    s = np.asarray(scale, dtype=float)
    h = 1e-4
    at_bound = (x - lower) / s <= h
    f0 = fun(x)
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h * s[i]
        g[i] = ((fun(x + e) - f0) / h if at_bound[i]
                else (fun(x + e) - fun(x - e)) / (2 * h))
    return g / s, at_bound
