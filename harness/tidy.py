"""Long and wide pandas tables of one comparison, named as broom.mixed names them.

:func:`tidy` has one row per parameter and source with broom.mixed's columns ``effect``,
``group``, ``term``, ``estimate``, ``std.error`` (``effect`` is ``fixed``, ``ran_pars`` or
``threshold``; the residual is group ``Residual``, term ``sd__Observation``), then ``backend``
(the source: ``native``, ``lme4``, ``ref:N19``), ``verdict`` (the worst verdict of that source's
comparisons of the parameter, "" if it was compared with nothing), ``digits`` (the fewest digits
of agreement among them) and ``key`` (the canonical key, harness/keys.py). The JSON result keeps
its own field name ``std_error`` (a contract of harness/results.py); the DataFrames use broom's.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.compare import SpecComparison
from harness.keys import ParamKey
from harness.sidebyside import (checks_of, estimator_label, parameter_keys, shown_sources,
                                worst_verdict)

TIDY_COLUMNS = ["effect", "group", "term", "estimate", "std.error", "backend", "verdict",
                "digits", "key"]
CHECK_COLUMNS = ["key", "quantity", "a", "b", "value_a", "value_b", "abs_diff", "tolerance",
                 "digits", "verdict", "known_difference", "explanation", "rule"]


def tidy(comp: SpecComparison) -> pd.DataFrame:
    rows = []
    sources = shown_sources(comp)
    for key in parameter_keys(comp):
        for src in sources:
            entry = comp.values[key].get(src)
            if not entry:
                continue
            checks = checks_of(comp, key, src)
            rows.append({"effect": key.kind, "group": key.group, "term": key.name,
                         "estimate": entry.get("estimate", math.nan),
                         "std.error": entry.get("std_error", math.nan), "backend": str(src),
                         "verdict": worst_verdict(checks),
                         "digits": min((c.digits for c in checks), default=math.nan),
                         "key": str(key)})
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def wide(comp: SpecComparison, value: str = "estimate") -> pd.DataFrame:
    """Parameters as rows (indexed by key) and sources as columns: ``value`` is ``estimate``
    or ``std.error``."""
    if value not in ("estimate", "std.error"):
        raise ValueError(f"value must be 'estimate' or 'std.error', not {value!r}")
    long = tidy(comp)
    table = long.pivot(index="key", columns="backend", values=value)
    order = list(dict.fromkeys(long["key"]))
    columns = [str(s) for s in shown_sources(comp) if str(s) in table.columns]
    return table.reindex(index=order, columns=columns).rename_axis(columns=None)


def glance(comp: SpecComparison) -> pd.DataFrame:
    """One row per source with its fit statistics (broom's names: ``nobs``, ``logLik``,
    ``AIC``, ``BIC``, ``deviance``, ``REMLcrit``) and its ``estimator``."""
    names = {"nobs": "nobs", "loglik": "logLik", "aic": "AIC", "bic": "BIC",
             "deviance": "deviance", "reml_criterion": "REMLcrit"}
    rows = []
    for src in shown_sources(comp):
        row: dict[str, object] = {"backend": str(src), "estimator": estimator_label(comp, src)}
        for stat, column in names.items():
            row[column] = comp.values.get(ParamKey.stat(stat), {}).get(src, {}).get(
                "estimate", math.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=["backend", "estimator", *names.values()])


def checks_frame(comp: SpecComparison) -> pd.DataFrame:
    """Every comparison of the spec: both sides, the difference, its tolerance and verdict."""
    return pd.DataFrame([{
        "key": str(c.key), "quantity": c.quantity, "a": str(c.source_a), "b": str(c.source_b),
        "value_a": c.value_a, "value_b": c.value_b, "abs_diff": c.abs_diff,
        "tolerance": c.tolerance, "digits": c.digits, "verdict": c.verdict,
        "known_difference": c.known_id, "explanation": c.explanation,
        "rule": c.tolerance_rule} for c in comp.checks], columns=CHECK_COLUMNS)
