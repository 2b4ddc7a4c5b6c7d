"""GLMMs with several grouping factors (crossed or nested): the data, ``Z Lambda(theta)`` and
the penalised weighted system ``Lambda'Z'W Z Lambda + I`` factored block-wise.

Why a second problem class: with one grouping factor the groups are independent and every
PIRLS step is a ``k x k`` solve per group (:mod:`.problem`). With several factors the random
effects are coupled, so a step solves one ``q x q`` system. The structure is the LMM's
(:mod:`backends.native.blocked`, after MixedModels.jl): the factor with the most random effects
goes first and its diagonal block is ``m_1`` small ``k_1 x k_1`` blocks; the other factors (and,
in the joint (u, beta) stage, the fixed effects) form one dense tail, reached through the Schur
complement. The difference from the LMM is that the weights ``W`` change with every PIRLS step,
so the cross-products are re-formed each time instead of precomputed once (scipy has no sparse
Cholesky; the blocked elimination needs none).

theta and ``Lambda`` follow lme4 exactly (:class:`backends.native.theta.ThetaLayout` for all
factors, in formula order), so theta means what it means for glmer. The random-effect vector
``u`` is stored flat: the first (largest) factor's levels, then the tail factors in order, each
level-major (level ``j``'s ``k`` effects together).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cholesky, solve_triangular

from ..design import Design, FactorBlock
from ..kernels import batched_forward, group_crossprod
from ..theta import ThetaLayout
from .families import Family
from .problem import chol


@dataclass
class MultiData:
    """Compressed rows for a model with several grouping factors (not sorted: no factor's
    levels are contiguous once another factor crosses it)."""

    X: np.ndarray                  # (n_c, p)
    y: np.ndarray
    trials: np.ndarray
    offset: np.ndarray
    freq: np.ndarray               # row frequency times prior weight
    codes: list[np.ndarray]        # per factor, the level of each row
    Z: list[np.ndarray]            # per factor, (n_c, k_f) random-effect columns
    factors: list[FactorBlock]
    nobs: int

    @property
    def p(self) -> int:
        return self.X.shape[1]


def multi_data(design: Design, y: np.ndarray, trials: np.ndarray | None = None,
               offset: np.ndarray | None = None, weights: np.ndarray | None = None,
               compress: bool = True) -> MultiData:
    """Merge rows identical in every factor's level, the response, trials, offset, prior weight
    and every column of X and Z (exact: they contribute identical likelihood terms)."""
    fs = design.factors
    n = y.shape[0]
    trials = np.ones(n) if trials is None else np.asarray(trials, dtype=float)
    offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    nf, p = len(fs), design.X.shape[1]
    table = np.column_stack([*(f.codes.astype(float) for f in fs), y, trials, offset, design.X,
                             *(f.Z for f in fs), weights])
    if compress:
        table, counts = np.unique(table, axis=0, return_counts=True)
        freq = counts.astype(float) * table[:, -1]
    else:
        freq = table[:, -1].copy()
    codes = [table[:, i].astype(np.int64) for i in range(nf)]
    c = nf + 3
    Zs, start = [], c + p
    for f in fs:
        Zs.append(np.ascontiguousarray(table[:, start:start + f.k]))
        start += f.k
    return MultiData(X=np.ascontiguousarray(table[:, c:c + p]), y=table[:, nf].copy(),
                     trials=table[:, nf + 1].copy(), offset=table[:, nf + 2].copy(), freq=freq,
                     codes=codes, Z=Zs, factors=list(fs), nobs=n)


@dataclass
class MultiProblem:
    """Several grouping factors, a response family and lme4's theta layout."""

    data: MultiData
    family: Family
    layout: ThetaLayout
    first: int = field(init=False)          # the factor whose block is block-diagonal
    order: list[int] = field(init=False)    # factors in storage order of u (first, then tail)
    slices: list[slice] = field(init=False)  # per factor (formula order), its part of u

    def __post_init__(self) -> None:
        fs = self.data.factors
        self.order = sorted(range(len(fs)), key=lambda i: -fs[i].q)
        self.first = self.order[0]
        self.slices = [slice(0, 0)] * len(fs)
        off = 0
        for i in self.order:
            self.slices[i] = slice(off, off + fs[i].q)
            off += fs[i].q
        self.q = off
        self.q1 = fs[self.first].q
        self._tail_pattern()

    @property
    def factors(self) -> list[FactorBlock]:
        return self.data.factors

    def _tail_pattern(self) -> None:
        """Where every row's products land in the dense cross-product blocks.

        The blocks ``Z_T' W Z_1``, ``Z_T' W Z_T`` and ``Z_T' W X`` (``T``: the tail factors) are
        sums over rows of products of one row's ``Z Lambda`` entries; which entry each product
        adds to is fixed by the data, only the values change with theta and the weights. So
        the flat positions are computed once and every factorisation is one ``np.bincount``
        per block (scipy.sparse products cost ~10x more in per-call overhead here).
        """
        d, p = self.data, self.data.p
        self._tail = [(i, a, self.slices[i].start - self.q1 + d.codes[i] * d.Z[i].shape[1] + a)
                      for i in self.order[1:] for a in range(d.Z[i].shape[1])]
        k1 = d.Z[self.first].shape[1]
        head = [d.codes[self.first] * k1 + b for b in range(k1)]
        q2 = self.q - self.q1
        self._idx_t1 = np.concatenate([ct * self.q1 + c1 for _, _, ct in self._tail
                                       for c1 in head])
        self._idx_tt = np.concatenate([ci * q2 + cj for _, _, ci in self._tail
                                       for _, _, cj in self._tail])
        self._idx_tx = np.concatenate([(ct[:, None] * p + np.arange(p)).ravel()
                                       for _, _, ct in self._tail])

    def Ts(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per factor (formula order), the ``k x k`` relative covariance factor ``T``."""
        theta = np.asarray(theta, dtype=float)
        return [b.T(theta) for b in self.layout.blocks]

    def covariances(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per factor, ``Var(b) = T T'`` (a GLMM has no residual scale)."""
        return [T @ T.T for T in self.Ts(theta)]

    def zt(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per factor, the rows of its block of ``Z Lambda``: ``z_i' T`` (n_c, k)."""
        return [Z @ T for Z, T in zip(self.data.Z, self.Ts(theta))]

    def eta_fixed(self, beta: np.ndarray) -> np.ndarray:
        return self.data.X @ beta + self.data.offset

    def eta(self, ef: np.ndarray, zt: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        """``X beta + offset + Z Lambda u``."""
        out = ef.copy()
        for i, (c, z) in enumerate(zip(self.data.codes, zt)):
            U = u[self.slices[i]].reshape(-1, z.shape[1])
            out += np.einsum("nk,nk->n", z, U[c])
        return out

    def crossprod(self, zt: list[np.ndarray], v: np.ndarray) -> np.ndarray:
        """``(Z Lambda)' v`` as a flat vector in u's order."""
        out = np.empty(self.q)
        for i, (c, z, f) in enumerate(zip(self.data.codes, zt, self.factors)):
            block = np.column_stack([np.bincount(c, weights=z[:, a] * v, minlength=f.m)
                                     for a in range(f.k)])
            out[self.slices[i]] = block.ravel()
        return out

    def loglik(self, eta: np.ndarray) -> float:
        """``sum_i f_i log p(y_i | eta_i)`` (full normalising constants)."""
        return float(np.sum(self.data.freq * self.family.loglik(eta)))

    def factorize(self, zt: list[np.ndarray], w: np.ndarray, with_beta: bool = False
                  ) -> "BlockedFactor":
        return BlockedFactor(self, zt, w, with_beta)


class BlockedFactor:
    """Cholesky factor of ``Lambda'Z'WZ Lambda + I`` (``with_beta``: of the joint matrix with
    ``[Z Lambda, X]`` and no penalty on beta), in the block form of the module docstring.

    ``L = [[L1, 0], [LT1, LT]]``: ``L1`` the first factor's per-level blocks, ``LT1`` dense
    ``r x q1`` (``r`` = tail random effects, plus ``p`` with beta), ``LT`` dense ``r x r``.
    """

    def __init__(self, prob: MultiProblem, zt: list[np.ndarray], w: np.ndarray,
                 with_beta: bool):
        d = prob.data
        f1 = prob.factors[prob.first]
        m1, k1 = f1.m, f1.k
        c1, z1 = d.codes[prob.first], zt[prob.first]
        A11 = group_crossprod(c1, m1, w[:, None] * z1, z1)
        A11[:, np.arange(k1), np.arange(k1)] += 1.0
        self.L1 = chol(A11)                   # closed form for k1 = 1 (the common case)
        self.Linv1 = (1.0 / self.L1 if k1 == 1 else
                      batched_forward(self.L1, np.broadcast_to(np.eye(k1), self.L1.shape)))
        q1, q2 = prob.q1, prob.q - prob.q1
        tail = [zt[i][:, a] for i, a, _ in prob._tail]
        wtail = [w * v for v in tail]
        HT1 = np.bincount(prob._idx_t1, minlength=q2 * q1, weights=np.concatenate(
            [t * z1[:, b] for t in wtail for b in range(k1)])).reshape(q2, q1)
        HTT = np.bincount(prob._idx_tt, minlength=q2 * q2, weights=np.concatenate(
            [t * v for t in wtail for v in tail])).reshape(q2, q2)
        HTT[np.diag_indices(q2)] += 1.0
        if with_beta:
            X = d.X
            HX1 = group_crossprod(c1, m1, w[:, None] * z1, X).reshape(m1 * k1, -1).T
            HXT = np.bincount(prob._idx_tx, minlength=q2 * X.shape[1], weights=np.concatenate(
                [(t[:, None] * X).ravel() for t in wtail])).reshape(q2, -1).T   # (p, q2)
            HT1 = np.vstack([HT1, HX1])
            HTT = np.block([[HTT, HXT.T], [HXT, X.T @ (w[:, None] * X)]])
        r = HTT.shape[0]
        self.LT1 = np.einsum("rjk,jlk->rjl", HT1.reshape(r, m1, k1),
                             self.Linv1).reshape(r, m1 * k1)
        S = HTT - self.LT1 @ self.LT1.T
        self.LT = cholesky(S, lower=True, check_finite=False)
        self.m1, self.k1, self.q2 = m1, k1, q2
        self.logdet_u = (2.0 * float(np.sum(np.log(np.diagonal(self.L1, axis1=1, axis2=2))))
                         + 2.0 * float(np.sum(np.log(np.diag(self.LT)[:q2]))))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``x`` with ``L L' x = rhs`` (rhs in u's order, then beta when ``with_beta``)."""
        q1 = self.m1 * self.k1
        y1 = np.einsum("jkl,jl->jk", self.Linv1, rhs[:q1].reshape(self.m1, self.k1))
        yT = solve_triangular(self.LT, rhs[q1:] - self.LT1 @ y1.ravel(), lower=True,
                              check_finite=False)
        xT = solve_triangular(self.LT, yT, lower=True, trans="T", check_finite=False)
        v1 = y1 - (self.LT1.T @ xT).reshape(self.m1, self.k1)
        return np.concatenate([np.einsum("jlk,jl->jk", self.Linv1, v1).ravel(), xT])

    def beta_covariance(self, p: int) -> np.ndarray:
        """With beta: the inverse of beta's Schur complement (approximate ``Var(beta)``)."""
        Lb = self.LT[-p:, -p:]
        Li = solve_triangular(Lb, np.eye(p), lower=True, check_finite=False)
        return Li.T @ Li

    def diagonal_blocks(self, prob: MultiProblem) -> list[np.ndarray]:
        """Per factor (formula order) and level, the ``k x k`` block of ``(L L')^{-1}`` (u only),
        from ``L^{-1} = [[L1^-1, 0], [-LT^-1 LT1 L1^-1, LT^-1]]`` (as
        :meth:`backends.native.blocked.BlockedSystem.conditional_variances`)."""
        out: list[np.ndarray] = [np.empty(0)] * len(prob.factors)
        LTinv = solve_triangular(self.LT, np.eye(self.LT.shape[0]), lower=True,
                                 check_finite=False)
        for i in prob.order[1:]:
            f = prob.factors[i]
            s = prob.slices[i]
            Li = LTinv[:, s.start - prob.q1:s.stop - prob.q1].reshape(-1, f.m, f.k)
            out[i] = np.einsum("rma,rmb->mab", Li, Li)
        M = np.einsum("rjk,jkl->rjl", self.LT1.reshape(-1, self.m1, self.k1), self.Linv1)
        M = (LTinv @ M.reshape(M.shape[0], -1)).reshape(-1, self.m1, self.k1)
        P = np.matmul(self.Linv1.transpose(0, 2, 1), self.Linv1)
        out[prob.first] = P + np.einsum("rma,rmb->mab", M, M)
        return out
