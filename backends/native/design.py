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
* columns aliased with the ones before them are dropped, as lme4 drops them, and named in
  :meth:`Design.warnings` (:mod:`backends.native.rank`);
* grouping-factor levels are R's labels, ``a:b`` interactions are labelled ``"1:2"``;
* the model attributes (prior weights, offset, binomial trials: :mod:`harness.attributes`)
  are per-row vectors that take part in dropping incomplete rows, as R's ``model.frame``
  drops a row whose weight or offset is missing; the design keeps them for its rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from harness.formula import ModelFormula, RandomTerm, parse_formula

from .model_matrix import ModelMatrixError, evaluate, model_matrix, r_factor
from .names import level_labels
from .rank import aliased_warning, drop_aliased


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
    aliased: list[str] = field(default_factory=list)  # columns dropped by rank.drop_aliased
    response_levels: list[str] | None = None  # a categorical response's levels (y: codes)
    weights: np.ndarray | None = None  # prior weights of the rows (None: all 1)
    offset: np.ndarray | None = None  # added to the linear predictor (None: 0)
    trials: np.ndarray | None = None  # binomial trials of the rows (None: 0/1 outcomes)
    logdet_W: float = 0.0  # sum(log w) of a weighted gaussian design (see weighted())
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

    def outcome(self, family: str) -> np.ndarray:
        """The response as ``family`` takes it.

        A categorical response (text, logical or a factor; ``y`` holds its level codes) is
        coded as R codes it: binomial 0 for the first level and 1 for every other (glm's
        binomial family), ordinal the codes (thresholds named by :attr:`response_levels`);
        gaussian and Poisson models need numbers, so a categorical response is an error.
        """
        if self.response_levels is None:
            return self.y
        if family == "binomial":
            return (self.y > 0).astype(float)
        if family == "ordinal":
            return self.y
        raise DesignError(f"the {family} response {self.formula.response!r} is categorical "
                          f"(levels {self.response_levels[:5]}...); a {family} model needs numbers")

    def weighted(self) -> "Design":
        """The gaussian working design of prior weights and an offset (lme4's lmer):
        ``y - offset`` and every row of X, y and Z scaled by ``sqrt(w)``.

        With ``Var(e_i) = sigma^2 / w_i`` the likelihood of the data is that of the scaled rows
        with unit weights times ``prod(sqrt(w_i))``, so the profiled criterion of the working
        design less ``log|W| = sum(log w_i)`` (:attr:`logdet_W`) is lme4's, whose deviance
        subtracts the same ``ldW``. The working design has unit weights and no offset, so this is
        idempotent; without weights or offset the design itself is returned.
        """
        if self.weights is None and self.offset is None:
            return self
        y = self.y - (self.offset if self.offset is not None else 0.0)
        if self.weights is None:
            return replace(self, y=y, offset=None)
        sw = np.sqrt(self.weights)
        factors = [replace(f, Z=np.ascontiguousarray(f.Z * sw[:, None])) for f in self.factors]
        return replace(self, y=y * sw, X=np.ascontiguousarray(self.X * sw[:, None]),
                       factors=factors, weights=None, offset=None,
                       logdet_W=self.logdet_W + float(np.sum(np.log(self.weights))))

    def warnings(self) -> list[str]:
        """What building the design did to the data, for every estimator's diagnostics."""
        out = [f"{self.nobs_dropped} row(s) with missing values were dropped"] \
            if self.nobs_dropped else []
        return out + ([aliased_warning(self.aliased)] if self.aliased else [])


AttributeInput = str | np.ndarray | pd.Series | None
"""A model attribute given to an estimator: a column name, or one value per row of the data."""

ATTRIBUTES = ("weights", "offset", "trials")


def attribute_values(data: pd.DataFrame, **given: AttributeInput) -> dict[str, np.ndarray]:
    """Per-row float vectors (NaN for missing) of the attributes given by column or by value.

    ``weights``, ``offset`` and ``trials`` (see :mod:`harness.attributes` for what they mean);
    ``None`` leaves one out.
    """
    out: dict[str, np.ndarray] = {}
    for role, value in given.items():
        if role not in ATTRIBUTES:
            raise TypeError(f"unknown model attribute {role!r} (known: {', '.join(ATTRIBUTES)})")
        if value is None:
            continue
        if isinstance(value, str):
            if value not in data.columns:
                raise DesignError(f"{role} column {value!r} is not in the data")
            s = data[value]
            if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
                raise DesignError(f"{role} column {value!r} must be numeric (it is {s.dtype})")
            v = s.to_numpy(dtype=float, na_value=np.nan)
        else:
            v = np.asarray(value, dtype=float)
            if v.shape != (len(data),):
                raise DesignError(f"{role} must have one value per row of the data "
                                  f"({len(data)}), not shape {v.shape}")
        out[role] = v
    return out


def build_design(formula: str | ModelFormula, data: pd.DataFrame,
                 factors: list[str] | tuple[str, ...] = (),
                 reference: dict[str, object] | None = None,
                 complete_in: tuple[str, ...] = (),
                 contrasts: Mapping[str, str] | None = None,
                 attributes: Mapping[str, np.ndarray] | None = None,
                 levels: Mapping[str, list] | None = None,
                 keep_aliased: bool = False) -> Design:
    """Build X, y and the grouping factors for ``formula`` on ``data``.

    ``factors`` lists columns to treat as categorical wherever they appear bare in the fixed part
    (the spec's ``columns: {x: factor}``); ``reference`` maps a categorical variable to the level
    used as its reference instead of the first (R's ``relevel``); ``contrasts`` maps a factor
    column to its coding where R codes it by contrasts (``sum``, ``helmert``, ``sdif``; default
    treatment). ``complete_in`` names extra columns a row must have (a cluster id): like R's
    ``subset``, they drop rows after the variables are evaluated. ``attributes`` are per-row
    vectors (:func:`attribute_values`) of ``weights``, ``offset`` and ``trials``: a row with a
    missing one is dropped, as R drops it; prior weights must be positive and finite.

    For one partition of a larger data set (:mod:`backends.native.partitioned`): ``levels``
    fixes the levels of categorical fixed-part columns (values in R's order,
    :func:`~backends.native.model_matrix.factor_values` of the whole data), and
    ``keep_aliased`` keeps aliased columns, because aliasing is a property of the whole data,
    judged on its summed cross-products, not of one partition.
    """
    mf, evaluated, complete = _model_rows(formula, data, factors, complete_in, attributes)
    try:
        X, x_names, used_categorical = model_matrix(mf.terms, evaluated, complete,
                                                    dict(reference or {}), dict(contrasts or {}),
                                                    levels)
    except ModelMatrixError as e:
        raise DesignError(str(e)) from None
    aliased: list[str] = []
    if not keep_aliased:
        X, x_names, aliased = drop_aliased(X, x_names)
    frame = data.loc[complete]
    y, response_levels = _response(frame[mf.response], mf.response)
    blocks = _factor_blocks(mf.random, frame)
    kept = {role: np.ascontiguousarray(v[complete]) for role, v in (attributes or {}).items()}
    _check_attributes(kept)
    return Design(formula=mf, y=y, X=np.ascontiguousarray(X), x_names=x_names, factors=blocks,
                  row_index=frame.index, nobs_dropped=int((~complete).sum()),
                  categorical=used_categorical, aliased=aliased,
                  response_levels=response_levels, **kept)

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
    mf, _, complete = _model_rows(formula, data, factors, complete_in, None, need_rows=False)
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
                attributes: Mapping[str, np.ndarray] | None,
                need_rows: bool = True) -> tuple[ModelFormula, list, np.ndarray]:
    """The parsed formula, every model-frame variable evaluated on all rows, and the mask of
    complete rows (no missing value in any model variable, ``complete_in`` column or model
    attribute)."""
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
    for v in (attributes or {}).values():
        incomplete |= np.isnan(v)
    complete = ~incomplete
    if need_rows and not complete.any():
        raise DesignError("no complete rows: every row has a missing value in a model variable")
    return mf, evaluated, complete


def _check_attributes(values: Mapping[str, np.ndarray]) -> None:
    """Values no estimator can take: infinite offsets or trials, weights that are not > 0."""
    for role, v in values.items():
        if not np.all(np.isfinite(v)):
            raise DesignError(f"the {role} are not finite on some model rows")
    w = values.get("weights")
    if w is not None and np.any(w <= 0):
        raise DesignError(f"prior weights must be positive; {int(np.sum(w <= 0))} model row(s) "
                          "have a weight of 0 or less (drop them with the spec's subset)")


def categorical_columns(mf: ModelFormula, data: pd.DataFrame,
                         factors: list[str] | tuple[str, ...]) -> set[str]:
    """Fixed-part columns that are factors where they appear bare: declared in the spec, or
    text, categorical or logical in the data (R's ``model.matrix`` codes a logical ``x`` as the
    dummy ``xTRUE``, and turns text into factors)."""
    out = set()
    for col in {c for v in mf.terms.variables for c in v.columns()}:
        if col in factors or is_categorical(data[col]):
            out.add(col)
    return out


def is_categorical(s: pd.Series) -> bool:
    """Text, categorical or logical values: levels rather than numbers (R's reading)."""
    return (not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)
            or isinstance(s.dtype, pd.CategoricalDtype))


def _response(s: pd.Series, name: str) -> tuple[np.ndarray, list[str] | None]:
    """The response as numbers and, for a categorical one (text, logical, factor), its levels
    in R's order (:func:`r_factor`) with ``y`` the level index; :meth:`Design.outcome` says what
    each family makes of the codes."""
    if is_categorical(s):
        try:
            codes, levels = r_factor(s)
        except ModelMatrixError as e:
            raise DesignError(f"response {name!r}: {e}") from None
        return np.ascontiguousarray(codes.astype(float)), levels
    return np.ascontiguousarray(s.to_numpy(dtype=float)), None


def _numeric(s: pd.Series, name: str) -> np.ndarray:
    if is_categorical(s) and not pd.api.types.is_bool_dtype(s):
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
