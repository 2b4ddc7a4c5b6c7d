"""Stata names and metrics -> canonical parameters, on the layouts Stata documents and on the
course's printed output (models.md §4.2 block C, §4.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends.stata.mapping import fixed_name, record_to_result, split_name
from harness.spec import parse_spec
from tests.stata.fixtures import block_c_b, record
from tests.stata.specs import specs
from tests.stata.test_render import crossed_frame, nested_frame

SPECS = specs()


def pmap(result):
    return {p.key: p for p in result.parameters}


def test_fixed_names_follow_r() -> None:
    styles = {"schgend": "factor", "hospsize": "bare", "g": "C"}
    assert fixed_name("_cons", styles) == "(Intercept)"
    assert fixed_name("lrt", styles) == "lrt"
    assert fixed_name("2.schgend", styles) == "factor(schgend)2"
    assert fixed_name("1b.schgend", styles) is None
    assert fixed_name("3o.schgend", styles) is None
    assert fixed_name("2.hospsize", styles) == "hospsize2"
    assert fixed_name("2.g#c.x", styles) == "C(g)2:x"
    assert fixed_name("c.lrt#c.girl", styles) == "lrt:girl"
    assert split_name("/:var(_cons[school])") == ("/", "var(_cons[school])")
    assert split_name("lrt") == ("", "lrt")


def test_block_c_mixed_unstructured_to_all_scales() -> None:
    """sd(lrt) .1210464 (.0189266) etc. -> canonical sd/var/cor/cov, SEs by the delta method."""
    spec = SPECS["lab1.stata1.1.rs_ml"]
    b, se = block_c_b()
    res = record_to_result(record(spec, b, se, scalars={"N": 4059, "ll": -13986.738,
                                                        "converged": 1},
                                  ngroups={"school": 65}), mode="batch")
    assert res.status == "ok", res.message
    p = pmap(res)
    assert p["fixed/(Intercept)"].estimate == pytest.approx(-1.888208)
    assert p["fixed/lrt"].std_error == pytest.approx(.0199381)
    assert p["ran_pars/school/sd__lrt"].estimate == pytest.approx(.1210464, rel=1e-12)
    assert p["ran_pars/school/sd__lrt"].std_error == pytest.approx(.0189266, rel=1e-12)
    assert p["ran_pars/school/sd__(Intercept)"].std_error == pytest.approx(.2901373, rel=1e-12)
    assert p["ran_pars/school/cor__(Intercept).lrt"].estimate == pytest.approx(.5886686)
    assert p["ran_pars/school/cor__(Intercept).lrt"].std_error == pytest.approx(.1389937)
    assert p["ran_pars/school/var__lrt"].estimate == pytest.approx(.1210464 ** 2)
    assert p["ran_pars/school/var__lrt"].std_error == pytest.approx(2 * .1210464 * .0189266)
    cov = .5886686 * .1210464 * 2.820425
    assert p["ran_pars/school/cov__(Intercept).lrt"].estimate == pytest.approx(cov)
    # diagonal e(V) here, so the delta-method SE of the covariance has three terms
    r = .5886686
    expected = math.sqrt((cov * .0189266 / .1210464) ** 2 + (cov * .2901373 / 2.820425) ** 2
                         + (.1210464 * 2.820425 * .1389937) ** 2)
    assert p["ran_pars/school/cov__(Intercept).lrt"].std_error == pytest.approx(expected)
    assert r  # (used above)
    assert p["ran_pars/Residual/sd__Observation"].estimate == pytest.approx(7.417498)
    assert p["ran_pars/Residual/sd__Observation"].std_error == pytest.approx(.0837029)
    assert p["ran_pars/Residual/var__Observation"].estimate == pytest.approx(7.417498 ** 2)
    s = res.statistics
    assert (s.nobs, s.loglik, s.ngroups) == (4059, -13986.738, {"school": 65})
    assert s.deviance == pytest.approx(2 * 13986.738) and s.reml_criterion is None
    assert s.df == 9  # 5 fixed + 3 random-part + residual
    assert res.diagnostics.converged is True
    assert any("log SD" in m for m in res.diagnostics.messages)
    assert res.provenance.mode == "batch" and res.provenance.software["Stata"] == "17"


def test_block_c_wald_intervals_as_stata_prints_them() -> None:
    """Stata's printed 95% CIs of block C: sd(lrt) .0890962-.164454 (log scale), corr
    .2531162-.7977935 (atanh), lrt .5153455-.5935014 (z, natural)."""
    spec = SPECS["lab1.stata1.1.rs_ml"]
    b, se = block_c_b()
    res = record_to_result(record(spec, b, se, scalars={"N": 4059, "ll": -13986.738,
                                                        "converged": 1},
                                  ngroups={"school": 65}), mode="batch")
    iv = {(i.key, i.scale): i for i in res.intervals}
    got = iv[("ran_pars/school/sd__lrt", "log")]
    assert (got.lower, got.upper) == pytest.approx((.0890962, .164454), abs=1e-6)
    assert got.std_error == pytest.approx(.0189266 / .1210464, rel=1e-6)  # lns1_1_1's SE
    got = iv[("ran_pars/school/cor__(Intercept).lrt", "atanh")]
    assert (got.lower, got.upper) == pytest.approx((.2531162, .7977935), abs=1e-6)
    got = iv[("fixed/lrt", "natural")]
    assert (got.lower, got.upper) == pytest.approx((.5153455, .5935014), abs=1e-6)


def test_delta_method_matches_finite_differences_with_full_V() -> None:
    spec = SPECS["lab1.stata1.1.rs_ml"]
    b, _ = block_c_b()
    names = list(b)
    rng = np.random.default_rng(3)
    A = rng.normal(size=(len(names), len(names))) * 0.05
    V = A @ A.T + np.eye(len(names)) * 1e-3
    res = record_to_result(record(spec, b, V), mode="batch")
    got = pmap(res)["ran_pars/school/cov__(Intercept).lrt"].std_error

    def cov_of(x: np.ndarray) -> float:
        d = dict(zip(names, x))
        return math.tanh(d["atr1_1_1_2:_cons"]) * math.exp(d["lns1_1_1:_cons"]) * \
            math.exp(d["lns1_1_2:_cons"])

    x0 = np.array([b[n] for n in names])
    g = np.array([(cov_of(x0 + h) - cov_of(x0 - h)) / 2e-6
                  for h in np.eye(len(names)) * 1e-6])
    assert got == pytest.approx(math.sqrt(g @ V @ g), rel=1e-6)


def test_three_level_nested_mixed_names() -> None:
    """lns1_* is the highest level (hospital: expcon slope first, _cons last), lns2_* the ward."""
    spec = SPECS["lab1.stata1.5.l3_c"]
    b = {"stress:expcon": -.7, "stress:_cons": 5.7,
         "lns1_1_1:_cons": math.log(math.sqrt(.6006756)),
         "lns1_1_2:_cons": math.log(math.sqrt(.1305280)),
         "lns2_1_1:_cons": math.log(math.sqrt(.1134306)),
         "lnsig_e:_cons": math.log(math.sqrt(.2166278))}
    res = record_to_result(record(spec, b, frame=nested_frame()), mode="batch")
    p = pmap(res)
    assert p["ran_pars/hospital/var__expcon"].estimate == pytest.approx(.6006756)
    assert p["ran_pars/hospital/var__(Intercept)"].estimate == pytest.approx(.1305280)
    assert p["ran_pars/wardid/var__(Intercept)"].estimate == pytest.approx(.1134306)
    assert p["ran_pars/Residual/var__Observation"].estimate == pytest.approx(.2166278)
    assert not any(k.startswith("ran_pars/hospital/cor") for k in p)  # independent
    assert not res.diagnostics.warnings


def test_crossed_mixed_all_term_is_level_one() -> None:
    spec = SPECS["lab1.stata1.5.cross"]
    b = {"health1:c_age": .0234714, "health1:_cons": 1.64,
         "lns1_1_1:_cons": math.log(math.sqrt(.0113245)),
         "lns2_1_1:_cons": math.log(math.sqrt(.0332933)),
         "lnsig_e:_cons": math.log(math.sqrt(.6392549))}
    p = pmap(record_to_result(record(spec, b, frame=crossed_frame()), mode="batch"))
    assert p["ran_pars/rel_eth_gp/var__(Intercept)"].estimate == pytest.approx(.0113245)
    assert p["ran_pars/occ_ind_gp/var__(Intercept)"].estimate == pytest.approx(.0332933)


def test_melogit_slide_18_variance_stripes() -> None:
    """Stata 15+ me* stripes: /:var(agegpt[occ_ind_gp]), natural (variance) metric."""
    spec = SPECS["slide.talk2.p18.poor_health_rs"]
    b = {"poor_health:female": .1282234, "poor_health:c_age": .0484283,
         "poor_health:age_fem": -.0066825, "poor_health:_cons": -3.543554,
         "/:var(agegpt[occ_ind_gp])": .0027651, "/:var(_cons[occ_ind_gp])": .2134169}
    se = {"poor_health:female": .05366, "poor_health:c_age": .0017969,
          "poor_health:age_fem": .0019679, "poor_health:_cons": .0693899,
          "/:var(agegpt[occ_ind_gp])": .0009485, "/:var(_cons[occ_ind_gp])": .0551743}
    res = record_to_result(record(spec, b, se, scalars={"N": 63388, "ll": -11969.091,
                                                        "converged": 1}), mode="live")
    p = pmap(res)
    assert p["fixed/female"].std_error == pytest.approx(.05366)
    assert p["ran_pars/occ_ind_gp/var__agegpt"].estimate == pytest.approx(.0027651)
    assert p["ran_pars/occ_ind_gp/var__agegpt"].std_error == pytest.approx(.0009485)
    assert p["ran_pars/occ_ind_gp/var__(Intercept)"].std_error == pytest.approx(.0551743)
    sd = math.sqrt(.2134169)
    assert p["ran_pars/occ_ind_gp/sd__(Intercept)"].estimate == pytest.approx(sd)
    assert p["ran_pars/occ_ind_gp/sd__(Intercept)"].std_error == pytest.approx(.0551743 / (2 * sd))
    assert "ran_pars/Residual/sd__Observation" not in p
    assert res.statistics.deviance is None  # GLMM: lme4's deviance means something else
    assert any("variance/covariance metric" in m for m in res.diagnostics.messages)
    assert not res.diagnostics.warnings


def test_me_unstructured_cov_and_nested_paths() -> None:
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "gcse",
                       "model": {"formula": "y ~ lrt + (1 + lrt | school) + (1 | school:class)",
                                 "family": "binomial", "method": "ML",
                                 "integration": {"method": "laplace"}}})
    va, vb, c = .02, .9, .05
    b = {"y:lrt": .1, "y:_cons": -2.0, "/:var(lrt[school])": va, "/:var(_cons[school])": vb,
         "/:cov(lrt[school],_cons[school])": c, "/:var(_cons[school>class])": .3}
    names = list(b)
    V = np.diag([.01, .02, 1e-5, .04, 1e-4, .01])
    V[2, 4] = V[4, 2] = 2e-6
    res = record_to_result(record(spec, b, V), mode="batch")
    p = pmap(res)
    r = c / math.sqrt(va * vb)
    assert p["ran_pars/school/cor__(Intercept).lrt"].estimate == pytest.approx(r)
    assert p["ran_pars/school/cov__(Intercept).lrt"].std_error == pytest.approx(math.sqrt(1e-4))
    assert p["ran_pars/school:class/var__(Intercept)"].estimate == pytest.approx(.3)

    def cor_of(x: np.ndarray) -> float:
        return x[4] / math.sqrt(x[2] * x[3])

    x0 = np.array([b[n] for n in names])
    g = np.array([(cor_of(x0 + h) - cor_of(x0 - h)) / 2e-7 for h in np.eye(6) * 1e-7])
    assert p["ran_pars/school/cor__(Intercept).lrt"].std_error == \
        pytest.approx(math.sqrt(g @ V @ g), rel=1e-5)
    assert not res.diagnostics.warnings


def test_meologit_cut_points_both_stripe_styles() -> None:
    spec = SPECS["lab1.stata1.4.cen_ologit_ri"]
    new = {"health1:agegpt": .528, "/:cut1": 2.35, "/:cut2": 4.18,
           "/:var(_cons[occ_ind_gp])": .154}
    old = {"health1:agegpt": .528, "cut1:_cons": 2.35, "cut2:_cons": 4.18,
           "var(_cons[occ_ind_gp]):_cons": .154}
    for b in (new, old):
        p = pmap(record_to_result(record(spec, b), mode="batch"))
        assert p["threshold/1|2"].estimate == 2.35 and p["threshold/2|3"].estimate == 4.18
        assert p["ran_pars/occ_ind_gp/var__(Intercept)"].estimate == pytest.approx(.154)
        assert "fixed/(Intercept)" not in p


def test_regress_has_no_equation_names_and_root_mse() -> None:
    spec = SPECS["lab2.stata2.2.gcse_robust/robust"]
    b = {"lrt": .5910456, "girl": 1.326415, "sch_2": 1.825545, "sch_3": 1.680108,
         "_cons": -1.608613}
    res = record_to_result(record(spec, b, {"lrt": .0228708}, scalars={"N": 4059, "rmse": 7.9702,
                                                                       "ll": -14182.27549}),
                           mode="batch")
    p = pmap(res)
    assert p["fixed/lrt"].std_error == pytest.approx(.0228708)
    assert p["ran_pars/Residual/sd__Observation"].estimate == 7.9702
    assert res.statistics.df == 6 and res.diagnostics.converged is True


def test_factor_dummies_and_unmapped_columns_are_reported() -> None:
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "gcse",
                       "model": {"formula": "gcse ~ lrt + factor(schgend) + (1 | school)",
                                 "method": "REML"}})
    b = {"gcse:lrt": .56, "gcse:1b.schgend": 0.0, "gcse:2.schgend": 1.78, "gcse:3.schgend": 1.59,
         "gcse:_cons": -1.68, "lns1_1_1:_cons": 1.07, "lnsig_e:_cons": 2.01,
         "weird:_cons": 1.0}
    res = record_to_result(record(spec, b, scalars={"ll": -14010.8, "N": 4059}), mode="batch")
    p = pmap(res)
    assert "fixed/factor(schgend)2" in p and "fixed/factor(schgend)3" in p
    assert not any("1b" in k or "schgend1" in k for k in p)
    assert res.statistics.reml_criterion == pytest.approx(28021.6)
    assert any("weird:_cons" in w for w in res.diagnostics.warnings)


def test_failed_estimation_is_an_error_not_an_empty_success() -> None:
    spec = SPECS["lab1.stata1.1.rs_ml"]
    rec = record(spec, {})
    res = record_to_result(rec, mode="batch")
    assert res.status == "error" and "no e(b)" in res.message
    rec.rc = 430
    res = record_to_result(rec, mode="batch")
    assert res.status == "error" and "r(430)" in res.message


def test_random_effects_by_name_slopes_first_in_stata_order() -> None:
    """predict fills slope then intercept (D6); the record carries names, so order is moot."""
    spec = SPECS["lab1.stata1.1.rs_ml"]
    b, _ = block_c_b()
    re = [("school", "lrt", "1", .01, .005), ("school", "(Intercept)", "1", 3.7, .9),
          ("school", "lrt", "2", -.02, .006), ("school", "(Intercept)", "2", 4.1, .8)]
    res = record_to_result(record(spec, b, re=re), mode="batch")
    got = {(r.level, r.term): (r.estimate, r.std_error) for r in res.random_effects}
    assert got[("1", "(Intercept)")] == (3.7, .9) and got[("2", "lrt")] == (-.02, .006)


def test_xtlogit_log_variance_and_xtreg_sigmas() -> None:
    from tests.stata.test_render import _with_options
    spec = _with_options("hi_gcse ~ lrt + (1 | school)", {"command": "xtlogit", "estimator": "re"},
                         family="binomial", integration={"method": "aghq", "points": 12})
    b = {"hi_gcse:lrt": .147, "hi_gcse:_cons": -2.68, "/:lnsig2u": math.log(.978)}
    res = record_to_result(record(spec, b, {"/:lnsig2u": .2}), mode="batch")
    p = pmap(res)
    assert p["ran_pars/school/var__(Intercept)"].estimate == pytest.approx(.978)
    assert p["ran_pars/school/var__(Intercept)"].std_error == pytest.approx(.978 * .2)
    assert not res.diagnostics.warnings
    spec = _with_options("gcse ~ lrt + (1 | school)", {"command": "xtreg", "estimator": "re"})
    res = record_to_result(record(spec, {"lrt": .56, "_cons": 0.02},
                                  scalars={"sigma_u": 3.0, "sigma_e": 7.5}), mode="batch")
    p = pmap(res)
    assert p["ran_pars/school/sd__(Intercept)"].estimate == 3.0
    assert p["ran_pars/Residual/sd__Observation"].estimate == 7.5
    assert p["ran_pars/school/sd__(Intercept)"].std_error is None
