"""Post-estimation quantities computed uniformly from any backend's canonical result.

Computing them here, from the canonical parameters, rather than asking each package, means a
difference in an ICC can only come from a difference in the variance components it is built on.
Definitions follow the course (models.md §5.2): the linear ICC, the latent-scale ICC for logit
(residual variance pi^2/3) and probit (1), per-level VPCs, and Stata's level-k ICC for nested
models (the sum of the variances at that level and above over the total).
"""

from __future__ import annotations

import math

from harness.results import FitResult

LATENT_RESIDUAL_VARIANCE = {"logit": math.pi ** 2 / 3, "probit": 1.0}


def intercept_variances(result: FitResult) -> dict[str, float]:
    """var__(Intercept) per grouping factor, for models whose random part is intercepts only."""
    out = {}
    for p in result.parameters:
        if p.effect == "ran_pars" and p.group != "Residual" and p.term.startswith("var__"):
            if p.term != "var__(Intercept)":
                return {}  # a random slope: ICCs are not defined (the course blanks them)
            out[str(p.group)] = p.estimate
    return out


def residual_variance(result: FitResult, family: str, link: str) -> float | None:
    if family == "gaussian":
        for p in result.parameters:
            if p.group == "Residual" and p.term == "var__Observation":
                return p.estimate
        return None
    return LATENT_RESIDUAL_VARIANCE.get(link)


def statistics(result: FitResult, family: str, link: str,
               nesting: list[str] | None = None) -> dict[str, float]:
    """Named quantities for ``stat/<name>`` references: icc, vpc/<group>, icc/<group>, loglik...

    ``nesting`` lists grouping factors from the highest level down (hospital, wardid) for nested
    models; with it, ``icc/<group>`` is Stata's ``estat icc`` value for that level.
    """
    s = result.statistics
    out: dict[str, float] = {k: float(v) for k, v in (
        ("loglik", s.loglik), ("aic", s.aic), ("bic", s.bic), ("deviance", s.deviance),
        ("reml_criterion", s.reml_criterion), ("nobs", s.nobs)) if v is not None}
    for g, n in s.ngroups.items():
        out[f"ngroups/{g}"] = float(n)
    variances = intercept_variances(result)
    resid = residual_variance(result, family, link)
    if variances and resid is not None:
        total = sum(variances.values()) + resid
        for g, v in variances.items():
            out[f"vpc/{g}"] = v / total
        if len(variances) == 1:
            out["icc"] = next(iter(variances.values())) / total
        if nesting and set(nesting) <= set(variances):
            cumulative = 0.0
            for g in nesting:
                cumulative += variances[g]
                out[f"icc/{g}"] = cumulative / total
    return out
