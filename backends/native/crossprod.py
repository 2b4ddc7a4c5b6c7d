"""The sufficient statistics of a linear mixed model: ``Z'Z``, ``Z'[X y]`` and ``[X y]'[X y]``.

The profiled likelihood depends on the data only through these cross-products (Bates et al.
2015, section 3), so both estimator paths are built from a :class:`CrossProducts`, never from
the rows themselves. That is what lets data larger than memory be fitted: the statistics are
sums over rows, so they can be accumulated partition by partition
(:mod:`backends.native.partitioned`) and are exactly those of the whole data set.

Layout (the estimator paths' order): per grouping factor ``i`` with ``m_i`` levels and ``k_i``
effects, ``D[i]`` is ``(m_i, k_i, k_i)`` (level ``j``'s ``Z_ij' Z_ij``) and ``E[i]`` is
``(m_i, k_i, p + 1)``; ``cross[(i, j)]`` (``i < j``) is ``Z_i' Z_j`` as a sparse
``(m_i k_i) x (m_j k_j)`` matrix with levels major and effects minor, as lme4's Z; ``counts``
holds the number of rows of each pair of levels, which says whether one factor is nested in
another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .kernels import group_crossprod


@dataclass
class CrossProducts:
    n: int
    G: np.ndarray
    D: list[np.ndarray]
    E: list[np.ndarray]
    cross: dict[tuple[int, int], sp.csr_matrix]
    counts: dict[tuple[int, int], sp.csr_matrix]

    @classmethod
    def from_rows(cls, X: np.ndarray, y: np.ndarray, codes: list[np.ndarray],
                  Z: list[np.ndarray], levels: list[int]) -> "CrossProducts":
        """The statistics of some rows: ``codes[i]`` are level codes in ``0..levels[i]-1``
        (global codes when the rows are one partition of a larger data set)."""
        n = y.shape[0]
        XY = np.column_stack([X, y])
        D = [group_crossprod(c, m, z, z) for c, z, m in zip(codes, Z, levels)]
        E = [group_crossprod(c, m, z, XY) for c, z, m in zip(codes, Z, levels)]
        # the sparse Z only for the products between factors (none with one factor)
        zs = [_sparse_z(c, z, m) for c, z, m in zip(codes, Z, levels)] if len(codes) > 1 else []
        cross, counts = {}, {}
        for i in range(len(codes)):
            for j in range(i + 1, len(codes)):
                cross[(i, j)] = (zs[i].T @ zs[j]).tocsr()
                counts[(i, j)] = sp.csr_matrix(
                    (np.ones(n), (codes[i], codes[j])), shape=(levels[i], levels[j]))
        return cls(n=n, G=XY.T @ XY, D=D, E=E, cross=cross, counts=counts)

    @classmethod
    def from_design(cls, design) -> "CrossProducts":
        """The statistics of an in-memory :class:`~backends.native.design.Design` (or the ones
        it carries when its rows were summarised partition by partition)."""
        if design.summary is not None:
            return design.summary
        f = design.factors
        return cls.from_rows(design.X, design.y, [b.codes for b in f], [b.Z for b in f],
                             [b.m for b in f])

    def __add__(self, other: "CrossProducts") -> "CrossProducts":
        return CrossProducts(
            n=self.n + other.n, G=self.G + other.G,
            D=[a + b for a, b in zip(self.D, other.D)],
            E=[a + b for a, b in zip(self.E, other.E)],
            cross={k: (v + other.cross[k]).tocsr() for k, v in self.cross.items()},
            counts={k: (v + other.counts[k]).tocsr() for k, v in self.counts.items()})

    def fixed_columns(self, keep: list[int]) -> "CrossProducts":
        """The statistics of the rows with only the fixed-effect columns ``keep`` of X (the
        response stays last): what dropping aliased columns does to them."""
        xy = [*keep, self.G.shape[0] - 1]
        return CrossProducts(n=self.n, G=self.G[np.ix_(xy, xy)],
                             D=self.D, E=[e[:, :, xy] for e in self.E],
                             cross=self.cross, counts=self.counts)

    # ---- blocks the estimator paths assemble ----------------------------------------------
    def zz(self, i: int, j: int) -> sp.csr_matrix:
        """``Z_i' Z_j`` for any two factors (block-diagonal ``D[i]`` when ``i == j``)."""
        if i == j:
            m, k, _ = self.D[i].shape
            return sp.bsr_matrix((self.D[i], np.arange(m), np.arange(m + 1)),
                                 shape=(m * k, m * k)).tocsr()
        return self.cross[(i, j)] if i < j else self.cross[(j, i)].T.tocsr()

    def zxy(self, i: int) -> np.ndarray:
        """``Z_i' [X y]`` as a ``(m_i k_i) x (p + 1)`` array."""
        m, k, p1 = self.E[i].shape
        return self.E[i].reshape(m * k, p1)

    def nested_in(self, inner: int, outer: int) -> bool:
        """True when every level of factor ``inner`` occurs with exactly one level of
        ``outer``."""
        c = self.counts[(inner, outer)] if inner < outer else self.counts[(outer, inner)].T
        c = sp.csr_matrix(c)
        c.eliminate_zeros()
        return bool(np.all(np.diff(c.indptr) == 1))


def _sparse_z(codes: np.ndarray, Z: np.ndarray, m: int) -> sp.csr_matrix:
    """One factor's sparse ``n x (m k)`` Z (levels major, effects minor, as lme4)."""
    n, k = Z.shape
    rows = np.repeat(np.arange(n), k)
    cols = (codes[:, None] * k + np.arange(k)[None, :]).ravel()
    return sp.csr_matrix((Z.ravel(), (rows, cols)), shape=(n, m * k))
