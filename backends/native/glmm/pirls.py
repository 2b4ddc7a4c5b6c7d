"""Penalised iteratively reweighted least squares: the conditional modes of the random effects.

For fixed (theta, beta) the groups are independent, so the mode of
``sum_i f_i log p(y_i | eta_i) - |u_j|^2 / 2`` is found for all groups at once: one Newton step
is a ``k x k`` solve per group, vectorised over groups, with step halving per group when a
group's penalised log-likelihood would fall. Exact Newton (observed information) is used for the
iterations because it converges quadratically; the fixed point is the same mode lme4's
Fisher-scoring PIRLS finds.

:func:`joint_modes` is glmer's first stage (``nAGQ = 0``): the mode over ``(u, beta)`` together,
solved with the Schur complement on beta, which is what lets stage 1 optimise theta alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import Problem, chol, chol_logdet, chol_solve


class PirlsError(RuntimeError):
    """The conditional modes did not converge (non-finite likelihood or too many steps)."""


@dataclass
class Modes:
    u: np.ndarray          # (m, k) spherical modes
    eta: np.ndarray        # (n,) linear predictor at the modes
    loglik: np.ndarray     # (m,) conditional log-likelihood per group at the modes
    iterations: int


def _penalised(prob: Problem, eta: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per-group ``-2 log p(y_j | u_j) + |u_j|^2`` (the quantity PIRLS minimises)."""
    return -2.0 * prob.group_loglik(eta) + np.sum(u * u, axis=1)


def conditional_modes(prob: Problem, beta: np.ndarray, T: np.ndarray, u0: np.ndarray,
                      tol: float = 1e-10, maxit: int = 60) -> Modes:
    """Modes ``u_j`` for given beta and ``T``, starting from ``u0``."""
    ef = prob.eta_fixed(beta)
    u = u0.copy()
    eta = prob.eta(ef, u @ T.T)
    pen = _penalised(prob, eta, u)
    if not np.all(np.isfinite(pen)):
        u = np.zeros_like(u)
        eta = prob.eta(ef, u)
        pen = _penalised(prob, eta, u)
        if not np.all(np.isfinite(pen)):
            raise PirlsError("the conditional log-likelihood is not finite at u = 0")
    for it in range(1, maxit + 1):
        g, H = prob.score_info(eta, T)
        step = chol_solve(chol(H), g - u)
        scale = np.ones(u.shape[0])
        for _ in range(30):
            u_new = u + scale[:, None] * step
            eta_new = prob.eta(ef, u_new @ T.T)
            pen_new = _penalised(prob, eta_new, u_new)
            bad = ~(pen_new <= pen + 1e-10 * (1.0 + np.abs(pen)))
            if not bad.any():
                break
            scale = np.where(bad, 0.5 * scale, scale)
        else:
            raise PirlsError("step halving failed in the conditional-mode iterations")
        u, eta, pen = u_new, eta_new, pen_new
        if float(np.max(np.abs(scale[:, None] * step))) < tol:
            break
    else:
        raise PirlsError(f"conditional modes did not converge in {maxit} iterations")
    return Modes(u=u, eta=eta, loglik=-0.5 * (pen - np.sum(u * u, axis=1)), iterations=it)


@dataclass
class JointModes:
    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    deviance: float           # glmer nAGQ = 0 criterion at (u, beta)
    beta_cov: np.ndarray      # inverse of the Schur complement: approx. Var(beta)


def joint_modes(prob: Problem, theta: np.ndarray, beta0: np.ndarray, u0: np.ndarray,
                tol: float = 1e-9, maxit: int = 60) -> JointModes:
    """Mode over ``(u, beta)`` for one theta, with Fisher weights as glmer's PIRLS.

    Per group ``A_j = T'Z_j'WZ_jT + I``, ``B_j = T'Z_j'WX_j``; beta's system is the Schur
    complement ``X'WX - sum_j B_j' A_j^{-1} B_j``. Returns the nAGQ = 0 criterion
    ``-2 log p(y | u, beta) + |u|^2 + log det(A)`` and ``Var(beta)`` from the Schur complement.
    """
    d = prob.data
    T = prob.T(theta)
    k, p = d.k, d.p
    fZX = prob.fZ[:, :, None] * d.X[:, None, :]              # (n, k, p)
    fXX = d.freq[:, None, None] * d.X[:, :, None] * d.X[:, None, :]
    u, beta = u0.copy(), beta0.copy()

    def total(u_: np.ndarray, b_: np.ndarray) -> tuple[float, np.ndarray]:
        e = prob.eta(prob.eta_fixed(b_), u_ @ T.T)
        return float(np.sum(_penalised(prob, e, u_))), e

    obj, eta = total(u, beta)
    if not np.isfinite(obj):
        raise PirlsError("the log-likelihood is not finite at the starting values")
    for _ in range(maxit):
        d1, _ = prob.family.derivs(eta)
        w = prob.family.fisher(eta)
        gu = d.gsum(prob.fZ * d1[:, None]) @ T - u
        gb = d.X.T @ (d.freq * d1)
        A = T.T @ d.gsum(prob.ZZ * w[:, None, None]) @ T
        A[:, np.arange(k), np.arange(k)] += 1.0
        B = np.einsum("ab,mbp->map", T.T, d.gsum(fZX * w[:, None, None]))   # (m, k, p)
        S = np.einsum("npq,n->pq", fXX, w)
        L = chol(A)
        AinvB = np.stack([chol_solve(L, B[:, :, j]) for j in range(p)], axis=2)
        S = S - np.einsum("mkp,mkq->pq", B, AinvB)
        rhs = gb - np.einsum("mkp,mk->p", B, chol_solve(L, gu))
        db = np.linalg.solve(S, rhs)
        du = chol_solve(L, gu - B @ db)
        step = 1.0
        for _ in range(30):
            new_obj, new_eta = total(u + step * du, beta + step * db)
            if new_obj <= obj + 1e-10 * (1 + abs(obj)):
                break
            step *= 0.5
        else:
            raise PirlsError("step halving failed in the joint (u, beta) iterations")
        u, beta, obj, eta = u + step * du, beta + step * db, new_obj, new_eta
        if max(np.max(np.abs(step * du)), np.max(np.abs(step * db))) < tol:
            break
    w = prob.family.fisher(eta)
    A = T.T @ d.gsum(prob.ZZ * w[:, None, None]) @ T
    A[:, np.arange(k), np.arange(k)] += 1.0
    dev = obj + float(np.sum(chol_logdet(chol(A))))
    return JointModes(u=u, beta=beta, eta=eta, deviance=dev, beta_cov=np.linalg.inv(S))
