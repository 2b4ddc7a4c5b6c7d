"""Design matrices: R's names and contrasts, level labels, missing rows, grouping factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backends.native.design import DesignError, build_design, group_codes
from backends.native.names import level_label


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "lrt": rng.normal(size=n),
        "girl": rng.integers(0, 2, n).astype(float),
        "schgend": rng.choice([1.0, 2.0, 10.0], n),
        "school": rng.integers(1, 7, n).astype(float),
        "cls": rng.integers(1, 3, n).astype(float),
        "kind": rng.choice(["b", "a", "c"], n),
    })


def test_level_labels_print_like_r():
    assert level_label(2.0) == "2"
    assert level_label(np.float64(23.0)) == "23"
    assert level_label(2.5) == "2.5"
    assert level_label(np.int64(7)) == "7"
    assert level_label("x") == "x"


def test_factor_call_treatment_contrasts_numeric_level_order(frame):
    d = build_design("y ~ lrt + girl + factor(schgend) + (1 | school)", frame)
    # numeric sort: 1 < 2 < 10 (a string sort would put 10 before 2); 1 is the reference.
    assert d.x_names == ["(Intercept)", "lrt", "girl", "factor(schgend)2", "factor(schgend)10"]
    np.testing.assert_array_equal(d.X[:, 3], (frame["schgend"] == 2).to_numpy(float))
    np.testing.assert_array_equal(d.X[:, 4], (frame["schgend"] == 10).to_numpy(float))


def test_c_call_declared_factors_strings_and_interactions(frame):
    d = build_design("y ~ C(schgend) + lrt*girl + kind + cls + (1 | school)", frame,
                     factors=["cls"])
    # C(x) is read as factor(x): one canonical name whichever way the user wrote it
    assert d.x_names == ["(Intercept)", "factor(schgend)2", "factor(schgend)10", "lrt", "girl",
                         "kindb", "kindc", "cls2", "lrt:girl"]
    np.testing.assert_allclose(d.X[:, -1], frame["lrt"] * frame["girl"])


def test_reference_level(frame):
    d = build_design("y ~ factor(schgend) + (1 | school)", frame, reference={"schgend": 10})
    assert d.x_names == ["(Intercept)", "factor(schgend)1", "factor(schgend)2"]


def test_factor_by_numeric_interaction_names(frame):
    d = build_design("y ~ lrt * factor(girl) + (1 | school)", frame)
    assert d.x_names == ["(Intercept)", "lrt", "factor(girl)1", "lrt:factor(girl)1"]


def test_grouping_factor_labels_and_interaction_ids(frame):
    codes, levels = group_codes(frame, "school")
    assert levels == [str(i) for i in range(1, 7)]
    assert (np.asarray(levels)[codes] == frame["school"].astype(int).astype(str)).all()
    codes, levels = group_codes(frame, "school:cls")
    labels = np.asarray(levels)[codes]
    expect = frame["school"].astype(int).astype(str) + ":" + frame["cls"].astype(int).astype(str)
    assert (labels == expect).all()
    assert len(levels) == expect.nunique()


def test_independent_terms_share_one_factor_block(frame):
    d = build_design("y ~ lrt + (1 | school) + (0 + lrt | school)", frame)
    assert len(d.factors) == 1
    f = d.factors[0]
    assert f.columns == ["(Intercept)", "lrt"] and f.term_sizes == [1, 1]
    d = build_design("y ~ lrt + (1 + lrt || school)", frame)
    assert d.factors[0].term_sizes == [1, 1]


def test_missing_columns_and_no_rows(frame):
    with pytest.raises(DesignError, match="nothere"):
        build_design("y ~ lrt + (1 | nothere)", frame)
    empty = frame.assign(y=np.nan)
    with pytest.raises(DesignError, match="no complete rows"):
        build_design("y ~ lrt + (1 | school)", empty)


def test_rows_missing_in_a_grouping_or_slope_variable_are_dropped(frame):
    frame.loc[[1, 2], "school"] = np.nan
    frame.loc[[5], "lrt"] = np.nan
    frame.loc[[7], "kind"] = None          # unused by the model: must not drop the row
    d = build_design("y ~ girl + (1 + lrt | school)", frame)
    assert d.nobs_dropped == 3 and d.n == len(frame) - 3
