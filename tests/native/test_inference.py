"""Inference of native LMMs against the packages that print it (issue 15).

Reference numbers, each printed by the program named:

* Stata ``mixed`` ML, GCSE random slope (models.md §4.2 block C, talk 4 slide 6): the SEs and
  95% Wald intervals of sd(lrt), sd(_cons), corr(lrt,_cons) and sd(Residual). Stata forms them on
  the log-sd and atanh scales; native's estimates differ from Stata's by ~2e-5 relative, so the
  interval ends are compared at 1e-4.
* lmerTest 3.1-3 (R 4.2.2, lme4 1.1-31), GCSE ``gcse ~ lrt + girl + sch_2 + sch_3 +
  (1 + lrt | school)`` by REML with a tight optimum (``lmerControl(optimizer = "bobyqa",
  optCtrl = list(rhobeg = 2e-3, rhoend = 1e-10))``, REML criterion 27977.0231040877):
  ``summary(m)$coefficients[, c("df", "Pr(>|t|)")]``. At lmer's default stopping point (criterion
  27977.023113933) the df differ from these by up to 6e-4 relative: the df move with theta.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends.native import lmm
from benchmarks.cases import CASES, load_case_data
from harness.intervals import two_sided_p, wald, wald_intervals

LMERTEST_DF = {"(Intercept)": 76.8585378880, "lrt": 56.4543633653, "girl": 4031.3099494677,
               "factor(schgend)2": 59.7951062091, "factor(schgend)3": 60.9160741759}
LMERTEST_P = {"(Intercept)": 5.63618054329e-04, "lrt": 2.06588053372e-34,
              "girl": 6.63756171948e-07, "factor(schgend)2": 8.23008759578e-02,
              "factor(schgend)3": 3.47849546966e-02}

# Stata mixed, ML: estimate, SE, 95% CI (log-sd / atanh scale)
STATA_RS_ML = {
    "ran_pars/school/sd__lrt": (.1210464, .0189266, .0890962, .164454),
    "ran_pars/school/sd__(Intercept)": (2.820425, .2901373, 2.305428, 3.450466),
    "ran_pars/school/cor__(Intercept).lrt": (.5886686, .1389937, .2531162, .7977935),
    "ran_pars/Residual/sd__Observation": (7.417498, .0837029, 7.255244, 7.58338),
}


def _fit(course_data, reml: bool):
    c = next(c for c in CASES if c.id == "gcse_rs_ml")
    return lmm(c.formula, load_case_data(c), reml=reml)


@pytest.fixture(scope="module")
def rs_ml(course_data):
    return _fit(course_data, reml=False)


@pytest.fixture(scope="module")
def rs_reml(course_data):
    return _fit(course_data, reml=True)


def test_variance_ses_and_wald_intervals_match_stata(rs_ml):
    params = {p.key: p for p in rs_ml.parameters()}
    intervals = {(i.key, i.scale): i for i in wald_intervals(rs_ml.parameters())}
    for key, (est, se, lo, hi) in STATA_RS_ML.items():
        assert params[key].estimate == pytest.approx(est, rel=3e-5), key
        assert params[key].std_error == pytest.approx(se, rel=1e-4), key
        scale = "atanh" if "/cor__" in key else "log"
        iv = intervals[(key, scale)]
        assert (iv.lower, iv.upper) == pytest.approx((lo, hi), rel=1e-4), key
    # the natural-scale interval is a different quantity, visibly so for a small sd
    nat = intervals[("ran_pars/school/sd__lrt", "natural")]
    assert abs(nat.lower - .0890962) > 1e-3


def test_delta_method_between_scales(rs_ml):
    p = {q.key: q for q in rs_ml.parameters()}
    for sd_key in ("ran_pars/school/sd__lrt", "ran_pars/Residual/sd__Observation"):
        sd, var = p[sd_key], p[sd_key.replace("/sd__", "/var__")]
        assert var.std_error == pytest.approx(2 * sd.estimate * sd.std_error, rel=1e-9)
        # a variance's log-scale interval is the square of its sd's (log var = 2 log sd)
        lo_sd, hi_sd, s_sd = wald(sd.estimate, sd.std_error, "log")
        lo_v, hi_v, s_v = wald(var.estimate, var.std_error, "log")
        assert (lo_v, hi_v) == pytest.approx((lo_sd ** 2, hi_sd ** 2), rel=1e-9)
        assert s_v == pytest.approx(2 * s_sd, rel=1e-9)


def test_satterthwaite_df_match_lmertest(rs_reml):
    tests = {t.term: t for t in rs_reml.fixed_tests if t.df_method == "satterthwaite"}
    assert set(tests) == set(LMERTEST_DF)
    for term, df in LMERTEST_DF.items():
        assert tests[term].df == pytest.approx(df, rel=1e-5), term
        assert tests[term].df_method == "satterthwaite"
    for term, p in LMERTEST_P.items():
        assert tests[term].p_value == pytest.approx(p, rel=1e-4), term


def test_z_tests_match_stata(rs_ml):
    """Stata mixed ML prints P>|z| 0.070 for sch_2 and 0.026 for sch_3 (block C)."""
    z = {t.term: t for t in rs_ml.fixed_tests if t.df_method == "z"}
    assert round(z["factor(schgend)2"].p_value, 3) == 0.070
    assert round(z["factor(schgend)3"].p_value, 3) == 0.026
    assert z["lrt"].statistic == pytest.approx(27.81, abs=5e-3)


def test_satterthwaite_t_is_estimate_over_lme4_se(rs_reml):
    se = rs_reml.std_errors
    for t in rs_reml.fixed_tests:
        if t.df_method != "kenward-roger":      # KR's t is on the adjusted SE (tested below)
            assert t.statistic == pytest.approx(rs_reml.fixef[t.term] / se[t.term], rel=1e-10)


def test_fit_result_carries_intervals_and_tests(rs_reml):
    r = rs_reml.to_fit_result("x")
    d = r.to_dict()
    assert {i["scale"] for i in d["intervals"]} == {"natural", "log", "atanh"}
    assert len(d["tests"]) == 3 * len(LMERTEST_DF)      # Satterthwaite t, KR t and z
    back = type(r).from_dict(d)
    assert back.intervals == r.intervals and back.tests == r.tests
    for p in r.parameters:
        if p.effect == "ran_pars":
            assert p.std_error is not None and math.isfinite(p.std_error) and p.std_error > 0


def test_boundary_variance_has_no_se(course_data):
    """A random slope fitted at sd 0: no SE for it (with the reason in the diagnostics' cov),
    while the free variance parameters keep theirs and the fixed effects keep their df."""
    c = next(c for c in CASES if c.id == "gcse_rs_ml")
    data = load_case_data(c).copy()
    data["noise"] = np.random.default_rng(1).normal(size=len(data))
    r = lmm("gcse ~ lrt + (1 | school) + (0 + noise | school)", data, reml=True)
    p = {q.key: q for q in r.parameters()}
    assert p["ran_pars/school/sd__noise"].estimate == 0.0
    assert p["ran_pars/school/sd__noise"].std_error is None
    assert "boundary" in r.variance_covariance.reasons["ran_pars/school/sd__noise"]
    assert p["ran_pars/school/sd__(Intercept)"].std_error > 0
    assert [t.term for t in r.fixed_tests if t.df_method == "satterthwaite"] == \
        ["(Intercept)", "lrt"]
    assert all(t.df > 0 for t in r.fixed_tests if t.df is not None)


def test_evidence_recomputes_a_fits_inference_at_its_estimates(rs_reml):
    """The flat-inference rule's evidence (native's inference at a side's estimates) gives
    back native's own df, p-values and intervals at native's own estimates."""
    from backends.native.evidence import EvidenceModel, estimates_of
    from backends.native.gaussian_loglik import GaussianLikelihood
    from harness.estimator import Estimator
    from harness.results import inference_quantities

    r = rs_reml.to_fit_result("x")
    ev = EvidenceModel(GaussianLikelihood(rs_reml.design))
    cov = ev.covariance(estimates_of(r), Estimator("REML"))
    ses = {**cov.std_errors, **cov.conditional_std_errors}
    got = ev.inference(estimates_of(r), Estimator("REML"), ses)
    own = {f"{k}:{q}": v for k, qs in inference_quantities(r.intervals, r.tests).items()
           for q, v in qs.items()}
    assert set(own) <= set(got)
    for name, v in own.items():
        assert got[name] == pytest.approx(v, rel=1e-6, abs=1e-12), name


# pbkrtest 0.5.2 (R 4.2.2, lme4 1.1-31) at lmer's tight REML optimum (the lmerControl above):
# ``get_Lb_ddf(m, L)`` for each unit L and ``sqrt(diag(vcovAdj(m)))``, printed by
# tests/native/pbkrtest_reference.R. Keys: case id -> (theta, sigma, {term:
# (df, adjusted SE)}).
PBKRTEST = {
    "gcse_ri_reml": ([0.390608833529], 7.50019777975, {
        "(Intercept)": (73.90572799, 0.5525479523), "lrt": (4049.872512, 0.01245451148),
        "girl": (4050.116765, 0.3411232565), "factor(schgend)2": (65.40252432, 1.134863587),
        "factor(schgend)3": (65.18505393, 0.894242926)}),
    "gcse_rs_reml": ([0.3899037078, 0.00949557666658, 0.0135571728744], 7.41814235621, {
        "(Intercept)": (81.22770949, 0.5285913826), "lrt": (60.63794879, 0.02016217589),
        "girl": (4032.665109, 0.3387349224), "factor(schgend)2": (64.92156812, 1.033733843),
        "factor(schgend)3": (66.03750756, 0.8219362926)}),
    "popular_rs_reml": ([0.930544099443, -0.0633432336404, 0.0759842117409], 0.743483444479, {
        "(Intercept)": (110.973189, 0.2727370054), "sex": (1941.701963, 0.03629400543),
        "extrav": (80.93411818, 0.04030175839), "texp": (99.98907013, 0.01685741275),
        "ext_exp": (80.78223177, 0.002566124007)}),
}


@pytest.fixture(scope="module")
def reml_fits(course_data):
    out = {}
    for cid in PBKRTEST:
        c = next(c for c in CASES if c.id == cid)
        out[cid] = lmm(c.formula, load_case_data(c), reml=True)
    return out


@pytest.mark.parametrize("cid", sorted(PBKRTEST))
def test_kenward_roger_matches_pbkrtest_at_its_optimum(reml_fits, cid):
    """At lme4's own (theta, sigma) native's KR df and adjusted SEs are pbkrtest's to 1e-8
    relative (the reference is printed to 10 digits)."""
    from backends.native.kenward_roger import kenward_roger

    theta, sigma, ref = PBKRTEST[cid]
    kr = kenward_roger(reml_fits[cid].design, np.array(theta), sigma)
    assert kr.names == tuple(ref)
    for name, df, se in zip(kr.names, kr.df, kr.se_adjusted):
        assert df == pytest.approx(ref[name][0], rel=1e-8), name
        assert se == pytest.approx(ref[name][1], rel=1e-8), name


@pytest.mark.parametrize("cid", sorted(PBKRTEST))
def test_native_reml_fit_carries_kenward_roger_tests(reml_fits, cid):
    """At native's own optimum the KR df agree with pbkrtest's at lme4's to 1e-4 relative
    (the df move with theta), and the t statistic is the estimate over the adjusted SE."""
    r = reml_fits[cid]
    ref = PBKRTEST[cid][2]
    kr = {t.term: t for t in r.fixed_tests if t.df_method == "kenward-roger"}
    assert set(kr) == set(ref)
    for term, (df, se) in ref.items():
        assert kr[term].df == pytest.approx(df, rel=1e-4), term
        assert kr[term].statistic == pytest.approx(r.fixef[term] / se, rel=1e-4), term
        assert kr[term].p_value == pytest.approx(two_sided_p(kr[term].statistic, kr[term].df),
                                                 rel=1e-12)


def test_kenward_roger_not_for_ml_and_skipped_above_the_size_cap(rs_ml, monkeypatch):
    """ML fits carry no KR tests; above MAX_CELLS the diagnostics say why there are none."""
    import backends.native.kenward_roger as kr_module

    assert not [t for t in rs_ml.fixed_tests if t.df_method == "kenward-roger"]
    c = next(c for c in CASES if c.id == "gcse_ri_reml")
    monkeypatch.setattr(kr_module, "MAX_CELLS", 1000)
    r = lmm(c.formula, load_case_data(c), reml=True)
    assert not [t for t in r.fixed_tests if t.df_method == "kenward-roger"]
    msgs = r.to_fit_result("x").diagnostics.messages
    assert any("no Kenward-Roger df" in m and "exceeds" in m for m in msgs), msgs


def test_kenward_roger_two_grouping_factors_match_pbkrtest(course_data):
    """Two factors, one with a correlated random slope (nurses: wards in hospitals), at lme4's
    tight optimum (tests/native/pbkrtest_reference.R): the Z blocks and generators of several
    factors line up with pbkrtest's. lme4's theta is reordered to native's factor order."""
    import pyreadstat

    from backends.native.kenward_roger import kenward_roger
    from benchmarks.cases import dataset_path

    data, _ = pyreadstat.read_dta(str(dataset_path("nurses")), apply_value_formats=False)
    r = lmm("stress ~ expcon + age + (1 | hospital) + (1 + expcon | hospital:ward)", data)
    assert [f.name for f in r.design.factors] == ["hospital", "hospital:ward"]
    theta = [0.765999127504, 0.372884139561, 0.467028272886, 1.34786921286]
    kr = kenward_roger(r.design, np.array(theta), 0.548504182486)
    assert kr.df == pytest.approx([54.15735692, 54.10643389, 918.5011941], rel=1e-8)
    assert kr.se_adjusted == pytest.approx([0.1125422232, 0.1312737718, 0.001487979532],
                                           rel=1e-8)
