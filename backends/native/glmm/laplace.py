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

from .pirls import Modes, PirlsError, conditional_modes
from .problem import Problem, chol, chol_inverse, chol_logdet


class LaplaceDeviance:
    """``(theta, beta) -> -2 log L`` by the Laplace approximation, with warm-started modes."""

    def __init__(self, prob: Problem):
        self.prob = prob
        self.u = np.zeros((prob.data.m, prob.k))
        self.evaluations = 0

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
            modes = self.modes(theta, beta)
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError):
            return math.inf
        T = self.prob.T(theta)
        _, H = self.prob.score_info(modes.eta, T, weights=self.prob.family.laplace_weights)
        val = float(-2.0 * np.sum(modes.loglik) + np.sum(modes.u ** 2)
                    + np.sum(chol_logdet(chol(H))))
        return val if math.isfinite(val) else math.inf

    def conditional(self, theta: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conditional modes ``b = T u`` (m, k) and their covariances ``T H^{-1} T'`` (m, k, k),
        as glmer's ``ranef(condVar = TRUE)``."""
        modes = self.modes(theta, beta)
        T = self.prob.T(theta)
        _, H = self.prob.score_info(modes.eta, T, weights=self.prob.family.laplace_weights)
        V = np.matmul(np.matmul(T, chol_inverse(chol(H))), T.T)
        return modes.u @ T.T, V
