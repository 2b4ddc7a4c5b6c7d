"""Check a spec's data before anything is fitted, so bad data is an error with its name.

Every backend would fail on these, or worse, would fit something else than the user meant and
agree with the others about it (one ``"abc"`` in a numeric column made it a 1,000-level factor in
both engines, and the comparison said "explained"). Each check names the spec key, the variable
and, where one row is at fault, the first such row (1-based, in the data as prepared before the
subset: the file's own row for a spec without ``replicate``) and its value, and says what would
fix it:

* :func:`check_numeric_columns` — a column used as a number (a gaussian or Poisson response,
  binomial successes, a random slope, the input of ``I()`` and other arithmetic, of a model
  attribute, of ``derive`` arithmetic or of ``subset``) holds only numbers. A predictor written
  bare may also hold text, as R reads text as a factor, but only labels: a column mixing
  numbers and text is an error whose fix is to declare it (one ``"abc"`` among numbers must not
  become a 1,000-level factor);
* :func:`check_slopes_are_numeric` — a random slope is not a factor or text (derive a 0/1
  indicator instead);
* :func:`check_has_rows` — the file, the subset and the complete cases leave rows to fit;
* :func:`check_outcome` — the response suits the family: 0/1, two labels (R's binomial coding:
  the first level is failure) or successes out of the trials for binomial, non-negative whole
  numbers for Poisson, at least two categories for ordinal and multinomial, finite numbers for
  gaussian;
* :func:`check_attributes` — prior weights positive and finite, offsets finite (rows with a
  missing weight or offset are dropped, as R drops them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.attributes import ModelAttributes
from harness.derive import expr_columns
from harness.formula.syntax import Column
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


@dataclass(frozen=True)
class NumericUse:
    """A column the spec uses as a number: the first spec key that does, and whether labels
    would do there too (``labels``: a bare fixed-part predictor or a categorical outcome, which
    R reads as a factor when the column holds text)."""

    key: str
    labels: bool = False


#: families whose outcome may be categorical (R: a factor; binomial codes its first level 0)
CATEGORICAL_OUTCOMES = ("binomial", "ordinal", "multinomial")


def numeric_uses(spec: Spec) -> dict[str, NumericUse]:
    """Columns the spec uses as numbers -> the first use."""
    declared = set(spec.factor_columns())
    uses: dict[str, NumericUse] = {}

    def add(col: str, key: str, labels: bool = False) -> None:
        if col not in declared:
            uses.setdefault(col, NumericUse(key, labels))

    for use in model_uses(spec):
        f = use.model.parsed
        bare = {v.name for v in f.terms.variables if isinstance(v, Column)}
        inside = {c for v in f.terms.variables for c in v.columns()} - bare \
            - f.factor_variables()
        slopes = {s for t in f.random for s in t.slopes}
        categorical = use.model.family in CATEGORICAL_OUTCOMES and f.binomial is None
        add(f.response, use.key, labels=categorical)
        for col in sorted(slopes | inside):
            add(col, use.key)
        for col in sorted(bare - slopes):
            add(col, use.key, labels=True)
        for col in sorted(ModelAttributes.of(use.model).columns()):
            add(col, "model.weights" if col == use.model.weights else use.key)
    for i, d in enumerate(spec.derive):
        key = f"derive[{i}] ({d.name})"
        cols: list[str] = []
        if d.expr is not None:
            cols = expr_columns(d.expr, d.name)
        elif d.group_mean is not None:
            cols = [d.group_mean]
        elif d.recode is not None and d.source and not d.recodes_text():
            cols = [d.source]
        for col in sorted(cols):
            add(col, key)
    if spec.subset:
        for col in sorted(expr_columns(spec.subset, "subset")):
            add(col, "subset")
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


def holds_labels(s: pd.Series) -> bool:
    """Whether a text column holds labels only: no value reads as a number (``"Y"``/``"N"``,
    ``"F"``/``"M"``). Such a column is a factor to R and to every backend; a column mixing
    numbers and text is not (it is refused, see :func:`check_numeric_columns`)."""
    found = first_non_number(s)
    if found is None or found[2]:
        return False
    for v in s.tolist():
        if _missing(v) or isinstance(v, (bool, np.bool_)):
            continue
        if _is_number(v):
            return False
        try:
            float(str(v))
            return False
        except ValueError:
            continue
    return True


def check_slopes_are_numeric(frame: pd.DataFrame, spec: Spec) -> None:
    """A random slope is a numeric column, never a factor or text.

    lme4 expands a factor slope (``(urban | district)``) into indicator columns, but the
    harness's design (and so native and the key check) takes numeric slopes only; without this
    check a declared factor slope crashed the run, and a text one was told to become a factor.
    The fix is a numeric indicator derived from the labels.
    """
    declared = set(spec.factor_columns())
    for use in model_uses(spec):
        for col in sorted({s for t in use.model.parsed.random for s in t.slopes}):
            s = frame.get(col)
            text = s is not None and not (pd.api.types.is_numeric_dtype(s)
                                          or pd.api.types.is_bool_dtype(s)) and holds_labels(s)
            if col not in declared and not text:
                continue  # numeric, or numbers with a typo: check_numeric_columns names the row
            why = (f"is declared a factor (columns: {{{col}: factor}})" if col in declared
                   else "holds text labels")
            raise DataCheckError(
                f"{use.key}: random slope {col!r} {why}, but a random slope must be a numeric "
                f"column (a factor slope is not supported). Derive a 0/1 indicator per level "
                f"and use it as the slope, e.g. derive: [{{name: {col}_1, recode: {{<level>: 1}}, "
                f"source: {col}, otherwise: 0}}]")


def check_numeric_columns(frame: pd.DataFrame, spec: Spec, csv: bool = False) -> None:
    """Every column the spec uses as a number holds numbers (see the module docstring)."""
    check_slopes_are_numeric(frame, spec)
    for col, use in numeric_uses(spec).items():
        key = use.key
        if col not in frame.columns:
            continue  # derived later, or reported as missing by the caller
        s = frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            if use.labels:
                continue  # a factor in the file (.rds, parquet): a factor in the model
            raise DataCheckError(
                f"{key}: column {col!r} is categorical in the data file but is used as a "
                f"number; {_declare_factor(col)}, or convert it")
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if use.labels and holds_labels(s):
            continue  # text labels: a factor, as R reads them
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
    """Rows with every column the model reads (its attributes' columns too, as R drops a row
    with a missing weight or offset)."""
    cols = [c for c in sorted(model.columns()) if c in frame.columns]
    return frame[cols].notna().all(axis=1)


def check_complete_rows(frame: pd.DataFrame, use: ModelUse) -> None:
    """At least one row has every variable of the model; else name the variables that miss."""
    if len(frame) == 0 or bool(complete_rows(frame, use.model).any()):
        return
    cols = [c for c in sorted(use.model.columns()) if c in frame.columns]
    counts = {c: int(frame[c].isna().sum()) for c in cols}
    worst = ", ".join(f"{c} in {k} of {len(frame)}" for c, k in
                      sorted(counts.items(), key=lambda kv: -kv[1]) if k)
    raise DataCheckError(
        f"{use.key}: no row has a value for every model variable (missing: {worst}); every "
        "row would be dropped. Check the variable names and the subset, or derive the missing "
        "values")


def _row(label: object) -> object:
    return int(label) + 1 if isinstance(label, (int, np.integer)) else label


def _bad(use: ModelUse, y: pd.Series, bad: np.ndarray, rule: str, fix: str,
         what: str | None = None) -> DataCheckError:
    first = int(np.flatnonzero(bad)[0])
    what = what or f"{use.model.family} outcome"
    return DataCheckError(
        f"{use.key}: the {what} {y.name!r} must be {rule}, but row {_row(y.index[first])} "
        f"has {show(y.iloc[first])} ({int(bad.sum())} of {len(y)} rows that enter the model are "
        f"not). {fix}")


def check_outcome(frame: pd.DataFrame, use: ModelUse) -> None:
    """The response suits the family, on the rows that enter the model.

    ``frame`` keeps the prepared data's row labels (before the subset resets them), so the row
    named in a message is the row of the data. A binomial response written
    ``cbind(successes, failures)`` or ``successes/trials`` counts successes between 0 and the
    trials.
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
        elif model.family == "binomial":
            _check_two_labels(use, y)
        return  # a categorical response; the numeric-column check covers the rest
    v = y.to_numpy(dtype=float)
    family = model.family
    trials = ModelAttributes.of(model).values(rows).get("trials")
    if family == "gaussian":
        bad = ~np.isfinite(v)
        if bad.any():
            raise _bad(use, y, bad, "a finite number", "Remove or recode the infinite values")
    elif family == "binomial":
        if trials is not None:
            written = model.parsed.binomial.to_r()  # type: ignore[union-attr]
            bad = ~np.isfinite(v) | (v < 0) | (v > trials) | (v != np.round(v)) \
                | (trials != np.round(trials))
            if bad.any():
                raise _bad(use, y, bad, "a whole number of successes between 0 and the "
                           f"whole number of trials of {written}",
                           f"Check the successes and the trials of {written}")
        else:
            bad = ~np.isin(v, (0.0, 1.0))
            if bad.any():
                raise _bad(use, y, bad, "0 or 1",
                           "Recode it to 0/1 under 'derive' (e.g. {name: y01, expr: 'y >= 1'}), "
                           "or, for successes out of n trials, write the response as "
                           "cbind(successes, failures) or successes/trials")
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


def check_attributes(frame: pd.DataFrame, use: ModelUse) -> None:
    """Prior weights positive and finite, offsets finite, on the rows that enter the model
    (binomial weights must also be whole numbers: harness/attributes.py says why)."""
    model = use.model
    rows = frame.loc[complete_rows(frame, model).to_numpy()]
    values = ModelAttributes.of(model).values(rows)
    w = values.get("weights")
    if w is not None:
        bad = ~np.isfinite(w) | (w <= 0)
        if model.family == "binomial":
            bad |= w != np.round(w)
        if bad.any():
            rule = "a positive whole number" if model.family == "binomial" else \
                "a positive number"
            raise _bad(use, rows[model.weights], bad, rule,
                       "Fix the weights, or leave rows with weight 0 out with the spec's subset",
                       what="prior weights")
    off = values.get("offset")
    if off is not None:
        bad = ~np.isfinite(off)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataCheckError(
                f"{use.key}: the offset is not finite on {int(bad.sum())} of the {len(off)} rows "
                f"that enter the model (first: row {_row(rows.index[first])}); a log of 0? "
                "Check the offset's column(s)")


def _check_two_labels(use: ModelUse, y: pd.Series) -> None:
    """A categorical binomial outcome has two labels: R codes the first (in R's level order)
    as failure and every other as success, so a third label is most likely a data error."""
    levels = sorted(pd.unique(y.dropna()), key=str)
    if len(levels) != 2:
        raise DataCheckError(
            f"{use.key}: the binomial outcome {y.name!r} holds {len(levels)} different labels "
            f"({', '.join(map(show, levels[:6]))}) in the rows that enter the model; it needs "
            "exactly two (the first in sorted order is failure). Recode it under 'derive' "
            "(recode: {Y: 1, N: 0})")


def _check_categories(use: ModelUse, y: pd.Series) -> None:
    levels = pd.unique(y.dropna())
    if len(levels) < 2:
        only = f"only the value {show(levels[0])}" if len(levels) else "no value"
        raise DataCheckError(
            f"{use.key}: the {use.model.family} outcome {y.name!r} has {only} in the "
            f"{len(y)} rows that enter the model; it needs at least two categories. Check the "
            "outcome and the subset")
