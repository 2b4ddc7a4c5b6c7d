"""lme4-style adaptive Gauss-Hermite quadrature for one scalar random effect per group.

As glmer with ``nAGQ = n`` (lme4's ``glmerAGQ``): for each group the n nodes are centred at the
conditional mode ``u*_j`` and scaled by ``1 / L_j``, where ``L_j^2 = T^2 z'Wz + 1`` is the PIRLS
curvature with glmer's Fisher weights. With ``D_j(u) = -2 log p(y_j | u) + u^2``,

``-2 log L_j = D_j(u*) + log L_j^2 - 2 log sum_q w_q exp(-(D_j(u*+z_q/L_j) - D_j(u*))/2 + z_q^2/2)``

(one node reproduces the Laplace approximation). The fit reports glmer's random effects, the
conditional modes (``self.laplace.conditional``); :meth:`AghqDeviance.posterior` gives the
posterior means and SDs from the same nodes and weights, for comparison.

Log-likelihood scale: this is ``-2 log L`` with the full binomial/Poisson constants, the scale of
glmer's Laplace fits. glmer's own nAGQ > 1 deviance is built from deviance residuals and so omits
the saturated log-likelihood ``sum_i [y_i log y_i - y_i - log y_i!]`` (lme4 issues #161, #567):
zero for 0/1 responses, but for the GCSE count model glmer's AGHQ(7) logLik is -1780.115 against
our -5170.211, and -1780.115 + (-3390.096) = -5170.211; a direct numerical integral gives
-5170.2109. Parameters and SEs are unaffected (the offset is a constant).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from .laplace import LaplaceDeviance
from .pirls import PirlsError
from .problem import Problem
from .quadrature import gh_normal


class AghqDeviance:
    """``(theta, beta) -> -2 log L`` by mode-curvature AGHQ with ``points`` nodes (k = 1)."""

    def __init__(self, prob: Problem, points: int, lp0: np.ndarray | None = None,
                 iterations: int | None = None):
        if prob.k != 1:
            raise ValueError("lme4-style AGHQ needs exactly one scalar random effect per group "
                             "(use the mean-variance adaptive method for vector effects)")
        self.prob = prob
        self.points = points
        self.z, w = gh_normal(points)
        self.logw = np.log(w)
        self.laplace = LaplaceDeviance(prob, lp0, iterations)
        self.evaluations = 0

    def _nodes(self, theta: np.ndarray, beta: np.ndarray):
        u, _, loglik, H = self.laplace.parts(theta, beta, weights="fisher")
        T = self.prob.T(theta)
        L = np.sqrt(H[:, 0, 0])
        U = u[:, 0, None] + self.z[None, :] / L[:, None]                # (m, Q)
        eta = self.prob.eta(self.prob.eta_fixed(beta), (U * T[0, 0])[:, :, None])
        ll = self.prob.group_loglik(eta)                                # (m, Q)
        D0 = -2.0 * loglik + u[:, 0] ** 2
        lj = -0.5 * (-2.0 * ll + U ** 2 - D0[:, None]) + 0.5 * self.z ** 2 + self.logw
        return U, L, D0, lj

    def __call__(self, theta: np.ndarray, beta: np.ndarray) -> float:
        self.evaluations += 1
        try:
            _, L, D0, lj = self._nodes(theta, beta)
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
            return math.inf
        val = float(np.sum(D0 + 2.0 * np.log(L) - 2.0 * logsumexp(lj, axis=1)))
        return val if math.isfinite(val) else math.inf

    def posterior(self, theta: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means (m, 1) and variances (m, 1, 1) of ``b_j`` by the same quadrature."""
        U, _, _, lj = self._nodes(theta, beta)
        r = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
        t = self.prob.T(theta)[0, 0]
        mean = np.sum(r * U, axis=1)
        var = np.sum(r * (U - mean[:, None]) ** 2, axis=1)
        return (t * mean)[:, None], (t * t * var)[:, None, None]
