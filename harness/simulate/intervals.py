"""Confidence intervals of one estimate: one column pair per interval type.

Each interval type is a name in :data:`INTERVAL_TYPES` and a pair of columns
``<name>_lower`` / ``<name>_upper`` in the replication table; the summary reports the coverage
of each type separately. Profile-likelihood intervals (issue "Inference across packages") slot
in as another name whose bounds the replication computes from the fit, next to these.

* ``wald``: ``estimate ± z SE`` on the parameter's own scale (what ``confint(method="Wald")``
  gives for fixed effects; for an sd it can reach below zero);
* ``wald_log``: for sds and variances ``exp(log(estimate) ± z SE / estimate)`` (the log scale,
  on which Stata prints the intervals of variance components), for correlations Fisher's
  ``tanh(atanh(r) ± z SE / (1 - r^2))``; not defined for fixed effects.
"""

from __future__ import annotations

import math

from scipy.stats import norm

from harness.keys import ParamKey

INTERVAL_TYPES = ("wald", "wald_log")
MAX_EXP = 700.0  # math.exp overflows a float beyond about 709


def z_value(level: float) -> float:
    return float(norm.ppf(0.5 + level / 2))


def interval_columns(key: ParamKey, estimate: float, se: float | None,
                     z: float) -> dict[str, float | None]:
    """``{<type>_lower: .., <type>_upper: ..}`` for every interval type (None: not defined)."""
    out: dict[str, float | None] = {f"{t}_{b}": None for t in INTERVAL_TYPES
                                    for b in ("lower", "upper")}
    if se is None or not math.isfinite(se) or not math.isfinite(estimate):
        return out
    out["wald_lower"], out["wald_upper"] = estimate - z * se, estimate + z * se
    scale = key.scale
    if scale in ("sd", "var") and estimate > 0:
        half = z * se / estimate  # huge for an sd next to 0: the interval is then (0, inf)
        out["wald_log_lower"] = estimate * math.exp(-half)
        out["wald_log_upper"] = estimate * math.exp(half) if half < MAX_EXP else math.inf
    elif scale == "cor" and abs(estimate) < 1:
        centre, half = math.atanh(estimate), z * se / (1 - estimate ** 2)
        out["wald_log_lower"], out["wald_log_upper"] = (math.tanh(centre - half),
                                                        math.tanh(centre + half))
    return out
