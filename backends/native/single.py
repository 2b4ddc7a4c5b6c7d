"""The fast path for models with one grouping factor (any number of terms on it).

With one factor, ``Z' Z`` is block-diagonal: level ``j`` contributes ``D_j = Z_j' Z_j`` (``k x k``)
and ``E_j = Z_j' [X y]``. These, and ``[X y]'[X y]``, are computed once from the n rows
(:class:`~backends.native.crossprod.CrossProducts`, or accumulated partition by partition); every
evaluation of the objective then works on the ``m`` small blocks only:

``L_j = chol(T' D_j T + I)``, ``C_j = L_j^{-1} T' E_j``, ``R' R = [X y]'[X y] - sum_j C_j' C_j``.

That is O(m k^2 (p + 1)) per evaluation, vectorised over levels, and memory linear in n.
"""

from __future__ import annotations

import numpy as np

from .design import Design
from .crossprod import CrossProducts
from .kernels import batched_backward, batched_forward, soa_cholesky, soa_forward, soa_sandwich
from .objective import Factorization, upper_cholesky
from .theta import ThetaLayout


class SingleFactorSystem:
    """Precomputed per-level cross-products for a model with exactly one grouping factor.

    Stored with the level index last (``D`` is ``(k, k, m)``, ``E`` is ``(k, p + 1, m)``) so the
    per-evaluation work is vector operations on contiguous length-m arrays.
    """

    def __init__(self, design: Design, layout: ThetaLayout):
        if len(design.factors) != 1:
            raise ValueError("SingleFactorSystem needs exactly one grouping factor")
        f = design.factors[0]
        self.layout = layout
        self.k, self.m = f.k, f.m
        self.p = design.p
        stats = CrossProducts.from_design(design)
        self.D = np.ascontiguousarray(stats.D[0].transpose(1, 2, 0))
        self.E = np.ascontiguousarray(stats.E[0].transpose(1, 2, 0))
        self.G = stats.G
        self.logdet_W = design.logdet_W

    def factorize(self, theta: np.ndarray, keep: bool = False) -> Factorization:
        T = self.layout.blocks[0].T(theta)
        k, m, p1 = self.k, self.m, self.p + 1
        A = soa_sandwich(T, self.D)
        for a in range(k):
            A[a, a] += 1.0
        L = soa_cholesky(A)
        TE = (T.T @ self.E.reshape(k, p1 * m)).reshape(k, p1, m)
        C = soa_forward(L, TE)                                  # (k, p+1, m)
        CtC = sum(C[a] @ C[a].T for a in range(k))
        R = upper_cholesky(self.G - CtC)
        logdet = 2.0 * float(sum(np.sum(np.log(L[a, a])) for a in range(k)))
        fact = Factorization(theta=np.array(theta, dtype=float), logdet_L=logdet, R=R,
                             logdet_W=self.logdet_W)
        if keep:
            # level-major copies for the once-only post-fit computations
            fact.extra.update(T=T, L=np.ascontiguousarray(L.transpose(2, 0, 1)),
                              C=np.ascontiguousarray(C.transpose(2, 0, 1)))
        return fact

    def conditional_modes(self, fact: Factorization, beta: np.ndarray) -> list[np.ndarray]:
        """``b = Lambda u`` with ``L' u = c_u - R_ZX beta``, as an ``(m, k)`` array."""
        T, L, C = fact.extra["T"], fact.extra["L"], fact.extra["C"]
        v = C[:, :, -1] - C[:, :, :-1] @ beta
        u = batched_backward(L, v[:, :, None])[:, :, 0]
        return [u @ T.T]

    def conditional_variances(self, fact: Factorization) -> list[np.ndarray]:
        """Per level, ``T (L_j L_j')^{-1} T'`` (multiply by sigma^2 for lme4's condVar)."""
        T, L = fact.extra["T"], fact.extra["L"]
        eye = np.broadcast_to(np.eye(self.k), L.shape)
        Linv = batched_forward(L, eye)
        P = np.matmul(Linv.transpose(0, 2, 1), Linv)
        return [np.matmul(np.matmul(T, P), T.T)]
