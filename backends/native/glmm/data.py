"""The GLMM's numerical data: rows sorted by group and compressed to distinct patterns.

Why compress: the likelihood of a GLMM with one grouping factor is a sum over rows of
``log p(y_i | eta_i)``, and rows that agree on the group, the response, the trials, the offset,
the prior weight and every column of X and Z contribute identical terms. Keeping one copy with a
frequency weight is exact (prior weights multiply a row's log-likelihood, so they multiply its
frequency) and turns the census file (63,388 rows, a handful of covariate values) into a
few thousand rows, so every PIRLS or quadrature pass costs a few thousand, not 63,388, terms.

Why sort by group: per-group sums are then one ``np.add.reduceat`` over contiguous runs, the
fastest group-by numpy offers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design import Design, FactorBlock


@dataclass
class GroupedData:
    """Compressed, group-sorted arrays for a model with exactly one grouping factor."""

    X: np.ndarray          # (n_c, p)
    Z: np.ndarray          # (n_c, k)
    y: np.ndarray          # (n_c,)
    trials: np.ndarray     # (n_c,) binomial trials (1 otherwise)
    offset: np.ndarray     # (n_c,)
    freq: np.ndarray       # (n_c,) how many original rows each compressed row stands for,
                           # times their prior weight
    group: np.ndarray      # (n_c,) group code of each row, sorted
    starts: np.ndarray     # (m,) first row of each group
    factor: FactorBlock
    nobs: int

    @property
    def m(self) -> int:
        return self.starts.size

    @property
    def k(self) -> int:
        return self.Z.shape[1]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    def gsum(self, v: np.ndarray) -> np.ndarray:
        """Sum ``v`` (rows first) within groups: ``(n_c, ...) -> (m, ...)``."""
        return np.add.reduceat(v, self.starts, axis=0)

    def ZZ(self) -> np.ndarray:
        """Per-row outer products ``z_i z_i'`` times the row frequency, ``(n_c, k, k)``."""
        return self.freq[:, None, None] * self.Z[:, :, None] * self.Z[:, None, :]


def grouped_data(design: Design, y: np.ndarray, X: np.ndarray | None = None,
                 trials: np.ndarray | None = None, offset: np.ndarray | None = None,
                 weights: np.ndarray | None = None, compress: bool = True) -> GroupedData:
    """Sort by the single grouping factor and merge identical rows (exactly, by value).

    ``y`` may differ from ``design.y`` (ordinal category codes); ``X`` may drop columns (the
    ordinal model has no intercept); ``weights`` are prior weights (multipliers of each row's
    log-likelihood), which end up in ``freq``.
    """
    if len(design.factors) != 1:
        raise ValueError("native GLMMs support one grouping factor (possibly with several "
                         f"random-effect terms); this model has {len(design.factors)}")
    f = design.factors[0]
    X = design.X if X is None else X
    n = y.shape[0]
    trials = np.ones(n) if trials is None else np.asarray(trials, dtype=float)
    offset = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    table = np.column_stack([f.codes.astype(float), y, trials, offset, X, f.Z, weights])
    if compress:
        uniq, counts = np.unique(table, axis=0, return_counts=True)
        freq = counts.astype(float) * uniq[:, -1]
    else:
        order = np.argsort(f.codes, kind="stable")
        uniq = table[order]
        freq = uniq[:, -1].copy()
    p, k = X.shape[1], f.Z.shape[1]
    group = uniq[:, 0].astype(np.int64)
    if np.unique(group).size != f.m:
        raise ValueError("a grouping level has no rows")  # cannot happen after build_design
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return GroupedData(X=np.ascontiguousarray(uniq[:, 4:4 + p]),
                       Z=np.ascontiguousarray(uniq[:, 4 + p:4 + p + k]),
                       y=uniq[:, 1].copy(), trials=uniq[:, 2].copy(), offset=uniq[:, 3].copy(),
                       freq=freq, group=group, starts=starts, factor=f, nobs=n)
