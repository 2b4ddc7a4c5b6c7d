"""Tolerance policy, known-difference registry and post-estimation on hand-made results."""

from __future__ import annotations

import math

import pytest

from harness.compare import compare_spec
from harness.known_differences import REGISTRY, Context, Side, explain
from harness.postestimation import blup_agreement, icc_vpc, information_criteria
from harness.results import (FitResult, Provenance, RandomEffect, Statistics,
                             residual_parameters, variance_parameters)
from harness.tolerances import (POLICY, model_class, policy_row, quantity_class,
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
    assert quantity_class(key, quantity) == expected


def test_every_default_has_a_reason_and_pairs_are_ordered() -> None:
    assert all(r.reason for r in POLICY)
    for q in ("fixed", "variance", "correlation", "blup"):
        tight = policy_row("engines", "LMM", q)
        glmm = policy_row("engines", "GLMM", q, "GLMM")
        loose = policy_row("estimators", "LMM", q)
        assert (tight.relative, tight.absolute) <= (glmm.relative, glmm.absolute)
        assert (glmm.relative, glmm.absolute) <= (loose.relative, loose.absolute)
    # a near-singular fit loosens the random part but keeps the likelihood tight
    assert policy_row("engines", "near-singular", "variance").relative > \
        policy_row("engines", "LMM", "variance").relative
    assert policy_row("engines", "near-singular", "loglik") == \
        policy_row("engines", "LMM", "loglik")


def test_printed_tolerance_is_half_a_unit_plus_allowance_and_overrides_win() -> None:
    s = spec("t", "y ~ x + (1 | g)")
    tol = tolerance_for(s, "ran_pars/g/var__(Intercept)", "estimate", "printed", 0.005)
    assert 0.005 < tol.absolute(8.11, 8.11) < 0.0065
    assert "half a unit" in tol.rule
    s2 = s.model_copy(update={"tolerances": {"correlation": 1e-2, "fixed/x:std_error": 0.1,
                                             "ran_pars/g/*": 0.5}})
    assert tolerance_for(s2, "ran_pars/h/cor__a.b", "estimate", "engines").relative == 1e-2
    assert tolerance_for(s2, "fixed/x", "std_error", "engines").relative == 0.1
    assert tolerance_for(s2, "ran_pars/g/sd__a", "estimate", "engines").relative == 0.5
    assert "spec override" in tolerance_for(s2, "fixed/x", "std_error", "engines").rule


def test_se_scaled_floor_for_estimates_near_zero() -> None:
    s = spec("t", "y ~ x + (1 | g)")
    plain = tolerance_for(s, "fixed/(Intercept)", "estimate", "engines")
    scaled = tolerance_for(s, "fixed/(Intercept)", "estimate", "engines", se=0.4)
    assert plain.absolute(-0.0809, -0.0809) < 2e-6 < scaled.absolute(-0.0809, -0.0809)


def test_near_singular_model_class() -> None:
    r = ri_result("native", "t", var_u=1e-9)
    assert model_class("gaussian", [r]) == "near-singular"
    assert model_class("gaussian", [ri_result("native", "t")]) == "LMM"
    assert model_class("binomial", []) == "GLMM"


def _side(name: str, method: str, keys=(), software=None, result=None) -> Side:
    return Side(name, "backend" if result is not None or not name.startswith("ref:")
                else "reference", software or name, method, result, frozenset(keys))


@pytest.mark.parametrize("ma,mb,expected", [
    ("REML", "ML", "D1"), ("Laplace", "AGHQ(7)", "D2"), ("AGHQ(7)", "MVAGHQ(7)", "D2-mv"),
    ("AGHQ(3)", "MVAGHQ(7)", "D2"), ("OLS", "ML", "estimators")])
def test_registry_recognises_estimator_differences(ma: str, mb: str, expected: str) -> None:
    ctx = Context(spec("t", "y ~ x + (1 | g)"), "fixed/x", "estimate", _side("a", ma),
                  _side("b", mb), 1.0, 1.1)
    assert explain(ctx)[0] == expected


def test_registry_covariance_scales_factor_coding_and_eb() -> None:
    s = spec("t", "y ~ x + (1 + x | g)")
    un = ["ran_pars/g/sd__(Intercept)", "ran_pars/g/sd__x", "ran_pars/g/cor__(Intercept).x"]
    ind = un[:2]
    ctx = Context(s, "fixed/x", "estimate", _side("lme4", "ML", un),
                  _side("stata", "ML", ind), 1.0, 1.1)
    assert explain(ctx)[0] == "D3"
    ctx = Context(s, "ran_pars/g/sd__x", "std_error", _side("native", "ML", ind),
                  _side("ref:s", "ML", ind, software="Stata 17"), 0.01, 0.02)
    assert explain(ctx)[0] == "D4-D5"
    ctx = Context(s, "fixed/x", "estimate",
                  _side("lme4", "ML", ["fixed/factor(hospsize)1", "fixed/factor(hospsize)2"]),
                  _side("native", "ML", ["fixed/hospsize"]), 1.0, 1.2)
    assert explain(ctx)[0] == "D14"
    glmm = spec("b", "y ~ x + (1 | g)", family="binomial", integration={"method": "laplace"})
    ctx = Context(glmm, "ranef/g/(Intercept)", "estimate", _side("native", "AGHQ(7)"),
                  _side("stata", "AGHQ(7)", software="stata"), 0.5, 0.51)
    assert explain(ctx)[0] == "D6"
    # and nothing explains a plain disagreement between like engines
    ctx = Context(s, "fixed/x", "estimate", _side("native", "ML", un), _side("lme4", "ML", un),
                  1.0, 1.1)
    assert explain(ctx) is None
    assert {kd.id for kd in REGISTRY} >= {"D1", "D2", "D2-mv", "D3", "D4-D5", "D6", "D14", "D18"}


def test_warned_engine_against_printed_value_is_explained_by_the_better_peer() -> None:
    s = spec("t", "y ~ lrt + girl + sch_2 + (1 | school)", references=[
        {"id": "stata", "software": "Stata", "source": "s", "method": "ML",
         "values": {"fixed/lrt": ".5599630"}}])
    comp = compare_spec(s, {"native": ri_result("native", "t", loglik=-14008.8911),
                            "lme4": ri_result("lme4", "t", b_lrt=0.55990, loglik=-14008.8912,
                                              warn=True)})
    (lme4_vs_ref,) = [c for c in comp.checks if c.source_a == "lme4" and c.source_b == "ref:stata"]
    assert lme4_vs_ref.verdict == "explained" and lme4_vs_ref.known_id == "D18"
    assert "native reaches" in lme4_vs_ref.explanation


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
    (c,) = [c for c in comp.checks if c.key == "ranef/school/(Intercept)"]
    assert c.verdict == "unexplained" and "worst of 65 levels" in c.note
    assert comp.blups and comp.blups[0].spearman > 0.99
