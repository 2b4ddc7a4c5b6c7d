"""A GLMM problem: grouped data, a response family and the covariance layout, plus the small
batched linear algebra every integration method shares.

Random effects follow lme4 (Bates et al. 2015): ``b_j = T u_j`` with spherical ``u_j ~ N(0, I)``
and ``T`` the ``k x k`` lower-triangular relative covariance factor built from theta by
:class:`backends.native.theta.ThetaLayout` (reused from the LMM code, so theta means exactly what
it means for lmer/glmer: for a GLMM there is no residual scale and ``Var(b) = T T'``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design import FactorBlock
from ..kernels import batched_backward, batched_cholesky, batched_forward
from ..theta import ThetaLayout
from .data import GroupedData
from .families import Family


@dataclass
class Problem:
    data: GroupedData
    family: Family
    layout: ThetaLayout

    def __post_init__(self) -> None:
        self.ZZ = self.data.ZZ()                       # (n, k, k), frequency-weighted
        self.fZ = self.data.freq[:, None] * self.data.Z

    @property
    def k(self) -> int:
        return self.data.k

    @property
    def factors(self) -> list[FactorBlock]:
        """The grouping factors (one), as :class:`.crossed.MultiProblem` lists its several."""
        return [self.data.factor]

    def covariances(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per factor, ``Var(b) = T T'``."""
        T = self.T(theta)
        return [T @ T.T]

    def T(self, theta: np.ndarray) -> np.ndarray:
        return self.layout.blocks[0].T(np.asarray(theta, dtype=float))

    def eta_fixed(self, beta: np.ndarray) -> np.ndarray:
        return self.data.X @ beta + self.data.offset

    def eta(self, eta_fixed: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Linear predictor for group effects ``b`` (m, k); ``b`` may carry nodes: (m, Q, k)."""
        d = self.data
        bg = b[d.group]
        if b.ndim == 3:
            return eta_fixed[:, None] + np.einsum("nk,nqk->nq", d.Z, bg)
        if d.k == 1:
            return eta_fixed + d.Z[:, 0] * bg[:, 0]
        return eta_fixed + np.einsum("nk,nk->n", d.Z, bg)

    def group_loglik(self, eta: np.ndarray) -> np.ndarray:
        """Per-group conditional log-likelihood ``sum_i f_i log p(y_i | eta_i)``; keeps nodes."""
        ll = self.family.loglik(eta)
        w = self.data.freq[:, None] if ll.ndim == 2 else self.data.freq
        return self.data.gsum(w * ll)

    def score_info(self, eta: np.ndarray, T: np.ndarray,
                   weights: str = "observed") -> tuple[np.ndarray, np.ndarray]:
        """Per group ``T' Z_j' d1`` (m, k) and ``T' Z_j' W Z_j T + I`` (m, k, k)."""
        d1, h = self.family.derivs(eta)
        if weights == "fisher":
            h = self.family.fisher(eta)
        g = self.data.gsum(self.fZ * d1[:, None]) @ T
        H = T.T @ self.data.gsum(self.ZZ * h[:, None, None]) @ T
        H[:, np.arange(self.k), np.arange(self.k)] += 1.0
        return g, H


def chol(H: np.ndarray) -> np.ndarray:
    """Batched lower Cholesky factors of ``(m, k, k)`` SPD matrices (closed form for k = 1)."""
    if H.shape[1] == 1:
        return np.sqrt(H)
    return batched_cholesky(H)


def chol_solve(L: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve ``L L' x = g`` per group; ``g`` is ``(m, k)``."""
    if L.shape[1] == 1:
        return g / (L[:, :, 0] ** 2)
    return batched_backward(L, batched_forward(L, g[:, :, None]))[:, :, 0]


def chol_inverse(L: np.ndarray) -> np.ndarray:
    """``(L L')^{-1}`` per group."""
    if L.shape[1] == 1:
        return 1.0 / L ** 2
    Linv = batched_forward(L, np.broadcast_to(np.eye(L.shape[1]), L.shape))
    return np.matmul(Linv.transpose(0, 2, 1), Linv)


def chol_logdet(L: np.ndarray) -> np.ndarray:
    """Per-group ``log det(L L')``."""
    return 2.0 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
