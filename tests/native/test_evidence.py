"""The evidence engine on gaussian models: the full log-likelihood at complete estimates and the
observed-information covariance (backends/native/evidence.py), on real course data.

Numbers quoted in comments were measured with these tests' code (R 4.2.2 / lme4 1.1-31 numbers
in test_evidence_lme4.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backends.native import lmm
from backends.native.evidence import EvidenceModel, estimates_of
from harness.estimator import Estimator

from .evidence_fits import GAUSSIAN as CASES
from .evidence_fits import RS_ML, evidence, fit, gcse, prepared

ML, REML = Estimator("ML"), Estimator("REML")


@pytest.fixture(autouse=True)
def _data(data_dir):
    """Every test here needs the course data (skip without it)."""


@pytest.mark.parametrize("name", list(CASES))
def test_native_loglik_at_its_own_estimates(name):
    s = CASES[name]
    r = fit(s)
    est = estimates_of(r)
    at = evidence(s).loglik(est, r.estimator)
    assert at.reason is None and at.missing == () and at.unused == () and at.notes == ()
    assert at.loglik == pytest.approx(r.statistics.loglik, rel=1e-9, abs=0)   # measured: <= 1e-15
    # the fixed effects and sigma of a correct LMM engine are the profiled values of its theta
    assert set(at.profiled) == {k for k in est if k.startswith("fixed/")} | \
        {"ran_pars/Residual/sd__Observation"}
    for key, value in at.profiled.items():
        assert value == pytest.approx(est[key], rel=1e-9, abs=1e-12), key
    assert at.profiled_loglik == pytest.approx(r.statistics.loglik, rel=1e-12)


def test_var_cov_scales_give_the_same_loglik():
    r = fit(RS_ML)
    est = estimates_of(r)
    sd_cor = {k: v for k, v in est.items() if "/var__" not in k and "/cov__" not in k}
    var_cov = {k: v for k, v in est.items() if "/sd__" not in k and "/cor__" not in k}
    ev = evidence(RS_ML)
    a, b = ev.loglik(sd_cor, ML), ev.loglik(var_cov, ML)
    assert a.missing == b.missing == ()
    assert b.loglik == pytest.approx(a.loglik, rel=1e-13)


def test_swapped_fixed_effects_evaluate_far_below_the_reported_loglik():
    r = fit(RS_ML)
    est = estimates_of(r)
    est["fixed/lrt"], est["fixed/girl"] = est["fixed/girl"], est["fixed/lrt"]
    at = evidence(RS_ML).loglik(est, ML)
    assert at.loglik < r.statistics.loglik - 1000       # measured: 2,022 below
    # the profiled view at the same theta does not see it: only the full likelihood does
    assert at.profiled_loglik == pytest.approx(r.statistics.loglik, rel=1e-12)


def test_a_fixed_effect_error_is_visible_under_reml_too():
    """The full REML function is maximal at the REML estimates in beta too: half an SE either
    way along the profile direction costs 0.125 (measured .1257 / .1243)."""
    s = CASES["gcse random slope REML"]
    r = fit(s)
    est = estimates_of(r)
    ev = evidence(s)
    cov = ev.covariance(est, REML)
    for t in (0.5, -0.5):
        moved = _profile_step(cov, est, "fixed/lrt", t)
        assert r.statistics.loglik - ev.loglik(moved, REML).loglik == \
            pytest.approx(0.125, rel=0.05)


def _profile_step(cov, est: dict[str, float], key: str, t: float) -> dict[str, float]:
    """``est`` moved by ``t`` SEs of ``key``, the other parameters by their regression on it
    (the conditional optimum, to second order): the likelihood drops by ``t^2 / 2`` there."""
    keys = list(cov.keys)
    i = keys.index(key)
    V = cov.matrix
    return {k: est[k] + V[j, i] / V[i, i] * t * cov.std_errors[key] for j, k in enumerate(keys)}


def test_half_an_se_of_a_fixed_effect_costs_an_eighth_of_a_loglik_unit():
    """A true profile (native refits with the coefficient of lrt fixed, through an offset):
    moving it by 0.5 full-information SE drops the maximised log-likelihood by 0.125."""
    r = fit(RS_ML)
    est = estimates_of(r)
    cov = evidence(RS_ML).covariance(est, ML)
    se = cov.std_errors["fixed/lrt"]
    frame = prepared(RS_ML).frame.copy()
    for t in (0.5, -0.5):
        frame["gcse_off"] = frame["gcse"] - (est["fixed/lrt"] + t * se) * frame["lrt"]
        refit = lmm("gcse_off ~ girl + sch_2 + sch_3 + (1 + lrt | school)", frame, reml=False)
        assert r.statistics.loglik - refit.loglik == pytest.approx(0.125, rel=0.05)  # .1255/.1240
    # the same along the covariance's profile direction, for every fixed effect
    best = r.statistics.loglik
    for key in (k for k in cov.keys if k.startswith("fixed/")):
        drop = best - evidence(RS_ML).loglik(_profile_step(cov, est, key, 0.5), ML).loglik
        assert drop == pytest.approx(0.125, rel=0.05), key                     # within 0.6 %


@pytest.mark.parametrize("key", ["ran_pars/school/sd__(Intercept)", "ran_pars/school/sd__lrt",
                                 "ran_pars/school/cor__(Intercept).lrt",
                                 "ran_pars/Residual/sd__Observation"])
def test_half_an_se_of_a_variance_parameter_costs_an_eighth(key):
    """On the sd/cor scale the log-likelihood is skewed (sd(lrt): 0.119 up, 0.131 down;
    the correlation 0.138 / 0.115), so the check is on the mean of the two sides, where the
    cubic term cancels (measured within 1.3 % of 0.125), and each side within 15 %."""
    r = fit(RS_ML)
    est = estimates_of(r)
    ev = evidence(RS_ML)
    cov = ev.covariance(est, ML)
    drops = [r.statistics.loglik - ev.loglik(_profile_step(cov, est, key, t), ML).loglik
             for t in (0.5, -0.5)]
    assert np.mean(drops) == pytest.approx(0.125, rel=0.05)
    assert drops == pytest.approx([0.125, 0.125], rel=0.15)


# Talk 4 slide 6, block C of models.md §4.2: Stata 17 mixed, ML, unstructured, SD display.
STATA_ESTIMATES = {"fixed/lrt": .5544234, "fixed/girl": 1.682633, "fixed/sch_2": 1.79864,
                   "fixed/sch_3": 1.748186, "fixed/(Intercept)": -1.888208,
                   "ran_pars/school/sd__lrt": .1210464,
                   "ran_pars/school/sd__(Intercept)": 2.820425,
                   "ran_pars/school/cor__(Intercept).lrt": .5886686,
                   "ran_pars/Residual/sd__Observation": 7.417498}
STATA_SE = {"fixed/lrt": .0199381, "fixed/girl": .3382158, "fixed/sch_2": .9914847,
            "fixed/sch_3": .7876956, "fixed/(Intercept)": .5135382,
            "ran_pars/school/sd__lrt": .0189266, "ran_pars/school/sd__(Intercept)": .2901373,
            "ran_pars/school/cor__(Intercept).lrt": .1389937,
            "ran_pars/Residual/sd__Observation": .0837029}
VARIANCE_KEYS = [k for k in STATA_SE if k.startswith("ran_pars/")]


def test_stata_block_c_standard_errors():
    """Stata's fixed-effect SEs are the conditional ones (its e(V) is block-diagonal), its
    variance-parameter SEs the full information's.

    At Stata's printed point: the conditional fixed SEs agree to 2.1e-7 relative, which is the
    rounding of the printed estimates (moving them within half a unit of each printed digit
    moves these SEs by up to 5e-7 relative); sd(lrt) and sd(Residual) agree to the printed
    digit; sd(_cons) (.2901382) and corr (.1389932) differ by 2.8e-6 and 3.6e-6 relative.
    That gap is not the rounding of the printed point (which moves them by 1.5e-7 and 5e-8
    absolute), but it is the size by which they depend on the parameterisation the Hessian
    is taken in at Stata's point, which is 7e-9 below the maximum: on the sd/cor scale instead
    of log/atanh, sd(_cons)'s SE is 5.2e-7 larger.
    """
    ev = evidence(RS_ML)
    cov = ev.covariance(STATA_ESTIMATES, ML)
    for key in (k for k in STATA_SE if k.startswith("fixed/")):
        assert cov.conditional_std_errors[key] == pytest.approx(STATA_SE[key], rel=3e-7), key
    for key in ("ran_pars/school/sd__lrt", "ran_pars/Residual/sd__Observation"):
        assert round(cov.std_errors[key], 7) == pytest.approx(STATA_SE[key], abs=1e-12), key
    for key in VARIANCE_KEYS:
        assert cov.std_errors[key] == pytest.approx(STATA_SE[key], rel=4e-6), key
    # at native's own optimum (6 digits from Stata's point) the same within 1.1e-5 (corr)
    native = ev.covariance(estimates_of(fit(RS_ML)), ML)
    for key in VARIANCE_KEYS:
        assert native.std_errors[key] == pytest.approx(STATA_SE[key], rel=1.1e-5), key


def test_full_information_fixed_effect_ses_exceed_the_conditional_ones():
    """Native's and lme4's fixed-effect SEs condition on theta; the full information's also
    carry the variance parameters' uncertainty: 0.03 % (girl) to 0.36 % (lrt) larger here."""
    r = fit(RS_ML)
    cov = evidence(RS_ML).covariance(estimates_of(r), ML)
    reported = {p.key: p.std_error for p in r.parameters if p.effect == "fixed"}
    for key, se in reported.items():
        assert cov.conditional_std_errors[key] == pytest.approx(se, rel=1e-8), key
        assert 1.0002 < cov.std_errors[key] / se < 1.005, key


def test_covariance_covers_every_key_on_every_scale():
    r = fit(RS_ML)
    ev = evidence(RS_ML)
    cov = ev.covariance(estimates_of(r), ML)
    assert cov.reason is None and cov.reasons == {}
    assert set(cov.std_errors) == {p.key for p in r.parameters}
    assert all(v is not None and v > 0 for v in cov.std_errors.values())
    assert list(cov.keys) == ev.keys() and cov.matrix.shape == (len(cov.keys),) * 2
    # delta method: var = sd^2 and cov = cor sd sd on the same covariance
    sd, var = "ran_pars/school/sd__lrt", "ran_pars/school/var__lrt"
    assert cov.std_errors[var] == pytest.approx(2 * estimates_of(r)[sd] * cov.std_errors[sd],
                                                rel=1e-12)
    sub = cov.submatrix([sd, var])
    assert sub[0, 1] / math.sqrt(sub[0, 0] * sub[1, 1]) == pytest.approx(1.0, abs=1e-12)


def test_ols_covariance_is_the_classical_one():
    s = CASES["gcse OLS"]
    r = fit(s)
    cov = evidence(s).covariance(estimates_of(r), r.estimator)
    for p in r.parameters:
        if p.effect == "fixed":
            assert cov.std_errors[p.key] == pytest.approx(p.std_error, rel=1e-8), p.key
    n, k = r.statistics.nobs, len(cov.conditional_std_errors)
    sigma = estimates_of(r)["ran_pars/Residual/sd__Observation"]
    assert cov.std_errors["ran_pars/Residual/sd__Observation"] == pytest.approx(
        sigma / math.sqrt(2 * (n - k)), rel=1e-6)


def test_boundary_parameters_get_no_se_and_say_why():
    est = estimates_of(fit(RS_ML))
    est = {k: v for k, v in est.items() if "/var__" not in k and "/cov__" not in k}
    ev = evidence(RS_ML)
    at_zero = dict(est, **{"ran_pars/school/sd__lrt": 0.0})
    assert ev.loglik(at_zero, ML).loglik is not None
    cov = ev.covariance(at_zero, ML)
    for key in ("ran_pars/school/sd__lrt", "ran_pars/school/var__lrt"):
        assert cov.std_errors[key] is None and "boundary" in cov.reasons[key]
    for key in ("ran_pars/school/cor__(Intercept).lrt", "ran_pars/school/cov__(Intercept).lrt"):
        assert cov.std_errors[key] is None and "not identified" in cov.reasons[key]
    assert cov.std_errors["fixed/lrt"] > 0 and cov.std_errors["ran_pars/school/sd__(Intercept)"] > 0
    at_one = dict(est, **{"ran_pars/school/cor__(Intercept).lrt": 1.0})
    cov = ev.covariance(at_one, ML)
    assert cov.std_errors["ran_pars/school/cor__(Intercept).lrt"] is None
    assert "boundary" in cov.reasons["ran_pars/school/cor__(Intercept).lrt"]
    assert cov.std_errors["ran_pars/school/sd__lrt"] > 0


def test_incomplete_or_invalid_estimates_are_reported_not_guessed():
    est = estimates_of(fit(RS_ML))
    ev = evidence(RS_ML)
    short = {k: v for k, v in est.items() if k not in ("fixed/girl", "ran_pars/school/sd__lrt",
                                                      "ran_pars/school/var__lrt")}
    at = ev.loglik(short, ML)
    assert at.loglik is None and set(at.missing) == {"fixed/girl", "ran_pars/school/sd__lrt"}
    assert "fixed/girl" in at.reason
    assert ev.covariance(short, ML).matrix is None
    extra = dict(est, **{"fixed/schgend": 1.0, "stat/loglik": -1.0})
    assert ev.loglik(extra, ML).unused == ("fixed/schgend",)
    bad = dict(est, **{"ran_pars/school/sd__lrt": -0.1})
    assert "negative" in ev.loglik(bad, ML).reason
    noisy = dict(est, **{"ran_pars/school/var__lrt": 2 * est["ran_pars/school/var__lrt"]})
    assert any("var__lrt" in n for n in ev.loglik(noisy, ML).notes)
    assert ev.loglik(est, Estimator("GLS")).reason.startswith("GLS")
    assert "integration" in ev.loglik(est, Estimator("ML", "laplace", 1)).reason
    # OLS needs no residual sd (it is profiled out); ML does
    ols = CASES["gcse OLS"]
    no_sigma = {k: v for k, v in estimates_of(fit(ols)).items() if "Residual" not in k}
    assert evidence(ols).loglik(no_sigma, Estimator("OLS")).loglik is not None
    assert evidence(ols).loglik(no_sigma, ML).missing == ("ran_pars/Residual/sd__Observation",)


def test_reference_levels_are_honoured(data_dir):
    s = gcse("gcse ~ lrt + factor(schgend) + (1 | school)", reference_level={"schgend": 2})
    ev = EvidenceModel.build(s.model, prepared(s).frame, [])
    assert "fixed/factor(schgend)1" in ev.keys() and "fixed/factor(schgend)2" not in ev.keys()
    r = lmm(s.model.formula, prepared(s).frame, reml=False, reference={"schgend": 2})
    assert ev.loglik(estimates_of(r.to_fit_result("t")), ML).loglik == \
        pytest.approx(r.loglik, rel=1e-12)
