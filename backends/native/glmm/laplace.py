"""The Laplace approximation to the GLMM deviance, on glmer's scale (nAGQ = 1).

``-2 log L ~= sum_j [ -2 log p(y_j | u_j*) + |u_j*|^2 + log det(T'Z_j'W Z_j T + I) ]`` at the
conditional modes ``u*`` (Bates et al. 2015; lme4's ``glmResp::Laplace = ldL2 + sqrL + aic``).
``W`` holds lme4's Fisher weights for binomial/Poisson (so probit fits match glmer) and the
observed information for ordinal models (as ordinal::clmm). The modes are warm-started from the
previous evaluation: consecutive optimiser points are close, so PIRLS needs two or three steps.
"""

from __future__ import annotations

import math

import numpy as np

from .glmer_pirls import glmer_modes
from .pirls import Modes, PirlsError, conditional_modes
from .problem import Problem, chol, chol_inverse, chol_logdet


class LaplaceDeviance:
    """``(theta, beta) -> -2 log L`` by the Laplace approximation, with warm-started modes.

    With ``lp0`` set (glmer's stage-1 linear predictor) the modes and the determinant come from
    :func:`.glmer_pirls.glmer_modes`, reproducing glmer's numbers; otherwise they are exact.
    ``iterations`` fixes glmer's PIRLS step count (see :func:`.fit.fit_glmm` for why).
    """

    def __init__(self, prob: Problem, lp0: np.ndarray | None = None,
                 iterations: int | None = None):
        self.prob = prob
        self.lp0 = lp0
        self.iterations = iterations
        self.u = np.zeros((prob.data.m, prob.k))
        self.evaluations = 0

    def parts(self, theta: np.ndarray, beta: np.ndarray, weights: str | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Modes ``u`` (m, k), ``eta`` at them, per-group log-likelihood, and the matrices
        ``T'Z'WZT + I`` whose log-determinants enter the deviance."""
        if self.lp0 is not None:
            gm = glmer_modes(self.prob, theta, beta, self.lp0, self.iterations)
            return gm.u, gm.eta, gm.loglik, gm.H
        modes = self.modes(theta, beta)
        _, H = self.prob.score_info(modes.eta, self.prob.T(theta),
                                    weights=weights or self.prob.family.laplace_weights)
        return modes.u, modes.eta, modes.loglik, H

    def glmer_steps(self, theta: np.ndarray, beta: np.ndarray) -> int:
        """How many PIRLS steps glmer's own stopping rule takes here (glmer's path only)."""
        assert self.lp0 is not None
        return glmer_modes(self.prob, theta, beta, self.lp0).iterations

    def modes(self, theta: np.ndarray, beta: np.ndarray) -> Modes:
        T = self.prob.T(theta)
        try:
            modes = conditional_modes(self.prob, beta, T, self.u)
        except PirlsError:
            modes = conditional_modes(self.prob, beta, T, np.zeros_like(self.u))
        self.u = modes.u
        return modes

    def __call__(self, theta: np.ndarray, beta: np.ndarray) -> float:
        self.evaluations += 1
        try:
            u, _, loglik, H = self.parts(theta, beta)
            val = float(-2.0 * np.sum(loglik) + np.sum(u ** 2) + np.sum(chol_logdet(chol(H))))
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
            return math.inf
        return val if math.isfinite(val) else math.inf

    def conditional(self, theta: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conditional modes ``b = T u`` (m, k) and their covariances ``T H^{-1} T'`` (m, k, k),
        as glmer's ``ranef(condVar = TRUE)``."""
        u, _, _, H = self.parts(theta, beta)
        T = self.prob.T(theta)
        V = np.matmul(np.matmul(T, chol_inverse(chol(H))), T.T)
        return u @ T.T, V
