"""The GLMM log-likelihood at any (theta, beta, thresholds), for the evidence engine.

The deviance objects are the fitting code's (:mod:`.laplace`, :mod:`.aghq`, :mod:`.mvaghq`), so
the value at native's own optimum is native's reported log-likelihood. Two evaluation paths:

* **exact**: conditional modes iterated to convergence and the curvature there, i.e. the exact
  Laplace approximation (and exact-mode AGHQ); a smooth function of the parameters, and what
  native's fits report by default (and ordinal models, as clmm's);
* **glmer**: glmer's PIRLS path (:mod:`.glmer_pirls`): every evaluation restarts from the
  linear predictor of glmer's nAGQ = 0 stage and stops by glmer's ``tolPwrss`` rule, and the
  determinant lags one iteration. This is what glmer reports, and native's ``laplace: glmer``
  fits. It is piecewise smooth (the step count jumps), so its information is taken with the
  step count held at the point's (as the fitting code does for its SEs). Binomial and Poisson
  only; the nAGQ = 0 stage runs once, on first use (a small theta-only fit), unless the fit
  that built this likelihood hands its own ``lp0`` over.

MVAGHQ (Stata's mean-variance adaptive quadrature) has one path: the adaptation iterated to its
fixed point from the Laplace mode and curvature at the point. All values carry the full
binomial/Poisson normalising constants.

:meth:`GlmmLikelihood.conditional_modes` gives the random effects each engine reports at a
point: conditional modes with conditional SDs for Laplace and lme4-style AGHQ (glmer's and
clmm's ``ranef(condVar = TRUE)``; on glmer's path with glmer's lagged curvature), posterior
means with posterior SDs for MVAGHQ (Stata's ``predict, reffects reses``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from harness.attributes import ModelAttributes
from harness.estimator import Estimator
from harness.spec import Model

from ..canonical import ParameterLayout, Point, psd_cholesky
from ..likelihood import EvaluationError, EvidenceUnavailable, Path, RandomEffects, Values
from ..ranef import by_level
from .aghq import AghqDeviance
from .crossed import MultiProblem
from .crossed_evidence import CrossedLikelihood
from .build import build_problem, deviance_function, set_thresholds
from .glmer_pirls import glmer_modes
from .laplace import LaplaceDeviance
from .mvaghq import MvaghqDeviance
from .pirls import PirlsError
from .problem import Problem
from .stage1 import stage1

Deviance = LaplaceDeviance | AghqDeviance | MvaghqDeviance


class GlmmLikelihood:
    """Laplace, lme4-style AGHQ(n) and MVAGHQ(n) log-likelihoods of one GLMM problem."""

    def __init__(self, problem: Problem, x_names: list[str], thresholds: list[str],
                 intercept_last: bool = True, lp0: np.ndarray | None = None):
        self.problem = problem
        self.layout = ParameterLayout.build(x_names, thresholds, [problem.data.factor],
                                            residual=False)
        self.intercept_last = intercept_last
        self.nt, self.p = problem.layout.size, len(x_names)
        self._lp0 = lp0
        self._deviances: dict[tuple, Deviance] = {}

    @classmethod
    def build(cls, model: Model, data: pd.DataFrame, factors: list[str], *,
              contrasts: dict[str, str] | None = None,
              intercept_last: bool = True) -> "GlmmLikelihood | CrossedLikelihood":
        """The likelihood of ``model`` on ``data``, with its attributes (harness/attributes);
        with several grouping factors, the :class:`.crossed_evidence.CrossedLikelihood`."""
        if len(model.parsed.grouping_factors) > 1 and model.family == "ordinal":
            raise EvidenceUnavailable("native ordinal GLMMs support one grouping factor; this "
                                      f"model has {len(model.parsed.grouping_factors)}")
        attributes = ModelAttributes.of(model).values(data)
        _, prob, x_names, thr = build_problem(
            model.formula, data, model.family, model.resolved_link,  # type: ignore[arg-type]
            attributes.get("trials"), attributes.get("offset"), factors,
            reference=dict(model.reference_level) or None, weights=attributes.get("weights"),
            contrasts=contrasts)
        if isinstance(prob, MultiProblem):
            return CrossedLikelihood(prob, x_names)
        return cls(prob, x_names, thr, intercept_last)

    @property
    def has_glmer_path(self) -> bool:
        return self.problem.family.laplace_weights == "fisher"    # binomial, Poisson

    # ---- the evidence protocol (backends/native/likelihood.py) ------------------------------
    def unsupported(self, estimator: Estimator) -> str | None:
        if estimator.criterion != "ML":
            return f"a GLMM is fitted by ML, not {estimator.criterion}"
        if estimator.integration == "none":
            return ("a GLMM's likelihood needs an integration method (Laplace, AGHQ(n) or "
                    "MVAGHQ(n)); the estimator states none")
        if estimator.integration == "ghq":
            return "native has no non-adaptive Gauss-Hermite quadrature (GHQ)"
        if estimator.integration == "aghq" and self.problem.k != 1:
            return (f"lme4-style AGHQ needs one scalar random effect per group; this model has "
                    f"{self.problem.k} (its quadrature is MVAGHQ)")
        return None

    def needs_sigma(self, estimator: Estimator) -> bool:
        return False

    def values(self, point: Point, estimator: Estimator) -> Values:
        exact = self._loglik(point, self._deviance(estimator, "exact"))
        glmer = None
        if self.has_glmer_path and estimator.integration in ("laplace", "aghq"):
            glmer = self._loglik(point, self._deviance(estimator, "glmer"))
        return Values(exact, loglik_glmer=glmer)

    def information_function(self, point: Point, estimator: Estimator, path: Path
                             ) -> Callable[[Point], float]:
        if path == "glmer" and estimator.integration == "mvaghq":
            raise EvaluationError("MVAGHQ has no glmer path")
        if path == "glmer" and not self.has_glmer_path:
            raise EvaluationError("glmer's PIRLS path exists for binomial and Poisson GLMMs "
                                  "only")
        dev = self._deviance(estimator, path, self._pirls_steps(point) if path == "glmer"
                             else None)
        return lambda pt: self._loglik(pt, dev)

    def beta_scale(self, point: Point) -> None:
        return None

    def conditional_modes(self, point: Point, estimator: Estimator, path: Path) -> RandomEffects:
        """Each level's random effects and their SDs as the estimator's engine reports them
        (see the module docstring); keys ``(group, term, level)`` as FitResult names them."""
        if point.alpha.size and np.any(np.diff(point.alpha) <= 0):
            raise EvaluationError("the thresholds do not increase: not a parameter point")
        b, V = self.random_effects(self._x(point), estimator, path)
        return by_level([self.problem.data.factor], [b], [V])

    def random_effects(self, x: np.ndarray, estimator: Estimator, path: Path
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``b`` (m, k) and their covariances (m, k, k) at ``x = [theta, beta, thresholds]``:
        posterior moments for MVAGHQ, conditional modes and ``T H^{-1} T'`` otherwise (glmer's
        ``ranef`` is the conditional mode whatever nAGQ is: glmerAGQ restores u to the PIRLS
        mode after visiting the nodes)."""
        if path == "glmer" and not (self.has_glmer_path and
                                    estimator.integration in ("laplace", "aghq")):
            raise EvaluationError("glmer's PIRLS path exists for binomial and Poisson Laplace "
                                  "and AGHQ fits only")
        set_thresholds(self.problem, x, self.nt, self.p)
        theta, beta = x[:self.nt], x[self.nt:self.nt + self.p]
        try:
            if estimator.integration == "mvaghq":
                dev = self._deviance(estimator, "exact")
                return dev.posterior(theta, beta)           # type: ignore[union-attr]
            lp0 = self.lp0() if path == "glmer" else None
            return LaplaceDeviance(self.problem, lp0).conditional(theta, beta)
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError) as e:
            raise EvaluationError(f"the random effects could not be computed here: {e}"
                                  ) from None

    def point(self, x: np.ndarray) -> Point:
        """The parameter point of ``x = [theta, beta, thresholds]`` (the fitting code's
        vector)."""
        T = self.problem.T(x[:self.nt])
        return Point(beta=np.array(x[self.nt:self.nt + self.p]), alpha=np.array(x[self.nt +
                     self.p:]), covariances=(T @ T.T,), sigma=None)

    # ---- pieces ----------------------------------------------------------------------------
    def theta(self, point: Point) -> np.ndarray:
        """glmer's theta: ``T = chol(Sigma)`` (a GLMM has no residual scale)."""
        block = self.problem.layout.blocks[0]
        T = psd_cholesky(point.covariances[0], f"{self.layout.factors[0].name} random-effects "
                                               "covariance")
        return T[block.rows, block.cols]

    def _x(self, point: Point) -> np.ndarray:
        return np.concatenate([self.theta(point), point.beta, point.alpha])

    def _loglik(self, point: Point, dev: Deviance) -> float:
        if point.alpha.size and np.any(np.diff(point.alpha) <= 0):
            raise EvaluationError("the thresholds do not increase: not a parameter point")
        value = deviance_function(dev, self.problem, self.nt, self.p)(self._x(point))
        if not math.isfinite(value):
            raise EvaluationError("the GLMM likelihood could not be evaluated here (the "
                                  "conditional modes or the quadrature did not converge)")
        return -0.5 * value

    def _deviance(self, estimator: Estimator, path: Path, steps: int | None = None
                  ) -> Deviance:
        """The deviance object for an estimator and path, made once (they keep warm starts)."""
        key = (estimator.integration, estimator.points, path, steps)
        dev = self._deviances.get(key)
        if dev is None:
            lp0 = self.lp0() if path == "glmer" else None
            prob = self.problem
            if estimator.integration == "laplace":
                dev = LaplaceDeviance(prob, lp0, steps)
            elif estimator.integration == "aghq":
                dev = AghqDeviance(prob, estimator.points, lp0, steps)
            else:
                dev = MvaghqDeviance(prob, estimator.points, intercept_last=self.intercept_last)
            self._deviances[key] = dev
        return dev

    def lp0(self) -> np.ndarray:
        """glmer's stage-1 (nAGQ = 0) linear predictor, computed once."""
        if self._lp0 is None:
            self._lp0 = stage1(self.problem, self.p).eta
        return self._lp0

    def _pirls_steps(self, point: Point) -> int:
        """glmer's PIRLS step count at ``point`` (its tolPwrss rule)."""
        try:
            return glmer_modes(self.problem, self.theta(point), point.beta, self.lp0()).iterations
        except PirlsError as e:
            raise EvaluationError(f"glmer's PIRLS fails at this point: {e}") from None
