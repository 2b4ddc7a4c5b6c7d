"""Optimising a GLMM deviance over all its parameters, on a scale where they are comparable.

The parameters (theta, fixed effects, thresholds) live on wildly different scales (a slope sd of
0.05 beside an intercept of -3.5). Both BOBYQA and finite-difference Newton behave far better
when each coordinate is measured in units of its (approximate) standard error, so the search
runs in ``z = (x - x0) / s + 4``: the shift makes the reused
:func:`backends.native.optimizer.minimize_bobyqa` (whose first step is a quarter of ``|start|``)
take a first step of one standard error in every coordinate. BOBYQA is followed by the LMM
code's projected Newton polish, which removes the small gradient BOBYQA leaves on flat deviances.
The derivatives at the optimum (SEs, convergence) are not taken here but by the observed
information of :mod:`backends.native.information`, in the fit driver.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

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
