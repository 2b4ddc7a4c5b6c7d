"""Gauss-Hermite rules for the standard normal, in one dimension and as product rules."""

from __future__ import annotations

from functools import lru_cache
from itertools import product

import numpy as np
from numpy.polynomial.hermite_e import hermegauss


@lru_cache(maxsize=32)
def gh_normal(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights with ``sum_q w_q f(z_q) ~= E f(Z)``, ``Z ~ N(0, 1)`` (lme4's GHrule)."""
    z, w = hermegauss(n)
    return z, w / np.sqrt(2.0 * np.pi)


@lru_cache(maxsize=32)
def gh_product(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n^k``-point product rule for ``N(0, I_k)``: nodes ``(n^k, k)``, log weights."""
    z, w = gh_normal(n)
    idx = np.array(list(product(range(n), repeat=k)), dtype=int).reshape(-1, k)
    return z[idx], np.sum(np.log(w)[idx], axis=1)
