"""Mean-variance adaptive Gauss-Hermite quadrature, Stata's ``intmethod(mvaghermite)``.

Rabe-Hesketh, Skrondal & Pickles (2005), as used by gllamm and Stata's ``me`` commands: for each
group the product-rule nodes (n per dimension) are placed at the group's *posterior mean* and
scaled by the Cholesky factor of its *posterior covariance*, both computed by the quadrature
itself and iterated to a fixed point. lme4 instead centres at the mode and scales by the
curvature there; with 7 points the two give slightly different log-likelihoods (third decimal on
the census model), which is why both exist and are labelled differently ("MVAGHQ(n)" here,
"AGHQ(n)" for lme4's).

With nodes ``u_jq = mu_j + C_j z_q`` in the spherical scale ``b = T u``:
``log L_j = log|C_j| + log sum_q w_q p(y_j | u_jq) phi(u_jq) / phi(z_q)``.

The adaptation starts at every evaluation from the Laplace mode and curvature at the
parameters, never from the previous evaluation's nodes: the fixed point depends on the start.
With 2 points it is not even unique (the quadrature's variance estimate from the nodes
``mu +- C`` is ``4 r_1 r_2 C^2 <= C^2``, so every ``C`` at which the two node weights balance is
a fixed point and the iteration only shrinks ``C``), and warm starts made the deviance a
function of the optimiser's history: on the census random-slope logit, MVAGHQ(2), 47460.86 at
BOBYQA's optimum and 47586.98 at the same point after the Hessian's evaluations. From the
Laplace start it is a function of the parameters, at about the same cost (7 iterations instead
of 6 there; 3 for 7 points). An adaptation that does not settle within ``maxit`` iterations is
an evaluation failure (infinite deviance), not a number.

Stata orders each random-effects equation's effects with ``_cons`` last, and the Cholesky factor
(hence the node set) depends on that order, so ``intercept_last`` (default) reproduces Stata's.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from .laplace import LaplaceDeviance
from .pirls import PirlsError
from .problem import Problem, chol, chol_inverse
from .quadrature import gh_product


class MvaghqDeviance:
    """``(theta, beta) -> -2 log L`` by mean-variance adaptive quadrature (any k)."""

    def __init__(self, prob: Problem, points: int, intercept_last: bool = True,
                 tol: float = 1e-9, maxit: int = 200):
        self.prob = prob
        self.points = points
        self.z, self.logw = gh_product(points, prob.k)
        self.half_z2 = 0.5 * np.sum(self.z ** 2, axis=1)
        cols = prob.data.factor.columns
        order = list(range(prob.k))
        if intercept_last and "(Intercept)" in cols:
            i = cols.index("(Intercept)")
            order = [j for j in order if j != i] + [i]
        self.perm = np.array(order)
        self.inv_perm = np.argsort(self.perm)
        self.tol, self.maxit = tol, maxit
        self.laplace = LaplaceDeviance(prob)
        self.evaluations = 0
        self.adapt_iterations = 0

    def _chol(self, V: np.ndarray) -> np.ndarray:
        """Cholesky factor in Stata's ordering, mapped back to model order (rows permuted)."""
        P = self.perm
        Vp = V[:, P][:, :, P]
        k = V.shape[1]
        Vp = Vp + 1e-12 * np.eye(k)
        Lp = chol(Vp)
        return Lp[:, self.inv_perm, :]

    def _start(self, theta: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Laplace mode and the Cholesky factor of the inverse curvature there."""
        modes = self.laplace.modes(theta, beta)
        _, H = self.prob.score_info(modes.eta, self.prob.T(theta), weights="observed")
        return modes.u.copy(), self._chol(chol_inverse(chol(H)))

    def _evaluate(self, ef: np.ndarray, T: np.ndarray, mu: np.ndarray, C: np.ndarray):
        U = mu[:, None, :] + np.einsum("mab,qb->mqa", C, self.z)          # (m, Q, k)
        eta = self.prob.eta(ef, U @ T.T)
        ll = self.prob.group_loglik(eta)                                  # (m, Q)
        lj = ll - 0.5 * np.sum(U * U, axis=2) + self.half_z2 + self.logw
        # C is a row-permuted triangular factor: |det C| = |det C C'|^(1/2).
        logdetC = 0.5 * np.linalg.slogdet(np.matmul(C, C.transpose(0, 2, 1)))[1]
        lse = logsumexp(lj, axis=1)
        r = np.exp(lj - lse[:, None])
        return U, r, logdetC + lse

    def adapt(self, theta: np.ndarray, beta: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Iterate the nodes from the Laplace start to the posterior mean and covariance;
        returns (log L_j, mu, V). Raises FloatingPointError if they do not settle."""
        theta = np.asarray(theta, dtype=float)
        T = self.prob.T(theta)
        ef = self.prob.eta_fixed(beta)
        mu, C = self._start(theta, beta)
        for it in range(1, self.maxit + 1):
            U, r, logL = self._evaluate(ef, T, mu, C)
            if not np.all(np.isfinite(logL)):
                raise FloatingPointError("non-finite group likelihood")
            mu_new = np.einsum("mq,mqa->ma", r, U)
            D = U - mu_new[:, None, :]
            V = np.einsum("mq,mqa,mqb->mab", r, D, D)
            if not np.all(np.isfinite(V)) or np.min(np.diagonal(V, axis1=1, axis2=2)) < 1e-10:
                raise FloatingPointError("the adaptive quadrature's covariance collapsed")
            C_new = self._chol(V)
            change = max(float(np.max(np.abs(mu_new - mu))), float(np.max(np.abs(C_new - C))))
            mu, C = mu_new, C_new
            if change < self.tol:
                break
        else:
            raise FloatingPointError(f"the adaptive quadrature did not settle in {self.maxit} "
                                     "iterations")
        self.adapt_iterations += it
        _, _, logL = self._evaluate(ef, T, mu, C)
        return logL, mu, np.matmul(C, C.transpose(0, 2, 1))

    def __call__(self, theta: np.ndarray, beta: np.ndarray) -> float:
        self.evaluations += 1
        try:
            logL, _, _ = self.adapt(theta, beta)
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
            return math.inf
        val = float(-2.0 * np.sum(logL))
        return val if math.isfinite(val) else math.inf

    def posterior(self, theta: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means (m, k) and covariances (m, k, k) of ``b_j`` (Stata's predict,
        reffects / reses)."""
        _, mu, V = self.adapt(theta, beta)
        T = self.prob.T(theta)
        return mu @ T.T, np.matmul(np.matmul(T, V), T.T)
