"""A native GLMM fit as the canonical FitResult (the harness contract in harness/results.py).

* standard errors of every row (fixed effects, thresholds, variance parameters on all four
  scales) from the observed information at the estimates (``fit.covariance``, the evidence
  engine's computation): the inverse Hessian of the log-likelihood on the log-sd/atanh-cor
  scale, carried by the delta method (what glmer's default ``vcov`` and Stata's observed
  information estimate); a standard error that cannot be computed (a boundary estimate, an
  information that is not positive definite) is None, with the reason among the warnings;
* thresholds as effect ``threshold``, terms ``"1|2"``, ``"2|3"`` (clmm's names);
* variance parameters via :func:`harness.results.variance_parameters` (reusing the LMM result's
  per-term split); GLMMs have no residual row;
* ``logLik = -deviance / 2`` including the full binomial/Poisson normalising constants, as glmer's
  and Stata's (they agree for 0/1 and Poisson responses); AIC/BIC with ``df`` = number of
  parameters and ``n`` = rows used;
* random effects: conditional modes with conditional SDs (Laplace and lme4-style AGHQ, as
  glmer's/clmm's ``ranef(condVar = TRUE)``) or posterior means with posterior SDs (MVAGHQ, as
  Stata's ``predict, reffects``);
* diagnostics: ``converged`` is False exactly when ``fit.failures`` gives reasons (also warnings).
"""

from __future__ import annotations

import math

import numpy as np

from harness.results import Diagnostics, FitResult, Parameter, Provenance, Statistics

from ..ranef import by_level, rows
from ..result import _factor_variance_rows
from ..theta import sd_and_correlation
from .fit import GlmmFit


def variance_rows(fit: GlmmFit) -> list[Parameter]:
    out: list[Parameter] = []
    for f, V in zip(fit.problem.factors, fit.problem.covariances(fit.theta)):
        sd, corr = sd_and_correlation(V)
        out += _factor_variance_rows(f.name, f.columns, f.term_sizes, sd, corr)
    return out


def to_fit_result(fit: GlmmFit, spec_id: str, provenance: Provenance | None = None) -> FitResult:
    params = [Parameter("fixed", None, name, float(b)) for name, b in zip(fit.x_names, fit.beta)]
    params += [Parameter("threshold", None, name, float(a))
               for name, a in zip(fit.threshold_names, fit.alpha)]
    params += variance_rows(fit)
    params = [Parameter(r.effect, r.group, r.term, r.estimate, fit.std_errors.get(r.key))
              for r in params]
    factors = fit.problem.factors
    ranef = rows(by_level(factors, *fit.ranef_by_factor()))
    n = fit.design.n
    df = fit.x.size
    stats = Statistics(nobs=n, ngroups={f.name: f.m for f in factors},
                       loglik=-0.5 * fit.deviance,
                       deviance=fit.deviance, aic=fit.deviance + 2 * df,
                       bic=fit.deviance + math.log(n) * df, df=df,
                       nobs_dropped=fit.design.nobs_dropped)
    diag = Diagnostics(
        converged=fit.converged, singular=fit.singular, max_abs_gradient=fit.max_abs_gradient,
        warnings=list(fit.failures) + list(fit.warnings), optimizer="nlopt LN_BOBYQA (scaled) + Newton polish",
        evaluations=fit.evaluations,
        messages=list(fit.messages) + [
            f"family {fit.family}({fit.link}), method {fit.method}",
            "logLik includes the full normalising constants (glmer's and Stata's scale); "
            "statistics.deviance is -2 logLik",
            f"deviance by stage: {fit.stage_deviances}",
            f"observed information positive definite: {fit.hessian_pd} (smallest eigenvalue "
            f"{fit.covariance.smallest_eigenvalue}, {fit.covariance.evaluations} evaluations)",
            f"theta: {np.round(fit.theta, 10).tolist()}"])
    result = FitResult(spec_id=spec_id, backend="native", status="ok", parameters=params,
                       statistics=stats, random_effects=ranef, diagnostics=diag,
                       provenance=provenance or Provenance(backend="native"),
                       timings={"fit_seconds": fit.seconds})
    return result.set_estimator(fit.estimator)
