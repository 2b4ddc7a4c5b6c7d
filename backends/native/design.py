"""From formula + data to numbers: the fixed-effects matrix X, the response y, grouping factors.

Kept separate from the estimator on purpose: GLMMs (issue 7) reuse exactly this module, so it
knows nothing about likelihoods. Random effects are described per grouping factor
(:class:`FactorBlock`) by an integer level code per row and the raw ``n x k`` values of that
factor's random-effect columns (1 for an intercept, the covariate for a slope); the sparse Z is
never built here, because each estimator path exploits the structure differently.

Rules that make the answers line up with lme4:

* rows with a missing value in any model variable are dropped (and counted);
* the fixed part is built from the formula tree, never by evaluating its text
  (:mod:`backends.native.model_matrix`): categorical variables (``factor(x)``, ``C(x)``, spec
  columns of type factor, non-numeric columns) get R's levels (sorted numerically for numbers,
  labels printed as R prints them, the reference level first) and R's treatment contrasts or
  indicators; ``I()``, ``log``, ``exp``, ``sqrt``, ``poly`` and ``scale`` are computed as R
  computes them; every column carries R's name;
* grouping-factor levels are R's labels, ``a:b`` interactions are labelled ``"1:2"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.formula import ModelFormula, RandomTerm, parse_formula

from .model_matrix import ModelMatrixError, evaluate, model_matrix
from .names import level_labels


class DesignError(ValueError):
    """The data cannot support the model (a missing column, a non-numeric slope, no rows)."""


@dataclass
class FactorBlock:
    """All random-effect terms that share one grouping factor.

    ``Z`` holds the factor's random-effect columns for every row (``n x k``); the row's level is
    ``codes``. ``term_sizes`` splits the ``k`` columns into independent covariance blocks, so
    ``(1 | g) + (0 + x | g)`` is one FactorBlock with ``term_sizes == [1, 1]`` (no covariance
    between the intercept and the slope), while ``(1 + x | g)`` has ``term_sizes == [2]``.
    """

    name: str
    levels: list[str]
    codes: np.ndarray
    columns: list[str]
    Z: np.ndarray
    term_sizes: list[int]

    @property
    def m(self) -> int:
        """Number of levels."""
        return len(self.levels)

    @property
    def k(self) -> int:
        """Random effects per level."""
        return self.Z.shape[1]

    @property
    def q(self) -> int:
        return self.m * self.k


@dataclass
class Design:
    """Everything the estimators need, after dropping incomplete rows.

    A design whose rows were summarised partition by partition (data larger than memory,
    :mod:`backends.native.partitioned`) has no rows: ``X``, ``y`` and each factor's ``codes``
    and ``Z`` are empty, and ``summary`` holds the cross-products the estimators use instead.
    """

    formula: ModelFormula
    y: np.ndarray
    X: np.ndarray
    x_names: list[str]
    factors: list[FactorBlock]
    row_index: pd.Index
    nobs_dropped: int = 0
    categorical: list[str] = field(default_factory=list)
    summary: Any = None      # CrossProducts of the rows when they are not kept (see above)

    @property
    def n(self) -> int:
        return self.summary.n if self.summary is not None else self.y.shape[0]

    @property
    def has_rows(self) -> bool:
        return self.summary is None

    @property
    def p(self) -> int:
        return self.X.shape[1]


def build_design(formula: str | ModelFormula, data: pd.DataFrame,
                 factors: list[str] | tuple[str, ...] = (),
                 reference: dict[str, object] | None = None,
                 complete_in: tuple[str, ...] = (),
                 levels: dict[str, list] | None = None) -> Design:
    """Build X, y and the grouping factors for ``formula`` on ``data``.

    ``factors`` lists columns to treat as categorical wherever they appear bare in the fixed part
    (the spec's ``columns: {x: factor}``); ``reference`` maps a categorical variable to the level
    used as its reference instead of the first (R's ``relevel``). ``complete_in`` names extra
    columns a row must have (a cluster id): like R's ``subset``, they drop rows after the
    variables are evaluated. ``levels`` fixes the levels of categorical fixed-part columns
    (values in R's order, :func:`~backends.native.model_matrix.factor_values` of the whole
    data), for a partition of a larger data set.
    """
    mf, evaluated, complete = _model_rows(formula, data, factors, complete_in)
    try:
        X, x_names, used_categorical = model_matrix(mf.terms, evaluated, complete,
                                                    dict(reference or {}), levels)
    except ModelMatrixError as e:
        raise DesignError(str(e)) from None
    frame = data.loc[complete]
    y = _numeric(frame[mf.response], mf.response)
    blocks = _factor_blocks(mf.random, frame)
    return Design(formula=mf, y=y, X=np.ascontiguousarray(X), x_names=x_names, factors=blocks,
                  row_index=frame.index, nobs_dropped=int((~complete).sum()),
                  categorical=used_categorical)


@dataclass
class LevelRows:
    """What one partition says about the levels of the whole data (see
    :func:`distinct_level_rows`)."""

    distinct: pd.DataFrame     # distinct rows of the level-defining columns, complete rows only
    categorical: list[str]     # the categorical fixed-part columns among them
    complete: int
    dropped: int


def distinct_level_rows(formula: str | ModelFormula, data: pd.DataFrame,
                        factors: list[str] | tuple[str, ...] = (),
                        complete_in: tuple[str, ...] = ()) -> LevelRows:
    """The distinct values, among the complete rows, of the columns that define levels:
    categorical fixed-part columns and the variables of the grouping factors."""
    mf, _, complete = _model_rows(formula, data, factors, complete_in, need_rows=False)
    categorical = sorted(categorical_columns(mf, data, factors))
    groups = [v for t in mf.random for v in t.group_factors]
    cols = list(dict.fromkeys(categorical + groups))
    return LevelRows(data.loc[complete, cols].drop_duplicates(), categorical,
                     int(complete.sum()), int((~complete).sum()))


def nested_in(inner: np.ndarray, outer: np.ndarray) -> bool:
    """True when every level of ``inner`` (codes per row) sits inside exactly one level of
    ``outer``."""
    pairs = np.unique(np.stack([inner, outer]), axis=1)
    return np.unique(pairs[0]).size == pairs.shape[1]


def _model_rows(formula: str | ModelFormula, data: pd.DataFrame,
                factors: list[str] | tuple[str, ...], complete_in: tuple[str, ...],
                need_rows: bool = True) -> tuple[ModelFormula, list, np.ndarray]:
    """The parsed formula, every model-frame variable evaluated on all rows, and the mask of
    complete rows (no missing value in any model variable or ``complete_in`` column)."""
    mf = parse_formula(formula) if isinstance(formula, str) else formula
    missing = [v for v in sorted(mf.variables() | set(complete_in)) if v not in data.columns]
    if missing:
        raise DesignError(f"column(s) {', '.join(missing)} not in the data")
    categorical = categorical_columns(mf, data, factors)
    try:
        evaluated = [evaluate(v, data, categorical) for v in mf.terms.variables]
    except ModelMatrixError as e:
        raise DesignError(str(e)) from None
    other = [mf.response, *complete_in, *(c for t in mf.random for c in t.slopes + tuple(
        t.group_factors))]
    incomplete = data[list(dict.fromkeys(other))].isna().any(axis=1).to_numpy(copy=True)
    for ev in evaluated:
        incomplete |= ev.missing()
    complete = ~incomplete
    if need_rows and not complete.any():
        raise DesignError("no complete rows: every row has a missing value in a model variable")
    return mf, evaluated, complete


def auxiliary_columns(design: Design, data: pd.DataFrame,
                      **columns: str | None) -> dict[str, np.ndarray]:
    """Per-row values of extra columns (``trials=``, ``offset=``) for the design's rows.

    They are not model variables, so the design dropped no rows for them: a missing value in a
    model row is an error naming the column, not a silent drop.
    """
    out: dict[str, np.ndarray] = {}
    for role, col in columns.items():
        if col is None:
            continue
        if col not in data.columns:
            raise DesignError(f"{role} column {col!r} is not in the data")
        v = data.loc[design.row_index, col].to_numpy(dtype=float)
        if not np.all(np.isfinite(v)):
            raise DesignError(f"{role} column {col!r} has missing values in the model rows")
        out[role] = v
    return out


def categorical_columns(mf: ModelFormula, data: pd.DataFrame,
                         factors: list[str] | tuple[str, ...]) -> set[str]:
    """Fixed-part columns that are factors where they appear bare: declared in the spec, or
    not numeric in the data (R turns text into factors)."""
    out = set()
    for col in {c for v in mf.terms.variables for c in v.columns()}:
        s = data[col]
        if col in factors or not pd.api.types.is_numeric_dtype(s) \
                or isinstance(s.dtype, pd.CategoricalDtype):
            out.add(col)
    return out


def _numeric(s: pd.Series, name: str) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
        raise DesignError(f"{name!r} must be numeric (it is {s.dtype})")
    return np.ascontiguousarray(s.to_numpy(dtype=float))


def group_codes(frame: pd.DataFrame, group: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes 0..m-1 and R labels for a grouping factor ``a`` or interaction ``a:b``.

    Levels are sorted (numerically for numeric columns) so labels and ordering are reproducible;
    only observed combinations of an interaction are kept, as lme4 does.
    """
    variables = group.split(":")
    if len(variables) == 1:
        c, uniq = _factorize_sorted(frame[group].to_numpy())
        return c, level_labels(uniq)
    codes: np.ndarray | None = None
    labels: list[list[str]] = []
    for var in variables:
        c, uniq = _factorize_sorted(frame[var].to_numpy())
        lab = level_labels(uniq)
        if codes is None:
            codes, labels = c, [[s] for s in lab]
        else:
            combined = codes * len(uniq) + c
            keep, codes = np.unique(combined, return_inverse=True)
            labels = [labels[int(v) // len(uniq)] + [lab[int(v) % len(uniq)]] for v in keep]
    assert codes is not None
    return codes.astype(np.int64).ravel(), [":".join(parts) for parts in labels]


def _factorize_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, uniq = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(uniq)


def _factor_blocks(terms: tuple[RandomTerm, ...], frame: pd.DataFrame) -> list[FactorBlock]:
    """Merge the random terms by grouping factor, keeping formula order."""
    by_group: dict[str, list[RandomTerm]] = {}
    for t in terms:
        by_group.setdefault(t.group, []).append(t)
    blocks = []
    n = frame.shape[0]
    for group, group_terms in by_group.items():
        codes, levels = group_codes(frame, group)
        columns: list[str] = []
        cols: list[np.ndarray] = []
        sizes: list[int] = []
        for t in group_terms:
            for name in t.names:
                columns.append(name)
                cols.append(np.ones(n) if name == "(Intercept)"
                            else _numeric(frame[name], name))
            sizes.append(len(t.names))
        Z = np.column_stack(cols) if cols else np.empty((n, 0))
        blocks.append(FactorBlock(name=group, levels=levels, codes=codes, columns=columns,
                                  Z=np.ascontiguousarray(Z), term_sizes=sizes))
    return blocks
