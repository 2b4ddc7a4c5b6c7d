"""Check a spec's data before anything is fitted, so bad data is an error with its name.

Every backend would fail on these, or worse, would fit something else than the user meant and
agree with the others about it (one ``"abc"`` in a numeric column made it a 1,000-level factor in
both engines, and the comparison said "explained"). Each check names the spec key, the variable
and, where one row is at fault, the first such row (1-based, in the data as prepared before the
subset: the file's own row for a spec without ``replicate``) and its value, and says what would
fix it:

* :func:`check_numeric_columns` — a column used as a number (a response, a predictor not
  declared a factor, a random slope, an input of ``derive`` arithmetic or of ``subset``) holds
  only numbers;
* :func:`check_has_rows` — the file, the subset and the complete cases leave rows to fit;
* :func:`check_outcome` — the response suits the family: 0/1 (or successes out of ``trials``)
  for binomial, non-negative whole numbers for Poisson, at least two categories for ordinal and
  multinomial, finite numbers for gaussian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.derive import expr_columns
from harness.spec import Model, Spec


class DataCheckError(ValueError):
    """Data that cannot support the spec; the message names the key, variable, row and fix."""


@dataclass(frozen=True)
class ModelUse:
    """A model the spec fits and the spec key that writes its formula."""

    key: str  # "model.formula" or "backends.<name>.formula"
    model: Model


def model_uses(spec: Spec) -> list[ModelUse]:
    """The distinct models the spec fits: the main one and any backend formula override."""
    return [ModelUse("model.formula", spec.model)] + [
        ModelUse(f"backends.{b}.formula", spec.model_for(b))
        for b, s in spec.backends.items() if s.formula]


def trials_column(spec: Spec) -> str | None:
    """The binomial trials column the native backend is given (``options: {trials: <column>}``),
    if any: then the spec's author says the outcome counts successes."""
    native = spec.backends.native
    return native.options.trials if native is not None else None


def numeric_uses(spec: Spec) -> dict[str, str]:
    """Columns the spec uses as numbers -> the first spec key that does so."""
    declared = {c for c, t in spec.columns.items() if t == "factor"}
    uses: dict[str, str] = {}
    for use in model_uses(spec):
        f = use.model.parsed
        fixed = f.variables() - {f.response} - set(f.grouping_factors) \
            - {g for t in f.random for g in t.group_factors} - f.factor_variables()
        for t in f.random:
            fixed -= set(t.slopes)
        for col in [f.response, *sorted(fixed), *(s for t in f.random for s in t.slopes)]:
            if col not in declared:
                uses.setdefault(col, use.key)
    for i, d in enumerate(spec.derive):
        key = f"derive[{i}] ({d.name})"
        cols: list[str] = []
        if d.expr is not None:
            cols = expr_columns(d.expr, d.name)
        elif d.group_mean is not None:
            cols = [d.group_mean]
        elif d.recode is not None and d.source:
            cols = [d.source]
        for col in sorted(cols):
            uses.setdefault(col, key)
    if spec.subset:
        for col in sorted(expr_columns(spec.subset, "subset")):
            uses.setdefault(col, "subset")
    return uses


def show(v: object) -> str:
    """A value as the user wrote it: ``2``, ``-1``, ``0.5``, ``'abc'`` (no numpy types)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _is_number(v: object) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return True
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    return False


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def first_non_number(s: pd.Series) -> tuple[int, object, bool] | None:
    """(position, value, parses as a number) of the first value that is not a number.

    The third item says whether that text would read as a number ("3" does, "abc" does not); the
    first value that does not is preferred, since that is the one to fix.
    """
    first_text: tuple[int, object, bool] | None = None
    for pos, v in enumerate(s.tolist()):
        if _missing(v) or _is_number(v):
            continue
        try:
            float(str(v))
        except ValueError:
            return pos, v, False
        if first_text is None:
            first_text = (pos, v, True)
    return first_text


def check_numeric_columns(frame: pd.DataFrame, spec: Spec, csv: bool = False) -> None:
    """Every column the spec uses as a number holds numbers (see the module docstring)."""
    for col, key in numeric_uses(spec).items():
        if col not in frame.columns:
            continue  # derived later, or reported as missing by the caller
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            raise DataCheckError(
                f"{key}: column {col!r} is categorical in the data file but is used as a "
                f"number; {_declare_factor(col)}, or convert it")
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        found = first_non_number(s)
        if found is None:
            continue  # every value missing: the complete-case check says so
        pos, value, numeric_text = found
        where = f"row {pos + 1}" + (f" (line {pos + 2} of the CSV file)" if csv else "")
        what = (f"holds numbers stored as text ({where} has {show(value)})" if numeric_text else
                f"is not numeric: {where} has {show(value)}, the first value that is not a "
                "number")
        raise DataCheckError(
            f"{key}: column {col!r} {what}; {key} uses it as a number. Fix the value in the "
            f"data file, or, if it is a category, {_declare_factor(col)}")


def _declare_factor(col: str) -> str:
    return (f"declare it a factor (columns: {{{col}: factor}} in the spec, --factor {col} with "
            "mlm-harness fit)")


def check_has_rows(n: int, what: str) -> None:
    if n == 0:
        raise DataCheckError(what)


def complete_rows(frame: pd.DataFrame, model: Model) -> pd.Series:
    cols = [c for c in sorted(model.parsed.variables()) if c in frame.columns]
    return frame[cols].notna().all(axis=1)


def check_complete_rows(frame: pd.DataFrame, use: ModelUse) -> None:
    """At least one row has every variable of the model; else name the variables that miss."""
    if len(frame) == 0 or bool(complete_rows(frame, use.model).any()):
        return
    cols = [c for c in sorted(use.model.parsed.variables()) if c in frame.columns]
    counts = {c: int(frame[c].isna().sum()) for c in cols}
    worst = ", ".join(f"{c} in {k} of {len(frame)}" for c, k in
                      sorted(counts.items(), key=lambda kv: -kv[1]) if k)
    raise DataCheckError(
        f"{use.key}: no row has a value for every model variable (missing: {worst}); every "
        "row would be dropped. Check the variable names and the subset, or derive the missing "
        "values")


def _bad(use: ModelUse, y: pd.Series, bad: np.ndarray, rule: str, fix: str) -> DataCheckError:
    first = int(np.flatnonzero(bad)[0])
    label = y.index[first]
    row = int(label) + 1 if isinstance(label, (int, np.integer)) else label
    return DataCheckError(
        f"{use.key}: the {use.model.family} outcome {y.name!r} must be {rule}, but row {row} "
        f"has {show(y.iloc[first])} ({int(bad.sum())} of {len(y)} rows that enter the model are "
        f"not). {fix}")


def check_outcome(frame: pd.DataFrame, use: ModelUse, trials: str | None = None) -> None:
    """The response suits the family, on the rows that enter the model.

    ``frame`` keeps the prepared data's row labels (before the subset resets them), so the row
    named in a message is the row of the data. ``trials`` names the column of binomial trials
    when a backend is given one (then the response is successes, 0..trials).
    """
    model = use.model
    resp = model.parsed.response
    if resp not in frame.columns:
        return
    rows = frame.loc[complete_rows(frame, model).to_numpy()]
    y = rows[resp]
    if not (pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)):
        if model.family in ("ordinal", "multinomial"):
            _check_categories(use, y)
        return  # a declared-factor response; the numeric-column check covers the rest
    v = y.to_numpy(dtype=float)
    family = model.family
    if family == "gaussian":
        bad = ~np.isfinite(v)
        if bad.any():
            raise _bad(use, y, bad, "a finite number", "Remove or recode the infinite values")
    elif family == "binomial":
        if trials and trials in rows.columns:
            m = rows[trials].to_numpy(dtype=float)
            bad = ~np.isfinite(v) | (v < 0) | (v > m) | (v != np.round(v))
            if bad.any():
                raise _bad(use, y, bad, f"a whole number of successes between 0 and {trials!r}",
                           f"Check the outcome and the trials column {trials!r}")
        else:
            bad = ~np.isin(v, (0.0, 1.0))
            if bad.any():
                raise _bad(use, y, bad, "0 or 1",
                           "Recode it to 0/1 under 'derive' (e.g. {name: y01, expr: 'y >= 1'}), "
                           "or, for successes out of n trials, give the trials column (backends: "
                           "{native: {options: {trials: <column>}}})")
            if len(v) and (v.min() == v.max()):
                raise DataCheckError(
                    f"{use.key}: the binomial outcome {resp!r} is {v[0]:g} in every one of the "
                    f"{len(v)} rows that enter the model, so the maximum-likelihood estimates do "
                    "not exist; check the outcome and the subset")
    elif family == "poisson":
        bad = ~np.isfinite(v) | (v < 0) | (v != np.round(v))
        if bad.any():
            raise _bad(use, y, bad, "a count (a whole number, 0 or more)",
                       "Check the outcome: a Poisson model needs counts")
        if len(v) and v.max() == 0:
            raise DataCheckError(
                f"{use.key}: the Poisson outcome {resp!r} is 0 in every one of the {len(v)} rows "
                "that enter the model, so the maximum-likelihood estimates do not exist")
    else:
        bad = ~np.isfinite(v)
        if bad.any():
            raise _bad(use, y, bad, "a finite number (a category code)",
                       "Remove or recode the infinite values")
        _check_categories(use, y)


def _check_categories(use: ModelUse, y: pd.Series) -> None:
    levels = pd.unique(y.dropna())
    if len(levels) < 2:
        only = f"only the value {show(levels[0])}" if len(levels) else "no value"
        raise DataCheckError(
            f"{use.key}: the {use.model.family} outcome {y.name!r} has {only} in the "
            f"{len(y)} rows that enter the model; it needs at least two categories. Check the "
            "outcome and the subset")
