"""Parameter recovery on simulated data with known truth, over repeated seeded draws.

Every assertion is in standard-error units, so it would fail for a biased estimator or
miscalibrated SEs, yet (with fixed seeds) never flakes:

* fixed effects: each draw's z = (estimate - truth) / SE is within 4, the mean z over draws is
  within 4.5 / sqrt(draws) of 0, and the model SEs match the spread across draws: the empirical
  variance over draws, divided by the mean squared SE, lies in its 99.9% chi-square interval
  (so a SE off by a factor of 2 fails);
* variance components (REML): the mean over draws is within 3.5 Monte Carlo standard errors of the
  truth.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from backends.native import lmm

from .simdata import crossed, three_level, two_level

DRAWS = 16


def check_recovery(fits, beta_true: dict[str, float], comps_true: dict[tuple[str, str], float]):
    z = {k: np.array([(f.fixef[k] - v) / f.std_errors[k] for f in fits])
         for k, v in beta_true.items()}
    for k, zk in z.items():
        assert np.all(np.abs(zk) < 4), (k, zk)
        assert abs(zk.mean()) < 4.5 / np.sqrt(len(fits)), (k, zk.mean())
        est = np.array([f.fixef[k] for f in fits])
        ratio = est.var(ddof=1) / np.mean([f.std_errors[k] ** 2 for f in fits])
        dof = len(fits) - 1
        lo, hi = chi2.ppf([0.0005, 0.9995], dof) / dof
        assert lo < ratio < hi, (k, ratio, lo, hi)
    for (group, term), truth in comps_true.items():
        est = np.array([_component(f, group, term) for f in fits])
        mcse = est.std(ddof=1) / np.sqrt(len(est))
        assert abs(est.mean() - truth) < 3.5 * mcse, (group, term, est.mean(), truth, mcse)


def _component(fit, group: str, term: str) -> float:
    return next(p.estimate for p in fit.parameters()
                if p.effect == "ran_pars" and p.group == group and p.term == term)


def test_random_intercepts():
    fits = [lmm("y ~ x + (1 | g)", two_level(s, groups=40, size=10, sd_int=1.0, sigma=1.5),
                reml=True) for s in range(DRAWS)]
    check_recovery(fits, {"(Intercept)": 1.0, "x": 0.5},
                   {("g", "var__(Intercept)"): 1.0, ("Residual", "var__Observation"): 2.25})


def test_correlated_intercept_and_slope():
    fits = [lmm("y ~ x + (1 + x | g)",
                two_level(100 + s, groups=50, size=12, sd_int=1.0, sd_slope=0.6, corr=0.5),
                reml=True) for s in range(DRAWS)]
    check_recovery(fits, {"(Intercept)": 1.0, "x": 0.5},
                   {("g", "var__(Intercept)"): 1.0, ("g", "var__x"): 0.36,
                    ("g", "cov__(Intercept).x"): 0.3, ("Residual", "var__Observation"): 1.0})
    assert all(not f.diagnostics.singular for f in fits)


def test_crossed_factors():
    fits = [lmm("y ~ x + (1 | a) + (1 | b)", crossed(200 + s, na=30, nb=25, n=900), reml=True)
            for s in range(DRAWS)]
    check_recovery(fits, {"(Intercept)": 2.0, "x": -0.5},
                   {("a", "var__(Intercept)"): 1.0, ("b", "var__(Intercept)"): 0.49,
                    ("Residual", "var__Observation"): 1.0})


def test_three_level_nested_with_repeated_inner_ids():
    """``top:mid`` makes ward ids unique within hospital although they restart at 1."""
    fits = [lmm("y ~ x + (1 | top) + (1 | top:mid)", three_level(300 + s), reml=True)
            for s in range(DRAWS)]
    check_recovery(fits, {"(Intercept)": 0.5, "x": 1.0},
                   {("top", "var__(Intercept)"): 1.0, ("top:mid", "var__(Intercept)"): 0.36,
                    ("Residual", "var__Observation"): 1.0})
    f = fits[0]
    assert f.design.factors[1].m == 100
    vpc = f.vpc()
    assert sum(vpc.values()) == pytest.approx(1.0)
    icc = f.icc()
    assert icc["top:mid"] == pytest.approx(vpc["top"] + vpc["top:mid"])
    assert icc["top"] == pytest.approx(vpc["top"])


def test_zero_variance_is_reported_as_singular():
    """Group means of the noise removed: less between-group spread than chance, so the ML and
    REML estimates of the school variance are exactly 0 (a boundary optimum)."""
    df = two_level(5, groups=30, size=10, sd_int=0.0)
    e = df["y"] - 1.0 - 0.5 * df["x"]
    df["y"] = df["y"] - e.groupby(df["g"]).transform("mean")
    for reml in (False, True):
        fit = lmm("y ~ x + (1 | g)", df, reml=reml)
        assert fit.theta[0] == 0.0
        d = fit.diagnostics
        assert d.singular and d.converged
        assert any("singular fit" in w and "g" in w for w in d.warnings)
        assert fit.covariances()["g"].iloc[0, 0] == 0.0
        assert np.all(fit.ranef["g"].to_numpy() == 0.0)
