"""The GLMM log-likelihood at any (theta, beta, thresholds), for the evidence engine.

The deviance objects are the fitting code's (:mod:`.laplace`, :mod:`.aghq`, :mod:`.mvaghq`), so
the value at native's own optimum is native's reported log-likelihood. Two evaluation paths:

* **exact**: conditional modes iterated to convergence and the curvature there, i.e. the exact
  Laplace approximation (and exact-mode AGHQ); a smooth function of the parameters, and what
  ``laplace: exact`` fits (and ordinal models, as clmm's) report;
* **glmer**: glmer's PIRLS path (:mod:`.glmer_pirls`): every evaluation restarts from the
  linear predictor of glmer's nAGQ = 0 stage and stops by glmer's ``tolPwrss`` rule, and the
  determinant lags one iteration. This is what glmer reports, and native's default fits. It is
  piecewise smooth (the step count jumps), so its information is taken with the step count
  held at the point's (as the fitting code does for its SEs). Binomial and Poisson only; the
  nAGQ = 0 stage runs once, on first use (a small theta-only fit).

MVAGHQ (Stata's mean-variance adaptive quadrature) has one path: the adaptation iterated to its
fixed point. All values carry the full binomial/Poisson normalising constants.
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
from ..likelihood import EvaluationError, EvidenceUnavailable, Path, Values
from .aghq import AghqDeviance
from .fit import build_problem, deviance_function, stage1
from .glmer_pirls import glmer_modes
from .laplace import LaplaceDeviance
from .mvaghq import MvaghqDeviance
from .pirls import PirlsError
from .problem import Problem

Deviance = LaplaceDeviance | AghqDeviance | MvaghqDeviance


class GlmmLikelihood:
    """Laplace, lme4-style AGHQ(n) and MVAGHQ(n) log-likelihoods of one GLMM problem."""

    def __init__(self, problem: Problem, x_names: list[str], thresholds: list[str],
                 intercept_last: bool = True):
        self.problem = problem
        self.layout = ParameterLayout.build(x_names, thresholds, [problem.data.factor],
                                            residual=False)
        self.intercept_last = intercept_last
        self.nt, self.p = problem.layout.size, len(x_names)
        self._lp0: np.ndarray | None = None
        self._deviances: dict[tuple, Deviance] = {}

    @classmethod
    def build(cls, model: Model, data: pd.DataFrame, factors: list[str], *,
              contrasts: dict[str, str] | None = None,
              intercept_last: bool = True) -> "GlmmLikelihood":
        """The likelihood of ``model`` on ``data``, with its attributes (harness/attributes)."""
        if len(model.parsed.grouping_factors) != 1:
            raise EvidenceUnavailable("native GLMMs support one grouping factor; this model "
                                      f"has {len(model.parsed.grouping_factors)}")
        attributes = ModelAttributes.of(model).values(data)
        _, prob, x_names, thr = build_problem(
            model.formula, data, model.family, model.resolved_link,  # type: ignore[arg-type]
            attributes.get("trials"), attributes.get("offset"), factors,
            reference=dict(model.reference_level) or None, weights=attributes.get("weights"),
            contrasts=contrasts)
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
            self._lp0 = stage1(self.problem, self.p)[4]
        return self._lp0

    def _pirls_steps(self, point: Point) -> int:
        """glmer's PIRLS step count at ``point`` (its tolPwrss rule)."""
        try:
            return glmer_modes(self.problem, self.theta(point), point.beta, self.lp0()).iterations
        except PirlsError as e:
            raise EvaluationError(f"glmer's PIRLS fails at this point: {e}") from None
