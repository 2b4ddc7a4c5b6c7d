"""Seeded simulated data sets for the native LMM tests (known parameters, small and fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def two_level(seed: int, groups: int = 40, size: int = 15, beta=(1.0, 0.5), sd_int: float = 1.0,
              sd_slope: float = 0.0, corr: float = 0.0, sigma: float = 1.0,
              unbalanced: bool = False) -> pd.DataFrame:
    """y = b0 + b1 x + u0_g + u1_g x + e, correlated (u0, u1)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(max(2, size // 3), 2 * size, groups) if unbalanced \
        else np.full(groups, size)
    g = np.repeat(np.arange(1, groups + 1), sizes)
    n = g.size
    x = rng.normal(size=n)
    cov = np.array([[sd_int ** 2, corr * sd_int * sd_slope],
                    [corr * sd_int * sd_slope, sd_slope ** 2]])
    u = rng.multivariate_normal([0, 0], cov, size=groups)
    y = beta[0] + beta[1] * x + u[g - 1, 0] + u[g - 1, 1] * x + sigma * rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(float)})


def crossed(seed: int, na: int = 30, nb: int = 25, n: int = 900, sd_a: float = 1.0,
            sd_b: float = 0.7, sigma: float = 1.0, beta=(2.0, -0.5)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, na, n)
    b = rng.integers(0, nb, n)
    x = rng.normal(size=n)
    ua, ub = sd_a * rng.normal(size=na), sd_b * rng.normal(size=nb)
    y = beta[0] + beta[1] * x + ua[a] + ub[b] + sigma * rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "a": a + 1, "b": b + 1})


def three_level(seed: int, n_top: int = 20, n_mid: int = 5, n_low: int = 8,
                sd_top: float = 1.0, sd_mid: float = 0.6, sigma: float = 1.0,
                beta=(0.5, 1.0)) -> pd.DataFrame:
    """Observations in mid-level units (ids restart within top: 1..n_mid) in top units."""
    rng = np.random.default_rng(seed)
    top = np.repeat(np.arange(n_top), n_mid * n_low)
    mid = np.tile(np.repeat(np.arange(n_mid), n_low), n_top)
    x = rng.normal(size=top.size)
    ut = sd_top * rng.normal(size=n_top)
    um = sd_mid * rng.normal(size=(n_top, n_mid))
    y = beta[0] + beta[1] * x + ut[top] + um[top, mid] + sigma * rng.normal(size=top.size)
    return pd.DataFrame({"y": y, "x": x, "top": top + 1, "mid": mid + 1})
