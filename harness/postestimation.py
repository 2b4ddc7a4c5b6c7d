"""Post-estimation quantities computed uniformly from any backend's canonical result.

Computing them here, from the canonical parameters, rather than asking each package, means a
difference in an ICC can only come from a difference in the variance components it is built on.
Definitions follow the course (models.md §5):

* §5.2 the linear ICC sigma2_u / (sigma2_u + sigma2_e); the latent-scale ICC for logit (residual
  variance pi^2/3) and probit (1), which also applies to the ordinal (cumulative) logit/probit;
  per-level VPCs ``vpc/<group>``; Stata's level-k ICC ``icc/<group>`` for nested models (the sum
  of the variances at that level and above over the total). Random-slope models get no ICC (the
  course blanks it). Poisson models get none either (no latent residual).
* §5.8 AIC/BIC: ``aic``/``bic`` as each backend reports them; ``aic_computed``/``bic_computed``
  from the log-likelihood, the parameter count ``df`` and N (as lme4 and Stata do: BIC uses the
  number of observations), so a backend that counts parameters differently shows up.
* §5.4 BLUPs (conditional modes / EB predictions) with their SEs: aligned by (group, term,
  level), never by position, with the rank correlation between backends and the top and bottom
  clusters of each (:func:`blup_agreement`).
* §5.7 LR tests between nested specs live in harness/crosschecks.py (REML or ML is stated, and a
  REML test between different fixed parts is reported as invalid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness.results import FitResult, RandomEffect

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
    """sigma2_e for a linear model; the latent-scale residual for logit/probit (binary, ordinal)."""
    if family == "gaussian":
        for p in result.parameters:
            if p.group == "Residual" and p.term == "var__Observation":
                return p.estimate
        return None
    if family in ("binomial", "ordinal"):
        return LATENT_RESIDUAL_VARIANCE.get(link)
    return None


def statistics(result: FitResult, family: str, link: str,
               nesting: list[str] | None = None) -> dict[str, float]:
    """Named quantities for ``stat/<name>`` references: icc, vpc/<group>, icc/<group>, loglik...

    ``nesting`` lists grouping factors from the highest level down (hospital, wardid) for nested
    models; with it, ``icc/<group>`` is Stata's ``estat icc`` value for that level.
    """
    s = result.statistics
    out: dict[str, float] = {k: float(v) for k, v in (
        ("loglik", s.loglik), ("aic", s.aic), ("bic", s.bic), ("deviance", s.deviance),
        ("reml_criterion", s.reml_criterion), ("nobs", s.nobs), ("df", s.df)) if v is not None}
    for g, n in s.ngroups.items():
        out[f"ngroups/{g}"] = float(n)
    out.update(information_criteria(result))
    out.update(icc_vpc(result, family, link, nesting))
    return out


def information_criteria(result: FitResult) -> dict[str, float]:
    """AIC = -2LL + 2k and BIC = -2LL + k log N from the result's own LL, k and N."""
    s = result.statistics
    if s.loglik is None or s.df is None or not s.nobs:
        return {}
    return {"aic_computed": -2 * s.loglik + 2 * s.df,
            "bic_computed": -2 * s.loglik + s.df * math.log(s.nobs)}


def icc_vpc(result: FitResult, family: str, link: str,
            nesting: list[str] | None = None) -> dict[str, float]:
    variances = intercept_variances(result)
    resid = residual_variance(result, family, link)
    out: dict[str, float] = {}
    if not variances or resid is None:
        return out
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


def describe_icc(family: str, link: str) -> str:
    """One sentence saying which ICC definition applies, for the report."""
    if family == "gaussian":
        return ("ICC = sigma2_u / (sigma2_u + sigma2_e), from the variance components; with "
                "covariates it is the residual (conditional) ICC")
    if family in ("binomial", "ordinal") and link in LATENT_RESIDUAL_VARIANCE:
        r = "pi^2/3 = 3.29" if link == "logit" else "1"
        return f"latent-scale ICC = sigma2_u / (sigma2_u + {r}) for the {link} link"
    return "no ICC is defined for this family (no latent residual variance)"


# ---- BLUPs ---------------------------------------------------------------------------------


def blups(result: FitResult) -> dict[tuple[str, str], dict[str, RandomEffect]]:
    """{(group, term): {level: RandomEffect}} — aligned by name, never by position."""
    out: dict[tuple[str, str], dict[str, RandomEffect]] = {}
    for re_ in result.random_effects:
        out.setdefault((re_.group, re_.term), {})[str(re_.level)] = re_
    return out


@dataclass
class BlupAgreement:
    """How two backends' BLUPs for one (group, term) line up."""

    group: str
    term: str
    source_a: str
    source_b: str
    n_common: int
    only_a: int
    only_b: int
    max_abs_diff: float
    worst_level: str
    value_a: float  # at the worst level
    value_b: float
    max_abs_se_diff: float | None
    spearman: float | None
    pearson: float | None
    top_a: list[str] = field(default_factory=list)
    top_b: list[str] = field(default_factory=list)
    bottom_a: list[str] = field(default_factory=list)
    bottom_b: list[str] = field(default_factory=list)

    @property
    def same_extremes(self) -> bool:
        return self.top_a == self.top_b and self.bottom_a == self.bottom_b


def blup_agreement(a: FitResult, b: FitResult, k: int = 3) -> list[BlupAgreement]:
    """Per (group, term) common to both: max difference, rank correlation, top/bottom k."""
    ba, bb = blups(a), blups(b)
    out = []
    for gt in sorted(set(ba) & set(bb)):
        la, lb = ba[gt], bb[gt]
        common = sorted(set(la) & set(lb), key=_level_order)
        if not common:
            continue
        xa = np.array([la[lv].estimate for lv in common])
        xb = np.array([lb[lv].estimate for lv in common])
        diff = np.abs(xa - xb)
        worst = int(np.argmax(diff))
        se_diffs = [abs(la[lv].std_error - lb[lv].std_error) for lv in common
                    if la[lv].std_error is not None and lb[lv].std_error is not None]
        spearman = pearson = None
        if len(common) > 2 and np.ptp(xa) > 0 and np.ptp(xb) > 0:
            from scipy import stats as sps  # here: scipy.stats costs 0.5 s to import (CLI speed)

            spearman = float(sps.spearmanr(xa, xb).statistic)
            pearson = float(np.corrcoef(xa, xb)[0, 1])
        kk = min(k, len(common))

        def extremes(x: np.ndarray) -> tuple[list[str], list[str]]:
            order = np.argsort(-x, kind="stable")
            return [common[i] for i in order[:kk]], [common[i] for i in order[::-1][:kk]]

        top_a, bottom_a = extremes(xa)
        top_b, bottom_b = extremes(xb)
        out.append(BlupAgreement(
            gt[0], gt[1], a.backend, b.backend, len(common), len(set(la) - set(lb)),
            len(set(lb) - set(la)), float(diff[worst]), common[worst], float(xa[worst]),
            float(xb[worst]), max(se_diffs) if se_diffs else None, spearman, pearson,
            top_a, top_b, bottom_a, bottom_b))
    return out


def _level_order(level: str) -> tuple[int, float, str]:
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level)


def caterpillar_data(result: FitResult, group: str, term: str,
                     multiplier: float = 1.96) -> list[tuple[str, float, float | None]]:
    """(level, estimate, half-width) sorted by estimate; half-width = multiplier x SE (D20)."""
    rows = [(str(r.level), r.estimate,
             multiplier * r.std_error if r.std_error is not None else None)
            for r in result.random_effects if r.group == group and r.term == term]
    return sorted(rows, key=lambda t: t[1])
