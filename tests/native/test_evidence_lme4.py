"""The evidence engine at lme4's estimates (lmer, lm, glm gaussian through the lme4 backend):
the full log-likelihood equals lme4's reported logLik, and lme4's fixed effects and sigma are
the profiled values of its own theta."""

from __future__ import annotations

import pytest

from backends.native.evidence import estimates_of

from .evidence_fits import GAUSSIAN, RS_ML, evidence, fit

pytestmark = pytest.mark.needs_r


@pytest.mark.parametrize("name", list(GAUSSIAN))
def test_loglik_at_lme4s_estimates_is_lme4s(lme4_backend, data_dir, name):
    s = GAUSSIAN[name]
    r = fit(s, "lme4")
    est = estimates_of(r)
    at = evidence(s, "lme4").loglik(est, r.estimator)
    assert at.reason is None and at.unused == ()
    assert at.loglik == pytest.approx(r.statistics.loglik, rel=1e-9, abs=0)   # <= 1.8e-13 (nurses)
    for key, value in at.profiled.items():
        assert value == pytest.approx(est[key], rel=1e-8, abs=1e-10), key       # <= 4e-13


def test_lme4s_fixed_effect_ses_are_the_conditional_ones(lme4_backend, data_dir):
    r = fit(RS_ML, "lme4")
    cov = evidence(RS_ML, "lme4").covariance(estimates_of(r), r.estimator)
    for p in r.parameters:
        if p.effect == "fixed":
            assert cov.conditional_std_errors[p.key] == pytest.approx(p.std_error, rel=1e-7)
            assert cov.std_errors[p.key] > p.std_error      # 0.03 % .. 0.36 % larger
