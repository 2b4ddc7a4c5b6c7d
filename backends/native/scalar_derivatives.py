"""Analytic gradient and average-information matrix of the profiled criterion, scalar terms.

For models whose random-effect terms are all scalar (``(1 | g)``, ``(0 + x | g)``: one number
``theta_t`` per grouping factor), ``Lambda`` is diagonal and the derivatives of lme4's profiled
deviance (ML) or REML criterion need only a few sums over each term's levels. With
``A = Lambda' Z'Z Lambda + I`` (``L L' = A``), ``u`` the spherical conditional modes at
``beta_hat``, ``r^2`` the penalised residual sum of squares, ``n_eff = n`` (ML) or ``n - p``
(REML), and ``C = A^{-1} Lambda' Z'X``:

* ``d/dtheta_t log det A = (2 / theta_t) (m_t - tr_t A^{-1})`` (``m_t`` levels; ``tr_t`` sums
  the diagonal over term t), because ``d A = (P_t (A - I) + (A - I) P_t) / theta_t``;
* ``d r^2 / dtheta_t = -2 |u_t|^2 / theta_t`` (envelope theorem: ``r^2`` is a minimum over
  ``u`` and ``beta``, and ``theta_t Z_t' e = u_t`` at that minimum);
* REML: ``d/dtheta_t log det(R_X' R_X) = -(2 / theta_t) |C_t R_X^{-1}|_F^2``;

so ``d crit / dtheta_t = (2 / theta_t) (m_t - tr_t A^{-1} - n_eff |u_t|^2 / r^2
- [REML] |C_t R_X^{-1}|_F^2)``. In the variance scale ``phi_t = theta_t^2`` the same is divided
by ``2 theta_t``.

The average-information matrix (Gilmour, Thompson and Cullis 1995) approximates the Hessian in
``phi`` without traces: with ``V = I + sum_t phi_t Z_t Z_t'``, ``P`` the REML projection for
``V`` and ``a_t = Z_t Z_t' P y`` (so ``Py = e``, the conditional residual, and
``a_t = Z_t u_t / theta_t``), ``AI_st = n_eff (a_s' P a_t / r^2 - (a_s' e)(a_t' e) / r^4)``:
half the sum of the observed and the expected Hessian of the criterion, positive
semi-definite, and cheap (a few sparse products and triangular solves).

The one expensive piece is ``tr_t A^{-1}`` for the terms in the dense block: the inverse of
block 2's Schur complement (``dpotri``, about twice a Cholesky). Everything here is linear
algebra on :class:`~backends.native.blocked.BlockedSystem`'s factorisation; the formulas are
checked against finite differences in tests/native/test_derivatives.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack, solve_triangular

from .blocked import BlockedSystem
from .objective import Factorization, profiled_deviance


@dataclass
class Derivatives:
    """The criterion and its derivatives at one theta (every theta_t > 0)."""

    value: float
    gradient: np.ndarray        # d crit / d theta
    gradient_phi: np.ndarray    # d crit / d phi, phi = theta^2
    ai: np.ndarray              # average information in phi (Hessian approximation)


def supports(system: object) -> bool:
    """Whether the analytic derivatives apply: the blocked path with scalar terms only."""
    return (isinstance(system, BlockedSystem) and system.mode in ("none", "dense", "gram")
            and all(f.k == 1 for f in system.factors))


class ScalarTermDerivatives:
    """Criterion, gradient and AI matrix for a :class:`BlockedSystem` with scalar terms."""

    def __init__(self, system: BlockedSystem, n: int, reml: bool):
        if not supports(system):
            raise ValueError("analytic derivatives need the blocked path with scalar terms")
        self.system, self.n, self.reml = system, n, reml
        self.factorizations = 0
        s = system
        self.m1 = s.m1
        # rows of each term (factor, in design order) in the system's order: block 1, block 2
        self.rows: list[np.ndarray] = [np.zeros(0, dtype=int)] * len(s.factors)
        if s.first is not None:
            self.rows[s.first] = np.arange(s.m1)
        for i in s.rest:
            self.rows[i] = s.m1 + s.offsets[i] + np.arange(s.factors[i].m)
        self.term_of_row = np.empty(s.m1 + s.q2, dtype=int)
        for t, r in enumerate(self.rows):
            self.term_of_row[r] = t
        self.levels = np.array([f.m for f in s.factors], dtype=float)
        self.ZtX = np.concatenate(([s.E1[:, 0, :s.p]] if s.first is not None else [])
                                  + [s.E2[:, :s.p]])
        self.D1 = s.D1[:, 0, 0] if s.first is not None else np.zeros(0)

    def factorize(self, theta: np.ndarray) -> Factorization:
        """The kept factorisation the derivatives need (counted in ``factorizations``)."""
        self.factorizations += 1
        return self.system.factorize(theta, keep=True)

    def value(self, fact: Factorization) -> float:
        return profiled_deviance(fact, self.n, self.reml)

    def derivatives(self, fact: Factorization) -> Derivatives:
        """Gradient and AI matrix at a kept factorisation whose theta is all positive."""
        s, theta = self.system, fact.theta
        if np.any(theta <= 0):
            raise ValueError("analytic derivatives need every theta_t > 0")
        p = s.p
        n_eff = self.n - p if self.reml else self.n
        r2 = fact.pwrss
        RX = fact.RX
        C = self._stacked_c(fact)                                   # L^{-1} Lambda' Z'[X y]
        CX, cy = C[:, :p], C[:, p]
        beta = fact.beta
        CRX = solve_triangular(RX, CX.T, trans="T", lower=False, check_finite=False).T
        X = s.back_solve(fact, np.column_stack([cy - CX @ beta, CRX]))
        u = X[:, 0]
        uu = self._term_sums(u * u)
        kappa = self._term_sums(np.sum(X[:, 1:] ** 2, axis=1)) if self.reml else 0.0
        tau = self._term_traces(fact)
        gphi = (self.levels - tau - n_eff * uu / r2 - kappa) / theta ** 2
        ai = self._average_information(fact, u, CX, RX, r2, n_eff)
        return Derivatives(value=self.value(fact), gradient=2.0 * theta * gphi,
                           gradient_phi=gphi, ai=ai)

    # ---- pieces ------------------------------------------------------------------------------
    def _stacked_c(self, fact: Factorization) -> np.ndarray:
        ex, s = fact.extra, self.system
        parts = [ex["C1"][:, 0, :]] if s.first is not None else []
        if s.q2:
            parts.append(ex["C2"])
        return np.concatenate(parts)

    def _term_sums(self, per_row: np.ndarray) -> np.ndarray:
        return np.bincount(self.term_of_row, weights=per_row, minlength=len(self.rows))

    def _term_traces(self, fact: Factorization) -> np.ndarray:
        """``tr_t A^{-1}`` for every term, from ``L^{-1} = [[L11^-1, 0], [-L22^-1 L21 L11^-1,
        L22^-1]]``: block 2's diagonal of ``S^{-1}`` (``S = L22 L22'``), and for block 1
        ``sum_j 1 / l_j^2 + <S^{-1}, L21 D_{1/l^2} L21'>``."""
        s, ex = self.system, fact.extra
        diag = np.empty(s.m1 + s.q2)
        Sinv = None
        if s.q2:
            Sinv, info = lapack.dpotri(np.array(ex["L22"], order="F"), lower=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"dpotri failed (info {info})")
            diag[s.m1:] = np.diag(Sinv)
        if s.first is not None:
            l2 = ex["L1"][:, 0, 0] ** 2
            diag[:s.m1] = 1.0 / l2
            tau = self._term_sums(diag)
            if s.q2:
                tau[s.first] += self._coupled_trace(fact, Sinv, l2)
            return tau
        return self._term_sums(diag)

    def _coupled_trace(self, fact: Factorization, Sinv: np.ndarray, l2: np.ndarray) -> float:
        """``<S^{-1}, L21 D_{1/l^2} L21'>``: on the gram pattern (lower triangle, off-diagonal
        entries twice) in gram mode, as ``|L22^{-1} L21 D_{1/l}|_F^2`` in dense mode."""
        s, ex = self.system, fact.extra
        if s.mode == "gram":
            g = s.gram
            lam = fact.theta[s._lam_scalar]
            w2 = (fact.theta[s.layout.blocks[s.first].offset] ** 2) / l2
            N = g.product(w2 / l2) * (lam[g.rows] * lam[g.cols])
            weight = np.where(g.rows == g.cols, 1.0, 2.0)
            return float(np.sum(Sinv.ravel(order="F")[g.flat] * N * weight))
        M = solve_triangular(ex["L22"], ex["L21"] / np.sqrt(l2)[None, :], lower=True,
                             check_finite=False)
        return float(np.sum(M * M))

    def _average_information(self, fact: Factorization, u: np.ndarray, CX: np.ndarray,
                             RX: np.ndarray, r2: float, n_eff: int) -> np.ndarray:
        """``AI_st = n_eff (a_s' P a_t / r^2 - (a_s'e)(a_t'e) / r^4)``, ``a_t = Z_t c_t``,
        ``c_t = u_t / theta_t``, from cross-products with ``Z'Z`` (never the n rows)."""
        s, theta = self.system, fact.theta
        nt = len(self.rows)
        c = u / theta[self.term_of_row]
        Cm = np.zeros((s.m1 + s.q2, nt))                 # column t: c on term t's rows
        Cm[np.arange(c.size), self.term_of_row] = c
        ZtZC = self._ztz_times(Cm)                        # Z'Z Cm  = Z' [a_1 .. a_T]
        aa = Cm.T @ ZtZC                                  # a_s' a_t
        lam_rows = theta[self.term_of_row]
        xa = s.forward_solve(fact, lam_rows[:, None] * ZtZC)  # L^{-1} Lambda' Z' a
        aVa = aa - xa.T @ xa                              # a_s' V^{-1} a_t
        XVa = self.ZtX.T @ Cm - CX.T @ xa                 # X' V^{-1} a_t
        z = solve_triangular(RX, XVa, trans="T", lower=False, check_finite=False)
        aPa = aVa - z.T @ z
        ae = np.sum(Cm * Cm, axis=0)                      # a_t' e = |c_t|^2
        ai = n_eff * (aPa / r2 - np.outer(ae, ae) / r2 ** 2)
        return 0.5 * (ai + ai.T)

    def _ztz_times(self, B: np.ndarray) -> np.ndarray:
        """``Z'Z B`` in system order, from the stored blocks ``D1``, ``S21``, ``Z_2'Z_2``."""
        s = self.system
        m1 = s.m1
        out = np.empty(B.shape)
        B1, B2 = B[:m1], B[m1:]
        coupled = s.first is not None and s.q2 > 0
        S21 = (s.S21[:, :, 0] if s.mode == "dense" else s.S21) if coupled else None
        if s.first is not None:
            out[:m1] = self.D1[:, None] * B1
            if coupled:
                out[:m1] += np.asarray(S21.T @ B2)
        if s.q2:
            out[m1:] = np.asarray(s.Z2tZ2 @ B2)
            if coupled:
                out[m1:] += np.asarray(S21 @ B1)
        return out
