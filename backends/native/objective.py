"""The profiled deviance and REML criterion of a linear mixed model, exactly as lme4 defines them.

Every estimator path (one grouping factor, several) reduces a given theta to the same few
numbers, collected in :class:`Factorization`: ``log det(L L')`` where
``L L' = Lambda' Z' Z Lambda + I`` and the upper-triangular ``R`` of the fixed-effects/response
block, ``R' R = [X y]'[X y] - (L^{-1} Lambda' Z'[X y])' (L^{-1} Lambda' Z'[X y])``. Then (Bates et
al. 2015, eqs. 34 and 41)

* ``R = [[R_X, c_beta], [0, r]]`` with ``R_X beta_hat = c_beta`` and ``r^2`` the penalised
  residual sum of squares at ``beta_hat``;
* ML:   ``-2 log L = log|L|^2 + n (1 + log(2 pi r^2 / n))``;
* REML: ``log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))``;
* with prior weights (precision weights, ``Var(e_i) = sigma^2 / w_i``) both are those of the
  rows scaled by ``sqrt(w)`` less ``log|W| = sum(log w_i)`` (lme4's ``ldW``):
  :meth:`backends.native.design.Design.weighted` makes that design, ``logdet_W`` carries the
  term.

Keeping this in one function means the two paths cannot disagree about the criterion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.linalg import lapack, solve_triangular


@dataclass
class Factorization:
    """What one theta reduces to; ``extra`` keeps path-specific pieces for conditional modes."""

    theta: np.ndarray
    logdet_L: float
    R: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    logdet_W: float = 0.0  # sum(log w) of the prior weights (0 without weights)

    @property
    def p(self) -> int:
        return self.R.shape[0] - 1

    @property
    def pwrss(self) -> float:
        return float(self.R[-1, -1] ** 2)

    @property
    def RX(self) -> np.ndarray:
        return self.R[:-1, :-1]

    @property
    def logdet_RX(self) -> float:
        return 2.0 * float(np.sum(np.log(np.abs(np.diag(self.RX))))) if self.p else 0.0

    @property
    def beta(self) -> np.ndarray:
        if self.p == 0:
            return np.zeros(0)
        return solve_triangular(self.RX, self.R[:-1, -1], lower=False)


class LmmSystem(Protocol):
    """An estimator path: precomputed cross-products plus a way to factorise for a theta."""

    def factorize(self, theta: np.ndarray, keep: bool = False) -> Factorization: ...

    def conditional_modes(self, fact: Factorization, beta: np.ndarray) -> list[np.ndarray]: ...

    def conditional_variances(self, fact: Factorization) -> list[np.ndarray]: ...


def profiled_deviance(fact: Factorization, n: int, reml: bool) -> float:
    """lme4's objective: ``-2 log L`` (ML) or the REML criterion, profiled over beta and sigma."""
    p = fact.p
    pwrss = fact.pwrss
    if not (pwrss > 0 and math.isfinite(pwrss)):
        return math.inf
    if reml:
        nmp = n - p
        return (fact.logdet_L - fact.logdet_W + fact.logdet_RX
                + nmp * (1.0 + math.log(2.0 * math.pi * pwrss / nmp)))
    return fact.logdet_L - fact.logdet_W + n * (1.0 + math.log(2.0 * math.pi * pwrss / n))


def sigma_hat(fact: Factorization, n: int, reml: bool) -> float:
    """The profiled residual sd: ``sqrt(r^2 / n)`` (ML) or ``sqrt(r^2 / (n - p))`` (REML)."""
    return math.sqrt(fact.pwrss / (n - fact.p if reml else n))


def upper_cholesky(M: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor of the small fixed-effects block; raises LinAlgError if not PD."""
    return np.linalg.cholesky(M).T


def cholesky_lower(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a Fortran-ordered SPD matrix, in place, reading only its lower
    triangle (the upper one is left as it was); raises LinAlgError if not PD.

    Why LAPACK directly: ``scipy.linalg.cholesky`` copies, checks and zeroes the other triangle,
    which costs a tenth of the factorisation itself at InstEval's size (1,156 x 1,156).
    """
    L, info = lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"block not positive definite (LAPACK dpotrf info {info})")
    return L
