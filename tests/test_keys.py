"""Parameter keys and sources: one parser, one formatter; reference keys checked before fitting."""

import pandas as pd
import pytest

from harness.estimator import Estimator, EstimatorError
from harness.keys import KeyFormatError, ParamKey, Source, closest_key
from harness.model_keys import expected_keys, reference_key_problems
from harness.spec import parse_spec


@pytest.mark.parametrize("text", [
    "fixed/(Intercept)", "fixed/factor(schgend)2", "threshold/1|2",
    "ran_pars/school/sd__(Intercept)", "ran_pars/school/cor__(Intercept).lrt",
    "ran_pars/Residual/var__Observation", "ranef/school/lrt", "stat/loglik",
    "stat/lr/lab1.ex1.1.mlm1a/chi2", "stat/icc/wardid"])
def test_parse_and_format_round_trip(text: str) -> None:
    assert str(ParamKey.parse(text)) == text


def test_parts_of_a_variance_key() -> None:
    k = ParamKey.parse("ran_pars/school/cor__(Intercept).lrt")
    assert (k.kind, k.group, k.scale, k.effects) == ("ran_pars", "school", "cor",
                                                      "(Intercept).lrt")
    assert str(k.on_scale("cov")) == "ran_pars/school/cov__(Intercept).lrt"
    assert ParamKey.residual().is_residual and ParamKey.stat("lr/m/chi2").stat_head == "lr"


@pytest.mark.parametrize("bad,hint", [
    ("lrt", "must start with"), ("ran_pars/school", "ran_pars/<group>/<term>"),
    ("ran_pars/school/(Intercept)", "<scale>__<effect>"), ("ran_pars/school/sdd__x", "scale sd"),
    ("fixed/", "must start with")])
def test_bad_keys_say_how_to_write_them(bad: str, hint: str) -> None:
    with pytest.raises(KeyFormatError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        ParamKey.parse(bad)


def test_sources() -> None:
    assert str(Source.reference("N7")) == "ref:N7" and Source.parse("ref:N7").name == "N7"
    assert Source.parse("lme4") == Source.backend("lme4")
    cross = Source.crosscheck("native", "base.spec", "x10")
    assert Source.parse(str(cross)) == cross and cross.backend_name == "native"


def test_closest_key_finds_case_slips() -> None:
    valid = {"fixed/Days", "fixed/(Intercept)", "ran_pars/Subject/sd__(Intercept)"}
    assert closest_key("fixed/days", valid) == "fixed/Days"
    assert closest_key("ran_pars/subject/sd__(Intercept)", valid) == \
        "ran_pars/Subject/sd__(Intercept)"


@pytest.mark.parametrize("label", ["ML", "REML", "OLS", "GLS", "Laplace", "AGHQ(7)",
                                   "MVAGHQ(12)", "GHQ(8)",
                                   "OLS, cluster-robust SE by school (CR1)",
                                   "OLS, survey-linearised SE by school"])
def test_estimator_labels_round_trip(label: str) -> None:
    assert Estimator.parse(label).label() == label


def test_estimator_pairing_is_by_fields() -> None:
    ols, cr1 = Estimator.parse("OLS"), Estimator.parse("OLS, cluster-robust SE by school (CR1)")
    assert ols.same_estimates(cr1) and not ols.same_standard_errors(cr1)
    assert not Estimator.parse("AGHQ(7)").same_estimates(Estimator.parse("MVAGHQ(7)"))
    with pytest.raises(EstimatorError):
        Estimator.parse("quadrature with 7 points")


def _sleep_spec(values: dict) -> tuple:
    frame = pd.DataFrame({"Reaction": [250.0, 260, 270, 280, 300, 310],
                          "Days": [0.0, 1, 2, 0, 1, 2], "Subject": [1, 1, 1, 2, 2, 2]})
    spec = parse_spec({"id": "s", "title": "t", "source": "s", "dataset": "x",
                       "model": {"formula": "Reaction ~ Days + (Days | Subject)",
                                 "method": "REML"},
                       "references": [{"id": "r", "software": "lme4", "source": "s",
                                       "values": values}]}, "s.yaml")
    return spec, frame


def test_every_key_the_model_has_is_expected() -> None:
    spec, frame = _sleep_spec({})
    keys = expected_keys(spec, frame)
    assert {"fixed/Days", "fixed/(Intercept)", "ran_pars/Subject/cor__(Intercept).Days",
            "ran_pars/Subject/cov__(Intercept).Days", "ran_pars/Residual/sd__Observation",
            "stat/loglik", "stat/ngroups/Subject"} <= keys


def test_a_misspelled_reference_key_is_named_with_the_closest_valid_key() -> None:
    spec, frame = _sleep_spec({"fixed/days": "10.47", "ran_pars/subject/sd__(Intercept)": "24.7",
                               "fixed/Days": "10.47"})
    problems = reference_key_problems(spec, frame)
    assert len(problems) == 2
    assert "references[r].values.fixed/days" in problems[0] and "'fixed/Days'" in problems[0]
    assert "'ran_pars/Subject/sd__(Intercept)'" in problems[1]
