"""Replication identities and LR tests between specs, on hand-made results."""

import math

from harness.crosschecks import lr_statistics, replication_checks
from harness.estimator import Estimator
from harness.keys import ParamKey
from harness.results import (FitResult, Parameter, Provenance, Statistics, residual_parameters,
                             variance_parameters)
from harness.spec import CrossCheck, parse_spec


def fit(group, ll, se=0.0125, sd=2.85, df=4, method="ML", backend="native"):
    params = [Parameter("fixed", None, "lrt", 0.56, se)]
    params += variance_parameters(group, ["(Intercept)"], [sd], None) + residual_parameters(7.5)
    return FitResult("s", backend, parameters=params, statistics=Statistics(loglik=ll, df=df),
                     provenance=Provenance(backend=backend)).set_estimator(Estimator(method))


def test_replication_identity_maps_the_new_cluster_id_and_scales():
    check = CrossCheck(type="replication", base="b", times=10)
    base = fit("school", -14000.0)
    good = fit("school2", -140000.0, se=0.0125 / math.sqrt(10))
    checks = replication_checks(check, good, base, {"school2": "school"})
    keys = {str(c.key) for c in checks}
    assert "ran_pars/school2/sd__(Intercept)" in keys  # variance parameters are compared
    assert all(c.verdict == "agree" for c in checks)
    bad = fit("school2", -140000.0, se=0.0125 / math.sqrt(10), sd=2.86)
    verdicts = {str(c.key): c.verdict for c in replication_checks(check, bad, base,
                                                            {"school2": "school"})}
    assert verdicts["ran_pars/school2/sd__(Intercept)"] == "unexplained"


def spec(formula, method="ML"):
    return parse_spec({"id": "x", "title": "t", "source": "s", "dataset": "gcse",
                       "model": {"formula": formula, "method": method}}, "x.yaml")


def test_lr_test_ml_and_invalid_reml_with_different_fixed_parts():
    big, small = spec("gcse ~ lrt + girl + (1 | school)"), spec("gcse ~ lrt + (1 | school)")
    values, note = lr_statistics(big, small, fit("school", -100.0, df=5),
                                 fit("school", -103.0, df=4))
    assert values["chi2"] == 6.0 and values["df"] == 1.0 and 0.01 < values["p"] < 0.02
    assert "ML likelihoods" in note
    rbig, rsmall = spec("gcse ~ lrt + girl + (1 | school)", "REML"), \
        spec("gcse ~ lrt + (1 | school)", "REML")
    values, note = lr_statistics(rbig, rsmall, fit("school", -100.0, df=5, method="REML"),
                                 fit("school", -103.0, df=4, method="REML"))
    assert values == {} and "identical fixed parts" in note
