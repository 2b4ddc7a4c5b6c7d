"""The Schur-complement pattern ``S D_v S'`` for a sparse ``S`` and a diagonal ``D_v`` that changes.

In the blocked Cholesky with scalar terms (:mod:`backends.native.blocked`), eliminating the
first (block-diagonal) factor subtracts ``S21 D_w^2 S21'`` from block 2, where ``S21 = Z_2' Z_1``
is fixed and ``w`` holds one number per level of factor 1 that changes with theta. Each entry of
that product is a fixed linear combination of the ``v_j = w_j^2``:

``(S D_v S')_{ab} = sum_j S_aj S_bj v_j``,

so the combinations are listed once, as a sparse matrix ``Q`` (one row per distinct position
``(a, b)``, one column per level ``j``), and every evaluation is the sparse product ``Q v``: no
sparse-sparse product, no symbolic work, no allocation that depends on the data size. Only the
lower triangle (``a >= b``) is kept, because LAPACK's Cholesky reads only that triangle: half the
work of the full pattern.

Positions are flat indices into a Fortran-ordered ``q2 x q2`` array (``a + b q2``), the layout
LAPACK factorises in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class GramPattern:
    """``Q`` and the flat (Fortran-order, lower-triangle) positions it fills."""

    Q: sp.csc_matrix        # (positions, levels of factor 1)
    flat: np.ndarray        # flat index a + b * q2 of each position, a >= b
    rows: np.ndarray        # a of each position
    cols: np.ndarray        # b of each position
    q2: int

    @property
    def diagonal(self) -> np.ndarray:
        """Index (into ``flat``) of every diagonal position."""
        return np.flatnonzero(self.rows == self.cols)

    def product(self, v: np.ndarray) -> np.ndarray:
        """``S D_v S'`` at the pattern's positions."""
        return self.Q @ v


def lower_pair_count(S: sp.csc_matrix) -> int:
    """Number of stored products of the lower-triangle pattern: ``sum_j c_j (c_j + 1) / 2``."""
    counts = np.diff(S.indptr).astype(np.int64)
    return int(np.sum(counts * (counts + 1) // 2))


def build_gram_pattern(S: sp.csc_matrix, q2: int, include: sp.spmatrix) -> GramPattern:
    """The lower-triangle pattern of ``S D S'`` for a ``q2 x m`` sparse ``S``, together with the
    stored positions of ``include`` (a ``q2 x q2`` matrix added to the product) and the diagonal.

    ``include`` matters because sparse products drop exact zeros: with a random slope that is 0
    on some rows, an entry of ``Z_2'Z_2`` need not appear in ``S D S'``.

    Columns with the same number ``c`` of nonzeros are handled together as ``(columns, c)``
    arrays with ``np.tril_indices(c)``: no per-column Python loop and no integer division, so
    InstEval's 1.8 million products take a fraction of a second. Each column's products are
    written straight to their slots of ``Q``'s CSC arrays (``Q`` shares ``S``'s columns), so no
    sort is needed either.
    """
    S = S.tocsc()
    S.sum_duplicates()          # canonical: sorted row indices, so a >= b below
    m = S.shape[1]
    counts = np.diff(S.indptr).astype(np.int64)
    npairs = counts * (counts + 1) // 2
    indptr = np.concatenate([[0], np.cumsum(npairs)])
    total = int(indptr[-1])
    flat_all = np.empty(total, dtype=np.int64)
    data = np.empty(total, dtype=float)
    for c in np.unique(counts[counts > 0]):
        columns = np.flatnonzero(counts == c)
        start = S.indptr[columns][:, None] + np.arange(c)[None, :]
        idx, val = S.indices[start].astype(np.int64), S.data[start]
        ti, tj = np.tril_indices(int(c))
        dest = (indptr[columns][:, None] + np.arange(ti.size)[None, :]).ravel()
        flat_all[dest] = (idx[:, ti] + idx[:, tj] * q2).ravel()
        data[dest] = (val[:, ti] * val[:, tj]).ravel()
    mark = np.zeros(q2 * q2, dtype=bool)
    mark[flat_all] = True
    extra = include.tocoo()
    lower = extra.row >= extra.col
    mark[extra.row[lower].astype(np.int64) + extra.col[lower].astype(np.int64) * q2] = True
    mark[np.arange(q2, dtype=np.int64) * (q2 + 1)] = True
    flat = np.flatnonzero(mark)
    position = np.cumsum(mark, dtype=np.int64) - 1
    Q = sp.csc_matrix((data, position[flat_all].astype(np.int32), indptr),
                      shape=(flat.size, m))
    return GramPattern(Q=Q, flat=flat, rows=flat % q2, cols=flat // q2, q2=q2)
