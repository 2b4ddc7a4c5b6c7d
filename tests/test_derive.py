import numpy as np
import pandas as pd
import pytest

from harness.derive import DeriveError, apply_derivations, r_code, stata_code
from harness.spec import Derived

DF = pd.DataFrame({"g": [1, 1, 2, 2, 2, 3], "x": [1.0, 3.0, 2.0, 4.0, np.nan, 5.0],
                   "a": [2, 1, 2, 1, 2, 1], "b": [1, 1, 2, 2, 1, 1]})


def derive(**kw):
    return apply_derivations(DF, [Derived(name="v", **kw)])["v"]


def test_comparisons_give_zero_one_and_propagate_missing():
    v = derive(expr="x > 2")
    assert v.tolist()[:4] == [0, 1, 0, 1] and np.isnan(v[4])


def test_arithmetic_isin_where():
    assert derive(expr="10 * a - 40").tolist() == [-20, -30, -20, -30, -20, -30]
    assert derive(expr="isin(g, [1, 3])").tolist() == [1, 1, 0, 0, 0, 1]
    assert derive(expr="where(a == 2, x, 0)").tolist()[:4] == [1, 0, 2, 0]


def test_group_operations():
    assert derive(group_mean="x", by="g").tolist()[:3] == [2, 2, 3]  # NaN skipped in the mean
    assert derive(group_count=True, by="g").tolist() == [2, 2, 3, 3, 3, 1]
    assert derive(group_first=True, by="g").tolist() == [1, 0, 1, 0, 0, 1]
    # Stata egen group: ids in sorted order of (a, b)
    assert derive(group_id=["a", "b"]).tolist() == [3, 1, 4, 2, 3, 1]


def test_recode():
    v = derive(recode={1: 10, 2: 20}, source="a")
    assert v.tolist() == [20, 10, 20, 10, 20, 10]


@pytest.mark.parametrize("expr, fragment", [
    ("__import__('os')", "not allowed"),
    ("x.real", "not allowed"),
    ("1 < x < 3", "chained"),
    ("nope + 1", "column 'nope'"),
    ("x +", "cannot parse"),
])
def test_unsafe_or_wrong_expressions_rejected(expr, fragment):
    with pytest.raises(DeriveError, match=fragment):
        derive(expr=expr)


def test_cannot_overwrite_existing_column():
    with pytest.raises(DeriveError, match="overwrite"):
        apply_derivations(DF, [Derived(name="x", expr="a + 1")])


def test_r_and_stata_renderings():
    steps = [Derived(name="hi", expr="x >= 10"), Derived(name="m", group_mean="x", by="g"),
             Derived(name="id", group_id=["a", "b"])]
    r = "\n".join(r_code(steps))
    assert "d$hi <- as.numeric(d$x >= 10)" in r
    assert "ave(d$x, d$g, FUN = function(v) mean(v, na.rm = TRUE))" in r
    s = "\n".join(stata_code(steps))
    assert "generate double hi = cond(!missing(x), (x >= 10), .)" in s
    assert "bysort g: egen double m = mean(x)" in s
    assert "egen double id = group(a b)" in s
