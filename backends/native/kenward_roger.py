"""Kenward–Roger (1997) denominator df and adjusted covariance of a REML LMM's fixed effects.

Follows pbkrtest 0.5.2 (``vcovAdj_internal`` and ``Lb_ddf``) exactly: the marginal covariance is
``V = sum_r g_r G_r`` with ``g`` the *covariance elements* of each random-effect term (variances
and covariances, lower triangle, term by term) and the residual variance last, ``G_r`` the
derivative of ``V`` in ``g_r`` (``Z E_r Z'`` for a random-effect element, ``I`` for the residual).
Because ``V`` is linear in ``g`` the second-derivative terms of Kenward and Roger vanish, which
is why this parameterisation (and not lme4's theta) is the one pbkrtest uses; A1 and A2 (and so
the df) are invariant under a *linear* change of ``g`` only.

With ``Phi = (X' V^-1 X)^-1`` (lme4's ``vcov``), ``P_r = -X' V^-1 G_r V^-1 X``,
``Q_rs = X' V^-1 G_r V^-1 G_s V^-1 X`` and ``W = 2 IE2^-1`` where
``IE2_rs = tr(G_r V^-1 G_s V^-1) - 2 tr(Phi Q_rs) + tr(Phi P_r Phi P_s)``:

* the adjusted covariance ``Phi_A = Phi + 2 Phi U Phi``, ``U = sum_rs W_rs (Q_rs - P_r Phi P_s)``;
* for one coefficient (``L`` a unit vector, q = 1) the df from A1, A2 as in ``Lb_ddf`` (which
  uses the *unadjusted* ``Phi``).

Nothing n x n is formed: ``V^-1 = (I - Z Lam C^-1 Lam' Z') / sigma^2`` (Woodbury, ``C = I +
Lam' Z' Z Lam``) is applied to the n x (p + q) matrices ``X`` and ``Z``, and the traces reduce to
q x q products. The cost is O(n q^2 + q^3) in time and O(n q) in memory with q the number of
random effects, so it is skipped above :data:`MAX_CELLS` (with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from harness.intervals import two_sided_p

from .design import Design
from .inference import DfTests
from .theta import ThetaLayout

#: the largest n x q (rows x random effects) for which the dense n x q arrays of the KR
#: computation are formed: 5e6 cells is 40 MB an array and about a second on the course machine
#: (GCSE random slope, n q = 5.3e5: 0.5 s); the x10 upscaled GCSE (n q = 2.6e7) is skipped.
MAX_CELLS = 5_000_000


@dataclass(frozen=True)
class KenwardRoger(DfTests):
    """KR tests (t = beta / ``se_adjusted``, the SE from pbkrtest's ``vcovAdj``)."""

    se_adjusted: np.ndarray


def _z_matrix(design: Design) -> sp.csr_matrix:
    """The n x q random-effects model matrix, levels-major within each factor (as lme4's Zt
    per term group and pbkrtest's ``Ig %x% EE``)."""
    blocks = []
    for f in design.factors:
        n, k = f.Z.shape
        rows = np.repeat(np.arange(n), k)
        cols = (np.asarray(f.codes, dtype=int)[:, None] * k + np.arange(k)[None, :]).ravel()
        blocks.append(sp.csr_matrix((f.Z.ravel(), (rows, cols)), shape=(n, f.m * k)))
    return sp.hstack(blocks, format="csr")


def _generators(design: Design) -> list[np.ndarray]:
    """Per covariance element of each term: ``(offset, m, e)`` with ``e`` the k x k symmetric
    unit pattern, so ``E_r = I_m (x) e`` sits at columns ``offset:offset + m k`` of Z and
    ``G_r = Z E_r Z'``."""
    out: list[tuple[int, int, np.ndarray]] = []
    offset = 0
    for f in design.factors:
        start = 0
        for t in f.term_sizes:
            for j in range(t):            # lower triangle column by column (pbkrtest's order)
                for i in range(j, t):
                    e = np.zeros((f.k, f.k))
                    e[start + i, start + j] = e[start + j, start + i] = 1.0
                    out.append((offset, f.m, e))
            start += t
        offset += f.m * f.k
    return out


def kenward_roger(design: Design, theta: np.ndarray, sigma: float) -> KenwardRoger:
    """pbkrtest's KR df and adjusted SEs for every fixed effect of a REML LMM at
    ``(theta, sigma)`` (lme4's theta: ``T = chol(Sigma) / sigma`` per factor).

    Raises ``ValueError`` for a design KR is not defined or not computed for here: no random
    effects, prior weights (pbkrtest takes the residual generator to be ``I`` whatever the
    weights, so there is no reference to match; a weighted working design is recognised by its
    ``logdet_W``), or ``n q`` above :data:`MAX_CELLS`. An offset is
    honoured (the working design's ``y - offset``).
    """
    if not design.factors:
        raise ValueError("no random effects: Kenward-Roger df are for mixed models")
    if design.weights is not None or design.logdet_W != 0.0:
        raise ValueError("prior weights: Kenward-Roger df are not computed for weighted LMMs "
                         "(pbkrtest ignores weights)")
    design = design.weighted()
    q_total = sum(f.q for f in design.factors)
    if design.n * q_total > MAX_CELLS:
        raise ValueError(f"n x q = {design.n} x {q_total} exceeds {MAX_CELLS:.0e}: the "
                         "Kenward-Roger computation is O(n q^2) in time and O(n q) in memory "
                         "and is skipped for a model this size")
    X = design.X
    n, p = X.shape
    Z = _z_matrix(design)
    layout = ThetaLayout.for_factors(design.factors)
    Lam = sp.block_diag([sp.kron(sp.identity(f.m), b.T(theta))
                         for f, b in zip(design.factors, layout.blocks)], format="csr")
    s2 = float(sigma) ** 2
    ZL = (Z @ Lam).tocsc()
    C = np.eye(Lam.shape[0]) + (ZL.T @ ZL).toarray()
    Cinv = np.linalg.inv(C)

    def vinv(Y: np.ndarray) -> np.ndarray:
        """``V^-1 Y`` by Woodbury."""
        return (Y - ZL @ (Cinv @ (ZL.T @ Y))) / s2

    VX = vinv(X)
    Zd = Z.toarray()
    VZ = vinv(Zd)
    M = Zd.T @ VZ                       # Z' V^-1 Z
    ZVX = Zd.T @ VX                     # Z' V^-1 X
    Phi = np.linalg.inv(X.T @ VX)
    A = (ZL.T @ ZL).toarray()
    CA = Cinv @ A
    tr_v2 = (n - 2.0 * np.trace(CA) + np.sum(CA * CA.T)) / s2 ** 2   # tr(V^-2)

    gens = _generators(design)
    R = len(gens) + 1                   # + the residual variance

    def E_full(r: int) -> sp.csr_matrix:
        """``E_r`` as a sparse q x q matrix (block diagonal: products with it cost O(q^2))."""
        off, m, e = gens[r]
        k, q = e.shape[0], Zd.shape[1]
        return sp.block_diag([sp.csr_matrix((off, off)), sp.kron(sp.identity(m), e),
                              sp.csr_matrix((q - off - m * k, q - off - m * k))], format="csr")

    E = [E_full(r) for r in range(len(gens))]
    # O_r = G_r V^-1 X (n x p) and H-traces tr(G_r V^-1 G_s V^-1)
    O = [Zd @ (Er @ ZVX) for Er in E] + [VX]
    P = [-(Or.T @ VX) for Or in O]
    Q = [[O[r].T @ vinv(O[s]) for s in range(R)] for r in range(R)]
    VZtVZ = VZ.T @ VZ                   # Z' V^-2 Z
    K = np.empty((R, R))
    for r in range(R):
        for s in range(r, R):
            if s < R - 1:
                K[r, s] = np.sum((E[r] @ M) * (E[s] @ M).T)
            elif r < R - 1:
                K[r, s] = E[r].multiply(VZtVZ).sum()
            else:
                K[r, s] = tr_v2
            K[s, r] = K[r, s]
    IE2 = np.empty((R, R))
    for r in range(R):
        for s in range(r, R):
            IE2[r, s] = IE2[s, r] = (K[r, s] - 2.0 * np.sum(Phi * Q[r][s])
                                     + np.sum((Phi @ P[r]) * (P[s] @ Phi)))
    W = 2.0 * (np.linalg.inv(IE2) if np.abs(np.linalg.eigvalsh(IE2)).min() > 1e-10
               else np.linalg.pinv(IE2))
    U = sum(W[r, s] * (Q[r][s] - P[r] @ Phi @ P[s]) for r in range(R) for s in range(R))
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    df = np.array([_lb_ddf(j, Phi, P, W) for j in range(p)])
    beta = Phi @ (X.T @ vinv(design.y[:, None])).ravel()       # GLS at (theta, sigma)
    se = np.sqrt(np.diag(PhiA))
    t = beta / se
    pv = np.array([two_sided_p(ti, di) for ti, di in zip(t, df)])
    return KenwardRoger("kenward-roger", tuple(design.x_names), df, t, pv, se)


def _lb_ddf(j: int, Phi: np.ndarray, P: list[np.ndarray], W: np.ndarray) -> float:
    """pbkrtest's ``Lb_ddf`` for ``L = e_j`` (q = 1)."""
    q = 1
    Theta = np.outer(Phi[j], Phi[j]) / Phi[j, j]      # Phi L' (L Phi L')^-1 L Phi
    u = [Theta @ Pr for Pr in P]                       # = Theta V0 P V0 with V0 = Phi folded
    tr = np.array([np.trace(ur) for ur in u])
    A1 = float(tr @ W @ tr)
    A2 = float(sum(W[r, s] * np.sum(u[r] * u[s].T) for r in range(len(P)) for s in range(len(P))))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    rho = (1.0 / q) * ((1.0 - A2 / q) / (1.0 - c2 * B)) ** 2 * (1.0 + c1 * B) / (1.0 - c3 * B)
    return 4.0 + (q + 2) / (q * rho - 1.0)
