"""Partitioned fitting (sufficient statistics accumulated partition by partition) against the
in-memory path, the refusals, and the Dask readers (Parquet, CSV, a local cluster)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backends.native import lmm
from backends.native.crossprod import CrossProducts
from backends.native.design import DesignError, build_design
from backends.native.partitioned import lmm_partitioned, sequential

from .simdata import crossed, three_level, two_level


def _chunks(df: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    cuts = np.linspace(0, len(df), k + 1).astype(int)
    return [df.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def _school_data() -> pd.DataFrame:
    """Random slopes, a categorical covariate whose level "c" only occurs in the last rows, a
    partition of incomplete rows and scattered missing values."""
    df = two_level(7, groups=30, size=12, sd_slope=0.4, corr=0.2, unbalanced=True)
    rng = np.random.default_rng(1)
    df["kind"] = rng.choice(["a", "b"], len(df))
    df.loc[df.index[-40:], "kind"] = "c"
    df.loc[df.index[5:25], "y"] = np.nan           # one whole partition below is incomplete
    df.loc[rng.choice(len(df), 15, replace=False), "x"] = np.nan
    return df


def _same(a, b):
    """Same fit up to where the optimiser stops: the statistics agree to rounding
    (test_statistics_are_those_of_the_whole_data), and BOBYQA's path may then differ by 1e-8."""
    assert b.nobs == a.nobs and b.design.nobs_dropped == a.design.nobs_dropped
    assert list(b.fixef.index) == list(a.fixef.index)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-8)
    np.testing.assert_allclose(b.fixef, a.fixef, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(b.std_errors, a.std_errors, rtol=1e-7)
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-6, atol=1e-8)
    for g in a.ranef:
        assert list(b.ranef[g].index) == list(a.ranef[g].index)
        np.testing.assert_allclose(b.ranef[g], a.ranef[g], rtol=1e-6, atol=1e-8)


def test_statistics_are_those_of_the_whole_data():
    df = _school_data()
    formula = "y ~ x + kind + (1 + x | g)"
    whole = CrossProducts.from_design(build_design(formula, df))
    b = lmm_partitioned(formula, sequential(_chunks(df, 6)))
    parts = b.design.summary
    assert parts.n == whole.n
    for mine, ref in [(parts.G, whole.G), *zip(parts.D, whole.D), *zip(parts.E, whole.E)]:
        np.testing.assert_allclose(mine, ref, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("reml", [False, True])
def test_single_factor_with_a_level_missing_from_most_partitions(reml):
    df = _school_data()
    formula = "y ~ x + kind + (1 + x | g)"
    parts = [df.iloc[5:25]] + _chunks(df.drop(df.index[5:25]), 6)
    a = lmm(formula, df, reml=reml)
    b = lmm_partitioned(formula, sequential(parts), reml=reml)
    assert "kindc" in b.fixef.index
    _same(a, b)


def test_aliased_columns_are_judged_on_the_whole_data():
    """A column aliased on the whole data (x2 = 2 x) is dropped as in memory, while "kindc",
    constant (all 0) in every partition but the last, is aliased with the intercept within
    those partitions only and is kept."""
    df = _school_data()
    df["x2"] = 2.0 * df["x"]
    formula = "y ~ x + x2 + kind + (1 | g)"
    a = lmm(formula, df)
    b = lmm_partitioned(formula, sequential(_chunks(df, 6)))
    assert a.design.aliased == b.design.aliased == ["x2"]
    assert "kindc" in b.fixef.index
    _same(a, b)


def test_reference_level_and_declared_factors():
    df = _school_data()
    df["grade"] = np.random.default_rng(2).integers(1, 4, len(df))
    formula = "y ~ x + kind + grade + (1 | g)"
    kw = dict(factors=("grade",), reference={"kind": "b", "grade": 3})
    _same(lmm(formula, df, **kw), lmm_partitioned(formula, sequential(_chunks(df, 5)), **kw))


@pytest.mark.parametrize("reml", [False, True])
def test_nested_factors_and_their_icc(reml):
    df = three_level(4, n_top=12, n_mid=4, n_low=6)
    formula = "y ~ x + (1 | top) + (1 | top:mid)"
    a = lmm(formula, df, reml=reml)
    b = lmm_partitioned(formula, sequential(_chunks(df.sample(frac=1, random_state=0), 4)),
                        reml=reml)
    _same(a, b)
    assert b.icc() == pytest.approx(a.icc())


def test_rowless_result_says_what_it_cannot_do():
    df = two_level(1, groups=10, size=5)
    b = lmm_partitioned("y ~ x + (1 | g)", sequential(_chunks(df, 3)))
    with pytest.raises(ValueError, match="partition by partition"):
        b.fitted
    canonical = b.to_fit_result("m")
    assert canonical.status == "ok" and canonical.statistics.nobs == 50
    assert "Linear mixed model" in b.summary()


@pytest.mark.parametrize("formula, message", [
    ("y ~ x + (1 | a) + (1 | b)", "crossed, not nested"),
    ("y ~ scale(x) + (1 | a)", "needs the whole column"),
    ("y ~ poly(x, 2) + (1 | a)", "needs the whole column"),
    ("y ~ x", "no random-effects term"),
])
def test_refusals_name_the_reason(formula, message):
    df = crossed(2, na=6, nb=5, n=60)
    with pytest.raises(DesignError, match=message):
        lmm_partitioned(formula, sequential(_chunks(df, 3)))


def test_a_categorical_response_is_refused_as_in_memory():
    """Each partition would code a text response by its own levels; in memory a gaussian model
    of a categorical response is an error, and so it is partition by partition."""
    df = two_level(5, groups=10, size=6)
    df["y"] = np.where(df["y"] > df["y"].median(), "high", "low")
    with pytest.raises(DesignError, match="categorical"):
        lmm("y ~ x + (1 | g)", df)
    with pytest.raises(DesignError, match="categorical"):
        lmm_partitioned("y ~ x + (1 | g)", sequential(_chunks(df, 3)))


def test_a_mapper_that_skips_a_partition_is_caught():
    df = two_level(3, groups=10, size=5)
    parts = _chunks(df, 3)
    calls = {"n": 0}

    def flaky(fn):
        calls["n"] += 1
        return (fn(p) for p in (parts if calls["n"] == 1 else parts[1:]))
    with pytest.raises(RuntimeError, match="different rows"):
        lmm_partitioned("y ~ x + (1 | g)", flaky)


# ---- Dask ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("dask.dataframe")
    pytest.importorskip("pyarrow")
    df = _school_data()
    root = tmp_path_factory.mktemp("parts")
    (root / "parquet").mkdir()
    (root / "csv").mkdir()
    for i, part in enumerate(_chunks(df, 4)):
        part.to_parquet(root / "parquet" / f"p{i}.parquet")
        part.to_csv(root / "csv" / f"p{i}.csv", index=False)
    return df, root


@pytest.mark.parametrize("source", ["parquet/*.parquet", "parquet", "csv/*.csv"])
def test_dask_readers_match_the_in_memory_fit(files, source):
    """Parquet by glob and by directory, CSV split into blocks of 2 kB (several per file)."""
    from backends.native.dask_source import lmm_dask

    df, root = files
    formula = "y ~ x + kind + (1 + x | g)"
    b = lmm_dask(formula, str(root / source), in_flight=2, blocksize=2_000)
    _same(lmm(formula, df), b)


def test_dask_on_a_local_cluster(files):
    distributed = pytest.importorskip("distributed")
    from backends.native.dask_source import lmm_dask

    df, root = files
    formula = "y ~ x + kind + (1 + x | g)"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        b = lmm_dask(formula, str(root / "parquet"), client=client, in_flight=1)
    _same(lmm(formula, df), b)


def test_unknown_file_format_is_refused(files):
    from backends.native.dask_source import lmm_dask

    with pytest.raises(ValueError, match="cannot tell the format"):
        lmm_dask("y ~ x + (1 | g)", "data.xlsx")
