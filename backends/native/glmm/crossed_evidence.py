"""The Laplace log-likelihood of a GLMM with several grouping factors, for the evidence engine
(the protocol of :mod:`backends.native.likelihood`), and for native's own standard errors.

What :class:`.evidence.GlmmLikelihood` is for one factor, restricted to what is defined with
several: the Laplace approximation, on the exact path (modes converged, curvature there) and
on glmer's PIRLS path (:func:`.crossed_laplace.crossed_glmer_modes`; binomial and Poisson).
Adaptive quadrature is not defined here: with crossed factors the integral does not split into
per-group integrals (glmer refuses ``nAGQ > 1`` with more than one factor for that reason), and
native has no nested level-by-level quadrature, so :meth:`unsupported` says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from harness.estimator import Estimator

from ..blas import single_threaded_blas
from ..canonical import ParameterLayout, Point, psd_cholesky
from ..likelihood import EvaluationError, Path, RandomEffects, Values
from ..ranef import by_level
from .crossed import MultiProblem
from .crossed_laplace import CrossedLaplace, crossed_glmer_modes, crossed_stage1
from .pirls import PirlsError

AGHQ_REASON = ("adaptive quadrature needs one grouping factor: with several (crossed or "
               "nested) the integral does not split into per-group integrals (glmer refuses "
               "nAGQ > 1 there too); fit these models by Laplace")


class CrossedLikelihood:
    """Laplace log-likelihoods of one GLMM problem with several grouping factors."""

    def __init__(self, problem: MultiProblem, x_names: list[str],
                 lp0: np.ndarray | None = None):
        self.problem = problem
        self.layout = ParameterLayout.build(x_names, [], problem.factors, residual=False)
        self.nt, self.p = problem.layout.size, len(x_names)
        self._lp0 = lp0
        self._deviances: dict[tuple, CrossedLaplace] = {}

    # ---- the evidence protocol -------------------------------------------------------------
    def unsupported(self, estimator: Estimator) -> str | None:
        if estimator.criterion != "ML":
            return f"a GLMM is fitted by ML, not {estimator.criterion}"
        if estimator.integration != "laplace":
            return AGHQ_REASON if estimator.integration in ("aghq", "mvaghq", "ghq") else (
                "a GLMM's likelihood needs an integration method (Laplace); the estimator "
                "states none")
        return None

    def needs_sigma(self, estimator: Estimator) -> bool:
        return False

    def values(self, point: Point, estimator: Estimator) -> Values:
        exact = self._loglik(point, self._deviance("exact"))
        try:
            glmer = self._loglik(point, self._deviance("glmer"))
        except EvaluationError:
            glmer = None        # glmer's path fails here; the exact value still stands
        return Values(exact, loglik_glmer=glmer)

    def information_function(self, point: Point, estimator: Estimator, path: Path
                             ) -> Callable[[Point], float]:
        dev = self._deviance(path, self._pirls_steps(point) if path == "glmer" else None)
        return lambda pt: self._loglik(pt, dev)

    def beta_scale(self, point: Point) -> None:
        return None

    def conditional_modes(self, point: Point, estimator: Estimator, path: Path
                          ) -> RandomEffects:
        bs, Vs = self.random_effects(self._x(point), estimator, path)
        return by_level(self.problem.factors, bs, Vs)

    def random_effects(self, x: np.ndarray, estimator: Estimator, path: Path
                       ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per factor: conditional modes ``b`` (m, k) and ``T (L L')^{-1}_jj T'`` at ``x``."""
        theta, beta = x[:self.nt], x[self.nt:self.nt + self.p]
        try:
            with single_threaded_blas():
                return CrossedLaplace(self.problem, self.lp0() if path == "glmer" else None
                                      ).conditional(theta, beta)
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError, ValueError) as e:
            raise EvaluationError(f"the random effects could not be computed here: {e}"
                                  ) from None

    def point(self, x: np.ndarray) -> Point:
        """The parameter point of ``x = [theta, beta]``."""
        return Point(beta=np.array(x[self.nt:self.nt + self.p]), alpha=np.zeros(0),
                     covariances=tuple(self.problem.covariances(x[:self.nt])), sigma=None)

    # ---- pieces ----------------------------------------------------------------------------
    def theta(self, point: Point) -> np.ndarray:
        """glmer's theta: per factor ``T = chol(Sigma)``, in formula order."""
        parts = []
        for block, ft, V in zip(self.problem.layout.blocks, self.layout.factors,
                                point.covariances):
            T = psd_cholesky(V, f"{ft.name} random-effects covariance")
            parts.append(T[block.rows, block.cols])
        return np.concatenate(parts)

    def _x(self, point: Point) -> np.ndarray:
        return np.concatenate([self.theta(point), point.beta])

    def _loglik(self, point: Point, dev: CrossedLaplace) -> float:
        x = self._x(point)
        with single_threaded_blas():       # see .crossed_fit.fit_crossed
            value = dev(x[:self.nt], x[self.nt:])
        if not math.isfinite(value):
            raise EvaluationError("the GLMM likelihood could not be evaluated here (the "
                                  "conditional modes did not converge)")
        return -0.5 * value

    def _deviance(self, path: Path, steps: int | None = None) -> CrossedLaplace:
        key = (path, steps)
        if key not in self._deviances:
            self._deviances[key] = CrossedLaplace(
                self.problem, self.lp0() if path == "glmer" else None, steps)
        return self._deviances[key]

    def lp0(self) -> np.ndarray:
        """glmer's stage-1 (nAGQ = 0) linear predictor, computed once."""
        if self._lp0 is None:
            self._lp0 = crossed_stage1(self.problem).eta
        return self._lp0

    def _pirls_steps(self, point: Point) -> int:
        try:
            return crossed_glmer_modes(self.problem, self.theta(point), point.beta,
                                       self.lp0()).iterations
        except PirlsError as e:
            raise EvaluationError(f"glmer's PIRLS fails at this point: {e}") from None
