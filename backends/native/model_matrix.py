"""The fixed-effects model matrix X from the formula tree, as R's ``model.matrix`` builds it.

No user text is evaluated: the tree (:mod:`harness.formula`) is walked with numpy. The steps
follow R's ``model.frame`` + ``model.matrix`` so that the numbers and names equal lme4's:

1. every model-frame variable is evaluated on *all* rows of the data (:func:`evaluate`), as R
   evaluates ``scale(x)`` and ``poly(x, 2)`` before dropping incomplete rows: ``scale`` uses
   the mean and SD of every non-missing value, ``poly`` refuses missing values as R does;
2. rows with a missing (or NaN) value in any variable are dropped by the caller;
3. categorical variables get R's levels on the remaining rows (:func:`r_factor`: numeric sort,
   R's labels, unused levels dropped, the reference level first) and are coded by contrasts
   (treatment unless the spec gives the column other ones, :func:`contrast_matrix`) or by
   indicators for every level, as :meth:`FixedTerms.codings` decides;
4. each term's columns are the products of its variables' columns, the first variable varying
   fastest, named as R names them (:func:`harness.formula.column_names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.formula import CONTRASTS, FixedTerms, column_names
from harness.formula.syntax import (Column, FactorCall, Fn, ICall, MathCall, PolyCall, ScaleCall,
                                    Variable)
from harness.formula.values import FormulaDataError, arithmetic, numeric_column

from .names import level_label

ModelMatrixError = FormulaDataError
"""A variable that cannot be evaluated on these data; the message names it and why."""


@dataclass
class NumericValues:
    """A numeric variable on every row: ``values`` is ``n x k`` (k = 1 except for poly)."""

    values: np.ndarray
    names: list[str]

    def missing(self) -> np.ndarray:
        return np.isnan(self.values).any(axis=1)


@dataclass
class CategoricalValues:
    """A categorical variable on every row, before its levels are fixed (they depend on the
    complete rows)."""

    raw: pd.Series
    label: str
    column: str

    def missing(self) -> np.ndarray:
        return self.raw.isna().to_numpy()


Evaluated = NumericValues | CategoricalValues


# ---- step 1: evaluation ------------------------------------------------------------------------

def evaluate(var: Variable, data: pd.DataFrame, categorical: set[str]) -> Evaluated:
    """One model-frame variable on every row of ``data``.

    ``categorical`` lists the columns that are factors where they appear bare (declared in the
    spec, or not numeric in the data).
    """
    label = var.to_r()
    if isinstance(var, FactorCall):
        return CategoricalValues(data[var.column], label, var.column)
    if isinstance(var, Column):
        if var.name in categorical:
            return CategoricalValues(data[var.name], label, var.name)
        return NumericValues(numeric_column(data, var.name, label)[:, None], [label])
    if isinstance(var, (ICall, MathCall)):
        arg = var.arg if isinstance(var, ICall) else Fn(var.fn, var.arg)
        return NumericValues(arithmetic(arg, data, label, categorical)[:, None], [label])
    if isinstance(var, ScaleCall):
        return NumericValues(_scale(arithmetic(var.arg, data, label, categorical), label)[:, None],
                             [label])
    if isinstance(var, PolyCall):
        x = arithmetic(var.arg, data, label, categorical)
        cols = _raw_powers(x, var.degree) if var.raw else _orthogonal_poly(x, var.degree, label)
        return NumericValues(cols, [f"{label}{k}" for k in range(1, var.degree + 1)])
    raise TypeError(f"not a model-frame variable: {var!r}")  # pragma: no cover


def _scale(x: np.ndarray, label: str) -> np.ndarray:
    """R's ``scale(x)``: (x - mean) / sd over the non-missing values (sd with n - 1)."""
    ok = ~np.isnan(x)
    if ok.sum() < 2:
        raise ModelMatrixError(f"{label}: needs at least two non-missing values")
    mean = x[ok].mean()
    sd = float(np.sqrt(((x[ok] - mean) ** 2).sum() / (ok.sum() - 1)))
    if not sd > 0 or not np.isfinite(sd):
        raise ModelMatrixError(f"{label}: the values are constant (or not finite), so they "
                               "cannot be scaled")
    return (x - mean) / sd


def _raw_powers(x: np.ndarray, degree: int) -> np.ndarray:
    return np.column_stack([x ** k for k in range(1, degree + 1)])


def _orthogonal_poly(x: np.ndarray, degree: int, label: str) -> np.ndarray:
    """R's ``poly(x, degree)``: the QR-orthonormalised powers of centred x, constant dropped.

    R computes ``Z = Q diag(R)`` and divides each column by its norm, which is ``Q`` with each
    column's sign made that of ``diag(R)`` (the monic orthogonal polynomials, normalised).
    """
    if np.isnan(x).any():
        raise ModelMatrixError(f"{label}: the variable has missing values, and R's poly() "
                               "refuses them; drop those rows with the spec's subset")
    if np.unique(x).size <= degree:
        raise ModelMatrixError(f"{label}: the degree must be less than the number of distinct "
                               f"values ({np.unique(x).size})")
    xc = x - x.mean()
    powers = np.vander(xc, degree + 1, increasing=True)
    q, r = np.linalg.qr(powers)
    return (q * np.sign(np.diag(r)))[:, 1:]


# ---- step 3: levels ----------------------------------------------------------------------------

def factor_values(s: pd.Series) -> list:
    """The distinct values of ``s`` in R's level order (numeric sort, or the categories' order),
    levels that do not occur dropped, as ``factor()`` does."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [c for c in s.cat.categories if (s == c).any()]
    return sorted(pd.unique(s))


def r_factor(s: pd.Series, reference: object | None = None,
             values_in_order: list | None = None) -> tuple[np.ndarray, list[str]]:
    """Codes 0..m-1 and labels of ``s`` as an R factor: :func:`factor_values`, R's labels, the
    reference level first.

    ``values_in_order`` fixes the levels instead (from :func:`factor_values` on the whole data),
    so one partition of a larger data set is coded like the whole even when it lacks a level.
    """
    uniq = factor_values(s) if values_in_order is None else list(values_in_order)
    values = s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s
    labels = [level_label(u) for u in uniq]
    if len(set(labels)) != len(labels):
        raise ModelMatrixError(f"levels of {s.name!r} print identically in R: {labels}")
    if reference is not None:
        ref = level_label(reference)
        if ref not in labels:
            raise ModelMatrixError(f"reference level {ref!r} of {s.name!r} is not in the data "
                                   f"(levels: {labels})")
        labels = [ref] + [lab for lab in labels if lab != ref]
    position = {lab: i for i, lab in enumerate(labels)}
    mapping = {u: position[level_label(u)] for u in uniq}
    codes = values.map(mapping)
    if codes.isna().any():
        raise ModelMatrixError(f"{s.name!r} has values outside its given levels")
    return codes.to_numpy(dtype=np.int64), labels


# ---- step 4: the matrix ------------------------------------------------------------------------

CONTRAST_KINDS = ("treatment", "sum", "helmert", "sdif")


def contrast_matrix(kind: str, levels: list[str]) -> tuple[np.ndarray, list[str]]:
    """The ``k x (k - 1)`` contrast matrix R uses for ``kind`` and its column suffixes.

    R's ``contr.treatment`` (suffixes: the levels after the first), ``contr.sum`` (the last level
    is minus the sum of the others; suffixes ``1..k-1``, as R names columns of a matrix without
    column names), ``contr.helmert`` (column j contrasts level j + 1 with the mean of the levels
    before it: -1 above, j on the level; suffixes ``1..k-1``) and MASS's ``contr.sdif``
    (successive differences: column j is ``-(k - j)/k`` on levels 1..j and ``j/k`` after;
    suffixes ``"B-A"``, level j + 1 minus level j).
    """
    k = len(levels)
    if kind == "treatment":
        return np.eye(k)[:, 1:], levels[1:]
    numbered = [str(j) for j in range(1, k)]
    if kind == "sum":
        return np.vstack([np.eye(k - 1), -np.ones((1, k - 1))]), numbered
    if kind == "helmert":
        C = np.zeros((k, k - 1))
        for j in range(1, k):
            C[:j, j - 1] = -1.0
            C[j, j - 1] = float(j)
        return C, numbered
    if kind == "sdif":
        rows, cols = np.indices((k, k - 1))
        C = np.where(rows <= cols, (cols + 1 - k) / k, (cols + 1) / k)
        return C, [f"{levels[j + 1]}-{levels[j]}" for j in range(k - 1)]
    raise ModelMatrixError(f"unknown contrasts {kind!r} (known: {', '.join(CONTRAST_KINDS)})")


@dataclass
class _Coded:
    """A variable on the complete rows, ready to make columns."""

    label: str
    values: np.ndarray | None = None  # numeric: n x k
    names: list[str] | None = None
    codes: np.ndarray | None = None  # categorical
    levels: list[str] | None = None
    contrasts: str = "treatment"

    def columns(self, coding: int) -> tuple[list[np.ndarray], list[str]]:
        if self.values is not None:
            return [self.values[:, j] for j in range(self.values.shape[1])], list(self.names or [])
        assert self.codes is not None and self.levels is not None
        if coding != CONTRASTS:  # indicators for every level, whatever the contrasts
            return ([(self.codes == j).astype(float) for j in range(len(self.levels))],
                    [f"{self.label}{lev}" for lev in self.levels])
        if len(self.levels) < 2:
            raise ModelMatrixError(f"{self.label} has only one level in the model rows "
                                   f"({self.levels}); contrasts need two or more")
        C, suffixes = contrast_matrix(self.contrasts, self.levels)
        rows = C[self.codes]
        return [rows[:, j].copy() for j in range(C.shape[1])], \
            [f"{self.label}{suffix}" for suffix in suffixes]


def model_matrix(terms: FixedTerms, evaluated: list[Evaluated], rows: np.ndarray,
                 reference: dict[str, object], contrasts: dict[str, str] | None = None,
                 levels: Mapping[str, list] | None = None
                 ) -> tuple[np.ndarray, list[str], list[str]]:
    """(X, column names, categorical columns) on the complete ``rows`` (a boolean mask);
    ``contrasts`` maps a factor column to its coding (default treatment), ``levels`` fixes
    categorical columns' levels (see :func:`r_factor`)."""
    coded: list[_Coded] = []
    categorical: list[str] = []
    for ev in evaluated:
        if isinstance(ev, NumericValues):
            coded.append(_Coded(ev.names[0], values=ev.values[rows], names=ev.names))
        else:
            codes, labels = r_factor(ev.raw[rows], reference.get(ev.column),
                                     (levels or {}).get(ev.column))
            coded.append(_Coded(ev.label, codes=codes, levels=labels,
                                contrasts=(contrasts or {}).get(ev.column, "treatment")))
            categorical.append(ev.column)
    n = int(rows.sum())
    cols: list[np.ndarray] = [np.ones(n)] if terms.intercept else []
    names: list[str] = ["(Intercept)"] if terms.intercept else []
    is_factor = [c.levels is not None and len(c.levels) > 1 for c in coded]
    for term, codes in zip(terms.terms, terms.codings(is_factor)):
        parts = [coded[v].columns(code) for v, code in zip(term, codes)]
        names += column_names([p[1] for p in parts])
        for combo in _products([p[0] for p in parts]):
            cols.append(combo)
    X = np.column_stack(cols) if cols else np.empty((n, 0))
    bad = ~np.isfinite(X)
    if bad.any():
        j = int(np.argwhere(bad.any(axis=0))[0][0])
        raise ModelMatrixError(f"fixed-effect column {names[j]} is not finite on some rows "
                               "(a log of 0 or a division by 0?)")
    return X, names, sorted(set(categorical))


def _products(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Column products in model.matrix order: the first variable's columns vary fastest."""
    out = [np.ones(len(parts[0][0]))] if parts else []
    for block in parts:
        out = [prev * col for col in block for prev in out]
    return out
