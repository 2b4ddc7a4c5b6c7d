"""glmer's PIRLS, reproduced step for step, for deviances that line up with glmer's digits.

Why this exists: glmer's Laplace (and AGHQ) deviance is not evaluated at the exact conditional
mode's curvature. lme4's ``pwrssUpdate`` (src/external.cpp) recomputes the Cholesky factor ``L``
from the weights at the *start* of each Fisher-scoring iteration, then steps, and stops when the
penalised deviance changes by less than ``tolPwrss = 1e-7`` (relative); the ``log det(L L')``
it returns therefore belongs to the weights one iteration *before* the returned modes. Every
stage-2 evaluation restarts the iterations from ``lp0`` (the linear predictor left by stage 1).
On the GCSE and popular2 random-intercept models this shifts glmer's Laplace log-likelihood by
~0.002-0.006 and the variance in its third digit, relative to the exact Laplace approximation
(:mod:`.pirls`). This module reproduces that path so "same settings as glmer" means the same
numbers; the exact Laplace stays available (``laplace: exact``).

The mode-finding is otherwise the same vectorised per-group algebra: with a single grouping
factor ``L L'`` is block-diagonal, so one iteration is a ``k x k`` solve per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from .pirls import PirlsError
from .problem import Problem, chol, chol_solve

TOL_PWRSS = 1e-7      # glmerControl()$tolPwrss
MAXIT = 30            # pwrssUpdate's maxit
MAX_HALVINGS = 10


@dataclass
class GlmerModes:
    u: np.ndarray        # (m, k) modes after the last iteration
    eta: np.ndarray      # (n,) linear predictor at u
    loglik: np.ndarray   # (m,) conditional log-likelihood per group at u
    H: np.ndarray        # (m, k, k) the lagged  T'Z'WZT + I  (weights one iteration behind)
    iterations: int


def saturated(prob) -> np.ndarray:
    """Per-row saturated log-likelihood, so ``-2 (ll - ll_sat)`` is R's deviance residual
    (lme4 tests convergence on the deviance-residual scale, not on ``-2 logLik``). ``prob`` is
    any problem with ``family`` and ``data.y`` / ``data.trials`` (one or several factors);
    computed once per problem."""
    cached = getattr(prob, "_sat", None)
    if cached is not None:
        return cached
    fam, d = prob.family, prob.data
    if hasattr(fam, "m"):
        p = d.y / d.trials
        sat = xlogy(d.y, p) + xlogy(d.trials - d.y, 1 - p) + fam.const
    else:
        sat = xlogy(d.y, d.y) - d.y + fam.const
    prob._sat = sat
    return sat


def glmer_modes(prob: Problem, theta: np.ndarray, beta: np.ndarray,
                lp0: np.ndarray, iterations: int | None = None) -> GlmerModes:
    """lme4's uOnly PIRLS from ``lp0`` for (theta, beta); see the module docstring.

    ``iterations`` fixes the number of Fisher-scoring steps instead of testing ``tolPwrss``.
    """
    d, fam = prob.data, prob.family
    T = prob.T(theta)
    ef = prob.eta_fixed(beta)
    sat = saturated(prob)
    eta = lp0
    u_prev = None
    old = np.inf
    k = prob.k
    for it in range(1, MAXIT + 1):
        d1, _ = fam.derivs(eta)
        w = fam.fisher(eta)
        H = T.T @ d.gsum(prob.ZZ * w[:, None, None]) @ T
        H[:, np.arange(k), np.arange(k)] += 1.0
        rhs = d.gsum(prob.fZ * (w * (eta - ef) + d1)[:, None]) @ T
        u = chol_solve(chol(H), rhs)
        eta = prob.eta(ef, u @ T.T)
        ll = fam.loglik(eta)
        pdev = float(-2.0 * np.sum(d.freq * (ll - sat)) + np.sum(u * u))
        if not (pdev <= old) and u_prev is not None:
            for _ in range(MAX_HALVINGS):
                u = 0.5 * (u_prev + u)
                eta = prob.eta(ef, u @ T.T)
                ll = fam.loglik(eta)
                pdev = float(-2.0 * np.sum(d.freq * (ll - sat)) + np.sum(u * u))
                if pdev <= old:
                    break
            if not pdev - old <= TOL_PWRSS:      # lme4 tolerates a rise below tol
                raise PirlsError("PIRLS step-halvings failed to reduce the deviance")
        if not np.isfinite(pdev):
            raise PirlsError("non-finite penalised deviance in PIRLS")
        done = it == iterations if iterations else abs((old - pdev) / pdev) < TOL_PWRSS
        if done:
            return GlmerModes(u=u, eta=eta, loglik=d.gsum(d.freq * ll), H=H, iterations=it)
        old, u_prev = pdev, u
    raise PirlsError(f"PIRLS did not converge in {MAXIT} iterations")
