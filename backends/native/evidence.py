"""Evidence for the comparison engine: the full log-likelihood at any engine's complete
estimates, the observed-information covariance of every canonical parameter, and the random
effects each engine would report there.

Why: two engines' estimates can only be judged by a likelihood that sees *every* parameter. The
profiled LMM likelihood at the variance parameters alone cannot tell a fixed effect moved by
half a standard error, or two coefficients swapped, from the optimum. Here a complete set of
estimates (canonical keys, on the sd/cor or var/cov scales; see
:mod:`backends.native.canonical`) is evaluated under a stated
:class:`~harness.estimator.Estimator` by the native likelihood of that model class, and the
inverse observed information at a point gives each key's standard error on its own scale.

Usage (build once per spec model and prepared data, evaluate many times)::

    ev = EvidenceModel.build(spec.model_for("lme4"), data.frame, factors)
    at = ev.loglik(estimates_of(result), result.estimator)     # PointEvaluation
    cov = ev.covariance(estimates_of(result), result.estimator)  # ParameterCovariance
    cov.std_errors["ran_pars/school/sd__lrt"]
    blups = ev.conditional_modes(estimates_of(result), result.estimator)
    blups[("school", "(Intercept)", "1")]                         # (value, sd)

What is evaluated, per model class:

* gaussian LMMs and single-level linear models (:mod:`backends.native.gaussian_loglik`): ML,
  full REML (whose maximum over all parameters is the REML estimate), and for OLS the ML
  log-likelihood with sigma profiled (``logLik.lm``); ``profiled`` gives beta_hat(theta) and
  sigma_hat(theta), which a correct LMM engine reports exactly;
* GLMMs (:mod:`backends.native.glmm.evidence`): Laplace, lme4-style AGHQ(n) for one scalar
  effect and Stata-style MVAGHQ(n), with the full normalising constants. ``loglik`` is the exact
  approximation (conditional modes and curvature converged); ``loglik_glmer`` is glmer's PIRLS
  path (binomial and Poisson Laplace/AGHQ), which is what glmer and native's ``laplace: glmer``
  fits report (native's default is the exact approximation);
* single-level binomial, Poisson and ordinal GLMs (:mod:`backends.native.glm_loglik`).

Standard errors are always the model-based inverse observed information, whatever standard
errors an engine reported (cluster-robust ones included). Not thread-safe: the GLMM likelihoods
warm-start their conditional modes from the previous evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.attributes import ModelAttributes
from harness.estimator import Estimator
from harness.intervals import two_sided_p, wald_intervals
from harness.keys import ParamKey
from harness.results import FitResult, FixedTest, Parameter, inference_quantities
from harness.spec import Model

from .canonical import ParameterError, ParameterLayout, Reading
from .covariance import ParameterCovariance, parameter_covariance
from .design import DesignError, build_design
from .gaussian_loglik import GaussianLikelihood
from .glm_loglik import GlmLikelihood
from .glmm.evidence import GlmmLikelihood
from .inference import satterthwaite
from .kenward_roger import kenward_roger
from .likelihood import (EvaluationError, EvidenceUnavailable, Path, PointLikelihood,
                         RandomEffects)

__all__ = ["EvidenceModel", "PointEvaluation", "ParameterCovariance", "EvidenceUnavailable",
           "EvaluationError", "RandomEffects", "estimates_of", "Path"]


@dataclass(frozen=True)
class PointEvaluation:
    """The log-likelihood at one set of estimates under one estimator.

    ``loglik`` is None exactly when ``reason`` says why: keys are ``missing`` (the sd/cor key
    is listed; its var/cov counterpart would do as well), the estimator has no native
    likelihood for this model, the values are not a parameter point, or the evaluation failed.
    ``profiled`` (gaussian models) holds what a correct engine reports for the point's theta:
    ``fixed/...`` = beta_hat(theta) and the residual sd = sigma_hat(theta); ``profiled_loglik``
    is the log-likelihood maximised over those. ``unused`` lists parameter keys the model does
    not have (a misspelt key, another model's term); ``notes`` records sd/var or cor/cov pairs
    that disagree.
    """

    estimator: Estimator
    loglik: float | None
    loglik_glmer: float | None = None
    profiled: dict[str, float] = field(default_factory=dict)
    profiled_loglik: float | None = None
    missing: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reason: str | None = None
    seconds: float = 0.0


def estimates_of(result: FitResult) -> dict[str, float]:
    """A result's canonical estimates, the input of :meth:`EvidenceModel.loglik`."""
    return {p.key: p.estimate for p in result.parameters}


class EvidenceModel:
    """The native likelihood of one spec model on one prepared data set."""

    def __init__(self, likelihood: PointLikelihood):
        self.likelihood = likelihood

    @classmethod
    def build(cls, model: Model, data: pd.DataFrame, factors: list[str], *,
              contrasts: dict[str, str] | None = None,
              intercept_last: bool = True) -> "EvidenceModel":
        """Design matrices, systems and quadrature rules for ``model`` on ``data``, once.

        ``factors`` are the spec's factor columns and ``contrasts`` their codings
        (``Spec.contrasts()``); the model's attributes (prior weights, offset, binomial trials:
        harness/attributes.py) come with the model, so the likelihood is the model every backend
        fits. ``intercept_last`` is native's MVAGHQ node ordering. Raises ``DesignError`` for
        data that do not fit the model and :class:`EvidenceUnavailable` for model classes native
        lacks.
        """
        reference = dict(model.reference_level) or None
        if model.cluster_se:
            # as the fitting code: rows without a cluster id are not in a cluster-robust fit
            if model.cluster_se not in data.columns:
                raise DesignError(f"cluster_se column {model.cluster_se!r} is not in the data")
            data = data[data[model.cluster_se].notna()]
        if model.family == "gaussian":
            attributes = ModelAttributes.of(model).values(data)
            return cls(GaussianLikelihood(build_design(model.formula, data, factors, reference,
                                                       contrasts=contrasts,
                                                       attributes=attributes)))
        if model.family not in ("binomial", "poisson", "ordinal"):
            raise EvidenceUnavailable(f"native has no {model.family} likelihood")
        if model.parsed.has_random:
            return cls(GlmmLikelihood.build(model, data, factors, contrasts=contrasts,
                                            intercept_last=intercept_last))
        return cls(GlmLikelihood.build(model, data, factors, contrasts=contrasts))

    @property
    def layout(self) -> ParameterLayout:
        return self.likelihood.layout

    def keys(self) -> list[str]:
        """The keys a complete set of estimates has (sd/cor scale; var/cov do as well)."""
        return self.layout.keys()

    # ---- the log-likelihood at a point ----------------------------------------------------
    def loglik(self, estimates: Mapping[str, float], estimator: Estimator) -> PointEvaluation:
        """The full log-likelihood under ``estimator`` at ``estimates`` (see the module doc)."""
        t0 = time.perf_counter()
        reading, reason = self._read(estimates, estimator,
                                     self.likelihood.needs_sigma(estimator))
        v = None
        if reason is None and reading.point is not None:
            try:
                v = self.likelihood.values(reading.point, estimator)
            except (EvaluationError, ParameterError) as e:
                reason = str(e)
        return PointEvaluation(
            estimator=estimator, loglik=v.loglik if v else None,
            loglik_glmer=v.loglik_glmer if v else None, profiled=v.profiled if v else {},
            profiled_loglik=v.profiled_loglik if v else None, missing=tuple(reading.missing),
            unused=tuple(reading.unused), notes=tuple(reading.notes), reason=reason,
            seconds=time.perf_counter() - t0)

    def _read(self, estimates: Mapping[str, float], estimator: Estimator, sigma: bool
              ) -> tuple[Reading, str | None]:
        """The point of ``estimates``, and why it cannot be evaluated (None if it can)."""
        try:
            reading = self.layout.read(estimates, require_sigma=sigma)
        except ParameterError as e:
            return Reading(None, [], [], []), str(e)
        why = self.likelihood.unsupported(estimator)
        if why is None and reading.missing:
            why = f"{len(reading.missing)} parameter(s) missing: {', '.join(reading.missing)}"
        return reading, why

    # ---- the covariance at a point --------------------------------------------------------
    def covariance(self, estimates: Mapping[str, float], estimator: Estimator,
                   path: Path = "exact") -> ParameterCovariance:
        """Standard errors of every canonical key from the inverse observed information of
        the full (ML, or full-REML) log-likelihood at ``estimates``
        (:func:`backends.native.covariance.parameter_covariance`: the working-scale Hessian
        over the parameters not at a boundary, carried to every scale by the delta method).
        ``path`` chooses the Laplace/AGHQ evaluation for binomial/Poisson GLMMs (``"glmer"``:
        glmer's PIRLS path, what native's ``laplace: glmer`` fits use for their SEs).
        """
        reading, reason = self._read(estimates, estimator, True)
        return parameter_covariance(self.likelihood, reading.point, estimator, path,
                                    missing=reading.missing, unused=reading.unused,
                                    reason=reason)

    # ---- inference at a point ------------------------------------------------------------
    def inference(self, estimates: Mapping[str, float], estimator: Estimator,
                  std_errors: Mapping[str, float | None]) -> dict[str, float]:
        """What an engine at ``estimates`` reports as inference, computed by native: z Wald
        intervals on every scale from the given ``std_errors`` (the SEs native computes at
        these estimates the way the engine does), z tests, and for LMMs fitted by ML/REML the
        Satterthwaite df and p-values at the point's theta and sigma (REML: Kenward-Roger df
        and p-values too). Keyed ``<key>:<quantity>`` (``fixed/lrt:df:satterthwaite``,
        harness/results.py); {} where the estimates are not a point of this model."""
        reading, reason = self._read(estimates, estimator, True)
        if reason is not None or reading.point is None:
            return {}
        params = []
        for text, value in estimates.items():
            se = std_errors.get(text)
            key = ParamKey.parse(text)
            if se is None or key.kind not in ("fixed", "ran_pars"):
                continue
            params.append(Parameter(key.kind, key.group, key.name, float(value), float(se)))
        tests = [FixedTest(p.term, "z", None, p.estimate / p.std_error,
                           two_sided_p(p.estimate / p.std_error))
                 for p in params if p.effect == "fixed" and p.std_error]
        lik = self.likelihood
        if isinstance(lik, GaussianLikelihood) and lik.design.factors and \
                estimator.criterion in ("ML", "REML"):
            theta = lik.theta(reading.point)
            free = ~(lik.theta_layout.diagonal_mask() & (theta <= 0.0))
            try:
                tests += satterthwaite(lik.design, theta, float(reading.point.sigma),
                                       estimator.criterion == "REML", free).tests()
            except (ValueError, np.linalg.LinAlgError):
                pass      # a boundary point: no Satterthwaite df, so nothing to explain with
            if estimator.criterion == "REML":
                try:
                    tests += kenward_roger(lik.design, theta,
                                           float(reading.point.sigma)).tests()
                except (ValueError, np.linalg.LinAlgError):
                    pass  # weighted or too big: no KR df here, so a KR gap stays unexplained
        return {f"{key}:{q}": v for key, qs in
                inference_quantities(wald_intervals(params), tests).items()
                for q, v in qs.items()}

    # ---- the random effects at a point ---------------------------------------------------
    def conditional_modes(self, estimates: Mapping[str, float], estimator: Estimator,
                          path: Path = "exact") -> RandomEffects:
        """The random effects at ``estimates`` as an engine fitting ``estimator`` reports them:
        ``(group, term, level) -> (value, sd)``, named as ``FitResult.random_effects``.

        LMMs: BLUPs and conditional SDs at the given beta, theta and sigma (lme4's
        ``ranef(condVar = TRUE)``). GLMMs: conditional modes and conditional SDs for Laplace
        and lme4-style AGHQ (glmer's and clmm's ``ranef``; ``path="glmer"`` follows glmer's
        PIRLS path and its lagged curvature, binomial/Poisson only), posterior means and SDs
        for MVAGHQ (Stata's ``predict, reffects reses``). Empty for single-level models.
        Raises :class:`EvaluationError` saying why when they cannot be computed (keys
        missing, an estimator without a native likelihood here, a failed evaluation).
        """
        reading, reason = self._read(estimates, estimator, True)
        if reason is None and reading.point is not None:
            try:
                return self.likelihood.conditional_modes(reading.point, estimator, path)
            except ParameterError as e:
                reason = str(e)
        raise EvaluationError(f"no random effects at these estimates: {reason}")
