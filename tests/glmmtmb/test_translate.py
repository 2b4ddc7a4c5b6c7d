"""The glmmTMB call is written from the spec, never from user text (no R needed)."""

from __future__ import annotations

import pandas as pd
import pytest

from backends.glmmtmb import translate
from backends.lme4.translate import TranslationError
from harness.estimator import Estimator
from tests.lme4.helpers import make_spec


def plan_of(model: dict, frame: pd.DataFrame | None = None, **extra):
    spec = make_spec("gcse", model, **extra)
    return translate.plan(spec, spec.model_for("glmmtmb"), frame)


def test_lmm_is_ml_unless_the_spec_asks_reml():
    ml = plan_of({"formula": "gcse ~ lrt + (1 + lrt | school)", "method": "ML"})
    assert ml.call == ('glmmTMB::glmmTMB(gcse ~ lrt + (1 + lrt | school), data = d, '
                       'family = gaussian(link = "identity"), REML = FALSE)')
    assert ml.estimator == Estimator("ML") and ml.kind == "glmmTMB" and ml.gaussian
    reml = plan_of({"formula": "gcse ~ lrt + (1 | school)", "method": "REML"})
    assert "REML = TRUE" in reml.call and reml.estimator == Estimator("REML")


def test_glmm_is_laplace_with_trials_offset_and_weights():
    p = plan_of({"formula": "cbind(s, f) ~ x + (1 | g)", "family": "binomial", "method": "ML",
                 "integration": {"method": "laplace"}})
    assert p.call.startswith("glmmTMB::glmmTMB(cbind(s, f) ~ x + (1 | g), data = d, "
                             'family = binomial(link = "logit")')
    assert p.estimator == Estimator("ML", "laplace", 1) and not p.gaussian
    q = plan_of({"formula": "n ~ x + (1 | g)", "family": "poisson", "method": "ML",
                 "integration": {"method": "laplace"}, "offset": "log exposure",
                 "weights": "w"})
    assert "n ~ x + (1 | g) + offset(`log exposure`)" in q.call
    assert "weights = w" in q.call
    assert set(q.columns) == {"n", "x", "g", "log exposure", "w"}


def test_names_are_escaped_and_factors_declared():
    frame = pd.DataFrame({"y": [1.0, 2.0], "my x": [0.0, 1.0], "sex": ["m", "f"],
                          "grp": ["b", "a"]})
    p = plan_of({"formula": "y ~ `my x` + sex + (1 | grp)", "method": "ML"}, frame)
    assert p.call.startswith("glmmTMB::glmmTMB(y ~ `my x` + sex + (1 | grp), data = d")
    # a text predictor gets the harness's levels (C-locale sort), as for lme4
    assert p.factor_lines == ('d$sex <- factor(d$sex, levels = sort(unique(d$sex), '
                              'method = "radix"))',)


@pytest.mark.parametrize("model, reason", [
    ({"formula": "hi ~ lrt + (1 | school)", "family": "binomial", "method": "ML",
      "integration": {"method": "aghq", "points": 7}}, "Laplace approximation"),
    ({"formula": "y ~ lrt + (1 | school)", "family": "ordinal", "method": "ML",
      "integration": {"method": "laplace"}}, "ordinal"),
    ({"formula": "y ~ lrt + (1 | school)", "family": "multinomial", "method": "ML",
      "integration": {"method": "laplace"}}, "multinomial"),
    ({"formula": "gcse ~ lrt", "method": "OLS"}, "OLS"),
    ({"formula": "gcse ~ lrt", "method": "ML", "cluster_se": "school"}, "cluster-robust"),
    ({"formula": "gcse ~ lrt + (1 | school)", "method": "ML", "weights": "w"},
     "precision weights"),
    ({"formula": "cbind(s, f) ~ x + (1 | g)", "family": "binomial", "method": "ML",
      "integration": {"method": "laplace"}, "weights": "w"}, "trials"),
    ({"formula": "gcse ~ lrt + (1 | school)", "method": "ML", "optimizer": "bobyqa"},
     "lme4 optimizer"),
])
def test_what_glmmtmb_cannot_fit_is_not_estimable(model, reason):
    spec = make_spec("gcse", model)
    got = translate.unsupported_reason(spec.model_for("glmmtmb"))
    assert got is not None and reason in got
    with pytest.raises(TranslationError, match=reason):
        translate.plan(spec, spec.model_for("glmmtmb"))


def test_max_iterations_is_honoured():
    p = plan_of({"formula": "gcse ~ lrt + (1 | school)", "method": "ML",
                 "max_iterations": 50})
    assert "control = glmmTMB::glmmTMBControl(optCtrl = list(iter.max = 50, eval.max = 50))" \
        in p.call


def test_a_spec_can_skip_glmmtmb():
    spec = make_spec("gcse", {"formula": "gcse ~ lrt + (1 | school)", "method": "ML"},
                     backends={"glmmtmb": {"skip": "no robust SEs"}})
    assert spec.skip_reason("glmmtmb") == "no robust SEs"


def test_a_hessian_that_is_not_positive_definite_means_not_converged():
    """extract.R reports fit$sdr$pdHess FALSE as lme4_code 1 with the reason (no R needed:
    the reply as the worker sends it)."""
    from backends.lme4 import convert

    p = plan_of({"formula": "gcse ~ lrt + (1 + lrt | school)", "method": "ML"})
    reason = ("glmmTMB: the Hessian of the log-likelihood is not positive definite "
              "(fit$sdr$pdHess is FALSE)")
    reply = {"opt_code": [0.0], "lme4_code": [1], "conv_messages": [reason], "warnings": [],
             "optimizer_message": ["relative convergence (4)"], "max_grad_raw": [1e-6],
             "max_grad_check": [1e-6], "optimizer": ["nlminb"]}
    d = convert.diagnostics(reply, p)
    assert d.converged is False and reason in d.warnings
    assert convert.diagnostics({**reply, "lme4_code": [0], "conv_messages": []}, p).converged
