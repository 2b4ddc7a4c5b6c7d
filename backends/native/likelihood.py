"""What :mod:`backends.native.evidence` needs from each model class's likelihood.

Three implementations: :class:`backends.native.gaussian_loglik.GaussianLikelihood` (LMMs and
single-level linear models), :class:`backends.native.glmm.evidence.GlmmLikelihood` (GLMMs) and
:class:`backends.native.glm_loglik.GlmLikelihood` (single-level binomial, Poisson, ordinal).
Each evaluates the likelihood the native fitting code optimises, through that code's own
objects, so there is one likelihood per model class, not a second one for evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from harness.estimator import Estimator

from .canonical import ParameterLayout, Point

#: how a Laplace or lme4-style AGHQ log-likelihood is evaluated: at the exact conditional modes
#: and curvature, or along glmer's PIRLS path (binomial and Poisson GLMMs only)
Path = Literal["exact", "glmer"]

#: random effects at a point: ``(group, term, level) -> (value, sd)``, named as
#: :class:`harness.results.RandomEffect` names them (conditional modes or posterior means, and
#: conditional or posterior SDs)
RandomEffects = dict[tuple[str, str, str], tuple[float, float]]


class EvidenceUnavailable(ValueError):
    """The native code has no likelihood for this model (the message says why)."""


class EvaluationError(RuntimeError):
    """The likelihood cannot be evaluated at this point (conditional modes did not converge,
    a non-finite value); the message says why."""


@dataclass
class Values:
    """The log-likelihood at one point, and what else the model class knows there."""

    loglik: float
    loglik_glmer: float | None = None
    profiled: dict[str, float] = field(default_factory=dict)
    profiled_loglik: float | None = None


class PointLikelihood(Protocol):
    layout: ParameterLayout

    def unsupported(self, estimator: Estimator) -> str | None:
        """None if ``estimator``'s likelihood can be evaluated for this model, else why not."""

    def needs_sigma(self, estimator: Estimator) -> bool:
        """Whether the residual sd is needed to evaluate (an OLS fit's is not)."""

    def values(self, point: Point, estimator: Estimator) -> Values:
        """The log-likelihood at ``point``; raises :class:`EvaluationError`."""

    def information_function(self, point: Point, estimator: Estimator, path: Path
                             ) -> Callable[[Point], float]:
        """A smooth log-likelihood near ``point`` whose observed information gives the SEs."""

    def beta_scale(self, point: Point) -> np.ndarray | None:
        """Approximate SEs of (beta, thresholds), a starting scale for finite differences;
        None when the model class has no cheap one."""

    def conditional_modes(self, point: Point, estimator: Estimator, path: Path
                          ) -> RandomEffects:
        """The random effects at ``point`` as the estimator's engine reports them (empty for
        a model without random effects); raises :class:`EvaluationError`."""
