"""Wald confidence intervals on a stated scale, and the fixed-effect test p-value: written once.

Why here: a Wald interval depends on the scale it is formed on (Stata ``mixed`` forms those of
variance parameters on the log-sd and atanh-correlation scales; a symmetric interval on the
variance scale is another quantity), and on the reference distribution (z or t with some df).
Native, the lme4 converter and the comparison's recomputations all build intervals with these
functions, so "the same interval on another footing" means the same arithmetic everywhere.
"""

from __future__ import annotations

import math

from scipy import stats

from harness.keys import ParamKey
from harness.results import Interval, IntervalScale, Parameter

LEVEL = 0.95


def quantile(level: float, df: float | None = None) -> float:
    """The two-sided critical value: z, or t with ``df`` degrees of freedom."""
    p = 0.5 + level / 2.0
    return float(stats.norm.ppf(p) if df is None else stats.t.ppf(p, df))


def two_sided_p(statistic: float, df: float | None = None) -> float:
    """``P(|T| > |statistic|)`` under N(0, 1) (``df`` None) or t(``df``)."""
    dist = stats.norm if df is None else stats.t(df)
    return float(2.0 * dist.sf(abs(statistic)))


def wald(estimate: float, se: float, scale: IntervalScale, level: float = LEVEL,
         df: float | None = None) -> tuple[float, float, float]:
    """``(lower, upper, se on scale)`` of the Wald interval formed on ``scale``.

    ``natural``: ``estimate +/- q se``. ``log`` (an sd or a variance, > 0): ``exp(log est +/-
    q se / est)``; as log var = 2 log sd this is the same interval for the variance as Stata's
    ``exp(2 (lns +/- q se_lns))``. ``atanh`` (a correlation in (-1, 1)):
    ``tanh(atanh r +/- q se / (1 - r^2))``. The SE on the scale is the delta method's.
    """
    q = quantile(level, df)
    if scale == "natural":
        return estimate - q * se, estimate + q * se, se
    if scale == "log":
        if not estimate > 0:
            raise ValueError(f"a log-scale interval needs a positive estimate, not {estimate}")
        s = se / estimate
        centre = math.log(estimate)
        return math.exp(centre - q * s), math.exp(centre + q * s), s
    if scale == "atanh":
        if not abs(estimate) < 1:
            raise ValueError(f"an atanh-scale interval needs |estimate| < 1, not {estimate}")
        s = se / (1.0 - estimate ** 2)
        centre = math.atanh(estimate)
        return math.tanh(centre - q * s), math.tanh(centre + q * s), s
    raise ValueError(f"unknown interval scale {scale!r}")


def scales_for(key: ParamKey) -> tuple[IntervalScale, ...]:
    """The scales a Wald interval of ``key`` is reported on: the natural one, plus Stata's
    (log for sds and variances, atanh for correlations)."""
    if key.kind != "ran_pars":
        return ("natural",)
    return {"sd": ("natural", "log"), "var": ("natural", "log"),
            "cor": ("natural", "atanh")}.get(key.scale or "", ("natural",))


def wald_intervals(parameters: list[Parameter], level: float = LEVEL) -> list[Interval]:
    """z-based Wald intervals of every parameter with an SE, on each of its scales."""
    out = []
    for p in parameters:
        if p.std_error is None or not math.isfinite(p.std_error):
            continue
        key = p.param_key
        for scale in scales_for(key):
            try:
                lo, hi, se = wald(p.estimate, p.std_error, scale, level)
            except ValueError:
                continue        # a boundary estimate has no interval on that scale
            out.append(Interval(p.key, "wald", scale, level, lo, hi, se))
    return out
