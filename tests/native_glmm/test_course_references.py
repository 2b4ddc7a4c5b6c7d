"""Native GLMMs against glmer / clmm / Stata numbers for the course models.

The references are stored values (glmer and clmm refits from the model catalogue, R 4.2.2,
lme4 1.1-31; Stata 17 melogit printout for the census model), fixed in the test so it needs no
R. Tolerances are relative (4 significant digits, as the brief asks) unless stated. The glmer
numbers are reproduced with ``laplace="glmer"`` (glmer's approximate PIRLS path); native's
default, the exact Laplace optimum, is checked against tightly converged glmer in
test_exact_laplace.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from backends.native.glmm import fit_glmm

from . import data


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def var0(r) -> np.ndarray:
    T = r.problem.T(r.theta)
    return T @ T.T


def se(r) -> np.ndarray:
    return np.array([r.std_errors[f"fixed/{name}"] for name in r.x_names])


GCSE = "hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school)"


@pytest.mark.parametrize("integration,points,loglik,var", [
    ("laplace", 1, -1304.335405, .9646958),
    ("aghq", 3, -1304.287765, .9667707),
    ("aghq", 7, -1304.090976, .9776137),
])
def test_gcse_logit_matches_glmer(integration, points, loglik, var):
    r = fit_glmm(GCSE, data.gcse(), "binomial", integration=integration, points=points,
                 laplace="glmer")
    assert r.method == ("Laplace" if points == 1 else f"AGHQ({points})")
    assert -r.deviance / 2 == pytest.approx(loglik, abs=5e-4)
    assert rel(var0(r)[0, 0], var) < 1e-4
    assert r.converged
    if points == 7:
        ref_b = [-2.685041, .146814, .222734, .363078]
        ref_se = [.199624, .007013, .406968, .312921]
        for b, s, rb, rs in zip(r.beta, se(r), ref_b, ref_se):
            assert rel(b, rb) < 1e-4
            assert rel(s, rs) < 1e-3


POP_RI = "pop2 ~ sex + Cextrav + Ctexp + (1 | class)"


def test_popular_logit_laplace_and_aghq():
    lap = fit_glmm(POP_RI, data.popular2(), "binomial", laplace="glmer")
    assert -lap.deviance / 2 == pytest.approx(-818.0932258, abs=5e-4)
    for b, rb in zip(lap.beta, [-1.397003, 2.986768, 1.076283, .223416]):
        assert rel(b, rb) < 1e-4
    assert rel(var0(lap)[0, 0], 1.715446) < 1e-4
    q7 = fit_glmm(POP_RI, data.popular2(), "binomial", integration="aghq", points=7,
                  laplace="glmer")
    assert -q7.deviance / 2 == pytest.approx(-817.6307772, abs=5e-5)
    assert rel(var0(q7)[0, 0], 1.740481) < 1e-4


def test_popular_logit_random_slope_laplace():
    r = fit_glmm("pop2 ~ sex + Cextrav + Ctexp + (1 + Cextrav | class)", data.popular2(),
                 "binomial", laplace="glmer")
    V = var0(r)
    assert -r.deviance / 2 == pytest.approx(-815.9022408, abs=5e-4)
    assert rel(V[0, 0], 1.6388683) < 1e-4
    assert rel(V[1, 1], .1152) < 5e-4          # printed to 4 digits
    assert rel(V[0, 1], -.2024383) < 1e-4


def test_popular_poisson_laplace():
    ri = fit_glmm("pop7 ~ sex + Cextrav + Ctexp + (1 | class)", data.popular2(), "poisson",
                  laplace="glmer")
    assert -ri.deviance / 2 == pytest.approx(-2116.0716, abs=5e-4)
    assert rel(var0(ri)[0, 0], .278375) < 1e-4
    rs = fit_glmm("pop7 ~ sex + Cextrav + Ctexp + (1 + Cextrav | class)", data.popular2(),
                  "poisson", laplace="glmer")
    assert -rs.deviance / 2 == pytest.approx(-2095.509081, abs=5e-4)


def test_popular_ordinal_matches_clmm():
    r = fit_glmm("pop3 ~ sex + Cextrav + Ctexp + (1 | class)", data.popular2(), "ordinal")
    assert r.threshold_names == ["1|2", "2|3"]
    assert -r.deviance / 2 == pytest.approx(-1154.607727, abs=5e-4)
    for a, ra in zip(r.alpha, [1.378110, 6.087167]):
        assert rel(a, ra) < 1e-4
    for b, rb in zip(r.beta, [2.929593, 1.003502, .191595]):
        assert rel(b, rb) < 1e-4
    assert rel(var0(r)[0, 0], 1.524711) < 1e-4


@pytest.mark.parametrize("link,loglik", [("logit", -23790.63666), ("probit", -23754.66605)])
def test_census_good_health_aghq7(link, loglik):
    r = fit_glmm("good_health ~ agegpt + (1 | occ_ind_gp)", data.census(), "binomial",
                 link=link, integration="aghq", points=7, laplace="glmer")
    assert r.problem.data.m == 118
    assert -r.deviance / 2 == pytest.approx(loglik, abs=5e-4)
    if link == "logit":
        for b, s, rb, rs in zip(r.beta, se(r), [4.5920285, -.5931057], [.064067, .0070738]):
            assert rel(b, rb) < 1e-4
            assert rel(s, rs) < 5e-4
        assert rel(var0(r)[0, 0], .2254247) < 1e-4


@pytest.mark.slow
def test_census_stata_mvaghq7_key_target():
    """Stata 17 melogit, mvaghermite intpoints(7), independent covariance (course printout)."""
    r = fit_glmm("poor_health ~ female + c_age + age_fem + (1 | occ_ind_gp) "
                 "+ (0 + agegpt | occ_ind_gp)", data.census(), "binomial", integration="aghq",
                 points=7)
    assert r.method == "MVAGHQ(7)"
    assert round(-r.deviance / 2, 3) == -11969.091
    names = dict(zip(r.x_names, zip(r.beta, se(r))))
    stata = {"female": (.1282234, .05366), "c_age": (.0484283, .0017969),
             "age_fem": (-.0066825, .0019679), "(Intercept)": (-3.543554, .0693899)}
    for k, (b, s) in stata.items():
        # Estimates: within 0.002 SE (Stata's own convergence tolerance is coarser than its
        # 7 printed digits); SEs to the printed digits.
        assert abs(names[k][0] - b) < 2e-3 * s, k
        assert rel(names[k][1], s) < 5e-4, k
    V = np.diag(var0(r))
    assert abs(V[1] - .0027651) < 2e-3 * .0009485
    assert abs(V[0] - .2134169) < 2e-3 * .0551743
    # and Laplace is measurably worse, as the course shows (lme4 Laplace: -11969.233)
    assert r.stage_deviances["Laplace"] / -2 == pytest.approx(-11969.233, abs=2e-3)


def test_census_random_slope_mvaghq2_reports_the_likelihood_of_its_estimates():
    """lab1.stata1.4.cen_logit_rs/ip2: the reported logLik was -23793.49 for estimates whose
    MVAGHQ(2) deviance is 47460.86 (the adaptation warm-started from the previous evaluation,
    and with 2 points its fixed point is not unique), with fixed-effect SEs of 0.0, converged
    false and a Hessian not positive definite. Now: converged, the deviance re-evaluated by a
    fresh likelihood at the reported estimates is the reported one, and every SE is finite."""
    from backends.native.glmm.evidence import GlmmLikelihood
    from backends.native.glmm.result import to_fit_result

    r = fit_glmm("good_health ~ agegpt + (1 + agegpt | occ_ind_gp)", data.census(), "binomial",
                 integration="aghq", points=2)
    assert r.method == "MVAGHQ(2)" and r.converged and r.max_abs_gradient < 1e-4
    assert r.deviance == pytest.approx(r.stage_deviances["MVAGHQ(2)"], abs=1e-8)
    assert -r.deviance / 2 == pytest.approx(-23730.4287420, abs=1e-6)     # measured
    lik = GlmmLikelihood(r.problem, r.x_names, r.threshold_names)
    dev = lik._deviance(r.estimator, "exact")
    assert dev(r.theta, r.beta) == pytest.approx(r.deviance, rel=1e-13)
    res = to_fit_result(r, "ip2")
    assert res.statistics.loglik == -r.deviance / 2
    assert all(p.std_error is not None and p.std_error > 0 for p in res.parameters)
