"""The log-likelihood of a single-level binomial, Poisson or ordinal model at any coefficients.

``sum_i w_i log p(y_i | x_i' beta + offset)`` (``w`` the prior weights) with the family objects
the fitting code uses
(:mod:`backends.native.glmm.families`, full normalising constants), so at native's own estimates
it is native's (and R's ``logLik.glm`` / ``clm``'s) reported value. Ordinal models take the
thresholds too (``P(y <= k) = F(alpha_k - eta)``, no intercept).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from harness.attributes import ModelAttributes
from harness.estimator import Estimator
from harness.spec import Model

from .canonical import ParameterLayout, Point
from .design import build_design
from .glmm.families import Cumulative, Family, make_family, ordinal_response, prior_weights
from .likelihood import EvaluationError, Path, RandomEffects, Values


class GlmLikelihood:
    """ML log-likelihood of one single-level GLM design."""

    def __init__(self, X: np.ndarray, offset: np.ndarray, family: Family,
                 x_names: list[str], thresholds: list[str], weights: np.ndarray):
        self.X, self.offset, self.family, self.weights = X, offset, family, weights
        self.layout = ParameterLayout.build(x_names, thresholds, (), residual=False)

    @classmethod
    def build(cls, model: Model, data: pd.DataFrame, factors: list[str], *,
              contrasts: dict[str, str] | None = None) -> "GlmLikelihood":
        """The likelihood of ``model`` on ``data``, with its attributes (harness/attributes)."""
        design = build_design(model.formula, data, factors, dict(model.reference_level) or None,
                              contrasts=contrasts,
                              attributes=ModelAttributes.of(model).values(data))
        X, x_names, y, thr = design.X, list(design.x_names), design.outcome(model.family), []
        if model.family == "ordinal":
            X, x_names, y, thr, _ = ordinal_response(X, x_names, y, design.response_levels)
        fam = make_family(model.family, model.resolved_link, y, design.trials, len(thr) + 1)
        offset = design.offset if design.offset is not None else np.zeros(design.n)
        return cls(X, offset, fam, x_names, thr,
                   prior_weights(model.family, design.weights, design.n))

    def loglik(self, point: Point) -> float:
        if isinstance(self.family, Cumulative):
            if np.any(np.diff(point.alpha) <= 0):
                raise EvaluationError("the thresholds do not increase: not a parameter point")
            self.family.with_thresholds(point.alpha)
        value = float(np.sum(self.weights * self.family.loglik(self.X @ point.beta
                                                               + self.offset)))
        if not math.isfinite(value):
            raise EvaluationError("the log-likelihood is not finite at this point")
        return value

    # ---- the evidence protocol (backends/native/likelihood.py) ------------------------------
    def unsupported(self, estimator: Estimator) -> str | None:
        if estimator.criterion != "ML" or estimator.integration != "none":
            return f"a single-level GLM is fitted by ML, not {estimator.label()}"
        return None

    def needs_sigma(self, estimator: Estimator) -> bool:
        return False

    def values(self, point: Point, estimator: Estimator) -> Values:
        return Values(self.loglik(point))

    def information_function(self, point: Point, estimator: Estimator, path: Path
                             ) -> Callable[[Point], float]:
        return self.loglik

    def beta_scale(self, point: Point) -> None:
        return None

    def conditional_modes(self, point: Point, estimator: Estimator, path: Path
                          ) -> RandomEffects:
        """A single-level model has no random effects."""
        return {}
