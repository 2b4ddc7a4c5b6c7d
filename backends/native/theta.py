"""The covariance parameter vector theta and the relative covariance factor it builds.

As in lme4 (Bates et al. 2015, section 3.1), the random effects are ``b = Lambda_theta u`` with
``u ~ N(0, sigma^2 I)``; for each grouping factor the ``k x k`` block ``T`` of ``Lambda_theta`` is
the same for every level, and it is block-diagonal over that factor's terms (one lower-triangular
block per term, so independent terms get no covariance). theta lists, term by term, the lower
triangle of each term's block column by column (lme4's order), so ``(1 + x | g)`` has
``theta = (T11, T21, T22)``. Diagonal elements are bounded below by 0 (lme4's ``lower``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import FactorBlock


@dataclass(frozen=True)
class BlockLayout:
    """Where one grouping factor's parameters sit in theta and in its ``k x k`` block ``T``."""

    offset: int
    k: int
    rows: np.ndarray
    cols: np.ndarray
    term_sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.rows.size

    def T(self, theta: np.ndarray) -> np.ndarray:
        """The ``k x k`` lower-triangular relative covariance factor for this grouping factor."""
        T = np.zeros((self.k, self.k))
        T[self.rows, self.cols] = theta[self.offset:self.offset + self.size]
        return T


@dataclass(frozen=True)
class ThetaLayout:
    blocks: tuple[BlockLayout, ...]

    @classmethod
    def for_factors(cls, factors: list[FactorBlock]) -> "ThetaLayout":
        blocks = []
        offset = 0
        for f in factors:
            rows, cols = [], []
            start = 0
            for t in f.term_sizes:
                for j in range(t):           # column-major lower triangle, as lme4
                    for i in range(j, t):
                        rows.append(start + i)
                        cols.append(start + j)
                start += t
            b = BlockLayout(offset, f.k, np.array(rows, dtype=int), np.array(cols, dtype=int),
                            tuple(f.term_sizes))
            blocks.append(b)
            offset += b.size
        return cls(tuple(blocks))

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def diagonal_mask(self) -> np.ndarray:
        """True where theta is a diagonal element of some ``T`` (bounded below by 0)."""
        return np.concatenate([b.rows == b.cols for b in self.blocks]) if self.blocks \
            else np.zeros(0, dtype=bool)

    def lower_bounds(self) -> np.ndarray:
        return np.where(self.diagonal_mask(), 0.0, -np.inf)

    def initial(self) -> np.ndarray:
        """lme4's start: identity blocks (diagonals 1, off-diagonals 0)."""
        return self.diagonal_mask().astype(float)

    def covariances(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        """Per grouping factor, the random-effect covariance ``sigma^2 T T'``."""
        out = []
        for b in self.blocks:
            T = b.T(theta)
            out.append(sigma ** 2 * (T @ T.T))
        return out


def sd_and_correlation(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations and the correlation matrix (0 where an sd is 0, as lme4 prints NaN
    there we keep the finite convention and let singularity be reported separately)."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.where(np.isfinite(corr), corr, 0.0)
    np.fill_diagonal(corr, 1.0)
    return sd, np.clip(corr, -1.0, 1.0)
