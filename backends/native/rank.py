"""Rank-deficient fixed effects, handled as lme4 handles them: drop the aliased columns.

lme4 (``chkRank.drop.cols``, the default ``check.rankX = "message+drop.cols"``), ``lm``, ``glm``
and ``ordinal::clm`` all take R's ``qr(X, tol = 1e-7, LAPACK = FALSE)``: LINPACK's ``dqrdc2``,
a Householder QR with *limited* pivoting. Columns are taken left to right; a column whose norm,
after removing its projection on the columns kept so far, has fallen below ``tol`` times its
original norm is negligible and moved to the end, and is never reconsidered. So of two collinear
columns the first one is kept, the rank is the number kept, and the kept columns stay in their
order. lme4 then fits the model without the dropped columns and says so in a message (``fixef``
leaves them out); the native estimator does the same, naming the columns.

Without this the native LMM optimised on a singular X'X: for ``x`` and ``x2 = 2 x`` plus 1e-10
noise it reported x = -477,281 and x2 = 477,281.5 with theta stuck at its start and no warning.

The greedy test runs on R of one unpivoted QR of X: X = QR with Q orthonormal, so the columns
of R have exactly the lengths and angles of the columns of X, and the n x p work is done once by
LAPACK however many columns are tested.
"""

from __future__ import annotations

import numpy as np

RANK_TOL = 1e-7  # lme4's chkRank.drop.cols(tol = 1e-7), as lm's qr()


def kept_columns(X: np.ndarray, tol: float = RANK_TOL) -> list[int]:
    """Indices of the columns dqrdc2's limited pivoting keeps, in their original order."""
    n, p = X.shape
    if p == 0:
        return []
    R = np.linalg.qr(X, mode="r") if n >= p else X.astype(float, copy=True)
    original = np.linalg.norm(X, axis=0)
    basis: list[np.ndarray] = []  # orthonormal, in R's column space
    kept: list[int] = []
    for j in range(p):
        r = R[:, j].astype(float, copy=True)
        for _ in range(2):  # Gram-Schmidt twice: orthogonal to working precision
            for q in basis:
                r -= (q @ r) * q
        norm = float(np.linalg.norm(r))
        scale = original[j] if original[j] > 0 else 1.0  # dqrdc2: a zero column has norm 1
        if norm < tol * scale or len(kept) == n:
            continue
        basis.append(r / norm)
        kept.append(j)
    return kept


def kept_columns_from_gram(G: np.ndarray, tol: float = RANK_TOL) -> list[int]:
    """:func:`kept_columns` for an X known only through ``X'X`` (data summarised partition by
    partition, :mod:`backends.native.partitioned`).

    The greedy test depends only on the columns' lengths and angles, which ``X'X`` holds; any
    ``B`` with ``B'B = X'X`` (here from the eigen-decomposition) has the same ones. Going through
    the Gram matrix squares the condition number, so a residual norm is resolved to about
    ``sqrt(eps) ~ 1.5e-8`` of its column's norm, still below ``RANK_TOL``: exactly aliased
    columns are dropped as on the rows; columns within a factor of ~10 of the tolerance may be
    judged differently.
    """
    w, V = np.linalg.eigh(G)
    return kept_columns(np.sqrt(np.clip(w, 0.0, None))[:, None] * V.T, tol)


def drop_aliased(X: np.ndarray, names: list[str], tol: float = RANK_TOL
                 ) -> tuple[np.ndarray, list[str], list[str]]:
    """(X without its aliased columns, the kept names, the dropped names)."""
    keep = kept_columns(X, tol)
    if len(keep) == X.shape[1]:
        return X, names, []
    dropped = [nm for j, nm in enumerate(names) if j not in set(keep)]
    return np.ascontiguousarray(X[:, keep]), [names[j] for j in keep], dropped


def aliased_warning(dropped: list[str]) -> str:
    """lme4's message, naming the columns (lme4 only counts them)."""
    k = len(dropped)
    what = "1 column / coefficient" if k == 1 else f"{k} columns / coefficients"
    return (f"fixed-effect model matrix is rank deficient so dropping {what}: "
            f"{', '.join(dropped)} (a linear combination of the columns before it; pivoted QR "
            f"with tolerance {RANK_TOL:g}, as lme4)")


def threshold_columns(X: np.ndarray, names: list[str], tol: float = RANK_TOL
                      ) -> tuple[np.ndarray, list[str], list[str]]:
    """The fixed-effect columns of an ordinal model, whose thresholds take the intercept's place.

    The intercept is removed and every column aliased with a constant (a full set of dummies,
    say) is dropped too, as ``ordinal::clm``/``clmm`` drop it ("design is column rank deficient
    so dropping 1 coef"). Returns (X, kept names, dropped names).
    """
    keep = [j for j, nm in enumerate(names) if nm != "(Intercept)"]
    X, names = X[:, keep], [names[j] for j in keep]
    with_constant = np.column_stack([np.ones(X.shape[0]), X])
    kept = kept_columns(with_constant, tol)[1:]  # the constant comes first and is kept
    cols = [j - 1 for j in kept]
    dropped = [nm for j, nm in enumerate(names) if j not in set(cols)]
    return np.ascontiguousarray(X[:, cols]), [names[j] for j in cols], dropped
