"""Intervals, df and p-values: the result contract, the reference fields and the Wald arithmetic
(issue 15). No fits: the numbers are Stata's printed block C (models.md §4.2)."""

from __future__ import annotations

import math

import pytest

from harness.intervals import quantile, two_sided_p, wald
from harness.keys import ParamKey
from harness.references import ReferenceError, reference_values
from harness.results import FitResult, FixedTest, Interval, Parameter, result_problems
from harness.spec import Reference
from harness.tolerances import quantity_class


def _ref(values: dict) -> Reference:
    return Reference(id="r", software="Stata", source="test", values=values)


def test_reference_interval_and_test_fields_become_named_quantities():
    rv = reference_values(_ref({
        "fixed/sch_2": {"estimate": "1.79864", "ci": "wald/natural/z", "ci_lower": "-.144634",
                        "ci_upper": "3.741915", "df_method": "z", "p_value": "0.070"},
        "ran_pars/school/sd__lrt": {"estimate": ".1210464", "ci": "wald/log/z",
                                    "ci_lower": ".0890962", "ci_upper": ".164454"}}))
    got = {(str(v.key), v.quantity): v.number for v in rv}
    assert got[("fixed/sch_2", "ci:wald/natural/z:lower")].value == -0.144634
    assert got[("fixed/sch_2", "p:z")].half_unit == pytest.approx(5e-4)
    assert got[("ran_pars/school/sd__lrt", "ci:wald/log/z:upper")].value == 0.164454
    assert quantity_class(ParamKey.fixed("sch_2"), "p:z") == "p_value"
    assert quantity_class(ParamKey.fixed("sch_2"), "df:satterthwaite") == "df"
    assert quantity_class(ParamKey.fixed("sch_2"), "ci:wald/natural/z:lower") == "interval"


@pytest.mark.parametrize("value, words", [
    ({"estimate": "1", "ci_lower": "0", "ci_upper": "2"}, "ci_lower, ci_upper and ci"),
    ({"estimate": "1", "ci": "wald/sqrt/z", "ci_lower": "0", "ci_upper": "2"}, "scale"),
    ({"estimate": "1", "p_value": "0.07"}, "df_method"),
    ({"estimate": "1", "df_method": "z", "df": "60"}, "no df"),
    ({"estimate": "1", "ci": "wald/log/z", "ci_lower": "0", "ci_upper": "2", "display": "exp"},
     "display"),
])
def test_reference_inference_without_its_convention_is_an_error(value, words):
    with pytest.raises(ReferenceError, match=words):
        reference_values(_ref({"fixed/x": value}))


def test_df_only_for_fixed_effects():
    with pytest.raises(ReferenceError, match="fixed effects only"):
        reference_values(_ref({"ran_pars/g/sd__x": {"estimate": "1", "df_method": "z",
                                                    "p_value": "0.1"}}))


def test_stata_log_and_atanh_intervals_from_its_printed_se():
    """Stata's printed sd(lrt) .1210464 (.0189266) and corr .5886686 (.1389937) give its
    printed intervals .0890962-.164454 and .2531162-.7977935 when formed on log / atanh."""
    lo, hi, s = wald(.1210464, .0189266, "log")
    assert (lo, hi) == pytest.approx((.0890962, .164454), abs=2e-7)
    assert s == pytest.approx(.0189266 / .1210464)
    lo, hi, _ = wald(.5886686, .1389937, "atanh")
    assert (lo, hi) == pytest.approx((.2531162, .7977935), abs=2e-7)
    lo, hi, _ = wald(.1210464, .0189266, "natural")
    assert lo == pytest.approx(.1210464 - quantile(0.95) * .0189266)
    assert two_sided_p(1.81, None) == pytest.approx(0.0703, abs=1e-4)
    assert two_sided_p(2.0, 10) > two_sided_p(2.0, None)     # t has heavier tails than z


def test_result_json_round_trips_intervals_and_tests():
    r = FitResult("s", "native", parameters=[Parameter("fixed", None, "x", 1.0, 0.5)],
                  intervals=[Interval("fixed/x", "wald", "natural", 0.95, 0.02, 1.98, 0.5)],
                  tests=[FixedTest("x", "satterthwaite", 12.5, 2.0, 0.068)])
    d = r.to_dict()
    assert result_problems(d) == []
    assert FitResult.from_dict(d).intervals == r.intervals
    assert FitResult.from_dict(d).tests == r.tests
    # an old result file without the new keys still reads
    old = {k: v for k, v in d.items() if k not in ("intervals", "tests")}
    assert result_problems(old) == [] and FitResult.from_dict(old).tests == []


@pytest.mark.parametrize("field, value", [("lower", 3.0), ("scale", "sqrt"),
                                          ("method", "bootstrap"), ("upper", math.inf)])
def test_result_problems_reject_bad_intervals(field, value):
    r = FitResult("s", "native", parameters=[Parameter("fixed", None, "x", 1.0, 0.5)],
                  intervals=[Interval("fixed/x", "wald", "natural", 0.95, 0.02, 1.98, 0.5)])
    d = r.to_dict()
    d["intervals"][0][field] = value
    assert result_problems(d)


def test_result_problems_reject_bad_tests():
    r = FitResult("s", "native", parameters=[Parameter("fixed", None, "x", 1.0, 0.5)],
                  tests=[FixedTest("x", "satterthwaite", 12.5, 2.0, 0.068)])
    d = r.to_dict()
    d["tests"][0]["p_value"] = 1.5
    assert result_problems(d)
    d["tests"][0].update(p_value=0.5, df_method="guess")
    assert result_problems(d)
