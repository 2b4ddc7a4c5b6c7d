import math

from harness.estimator import Estimator
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, RandomEffect,
                             Statistics, residual_parameters, variance_parameters)


def sample() -> FitResult:
    params = [Parameter("fixed", None, "(Intercept)", -1.888, 0.51),
              Parameter("fixed", None, "lrt", 0.554, 0.0199)]
    params += variance_parameters("school", ["(Intercept)", "lrt"], [2.82, 0.121],
                                  [[1, 0.5887], [0.5887, 1]])
    params += residual_parameters(7.4175)
    return FitResult(
        spec_id="s", backend="native", parameters=params,
        statistics=Statistics(nobs=4059, ngroups={"school": 65}, loglik=-13986.738, aic=1.0),
        random_effects=[RandomEffect("school", "1", "(Intercept)", 0.3, 0.1)],
        diagnostics=Diagnostics(converged=True, warnings=["w"], max_abs_gradient=float("nan")),
        provenance=Provenance(backend="native", call="lmm(...)", software={"numpy": "2"}),
        timings={"fit": 0.01}).set_estimator(Estimator("ML"))


def test_variance_parameters_all_scales_broom_names():
    keys = [p.key for p in sample().parameters]
    for k in ["ran_pars/school/sd__(Intercept)", "ran_pars/school/var__lrt",
              "ran_pars/school/cor__(Intercept).lrt", "ran_pars/school/cov__(Intercept).lrt",
              "ran_pars/Residual/sd__Observation", "fixed/lrt"]:
        assert k in keys
    cov = sample().parameter_map()["ran_pars/school/cov__(Intercept).lrt"].estimate
    assert math.isclose(cov, 0.5887 * 2.82 * 0.121)


def test_json_round_trip_is_lossless_and_has_contract_keys():
    r = sample()
    d = r.to_dict()
    for key in ("parameters", "statistics", "random_effects", "diagnostics", "provenance",
                "timings"):
        assert key in d
    assert set(d["parameters"][0]) == {"effect", "group", "term", "estimate", "std_error"}
    for key in ("nobs", "ngroups", "loglik", "reml_criterion", "deviance", "aic", "bic", "df"):
        assert key in d["statistics"]
    back = FitResult.from_json(r.to_json())
    assert back.parameters == r.parameters
    assert back.random_effects == r.random_effects
    assert back.statistics == r.statistics
    assert back.diagnostics.max_abs_gradient is None  # NaN is not JSON; it becomes null
    assert back.estimator == Estimator("ML") and d["provenance"]["method"] == "ML"
    assert d["estimator"] == {"criterion": "ML", "integration": "none", "points": 0,
                              "se": "model", "cluster": None, "df_method": None}


def test_failed_result_carries_reason():
    r = FitResult.failed("s", "lme4", "unavailable", "no R (fix: apt-get install r-base-core)")
    back = FitResult.from_json(r.to_json())
    assert back.status == "unavailable" and "apt-get" in back.message and not back.parameters
