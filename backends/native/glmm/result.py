"""A native GLMM fit as the canonical FitResult (the harness contract in harness/results.py).

* fixed effects with SEs from ``Cov = 2 H^{-1}`` (H: Hessian of the deviance in theta, beta and
  thresholds), as glmer's default ``vcov`` and Stata's observed information;
* thresholds as effect ``threshold``, terms ``"1|2"``, ``"2|3"`` (clmm's names);
* variance parameters on all four scales via :func:`harness.results.variance_parameters` (reusing
  the LMM result's per-term split), with delta-method SEs from the same covariance (what Stata
  prints beside ``var(_cons)``); GLMMs have no residual row;
* ``logLik = -deviance / 2`` including the full binomial/Poisson normalising constants, as glmer's
  and Stata's (they agree for 0/1 and Poisson responses); AIC/BIC with ``df`` = number of
  parameters and ``n`` = rows used;
* random effects: conditional modes with conditional SDs (Laplace and lme4-style AGHQ, as
  glmer's/clmm's ``ranef(condVar = TRUE)``) or posterior means with posterior SDs (MVAGHQ, as
  Stata's ``predict, reffects``).
"""

from __future__ import annotations

import math

import numpy as np

from harness.estimator import Estimator
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, RandomEffect,
                             Statistics)

from ..result import _factor_variance_rows
from ..theta import sd_and_correlation
from .fit import GlmmFit


def variance_rows(fit: GlmmFit, theta: np.ndarray) -> list[Parameter]:
    f = fit.problem.data.factor
    T = fit.problem.T(theta)
    sd, corr = sd_and_correlation(T @ T.T)
    return _factor_variance_rows(f.name, f.columns, f.term_sizes, sd, corr)


def _variance_ses(fit: GlmmFit) -> list[float | None]:
    """Delta-method SEs of every variance row, from the covariance of theta."""
    nt = fit.n_theta
    base = variance_rows(fit, fit.theta)
    Vt = fit.cov[:nt, :nt]
    if not np.all(np.isfinite(Vt)):
        return [None] * len(base)
    J = np.zeros((len(base), nt))
    h = 1e-6
    for i in range(nt):
        e = np.zeros(nt)
        e[i] = h
        up = [r.estimate for r in variance_rows(fit, fit.theta + e)]
        dn = [r.estimate for r in variance_rows(fit, fit.theta - e)]
        J[:, i] = (np.array(up) - np.array(dn)) / (2 * h)
    var = np.einsum("ri,ij,rj->r", J, Vt, J)
    return [float(math.sqrt(v)) if v >= 0 else None for v in var]


def to_fit_result(fit: GlmmFit, spec_id: str, provenance: Provenance | None = None) -> FitResult:
    se = np.sqrt(np.clip(np.diag(fit.cov), 0.0, None))
    se = np.where(np.isfinite(np.diag(fit.cov)), se, np.nan)
    nt, p = fit.n_theta, len(fit.x_names)
    params = [Parameter("fixed", None, name, float(b), _num(se[nt + i]))
              for i, (name, b) in enumerate(zip(fit.x_names, fit.beta))]
    params += [Parameter("threshold", None, name, float(a), _num(se[nt + p + i]))
               for i, (name, a) in enumerate(zip(fit.threshold_names, fit.alpha))]
    vrows = variance_rows(fit, fit.theta)
    params += [Parameter(r.effect, r.group, r.term, r.estimate, s)
               for r, s in zip(vrows, _variance_ses(fit))]
    f = fit.problem.data.factor
    sds = np.sqrt(np.clip(np.diagonal(fit.ranef_cov, axis1=1, axis2=2), 0.0, None))
    ranef = [RandomEffect(f.name, lvl, term, float(fit.ranef[j, a]), float(sds[j, a]))
             for a, term in enumerate(f.columns) for j, lvl in enumerate(f.levels)]
    n = fit.design.n
    df = fit.x.size
    stats = Statistics(nobs=n, ngroups={f.name: f.m}, loglik=-0.5 * fit.deviance,
                       deviance=fit.deviance, aic=fit.deviance + 2 * df,
                       bic=fit.deviance + math.log(n) * df, df=df,
                       nobs_dropped=fit.design.nobs_dropped)
    diag = Diagnostics(
        converged=fit.converged, singular=fit.singular, max_abs_gradient=fit.max_abs_gradient,
        warnings=list(fit.warnings), optimizer="nlopt LN_BOBYQA (scaled) + Newton polish",
        evaluations=fit.evaluations,
        messages=list(fit.messages) + [
            f"family {fit.family}({fit.link}), method {fit.method}",
            "logLik includes the full normalising constants (glmer's and Stata's scale); "
            "statistics.deviance is -2 logLik",
            f"deviance by stage: {fit.stage_deviances}",
            f"Hessian positive definite: {fit.hessian_pd}",
            f"theta: {np.round(fit.theta, 10).tolist()}"])
    result = FitResult(spec_id=spec_id, backend="native", status="ok", parameters=params,
                       statistics=stats, random_effects=ranef, diagnostics=diag,
                       provenance=provenance or Provenance(backend="native"),
                       timings={"fit_seconds": fit.seconds})
    return result.set_estimator(Estimator.parse(fit.method))


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None
