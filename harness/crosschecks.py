"""Checks that involve two specs: likelihood-ratio tests and exact replication identities.

LR tests give ``stat/lr/<against>/chi2``, ``/df`` and ``/p`` per backend, so a reference can state
the course's test statistic. A test between REML fits is valid only when the fixed parts are the
same (the REML likelihood depends on the fixed-effects design); otherwise it is reported as
invalid rather than computed.

Replication (the course's upscaled GCSE data, each copy its own clusters) must reproduce the base
fit exactly under ML: log-likelihood x R, identical estimates, SEs / sqrt(R). These are
identities, so the tolerance is tight (relative 1e-6), and any failure is a real bug.
"""

from __future__ import annotations

import math

from harness.compare import Check
from harness.keys import ParamKey, Source
from harness.results import FitResult
from harness.spec import CrossCheck, Spec
from harness.tolerances import policy_row, quantity_class

REPLICATION_RELATIVE = 1e-6


def lr_statistics(spec: Spec, other: Spec, mine: FitResult, theirs: FitResult,
                  ) -> tuple[dict[str, float], str]:
    """LR test values for ``mine`` (the larger model) against ``theirs``, and a note."""
    ll_a, ll_b = mine.statistics.loglik, theirs.statistics.loglik
    df_a, df_b = mine.statistics.df, theirs.statistics.df
    if None in (ll_a, ll_b, df_a, df_b):
        return {}, "no log-likelihood or df to test with"
    ea, eb = mine.estimator, theirs.estimator
    method_a = ea.estimates_label() if ea else "?"
    if ea is None or eb is None or not ea.same_estimates(eb):
        return {}, (f"not computed: {method_a} fit against "
                    f"{eb.estimates_label() if eb else '?'} fit")
    if ea.criterion == "REML" and spec.model_for(mine.backend).parsed.terms.signature() != \
            other.model_for(theirs.backend).parsed.terms.signature():
        return {}, "not computed: REML likelihoods are comparable only with identical fixed parts"
    chi2 = 2.0 * (ll_a - ll_b)  # type: ignore[operator]
    df = float(df_a - df_b)  # type: ignore[operator]
    from scipy import stats  # here: scipy.stats costs 0.5 s to import (CLI speed)

    p = float(stats.chi2.sf(chi2, df)) if df > 0 else math.nan
    note = (f"{method_a} likelihoods; chi2({df:g}) = {chi2:.3f}, p = {p:.3g}; no boundary "
            "correction (a variance tested at zero makes this p conservative)")
    return {"chi2": chi2, "df": df, "p": p}, note


def replication_checks(check: CrossCheck, mine: FitResult, base: FitResult,
                       renamed_groups: dict[str, str] | None = None) -> list[Check]:
    """Exact identities between a fit on R stacked copies and the base fit (ML).

    ``renamed_groups`` maps the replicated data's cluster id (``school2``) to the base's
    (``school``) so variance parameters are compared too, not only fixed effects.
    """
    times = float(check.times or 1)
    source_a = Source.backend(mine.backend)
    source_b = Source.crosscheck(base.backend, str(check.base), f"x{check.times}")
    out: list[Check] = []

    # The identity is exact, but a GLMM's Laplace/quadrature optimum is found only to the GLMM
    # engine tolerance of harness/tolerances.py, so that is the floor for GLMM fits.
    glmm = mine.estimator is not None and mine.estimator.integration != "none"

    def add(key: ParamKey, quantity: str, value: float, expected: float) -> None:
        rel, floor = REPLICATION_RELATIVE, 0.0
        if glmm:  # the whole GLMM engine row: correlations, say, are judged on an absolute scale
            row = policy_row("engines", "GLMM", quantity_class(key, quantity), "GLMM")
            rel, floor = max(rel, row.relative), row.absolute
        limit = max(rel * max(abs(value), abs(expected), 1e-8), floor)
        ok = abs(value - expected) <= limit
        out.append(Check(key, quantity, source_a, source_b, value, expected, limit,
                         f"replication identity: relative {rel:g}"
                         + (f", absolute {floor:g}" if floor else "")
                         + (" (GLMM optimiser tolerance)" if glmm else ""),
                         "agree" if ok else "unexplained",
                         "" if ok else "replicated data must reproduce the base ML fit exactly"))

    if mine.statistics.loglik is not None and base.statistics.loglik is not None:
        add(ParamKey.stat("loglik"), "estimate", mine.statistics.loglik,
            times * base.statistics.loglik)
    base_params = {p.param_key: p for p in base.parameters}
    renamed = renamed_groups or {}
    for p in mine.parameters:
        key = p.param_key
        if key.group in renamed and key.kind == "ran_pars":
            key = key.in_group(renamed[key.group])
        b = base_params.get(key)
        if b is None:
            continue
        add(p.param_key, "estimate", p.estimate, b.estimate)
        if p.std_error is not None and b.std_error is not None:
            add(p.param_key, "std_error", p.std_error, b.std_error / math.sqrt(times))
    return out
