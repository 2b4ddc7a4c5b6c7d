import pytest

from harness.formula import FormulaError, RandomTerm, parse_formula


def test_fixed_and_correlated_slope():
    f = parse_formula("gcse ~ lrt + girl + factor(schgend) + (1 + lrt | school)")
    assert f.response == "gcse"
    assert f.fixed == "lrt + girl + factor(schgend)"
    assert f.random == (RandomTerm("school", True, ("lrt",)),)
    assert f.variables() == {"gcse", "lrt", "girl", "schgend", "school"}


def test_double_bar_splits_into_independent_terms():
    f = parse_formula("y ~ x + (1 + x || g)")
    assert f.random == (RandomTerm("g", True, ()), RandomTerm("g", False, ("x",)))
    assert f.lme4() == "y ~ x + (1 | g) + (0 + x | g)"


def test_implicit_intercept_and_explicit_zero():
    assert parse_formula("y ~ (x | g)").random[0] == RandomTerm("g", True, ("x",))
    assert parse_formula("y ~ (0 + x | g)").random[0] == RandomTerm("g", False, ("x",))
    assert parse_formula("y ~ (-1 + x | g)").random[0].intercept is False


def test_nesting_slash_expands():
    f = parse_formula("y ~ 1 + (1 | hospital/ward)")
    assert [t.group for t in f.random] == ["hospital", "hospital:ward"]
    assert f.grouping_factors == ["hospital", "hospital:ward"]


def test_crossed_factors_and_intercept_only_fixed():
    f = parse_formula("achiev ~ (1 | pschool) + (1 | sschool)")
    assert f.fixed == "1"
    assert f.grouping_factors == ["pschool", "sschool"]


@pytest.mark.parametrize("text, fragment", [
    ("y ~ x ~ z", "exactly one '~'"),
    ("log(y) ~ x", "plain column name"),
    ("y ~ x + (1 + log(x) | g)", "not a plain variable name"),
    ("y ~ (1 | g) + (1 | g)", "appears twice"),
    ("y ~ (1 + x | g", "unbalanced"),
    ("y ~ x + ", "empty term"),
])
def test_bad_formulas_say_why(text, fragment):
    with pytest.raises(FormulaError, match=fragment.replace("(", r"\(")):
        parse_formula(text)
