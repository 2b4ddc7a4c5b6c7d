"""A hand-made suite run (no R, no data files, no fitting) for the report, JUnit and browser tests.

Three GCSE-like specs: an ML random-intercept model where native and lme4 agree and a printed
Stata value agrees; a REML model with a deliberately perturbed printed value (unexplained) and an
lme4 result that warned and stopped early (explained by D18); a random-slope logistic GLMM that
native cannot fit yet (not estimable) checked against a 7-point Stata reference (explained: D2).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd

from backends.base import Availability
from harness.compare import compare_spec
from harness.estimator import Estimator
from harness.evidence import Evidence, Point
from harness.keys import Source
from harness.known_differences import model_id
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, RandomEffect,
                             Statistics, residual_parameters, variance_parameters)
from harness.runner import PreparedData, RunOptions, SpecRun, SuiteRun
from harness.spec import parse_spec

N_SCHOOLS = 65
RNG = np.random.default_rng(2025)
SIZES = RNG.integers(2, 120, N_SCHOOLS)
U = RNG.normal(0, 2.85, N_SCHOOLS)
LME4_SCRIPT = """library(lme4)
gcse <- haven::read_dta("gcse.dta")
gcse$sch_2 <- as.numeric(gcse$schgend == 2)
fit <- lmer(gcse ~ lrt + girl + sch_2 + (1 | school), data = gcse, REML = FALSE)
summary(fit)"""


def frame() -> pd.DataFrame:
    school = np.repeat(np.arange(1, N_SCHOOLS + 1), SIZES)
    n = len(school)
    return pd.DataFrame({"school": school, "gcse": RNG.normal(0, 10, n),
                         "lrt": RNG.normal(0, 10, n), "girl": RNG.integers(0, 2, n),
                         "schgend": RNG.integers(1, 4, n)})


def spec(id_, formula, method="ML", family="gaussian", references=(), integration=None,
         known=()):
    model = {"formula": formula, "method": method, "family": family}
    if integration:
        model["integration"] = integration
    return parse_spec({"id": id_, "title": f"GCSE test model {id_}", "source": "tests",
                       "dataset": "gcse", "description": "A hand-made result for the tests.",
                       "derive": [{"name": "sch_2", "expr": "schgend == 2", "note": "boys"}],
                       "model": model, "references": list(references),
                       "known_differences": list(known)}, f"{id_}.yaml")


def ri_result(backend, spec_id, method="ML", var_u=8.110688, b_lrt=0.5599630, loglik=-14008.89117,
              shift=0.0, warn=False):
    params = [Parameter("fixed", None, "(Intercept)", -1.6815, 0.5404),
              Parameter("fixed", None, "lrt", b_lrt, 0.012444),
              Parameter("fixed", None, "girl", 2.5118, 0.3403),
              Parameter("fixed", None, "sch_2", 1.1201, 1.2345)]
    params += variance_parameters("school", ["(Intercept)"], [math.sqrt(var_u)], None)
    params += residual_parameters(math.sqrt(56.226895))
    shrink = var_u / (var_u + 56.2 / SIZES)
    res = [RandomEffect("school", str(j + 1), "(Intercept)", float(shrink[j] * U[j] + shift * U[j]),
                        float(math.sqrt(var_u * (1 - shrink[j]))))
           for j in range(N_SCHOOLS)]
    script = LME4_SCRIPT if backend == "lme4" else None
    call = ("lmm('gcse ~ lrt + girl + sch_2 + (1 | school)', data, reml=False)"
            if backend == "native" else None)
    r = FitResult(spec_id, backend, parameters=params,
                     statistics=Statistics(nobs=int(SIZES.sum()), ngroups={"school": N_SCHOOLS},
                                           loglik=loglik, aic=-2 * loglik + 12,
                                           bic=-2 * loglik + 6 * math.log(int(SIZES.sum())), df=6),
                     random_effects=res,
                     diagnostics=Diagnostics(converged=not warn, optimizer="bobyqa",
                                             evaluations=87, max_abs_gradient=0.004 if warn else 1e-7,
                                             warnings=["Model failed to converge with max|grad| = "
                                                       "0.00407 (tol = 0.002, component 1)"]
                                             if warn else []),
                     provenance=Provenance(backend=backend, script=script, call=call,
                                           software={"lme4": "1.1-35"} if backend == "lme4"
                                           else {"numpy": np.__version__}),
                     timings={"fit": 0.12})
    return r.set_estimator(Estimator.parse(method))


def evidence(sp, results: dict) -> Evidence:
    """What the runner would have measured: lme4's REML fit stopped 2e-4 short of native's
    optimum (its estimates evaluate to what it reports), and native's 7-point fit of the
    random-slope GLMM reproduces the printed Stata variance."""
    mid = model_id(sp, None)
    ok = {n: r for n, r in results.items() if r.status == "ok"}
    points = {Source.backend(n): Point(Source.backend(n), mid, r.estimator.label(),
                                       {"exact": r.statistics.loglik}, "exact",
                                       r.statistics.loglik)
              for n, r in ok.items()}
    best = max((r.statistics.loglik, n) for n, r in ok.items())
    label = next(iter(ok.values())).estimator.label()
    ses = {"ran_pars/school/var__(Intercept)": 1.64, "ran_pars/school/sd__(Intercept)": 0.29,
           "fixed/(Intercept)": 0.54, "fixed/lrt": 0.012444}
    bridges = {}
    if sp.model.family == "binomial":
        mv = copy.deepcopy(results["lme4"])
        mv.backend = "native"
        for p in list(mv.parameters):
            if str(p.param_key) == "ran_pars/school/var__(Intercept)":
                mv.parameters[mv.parameters.index(p)] = Parameter(
                    "ran_pars", "school", "var__(Intercept)", 0.97802, None)
        mv.set_estimator(Estimator("ML", "mvaghq", 7))
        bridges = {(mid, "MVAGHQ(7)"): mv, (mid, "Laplace"): copy.deepcopy(results["lme4"])}
    return Evidence(points=points, bridges=bridges, best={(mid, label, "exact"): best},
                    curvature_provider=lambda m, e: ses if (m, e) == (mid, label) else {})


def suite() -> SuiteRun:
    data = PreparedData(frame=frame(), path=None, sha256="ab" * 32, rows_in_file=4059,
                        rows_after_subset=4059, derived=["sch_2"])
    s1 = spec("gcse.ri_ml", "gcse ~ lrt + girl + sch_2 + (1 | school)", references=[
        {"id": "stata", "software": "Stata", "source": "lab 1", "method": "ML",
         "values": {"ran_pars/school/var__(Intercept)": "8.11",
                    "fixed/lrt": {"estimate": ".5599630", "std_error": ".012444"},
                    "stat/icc": ".1261"}}])
    r1 = {"native": ri_result("native", s1.id), "lme4": ri_result("lme4", s1.id, b_lrt=0.5599631)}
    s2 = spec("gcse.ri_reml", "gcse ~ lrt + girl + sch_2 + (1 | school)", method="REML",
              references=[{"id": "course-r", "software": "R lme4", "source": "lab 1 R",
                           "method": "REML", "values": {
                               "ran_pars/school/var__(Intercept)": "8.13",  # perturbed: 8.11
                               "fixed/(Intercept)": "-1.6815"}}])
    r2 = {"native": ri_result("native", s2.id, "REML", var_u=8.110688, loglik=-14010.80),
          "lme4": ri_result("lme4", s2.id, "REML", var_u=8.1125, loglik=-14010.8002, warn=True)}
    s3 = spec("gcse.bin_rs", "hi ~ lrt + (1 + lrt | school)", family="binomial",
              integration={"method": "laplace"}, references=[
                  {"id": "stata7", "software": "Stata", "source": "lab 1 Stata", "method":
                   "MVAGHQ(7)", "values": {"ran_pars/school/var__(Intercept)": ".9780233"}}])
    glmm = FitResult(s3.id, "lme4", parameters=[
        Parameter("fixed", None, "(Intercept)", -2.0, 0.1), Parameter("fixed", None, "lrt", 0.1, 0.01),
        *variance_parameters("school", ["(Intercept)", "lrt"], [math.sqrt(0.9647), 0.02],
                             [[1, 0.3], [0.3, 1]])],
        statistics=Statistics(nobs=4059, ngroups={"school": 65}, loglik=-1500.2, df=5),
        diagnostics=Diagnostics(converged=True),
        provenance=Provenance(backend="lme4", script="glmer(...)")).set_estimator(
            Estimator("ML", "laplace", 1))
    r3 = {"native": FitResult.failed(s3.id, "native", "not_estimable",
                                     "native GLMMs are not implemented yet (issue 7)"),
          "lme4": glmm}
    runs = []
    for sp, res in ((s1, r1), (s2, r2), (s3, r3)):
        runs.append(SpecRun(sp, None, data, res, compare_spec(sp, res, evidence=evidence(sp, res))))
    avail = {"native": Availability(True, versions=(("numpy", np.__version__),)),
             "lme4": Availability(True, versions=(("R", "4.2.2"), ("lme4", "1.1-35")))}
    return SuiteRun(runs=runs, options=RunOptions(backends=["native", "lme4"]),
                    availability=avail, started="2025-06-01T12:00:00+00:00", seconds=1.5,
                    command_line="mlm-harness run specs/ --out reports/latest",
                    platform="Linux-test")
