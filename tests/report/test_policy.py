"""Tolerance policy, known-difference registry and post-estimation on hand-made results."""

from __future__ import annotations

import math

import pytest

from harness.compare import compare_spec
from harness.keys import ParamKey
from harness.postestimation import blup_agreement, icc_vpc, information_criteria
from harness.results import (FitResult, Provenance, RandomEffect, Statistics,
                             residual_parameters, variance_parameters)
from harness.tolerances import (POLICY, key_class, policy_row, quantity_class, singular_groups,
                                tolerance_for)
from tests.report.fixtures import ri_result, spec


@pytest.mark.parametrize("key,quantity,expected", [
    ("fixed/lrt", "estimate", "fixed"), ("fixed/lrt", "std_error", "fixed_se"),
    ("ran_pars/school/sd__(Intercept)", "estimate", "variance"),
    ("ran_pars/school/cor__(Intercept).lrt", "estimate", "correlation"),
    ("stat/loglik", "estimate", "loglik"), ("stat/icc/wardid", "estimate", "derived"),
    ("stat/ngroups/school", "estimate", "count"), ("ranef/school/(Intercept)", "estimate", "blup"),
    ("threshold/1", "estimate", "threshold"), ("stat/lr/x/df", "estimate", "count")])
def test_quantity_classes(key: str, quantity: str, expected: str) -> None:
    assert quantity_class(ParamKey.parse(key), quantity) == expected


def test_every_default_has_a_reason_and_classes_are_ordered() -> None:
    assert all(r.reason for r in POLICY)
    # no loose "estimators" pair; statsmodels MixedLM has measured rows of its own, none of them
    # tighter than the engines row it stands in for
    assert {r.pair for r in POLICY} == {"engines", "printed", "statsmodels"}
    for r in POLICY:
        if r.pair == "statsmodels":
            base = policy_row("engines", r.model, r.quantity)
            assert (r.relative, r.absolute) >= (base.relative, base.absolute), r
    for q in ("fixed", "variance", "correlation", "blup"):
        tight = policy_row("engines", "LMM", q)
        glmm = policy_row("engines", "GLMM", q, "GLMM")
        assert (tight.relative, tight.absolute) <= (glmm.relative, glmm.absolute)
    # a near-singular fit loosens the random part but keeps the likelihood tight
    assert policy_row("engines", "near-singular", "variance").relative > \
        policy_row("engines", "LMM", "variance").relative
    assert policy_row("engines", "near-singular", "loglik") == \
        policy_row("engines", "LMM", "loglik")


def test_printed_tolerance_is_half_a_unit_plus_allowance_and_overrides_win() -> None:
    s = spec("t", "y ~ x + (1 | g)")
    K = ParamKey.parse
    tol = tolerance_for(s, K("ran_pars/g/var__(Intercept)"), "estimate", "printed", 0.005)
    assert 0.005 < tol.absolute(8.11, 8.11) < 0.0065
    assert "half a unit" in tol.rule
    s2 = s.model_copy(update={"tolerances": {"correlation": 1e-2, "fixed/x:std_error": 0.1,
                                             "ran_pars/g/*": 0.5}})
    assert tolerance_for(s2, K("ran_pars/h/cor__a.b"), "estimate", "engines").relative == 1e-2
    assert tolerance_for(s2, K("fixed/x"), "std_error", "engines").relative == 0.1
    assert tolerance_for(s2, K("ran_pars/g/sd__a"), "estimate", "engines").relative == 0.5
    assert "spec override" in tolerance_for(s2, K("fixed/x"), "std_error", "engines").rule


def test_se_scaled_floor_for_estimates_near_zero() -> None:
    s = spec("t", "y ~ x + (1 | g)")
    plain = tolerance_for(s, ParamKey.fixed("(Intercept)"), "estimate", "engines")
    scaled = tolerance_for(s, ParamKey.fixed("(Intercept)"), "estimate", "engines", se=0.4)
    assert plain.absolute(-0.0809, -0.0809) < 2e-6 < scaled.absolute(-0.0809, -0.0809)


def test_near_singular_class_applies_to_the_singular_group_only() -> None:
    r = ri_result("native", "t", var_u=1e-9)
    assert singular_groups([r]) == {"school"}
    assert singular_groups([ri_result("native", "t")]) == set()
    assert key_class(ParamKey.ran_pars("school", "sd", "(Intercept)"), "gaussian",
                     {"school"}) == "near-singular"
    assert key_class(ParamKey.residual(), "gaussian", {"school"}) == "LMM"
    assert key_class(ParamKey.fixed("lrt"), "binomial", {"school"}) == "GLMM"


def test_icc_vpc_definitions() -> None:
    r = FitResult("t", "native", parameters=[
        *variance_parameters("hospital", ["(Intercept)"], [math.sqrt(0.3)], None),
        *variance_parameters("wardid", ["(Intercept)"], [math.sqrt(0.2)], None),
        *residual_parameters(math.sqrt(0.5))])
    out = icc_vpc(r, "gaussian", "identity", ["hospital", "wardid"])
    assert out["vpc/hospital"] == pytest.approx(0.3) and out["vpc/wardid"] == pytest.approx(0.2)
    assert out["icc/hospital"] == pytest.approx(0.3) and out["icc/wardid"] == pytest.approx(0.5)
    assert "icc" not in out  # two levels: per-level quantities only
    logit = FitResult("t", "lme4", parameters=variance_parameters("g", ["(Intercept)"], [1.0],
                                                                  None))
    assert icc_vpc(logit, "binomial", "logit")["icc"] == pytest.approx(1 / (1 + math.pi ** 2 / 3))
    assert icc_vpc(logit, "ordinal", "probit")["icc"] == pytest.approx(0.5)
    assert icc_vpc(logit, "poisson", "log") == {}


def test_information_criteria() -> None:
    r = FitResult("t", "native", statistics=Statistics(nobs=100, loglik=-50.0, df=4))
    ic = information_criteria(r)
    assert ic["aic_computed"] == pytest.approx(108.0)
    assert ic["bic_computed"] == pytest.approx(100 + 4 * math.log(100))


def test_blup_agreement_ranks_and_extremes() -> None:
    def res(name: str, values: list[float]) -> FitResult:
        return FitResult("t", name, random_effects=[
            RandomEffect("school", str(i + 1), "(Intercept)", v, 0.1) for i, v in enumerate(values)],
            provenance=Provenance(backend=name, method="ML"))
    a = res("native", [1.0, -2.0, 0.5, 3.0, -1.0])
    b = res("lme4", [1.01, -2.0, 0.4, 3.0, -1.0])
    (ag,) = blup_agreement(a, b, k=2)
    assert ag.n_common == 5 and ag.worst_level == "3"
    assert ag.max_abs_diff == pytest.approx(0.1)
    assert ag.spearman == pytest.approx(1.0)
    assert ag.top_a == ["4", "1"] and ag.bottom_a == ["2", "5"] and ag.same_extremes


def test_blups_compared_between_engines() -> None:
    s = spec("t", "y ~ lrt + (1 | school)")
    comp = compare_spec(s, {"native": ri_result("native", "t"),
                            "lme4": ri_result("lme4", "t", shift=0.01)})
    (c,) = [c for c in comp.checks if c.key == ParamKey.ranef("school", "(Intercept)")]
    assert c.verdict == "unexplained" and "worst of 65 levels" in c.note
    assert comp.blups and comp.blups[0].spearman > 0.99
