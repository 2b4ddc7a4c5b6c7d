"""The evidence likelihood of a model with attributes (prior weights, an offset, binomial
trials) is the model native fits: at native's estimates it gives native's reported
log-likelihood, and it is not the likelihood of the same formula without the attributes.

Why: the judge evaluates every engine's estimates with this likelihood; if it dropped a weight or
an offset, it would judge the estimates of one model by the likelihood of another.
"""

from __future__ import annotations

import pytest

from backends.native.evidence import estimates_of
from tests.native.evidence_fits import GCSE, evidence, fit, gcse

ATTRIBUTE_DERIVE = GCSE + [{"name": "w", "expr": "1 + girl"},
                           {"name": "o", "expr": "lrt / 50"},
                           {"name": "n6", "expr": "6 - ct_gcse"}]
RI = "lrt + girl + (1 | school)"
LAPLACE = {"method": "laplace"}

CASES = {
    "gaussian LMM, weights and offset": dict(formula="gcse ~ " + RI, weights="w", offset="o"),
    "gaussian single-level, weights": dict(formula="gcse ~ lrt + girl", weights="w"),
    "binomial GLMM, weights and offset": dict(formula="hi_gcse ~ " + RI, family="binomial",
                                              integration=LAPLACE, weights="w", offset="o"),
    "binomial GLMM, cbind trials": dict(formula="cbind(ct_gcse, n6) ~ " + RI,
                                        family="binomial", integration=LAPLACE),
    "poisson GLMM, offset term": dict(formula="ct_gcse ~ lrt + offset(o) + (1 | school)",
                                      family="poisson", integration=LAPLACE),
    "binomial GLM, weights": dict(formula="hi_gcse ~ lrt + girl", family="binomial",
                                  weights="w"),
    "ordinal GLMM, weights": dict(formula="ord_gcse ~ lrt + (1 | school)", family="ordinal",
                                  integration=LAPLACE, weights="w"),
}


@pytest.fixture(autouse=True)
def _data(data_dir):
    """Every test here needs the course data (skip without it)."""


def _spec(with_attributes: bool, formula: str, **model):
    if not with_attributes:
        model.pop("weights", None)
        model.pop("offset", None)
        formula = formula.replace(" + offset(o)", "").replace("cbind(ct_gcse, n6)", "ct_gcse")
        if "ct_gcse ~" in formula and model.get("family") == "binomial":
            formula = formula.replace("ct_gcse ~", "hi_gcse ~")
    return gcse(formula, derive=ATTRIBUTE_DERIVE, **model)


@pytest.mark.parametrize("name", list(CASES))
def test_evidence_of_a_model_with_attributes_is_the_fitted_model(name):
    s = _spec(True, **CASES[name])
    r = fit(s)
    est = estimates_of(r)
    at = evidence(s).loglik(est, r.estimator)
    assert at.reason is None, at.reason
    assert at.loglik == pytest.approx(r.statistics.loglik, rel=1e-8, abs=0)  # measured <= 2e-12
    # the same formula without the attributes is another likelihood at these estimates
    bare = evidence(_spec(False, **CASES[name])).loglik(est, r.estimator)
    assert bare.loglik is None or abs(bare.loglik - r.statistics.loglik) > 1.0  # measured >= 89
