"""The Python result object: fitted values, residuals, BLUP identities, VPC/ICC, summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backends.native import lmm
from backends.native.blas import _libraries, single_threaded_blas

from .simdata import two_level


@pytest.fixture(scope="module")
def ri_fit():
    df = two_level(21, groups=25, size=9, unbalanced=True, sd_int=0.8, sigma=1.2)
    df.loc[3, "y"] = np.nan
    return lmm("y ~ x + (1 | g)", df, reml=True), df


def test_fitted_plus_residuals_is_the_response(ri_fit):
    res, df = ri_fit
    y = df["y"].dropna()
    pd.testing.assert_index_equal(res.fitted.index, y.index)
    np.testing.assert_allclose(res.fitted + res.residuals, y, rtol=0, atol=1e-12)


def test_blup_identity_for_random_intercepts(ri_fit):
    """Mixed-model equations: for each group, sum of residuals = sigma^2 / var(u) * b_j."""
    res, df = ri_fit
    groups = df.loc[res.residuals.index, "g"].map(lambda v: str(int(v)))
    resid_sum = res.residuals.groupby(groups.to_numpy()).sum()
    b = res.ranef["g"]["(Intercept)"]
    ratio = res.sigma ** 2 / res.covariances()["g"].iloc[0, 0]
    np.testing.assert_allclose(resid_sum.loc[b.index], ratio * b, rtol=1e-6, atol=1e-9)


def test_conditional_sd_of_random_intercepts_closed_form(ri_fit):
    """For a random intercept, condVar_j = (1 / var(u) + n_j / sigma^2)^(-1)."""
    res, df = ri_fit
    n_j = df.loc[res.residuals.index, "g"].map(lambda v: str(int(v))).value_counts()
    var_u = res.covariances()["g"].iloc[0, 0]
    expect = 1.0 / np.sqrt(1.0 / var_u + n_j / res.sigma ** 2)
    got = res.ranef_se["g"]["(Intercept)"]
    np.testing.assert_allclose(got, expect.loc[got.index], rtol=1e-8)


def test_vcov_and_standard_errors(ri_fit):
    res, _ = ri_fit
    V = res.vcov.to_numpy()
    np.testing.assert_allclose(V, V.T, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(V) > 0)
    np.testing.assert_allclose(res.std_errors, np.sqrt(np.diag(V)))


def test_icc_vpc_and_their_limits(ri_fit):
    res, _ = ri_fit
    vpc = res.vpc()
    assert set(vpc) == {"g", "Residual"} and sum(vpc.values()) == pytest.approx(1.0)
    assert res.icc() == pytest.approx(vpc["g"])
    slope = lmm("y ~ x + (1 + x | g)", two_level(3, groups=20, size=8, sd_slope=0.4))
    with pytest.raises(ValueError, match="random-intercept"):
        slope.icc()


def test_summary_mentions_the_essentials(ri_fit):
    res, df = ri_fit
    text = res.summary()
    assert res.nobs == len(df) - 1
    for piece in ("REML criterion", "Random effects", "Residual", "Fixed effects", "(Intercept)",
                  "1 rows with missing values dropped", f"Number of obs: {len(df) - 1};"):
        assert piece in text, piece


def test_blas_threads_are_restored():
    libs = _libraries()
    if not libs:
        pytest.skip("no OpenBLAS found in this process")
    before = [get() for get, _ in libs]
    with single_threaded_blas():
        assert all(get() == 1 for get, _ in libs)
    assert [get() for get, _ in libs] == before
