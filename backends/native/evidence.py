"""Evidence for the comparison engine: the full log-likelihood at any engine's complete
estimates, and the observed-information covariance of every canonical parameter.

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

What is evaluated, per model class:

* gaussian LMMs and single-level linear models (:mod:`backends.native.gaussian_loglik`): ML,
  full REML (whose maximum over all parameters is the REML estimate), and for OLS the ML
  log-likelihood with sigma profiled (``logLik.lm``); ``profiled`` gives beta_hat(theta) and
  sigma_hat(theta), which a correct LMM engine reports exactly;
* GLMMs (:mod:`backends.native.glmm.evidence`): Laplace, lme4-style AGHQ(n) for one scalar
  effect and Stata-style MVAGHQ(n), with the full normalising constants. ``loglik`` is the exact
  approximation (conditional modes and curvature converged); ``loglik_glmer`` is glmer's PIRLS
  path (binomial and Poisson Laplace/AGHQ), which is what glmer and native's default fits report;
* single-level binomial, Poisson and ordinal GLMs (:mod:`backends.native.glm_loglik`).

Standard errors are always the model-based inverse observed information, whatever standard
errors an engine reported (cluster-robust ones included). Not thread-safe: the GLMM likelihoods
warm-start their conditional modes from the previous evaluation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.attributes import ModelAttributes
from harness.estimator import Estimator
from harness.results import FitResult
from harness.spec import Model

from .canonical import ParameterError, ParameterLayout, Point, Reading, Working
from .design import DesignError, build_design
from .gaussian_loglik import GaussianLikelihood
from .glm_loglik import GlmLikelihood
from .glmm.evidence import GlmmLikelihood
from .information import observed_information
from .likelihood import EvaluationError, EvidenceUnavailable, Path, PointLikelihood

__all__ = ["EvidenceModel", "PointEvaluation", "ParameterCovariance", "EvidenceUnavailable",
           "estimates_of", "Path"]

#: first guess of the standard error of a log-sd or atanh-correlation (refined by probing)
WORKING_SCALE = 0.1


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


@dataclass(frozen=True)
class ParameterCovariance:
    """Inverse observed information at one point, on every canonical scale.

    ``keys`` are the sd/cor-scale keys (one per working coordinate: fixed effects, thresholds,
    random-effect sds and correlations, residual sd) and ``matrix`` their covariance (NaN rows
    and columns for boundary parameters). ``std_errors`` covers every key on every scale (var
    and cov too); a None has its reason in ``reasons``. ``conditional_std_errors`` are those of
    the fixed effects and thresholds with the variance parameters held at their values (the
    inverse of that block of the information): for LMMs exactly lme4's ``vcov`` and Stata
    ``mixed``'s (block-diagonal) fixed-effect SEs, smaller than the full-information ones,
    which also carry the variance parameters' uncertainty. ``loglik`` is the log-likelihood whose
    information this is (for LMM REML and OLS: the full REML function). When nothing could be
    computed, ``matrix`` is None and ``reason`` says why.
    """

    estimator: Estimator
    path: Path
    keys: tuple[str, ...]
    matrix: np.ndarray | None
    std_errors: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    conditional_std_errors: dict[str, float] = field(default_factory=dict)
    loglik: float | None = None
    missing: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    reason: str | None = None
    evaluations: int = 0
    seconds: float = 0.0
    all_keys: tuple[str, ...] = ()
    all_matrix: np.ndarray | None = field(default=None, repr=False)

    def submatrix(self, keys: Sequence[str]) -> np.ndarray:
        """The covariance of any canonical keys, on any scales (delta method)."""
        if self.all_matrix is None:
            raise ValueError(f"no covariance: {self.reason}")
        idx = [self.all_keys.index(k) for k in keys]
        return self.all_matrix[np.ix_(idx, idx)]


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
        the full (ML, or full-REML) log-likelihood at ``estimates``.

        The Hessian is taken on the working scale (log sd, atanh cor; see
        :mod:`backends.native.information`) over the parameters not at a boundary, inverted,
        and carried to every scale by the delta method. At a maximum this equals the
        information on any other smooth scale. ``path`` chooses the Laplace/AGHQ evaluation
        for binomial/Poisson GLMMs (``"glmer"``: glmer's PIRLS path, what native's default
        fits use for their SEs).
        """
        t0 = time.perf_counter()
        all_keys = tuple(self.layout.all_keys())
        reading, reason = self._read(estimates, estimator, True)
        out = dict(estimator=estimator, path=path, keys=tuple(self.keys()), all_keys=all_keys,
                   missing=tuple(reading.missing), unused=tuple(reading.unused))
        if reason is None and reading.point is not None:
            try:
                out.update(self._information(reading.point, estimator, path))
            except (EvaluationError, ParameterError) as e:
                reason = str(e)
        if reason is not None:
            out.update(matrix=None, std_errors={k: None for k in all_keys},
                       reasons={k: reason for k in all_keys})
        return ParameterCovariance(reason=reason, seconds=time.perf_counter() - t0,
                                   **out)  # type: ignore[arg-type]

    def _information(self, point: Point, estimator: Estimator, path: Path) -> dict:
        """The covariance fields of :class:`ParameterCovariance` at ``point``; raises
        :class:`EvaluationError` where the information is not positive definite."""
        layout = self.layout
        base = layout.encode(point)
        f = self.likelihood.information_function(point, estimator, path)

        def loglik(phi: np.ndarray) -> float:
            try:
                return f(layout.decode(phi, base))
            except (EvaluationError, ParameterError, np.linalg.LinAlgError):
                return -math.inf

        value = loglik(base.phi)
        if not math.isfinite(value):
            raise EvaluationError("the log-likelihood is not finite at this point")
        H, evals = observed_information(loglik, base.phi, base.free,
                                        self._scale_guess(point, base))
        smallest = float(np.linalg.eigvalsh(H).min()) if H.size else 1.0
        if not smallest > 0:
            raise EvaluationError(f"the observed information is not positive definite here "
                                  f"(smallest eigenvalue {smallest:.3g}): not a maximum, or a "
                                  "flat direction")
        keys, _, J, deps = layout.canonical(base.phi, base)
        Jf = J[:, base.free]
        full = Jf @ np.linalg.inv(H) @ Jf.T
        ses: dict[str, float | None] = {}
        reasons: dict[str, str] = {}
        for r, key in enumerate(keys):
            at_bound = [i for i in deps[r] if not base.free[i]]
            if at_bound:
                ses[key] = None
                reasons[key] = base.reasons[at_bound[0]]
                full[r, :] = full[:, r] = np.nan
            else:
                ses[key] = math.sqrt(full[r, r])
        working = [keys.index(k) for k in layout.keys()]
        nb = layout.n_location        # fixed effects and thresholds: the leading, free ones
        cond = np.sqrt(np.diag(np.linalg.inv(H[:nb, :nb]))) if nb else np.zeros(0)
        return dict(matrix=full[np.ix_(working, working)], all_matrix=full, std_errors=ses,
                    reasons=reasons, loglik=value, evaluations=evals,
                    conditional_std_errors={str(c.key): float(v) for c, v in
                                            zip(layout.coordinates[:nb], cond)})

    def _scale_guess(self, point: Point, base: Working) -> np.ndarray:
        """Approximate SEs on the working scale: the model's own for beta and thresholds where
        it has a cheap one, otherwise a size-relative guess (refined by probing)."""
        nb = self.layout.n_location
        s = np.full(base.phi.size, WORKING_SCALE)
        guess = self.likelihood.beta_scale(point)
        s[:nb] = guess if guess is not None else 0.01 * np.maximum(np.abs(base.phi[:nb]), 1.0)
        return s
