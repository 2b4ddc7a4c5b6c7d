"""The native likelihood at another engine's estimates reproduces that engine's own value."""

import pytest

from backends.native import lmm
from backends.native.evaluate import loglik_at
from harness.runner import prepare_data
from harness.spec import parse_spec

SPEC = parse_spec({"id": "t", "title": "t", "source": "s", "dataset": "gcse",
                   "model": {"formula": "gcse ~ lrt + girl + (1 + lrt | school)",
                             "method": "ML"}}, "t.yaml")


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_loglik_at_own_estimates_round_trips(data_dir, method):
    spec = SPEC.model_copy(update={"model": SPEC.model.model_copy(update={"method": method})})
    data = prepare_data(spec, data_dir)
    fit = lmm(spec.model.formula, data.frame, reml=method == "REML")
    result = fit.to_fit_result("t")
    assert loglik_at(spec.model, data.frame, [], result) == pytest.approx(fit.loglik, abs=1e-8)


def test_moving_a_variance_lowers_the_likelihood(data_dir):
    data = prepare_data(SPEC, data_dir)
    result = lmm(SPEC.model.formula, data.frame, reml=False).to_fit_result("t")
    best = loglik_at(SPEC.model, data.frame, [], result)
    for p in result.parameters:
        if p.key == "ran_pars/school/sd__lrt":
            object.__setattr__(p, "estimate", p.estimate * 1.2)
    assert loglik_at(SPEC.model, data.frame, [], result) < best - 0.01
