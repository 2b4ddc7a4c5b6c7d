"""The general path for several grouping factors (nested or crossed): a blocked Cholesky.

Following MixedModels.jl, the system ``[Z_1 Z_rest X y]`` is split into three blocks:

1. the grouping factor with the most random effects, whose ``Z_1' Z_1`` is block-diagonal
   (each row belongs to one level), so its Cholesky factor is ``m_1`` small ``k x k`` blocks;
2. all the other factors together (``q_2`` random effects), held dense: for InstEval that is
   ``d`` (1,128) + ``dept:service`` (~28), while ``s`` (2,972) is block 1;
3. ``[X y]``, dense and small.

Block 2's coupling with block 1, ``Z_rest' Z_1``, is sparse (one entry per observed pair of
levels) and stays sparse, so the Schur complement ``A_22 - L_21 L_21'`` costs about the number of
observed pairs, not ``q_2^2 q_1``. A dense ``q x q`` matrix of the whole system is never formed
(except with ``diag_first=False``, which exists to test this path against the plain dense one).
The blocks come from the data's cross-products (:class:`~backends.native.crossprod.CrossProducts`),
so a design summarised partition by partition is fitted the same way.

What one evaluation costs on InstEval (measured with cProfile on process time): block 2's dense
Cholesky (LAPACK ``dpotrf`` in place, ~18 ms of ~28 ms), the gram product ``Q w^2`` (~4 ms),
and filling block 2 at its pattern (~3 ms); everything else is below a millisecond.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular

from .crossprod import CrossProducts
from .design import Design
from .gram import build_gram_pattern, lower_pair_count
from .kernels import (batched_backward, batched_cholesky, batched_forward, batched_logdet,
                      left_multiply, sandwich)
from .objective import Factorization, cholesky_lower, upper_cholesky
from .theta import ThetaLayout


DENSE_LIMIT = 5_000_000   # q2^2 q1 below which block 2's coupling is handled densely
GRAM_LIMIT = 30_000_000   # max stored products for the precomputed Schur-complement pattern


class BlockedSystem:
    """Precomputed blocks of ``[Z X y]'[Z X y]`` for any number of grouping factors.

    The coupling ``L21 L21'`` (block 2's Schur complement) is formed in one of three ways:

    * ``dense``: small systems (the course models), where scipy.sparse's per-call overhead
      (~10 us) would cost more than the arithmetic;
    * ``gram``: scalar terms only (``k = 1`` everywhere, e.g. InstEval). Then
      ``L21 L21' = D_lam (S21 D_w^2 S21') D_lam`` with ``S21 = Z_2' Z_1`` fixed and ``w`` one
      number per level of factor 1, so every entry of ``S21 D_w^2 S21'`` is a fixed linear
      combination of ``w^2``: the pattern is precomputed once (:mod:`backends.native.gram`) and
      each evaluation is one sparse matrix-vector product ``Q w^2`` (no sparse-sparse product),
      written at the pattern's lower-triangle positions only;
    * ``sparse``: everything else, with scipy.sparse products.
    """

    def __init__(self, design: Design, layout: ThetaLayout, diag_first: bool = True):
        factors = design.factors
        order = sorted(range(len(factors)), key=lambda i: -factors[i].q)
        self.first: int | None = order[0] if diag_first else None
        self.rest = [i for i in order if i != self.first]
        self.layout = layout
        self.factors = factors
        self.p = design.p
        stats = CrossProducts.from_design(design)
        self.G = stats.G
        self.logdet_W = design.logdet_W

        self.k1 = self.m1 = 0
        if self.first is not None:
            f1 = factors[self.first]
            self.k1, self.m1 = f1.k, f1.m
            self.D1, self.E1 = stats.D[self.first], stats.E[self.first]
        self.offsets: dict[int, int] = {}
        off = 0
        for i in self.rest:
            self.offsets[i] = off
            off += factors[i].q
        self.q2 = off
        A22 = (sp.bmat([[stats.zz(i, j) for j in self.rest] for i in self.rest], format="csr")
               if self.rest else sp.csr_matrix((0, 0)))
        self.Z2tZ2 = A22                # kept sparse for products with Z_2'Z_2 (derivatives)
        self.A22 = A22.toarray()
        self.E2 = (np.concatenate([stats.zxy(i) for i in self.rest]) if self.rest
                   else np.zeros((0, self.p + 1)))
        self.scalar2 = all(factors[i].k == 1 for i in self.rest)
        self._lam2, self._lam2_src = self._lambda_structure()
        self._lam2_rows = np.repeat(np.arange(self.q2), np.diff(self._lam2.indptr))
        if self.scalar2:
            # theta index of each of block 2's random effects (one per level, in order)
            self._lam_scalar = np.concatenate(
                [np.full(factors[i].m, layout.blocks[i].offset) for i in self.rest]
                or [np.zeros(0, dtype=int)])
        self.mode = "none"
        if self.first is not None and self.q2:
            S21 = sp.vstack([stats.zz(i, self.first) for i in self.rest], format="csr")
            if self.q2 * self.q2 * self.m1 * self.k1 <= DENSE_LIMIT:
                self.mode = "dense"
                self.S21 = S21.toarray().reshape(self.q2, self.m1, self.k1)
            elif self.scalar2 and self.k1 == 1 and lower_pair_count(S21.tocsc()) <= GRAM_LIMIT:
                self.mode = "gram"
                self.S21 = S21
                # Block 2 is zero outside the pattern of S21 D S21' + Z_2'Z_2, so only those
                # positions are stored and filled.
                self.gram = build_gram_pattern(S21.tocsc(), self.q2, include=A22)
                self._A22_at = self.A22.ravel(order="F")[self.gram.flat]
                self._diag_at = self.gram.diagonal
                del self.A22
                # Reused by every evaluation: a fresh 10 MB array per call costs page faults.
                self._buffer = np.zeros((self.q2, self.q2), order="F")
            else:
                self.mode = "sparse"
                self.S21 = S21

    # ---- precomputation ---------------------------------------------------------------------
    def _lambda_structure(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """Sparsity pattern of block 2's ``Lambda`` and, per stored entry, its theta index.

        Built once so each evaluation only refills ``data`` (lme4's ``Lind``).
        """
        rows, cols, src = [], [], []
        for i in self.rest:
            f, b = self.factors[i], self.layout.blocks[i]
            base = self.offsets[i] + np.arange(f.m)[:, None] * f.k
            rows.append((base + b.rows[None, :]).ravel())
            cols.append((base + b.cols[None, :]).ravel())
            src.append(np.tile(b.offset + np.arange(b.size), f.m))
        if not rows:
            return sp.csr_matrix((0, 0)), np.zeros(0, dtype=int)
        r, c, s = np.concatenate(rows), np.concatenate(cols), np.concatenate(src)
        # Store position+1 so no entry is an explicit zero that a conversion could drop.
        lam = sp.csr_matrix((np.arange(1, r.size + 1, dtype=float), (r, c)),
                            shape=(self.q2, self.q2))
        return lam, s[lam.data.astype(int) - 1]

    def _lambda2(self, theta: np.ndarray) -> sp.csr_matrix | np.ndarray:
        """Block 2's Lambda: dense when block 2 is handled densely (small), sparse otherwise."""
        if self.mode in ("dense", "none"):
            lam = np.zeros((self.q2, self.q2))
            lam[self._lam2_rows, self._lam2.indices] = theta[self._lam2_src]
            return lam
        lam = self._lam2.copy()
        lam.data = theta[self._lam2_src].astype(float)
        return lam

    # ---- evaluation ---------------------------------------------------------------------------
    def factorize(self, theta: np.ndarray, keep: bool = False) -> Factorization:
        theta = np.asarray(theta, dtype=float)
        lam2 = self._lambda2(theta)
        lam = theta[self._lam_scalar] if self.scalar2 else None
        if lam is not None:
            A23 = lam[:, None] * self.E2
        else:
            lam2t = lam2.T if isinstance(lam2, np.ndarray) else lam2.T.tocsr()
            A23 = np.asarray(lam2t @ self.E2)
        logdet = 0.0
        extra: dict = {"lam2": lam2}
        G = self.G.copy()
        W = C1f = None
        if self.first is not None:
            T1 = self.layout.blocks[self.first].T(theta)
            A11 = sandwich(T1, self.D1)
            idx = np.arange(self.k1)
            A11[:, idx, idx] += 1.0
            L1 = batched_cholesky(A11)
            logdet += batched_logdet(L1)
            C1 = batched_forward(L1, left_multiply(T1, self.E1))          # (m1, k1, p+1)
            Linv1 = batched_forward(L1, np.broadcast_to(np.eye(self.k1), L1.shape))
            W = np.matmul(T1, Linv1.transpose(0, 2, 1))                 # T1 L1^{-T} per level
            C1f = C1.reshape(-1, self.p + 1)
            G -= C1f.T @ C1f
            extra.update(T1=T1, L1=L1, C1=C1, Linv1=Linv1)
        if self.q2:
            A22, L21 = self._schur(lam, lam2, W, A23, C1f, keep)
            if L21 is not None:
                extra["L21"] = L21
            L22 = cholesky_lower(A22)
            logdet += 2.0 * float(np.sum(np.log(np.diag(L22))))
            C2 = solve_triangular(L22, A23, lower=True, check_finite=False)
            G -= C2.T @ C2
            extra.update(L22=L22, C2=C2)
        R = upper_cholesky(G)
        fact = Factorization(theta=theta.copy(), logdet_L=logdet, R=R, logdet_W=self.logdet_W)
        if keep:
            fact.extra.update(extra)
        return fact

    def _schur(self, lam: np.ndarray | None, lam2, W: np.ndarray | None, A23: np.ndarray,
               C1f: np.ndarray | None, keep: bool) -> tuple[np.ndarray, object]:
        """Block 2 after eliminating block 1: ``Lambda_2' A22 Lambda_2 - L21 L21' + I``
        (lower triangle valid, Fortran order, ready for LAPACK), with ``A23 -= L21 C1`` in place.

        Returns the matrix and ``L21`` (``Lambda_2' Z_2' Z_1 Lambda_1 L_11^{-T}``; None in gram
        mode unless kept).
        """
        if self.mode == "gram":
            return self._schur_gram(lam, W[:, 0, 0], A23, C1f, keep)
        if lam is not None:
            A22 = self.A22 * np.outer(lam, lam)
        else:
            lam2t = lam2.T if isinstance(lam2, np.ndarray) else lam2.T.tocsr()
            A22 = np.asarray((lam2t @ np.asarray(lam2t @ self.A22).T).T)  # Lambda' A Lambda
        L21 = None
        if self.mode == "dense":
            L21 = np.einsum("rmk,mkl->rml", self.S21, W).reshape(self.q2, self.m1 * self.k1)
            L21 = lam[:, None] * L21 if lam is not None else np.asarray(lam2.T @ L21)
            A22 -= L21 @ L21.T
            A23 -= L21 @ C1f
        elif self.mode == "sparse":
            if self.k1 == 1:
                L21 = self.S21.multiply(W[:, 0, 0][None, :]).tocsr()
            else:
                Wsp = sp.bsr_matrix((W, np.arange(self.m1), np.arange(self.m1 + 1)),
                                    shape=(self.m1 * self.k1, self.m1 * self.k1))
                L21 = (self.S21 @ Wsp).tocsr()
            L21 = (L21.multiply(lam[:, None]) if lam is not None else lam2.T @ L21).tocsr()
            A22 -= (L21 @ L21.T).toarray()
            A23 -= np.asarray(L21 @ C1f)
        A22[np.diag_indices_from(A22)] += 1.0
        return np.asfortranarray(A22), L21

    def _schur_gram(self, lam: np.ndarray, w: np.ndarray, A23: np.ndarray, C1f: np.ndarray,
                    keep: bool) -> tuple[np.ndarray, object]:
        """Gram mode: only the pattern's lower-triangle positions are computed and written,
        into a buffer shared by evaluations (a fresh array when the factor is kept)."""
        g = self.gram
        values = (self._A22_at - g.product(w * w)) * (lam[g.rows] * lam[g.cols])
        values[self._diag_at] += 1.0
        A22 = self._buffer if not keep else np.zeros_like(self._buffer, order="F")
        A22.fill(0.0)
        A22.ravel(order="F")[g.flat] = values
        A23 -= lam[:, None] * (self.S21 @ (w[:, None] * C1f))
        L21 = self.S21.multiply(w[None, :]).multiply(lam[:, None]).tocsr() if keep else None
        return A22, L21

    # ---- conditional modes and variances -----------------------------------------------------
    def conditional_modes(self, fact: Factorization, beta: np.ndarray) -> list[np.ndarray]:
        """``b = Lambda u`` with ``L' u = c_u - R_ZX beta`` solved block-wise (block 2 first)."""
        ex = fact.extra
        parts = [ex["C1"].reshape(-1, self.p + 1)] if self.first is not None else []
        if self.q2:
            parts.append(ex["C2"])
        C = np.concatenate(parts)
        u = self.back_solve(fact, (C[:, -1] - C[:, :-1] @ beta)[:, None])[:, 0]
        out: list[np.ndarray] = [np.zeros((f.m, f.k)) for f in self.factors]
        q1 = self.m1 * self.k1
        if self.q2:
            b2 = ex["lam2"] @ u[q1:]
            for i in self.rest:
                f, o = self.factors[i], self.offsets[i]
                out[i] = b2[o:o + f.q].reshape(f.m, f.k)
        if self.first is not None:
            out[self.first] = u[:q1].reshape(self.m1, self.k1) @ ex["T1"].T
        return out

    def back_solve(self, fact: Factorization, B: np.ndarray) -> np.ndarray:
        """``L'^{-1} B`` for ``B`` of shape ``(q, c)``, rows in system order (block 1, levels
        major, then block 2); needs a kept factorisation."""
        ex = fact.extra
        q1 = self.m1 * self.k1
        X = np.empty(B.shape)
        if self.q2:
            X[q1:] = solve_triangular(ex["L22"], B[q1:], lower=True, trans="T",
                                      check_finite=False)
        if self.first is not None:
            B1 = B[:q1] - ex["L21"].T @ X[q1:] if self.q2 else B[:q1]
            B1 = np.asarray(B1).reshape(self.m1, self.k1, -1)
            X[:q1] = batched_backward(ex["L1"], B1).reshape(q1, -1)
        return X

    def forward_solve(self, fact: Factorization, B: np.ndarray) -> np.ndarray:
        """``L^{-1} B`` for ``B`` of shape ``(q, c)`` in system order; needs a kept
        factorisation."""
        ex = fact.extra
        q1 = self.m1 * self.k1
        X = np.empty(B.shape)
        rest = B[q1:]
        if self.first is not None:
            X1 = batched_forward(ex["L1"], B[:q1].reshape(self.m1, self.k1, -1))
            X[:q1] = X1.reshape(q1, -1)
            if self.q2:
                rest = rest - ex["L21"] @ X[:q1]
        if self.q2:
            X[q1:] = solve_triangular(ex["L22"], rest, lower=True, check_finite=False)
        return X

    def conditional_variances(self, fact: Factorization) -> list[np.ndarray]:
        """Per factor and level, the ``k x k`` block of ``Lambda (L L')^{-1} Lambda'``.

        Uses ``L^{-1} = [[L11^-1, 0], [-L22^-1 L21 L11^-1, L22^-1]]``; the dense pieces are
        ``q2 x q2`` and ``q2 x q1`` (computed once, after the fit).
        """
        ex = fact.extra
        theta = fact.theta
        out: list[np.ndarray] = [np.zeros((f.m, f.k, f.k)) for f in self.factors]
        if self.q2:
            Linv22 = solve_triangular(ex["L22"], np.eye(self.q2), lower=True, check_finite=False)
            for i in self.rest:
                f, o = self.factors[i], self.offsets[i]
                Li = Linv22[:, o:o + f.q].reshape(self.q2, f.m, f.k)
                P = np.einsum("rma,rmb->mab", Li, Li)
                T = self.layout.blocks[i].T(theta)
                out[i] = np.matmul(np.matmul(T, P), T.T)
        if self.first is not None:
            Linv1 = ex["Linv1"]
            P = np.matmul(Linv1.transpose(0, 2, 1), Linv1)
            if self.q2:
                Lsp = sp.bsr_matrix((Linv1, np.arange(self.m1), np.arange(self.m1 + 1)),
                                    shape=(self.m1 * self.k1, self.m1 * self.k1))
                L21Linv = ex["L21"] @ Lsp                                # sparse or dense
                L21Linv = L21Linv.toarray() if sp.issparse(L21Linv) else np.asarray(L21Linv)
                M = solve_triangular(ex["L22"], L21Linv, lower=True,
                                     check_finite=False).reshape(self.q2, self.m1, self.k1)
                P = P + np.einsum("rma,rmb->mab", M, M)
            T1 = ex["T1"]
            out[self.first] = np.matmul(np.matmul(T1, P), T1.T)
        return out
