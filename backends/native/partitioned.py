"""Linear mixed models on data larger than memory: sufficient statistics partition by partition.

The profiled likelihood depends on the rows only through the cross-products
(:class:`~backends.native.crossprod.CrossProducts`), which are sums over rows. So the data are
read twice, one partition at a time, and only small per-partition results are ever held:

1. **levels**: each partition's distinct values of the level-defining columns (categorical
   fixed-part columns, grouping variables) among its complete rows. Their union fixes every
   level and its order exactly as the in-memory path would on the whole data (the order depends
   only on the set of distinct values), so a partition lacking a level is still coded like the
   whole;
2. **statistics**: each partition's design with those global levels, reduced at once to its
   cross-products, which are summed. Aliased fixed-effect columns are a property of the whole
   data, so partitions keep every column and the aliased ones are dropped from the sums
   (:func:`~backends.native.rank.kept_columns_from_gram`), as the in-memory path drops them.

The summed statistics make a row-less :class:`~backends.native.design.Design` and the fit runs
in memory as usual (:func:`~backends.native.fit.fit_design`). Memory is the partitions in flight
plus the statistics (O(levels), independent of the number of rows).

Refused, with the reason: ``scale()`` and ``poly()`` in the formula (they need statistics of
the whole column before any row can be coded; compute them beforehand), and random-effect
structures whose statistics are not small: only one grouping factor or nested factors (each
level of one factor inside one level of another), because crossed factors' cross-products grow
with the number of pairs of levels.

How partitions are computed is left to a *mapper* -- ``mapper(fn)`` yields ``fn(partition)``
for every partition, in any order -- so the same code runs on a list of DataFrames, a local
thread pool or a Dask cluster (:mod:`backends.native.dask_source`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from harness.formula import ModelFormula, parse_formula
from harness.formula.syntax import PolyCall, ScaleCall

from .crossprod import CrossProducts
from .design import (Design, DesignError, FactorBlock, build_design, distinct_level_rows,
                     group_codes, nested_in)
from .fit import Path, fit_design
from .model_matrix import factor_values
from .rank import kept_columns_from_gram
from .result import LmmResult

Mapper = Callable[[Callable[[pd.DataFrame], object]], Iterable[object]]


@dataclass(frozen=True)
class Levels:
    """The global levels: categorical columns' values in R's order, grouping factors' labels."""

    categorical: dict[str, list]
    groups: dict[str, list[str]]


@dataclass
class PartitionStats:
    stats: CrossProducts | None     # None for a partition without complete rows
    x_names: list[str]
    categorical: list[str]
    dropped: int


def sequential(partitions: Iterable[pd.DataFrame]) -> Mapper:
    """A mapper over an in-memory (re-iterable) collection of partitions, one at a time."""
    parts = list(partitions) if not isinstance(partitions, (list, tuple)) else partitions

    def run(fn: Callable[[pd.DataFrame], object]) -> Iterator[object]:
        return (fn(p) for p in parts)
    return run


def lmm_partitioned(formula: str, mapper: Mapper, reml: bool = True,
                    factors: list[str] | tuple[str, ...] = (),
                    reference: dict[str, object] | None = None,
                    path: Path = "auto") -> LmmResult:
    """Fit ``formula`` by accumulating its sufficient statistics over ``mapper``'s partitions.

    Same arguments and result as :func:`backends.native.lmm`, except that the result has no
    rows (``fitted`` and ``residuals`` raise).
    """
    mf = parse_formula(formula)
    check_partitionable(mf)
    factors = tuple(factors)
    levels, complete, dropped = collect_levels(mf, mapper, factors)
    design = summarise(mf, mapper, levels, factors, dict(reference or {}))
    if design.n != complete or design.nobs_dropped != dropped:
        raise RuntimeError(f"the two passes saw different rows ({complete} + {dropped} "
                           f"dropped, then {design.n} + {design.nobs_dropped}): did the mapper "
                           "skip or repeat a partition, or did the data change?")
    return LmmResult(fit_design(design, reml=reml, path=path))


def check_partitionable(mf: ModelFormula) -> None:
    """Refuse what statistics accumulated partition by partition cannot reproduce."""
    if not mf.random:
        raise DesignError("the formula has no random-effects term; partitioned fitting is for "
                          "mixed models")
    for v in mf.terms.variables:
        if isinstance(v, (ScaleCall, PolyCall)):
            raise DesignError(f"{v.to_r()} needs the whole column before any row can be coded; "
                              "compute it beforehand and use the new column in the formula")


def collect_levels(mf: ModelFormula, mapper: Mapper,
                   factors: tuple[str, ...]) -> tuple[Levels, int, int]:
    """Pass 1: the global levels, and the numbers of complete rows and of rows dropped for
    missing values.

    Nesting is checked on every partition's distinct rows as they arrive (crossed factors are
    refused before their distinct pairs pile up) and on the union at the end.
    """
    distinct: pd.DataFrame | None = None
    categorical: list[str] = []
    complete = dropped = 0
    for part in mapper(partial(distinct_level_rows, mf, factors=factors)):
        complete += part.complete
        dropped += part.dropped
        if part.complete:
            _check_nesting(mf, part.distinct)
            categorical = part.categorical
            distinct = part.distinct if distinct is None else \
                pd.concat([distinct, part.distinct], ignore_index=True).drop_duplicates()
    if distinct is None:
        raise DesignError("no complete rows: every row has a missing value in a model variable")
    _check_nesting(mf, distinct)
    groups = {t.group: group_codes(distinct[t.group_factors].drop_duplicates(), t.group)[1]
              for t in mf.random}
    values = {c: factor_values(distinct[c].drop_duplicates()) for c in categorical}
    return Levels(values, groups), complete, dropped


def _check_nesting(mf: ModelFormula, distinct: pd.DataFrame) -> None:
    """Several grouping factors must be nested (of each pair, one inside the other)."""
    groups = list(dict.fromkeys(t.group for t in mf.random))
    codes = {g: group_codes(distinct, g)[0] for g in groups}
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            if not (nested_in(codes[a], codes[b]) or nested_in(codes[b], codes[a])):
                raise DesignError(f"grouping factors {a!r} and {b!r} are crossed, not nested; "
                                  "partitioned fitting supports one grouping factor or nested "
                                  "factors only (crossed factors' statistics grow with the "
                                  "number of pairs of levels)")


def partition_statistics(data: pd.DataFrame, mf: ModelFormula, levels: Levels,
                         factors: tuple[str, ...],
                         reference: dict[str, object]) -> PartitionStats:
    """Pass 2 on one partition: its design with the global levels, reduced to cross-products."""
    try:
        design = build_design(mf, data, factors, reference, levels=levels.categorical,
                              keep_aliased=True)
    except DesignError as e:
        if "no complete rows" in str(e):
            return PartitionStats(None, [], [], len(data))
        raise
    # A categorical response is coded by the levels of this partition alone; in memory it is an
    # error for a gaussian model (Design.outcome), so it is one here too, before it is summed.
    design.outcome("gaussian")
    codes, sizes = [], []
    for f in design.factors:
        position = {label: i for i, label in enumerate(levels.groups[f.name])}
        local_to_global = np.array([position[label] for label in f.levels], dtype=np.int64)
        codes.append(local_to_global[f.codes])
        sizes.append(len(position))
    stats = CrossProducts.from_rows(design.X, design.y, codes, [f.Z for f in design.factors],
                                    sizes)
    return PartitionStats(stats, design.x_names, design.categorical, design.nobs_dropped)


def summarise(mf: ModelFormula, mapper: Mapper, levels: Levels, factors: tuple[str, ...],
              reference: dict[str, object]) -> Design:
    """Pass 2: the summed statistics as a row-less design."""
    total: CrossProducts | None = None
    x_names: list[str] | None = None
    categorical: list[str] = []
    dropped = 0
    fn = partial(partition_statistics, mf=mf, levels=levels, factors=factors,
                 reference=reference)
    for part in mapper(fn):
        dropped += part.dropped
        if part.stats is None:
            continue
        if x_names is None:
            x_names, categorical = part.x_names, part.categorical
        elif part.x_names != x_names:
            raise DesignError(f"partitions disagree on the fixed-effect columns ({x_names} vs "
                              f"{part.x_names}); is a column's type different across files?")
        total = part.stats if total is None else total + part.stats
    assert total is not None and x_names is not None     # pass 1 found complete rows
    p = len(x_names)
    keep = kept_columns_from_gram(total.G[:p, :p])
    aliased = [nm for j, nm in enumerate(x_names) if j not in set(keep)]
    if aliased:
        total, x_names = total.fixed_columns(keep), [x_names[j] for j in keep]
    blocks = _factor_blocks(mf, levels)
    return Design(formula=mf, y=np.empty(0), X=np.empty((0, len(x_names))), x_names=x_names,
                  factors=blocks, row_index=pd.RangeIndex(0), nobs_dropped=dropped,
                  categorical=categorical, aliased=aliased, summary=total)


def _factor_blocks(mf: ModelFormula, levels: Levels) -> list[FactorBlock]:
    """The factors' metadata (names, levels, columns, term sizes) without rows."""
    by_group: dict[str, list] = {}
    for t in mf.random:
        by_group.setdefault(t.group, []).append(t)
    blocks = []
    for group, terms in by_group.items():
        columns = [name for t in terms for name in t.names]
        blocks.append(FactorBlock(name=group, levels=levels.groups[group],
                                  codes=np.zeros(0, dtype=np.int64), columns=columns,
                                  Z=np.zeros((0, len(columns))),
                                  term_sizes=[len(t.names) for t in terms]))
    return blocks
