"""glmmTMB fits of course models, checked against native's likelihood at glmmTMB's estimates.

The evidence engine (backends/native/evidence.py) evaluates the same full log-likelihood and its
observed information: glmmTMB's logLik must be that value at its own estimates, and each SE it
reports (fixed effects from the joint inverse Hessian; sd, var, cor, cov by the delta method
from its log-sd parameters) native's SE at the same point. Measured on these specs
(benchmarks/glmmtmb_accuracy.py): logLik <= 1.44e-12 relative (LMMs 1.8e-14), SEs <= 9.1e-6.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from backends.base import FitJob
from backends.native.evidence import EvidenceModel, estimates_of
from harness.estimator import Estimator
from harness.runner import prepare_data
from harness.spec import load_spec
from tests.conftest import REPO_ROOT
from tests.lme4.helpers import make_spec

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

SPECS = {"ML random slope": "specs/gcse/lab1.stata1.1.rs_ml.yaml",
         "REML random slope": "specs/gcse/lab1.ex1.1.mlm2a.yaml",
         "logit random slope, Laplace": "specs/gcse/lab1.spss1.3b.bin_rs.yaml",
         "Poisson random intercept, Laplace": "specs/popular2/lab1.ex1.3.p1b.yaml"}
#: LMMs 1.8e-14, GLMMs 1.44e-12 measured (harness/evidence.py GLMMTMB_LOGLIK_RELATIVE)
LOGLIK_RELATIVE = 1e-11
#: 9.1e-6 measured (TMB's Hessian of its AD gradient against native's Richardson-extrapolated
#: one); an SE off by 1e-3 fails
SE_RELATIVE = 1e-4


def _fit(glmmtmb, spec_path: str, data_dir):
    spec = load_spec(REPO_ROOT / spec_path)
    data = prepare_data(spec, data_dir)
    model = spec.model_for("glmmtmb")
    result = glmmtmb.fit(FitJob(spec=spec, model=model, data=data.frame,
                                data_path=data.path, data_sha256=data.sha256))
    return spec, data, model, result


@pytest.mark.parametrize("label", list(SPECS))
def test_glmmtmb_reports_the_likelihood_and_ses_of_its_estimates(glmmtmb, data_dir, label):
    spec, data, model, r = _fit(glmmtmb, SPECS[label], data_dir)
    assert r.status == "ok", r.message
    assert r.diagnostics.converged is True
    ev = EvidenceModel.build(model, data.frame, spec.factor_columns(),
                             contrasts=spec.contrasts())
    at = ev.loglik(estimates_of(r), r.estimator)
    assert abs(r.statistics.loglik - at.loglik) <= LOGLIK_RELATIVE * abs(at.loglik)
    native = ev.covariance(estimates_of(r), r.estimator).std_errors
    compared = 0
    for p in r.parameters:
        if p.std_error is None or native.get(p.key) is None:
            continue
        assert p.std_error == pytest.approx(native[p.key], rel=SE_RELATIVE), p.key
        compared += 1
    variance_ses = [p for p in r.parameters if p.effect == "ran_pars" and p.std_error]
    assert variance_ses and compared >= len(variance_ses)


def test_estimators_and_statistics(glmmtmb, data_dir):
    _, _, _, ml = _fit(glmmtmb, SPECS["ML random slope"], data_dir)
    assert ml.estimator == Estimator("ML") and ml.statistics.reml_criterion is None
    assert ml.statistics.deviance == pytest.approx(-2 * ml.statistics.loglik)
    assert ml.statistics.ngroups == {"school": 65} and ml.statistics.nobs == 4059
    _, _, _, reml = _fit(glmmtmb, SPECS["REML random slope"], data_dir)
    assert reml.estimator == Estimator("REML") and reml.statistics.deviance is None
    assert reml.statistics.reml_criterion == pytest.approx(-2 * reml.statistics.loglik)
    _, _, _, glmm = _fit(glmmtmb, SPECS["logit random slope, Laplace"], data_dir)
    assert glmm.estimator == Estimator("ML", "laplace", 1)
    assert glmm.estimator.label() == "Laplace"
    assert "glmmTMB" in glmm.provenance.software and "TMB" in glmm.provenance.software
    assert glmm.provenance.call.startswith("glmmTMB::glmmTMB(")
    assert "library(glmmTMB)" in glmm.provenance.script
    assert glmm.provenance.call in glmm.provenance.script
    # conditional modes of every school, with their conditional SDs
    assert len([e for e in glmm.random_effects if e.term == "(Intercept)"]) == 65
    assert all(e.std_error and e.std_error > 0 for e in glmm.random_effects)


def test_the_variance_parameters_agree_with_lmer_at_the_optimum(glmmtmb, lme4_backend, data_dir):
    """Both maximise the same ML likelihood; glmmTMB's nlminb stops within 1e-4 relative."""
    spec, data, model, r = _fit(glmmtmb, SPECS["ML random slope"], data_dir)
    lme4 = lme4_backend.fit(FitJob(spec=spec, model=spec.model_for("lme4"), data=data.frame))
    mine, theirs = r.parameter_map(), lme4.parameter_map()
    assert set(theirs) <= set(mine)
    for name, p in theirs.items():
        assert mine[name].estimate == pytest.approx(p.estimate, rel=1e-3, abs=1e-4), name
    assert r.statistics.loglik == pytest.approx(lme4.statistics.loglik, abs=1e-4)


def test_false_convergence_is_not_converged(glmmtmb, tmp_path):
    """A perfectly separated outcome: the slope runs off to infinity and nlminb reports false
    convergence (code 1), which glmmTMB also warns about."""
    frame = pd.DataFrame({"x": np.linspace(-1, 1, 200), "g": np.repeat(np.arange(10), 20)})
    frame["y"] = (frame["x"] > 0).astype(float)
    path = tmp_path / "separated.csv"
    frame.to_csv(path, index=False)
    spec = make_spec(str(path), {"formula": "y ~ x + (1 | g)", "family": "binomial",
                                 "method": "ML", "integration": {"method": "laplace"}})
    r = glmmtmb.fit(FitJob(spec=spec, model=spec.model_for("glmmtmb"), data=frame))
    assert r.status == "ok"
    assert r.diagnostics.converged is False
    assert any("false convergence (8)" in w for w in r.diagnostics.warnings), \
        r.diagnostics.warnings


def test_not_estimable_models_are_refused_before_r(glmmtmb, data_dir):
    spec = load_spec(REPO_ROOT / "specs/gcse/lab1.stata1.4.bin_ri.yaml")
    model = spec.model_for("glmmtmb")
    assert model.integration is not None and model.integration.method == "aghq"
    r = glmmtmb.fit(FitJob(spec=spec, model=model, data=pd.DataFrame()))
    assert r.status == "not_estimable" and "Laplace approximation" in r.message


def test_availability_names_the_missing_package(monkeypatch):
    from backends.base import Availability
    from backends.glmmtmb import backend as gb

    monkeypatch.setattr(gb, "check_availability",
                        lambda: Availability(True, versions=(("R", "4.2.2"), ("lme4", "1.1")))
                        )
    got = gb.GlmmtmbBackend().availability()
    assert not got.ok and "glmmTMB is not installed" in got.reason
    assert got.fix == "apt-get install r-cran-glmmtmb"


def test_a_single_level_glm_fits(glmmtmb, data_dir):
    """No random effects: glmmTMB's VarCorr and ranef are not called (they fail on them)."""
    spec, data, model, r = _fit(glmmtmb, "specs/popular2/lab1.ex1.3.b1a.yaml", data_dir)
    assert r.status == "ok", r.message
    assert r.estimator == Estimator("ML") and not r.random_effects
    ev = EvidenceModel.build(model, data.frame, spec.factor_columns(),
                             contrasts=spec.contrasts())
    at = ev.loglik(estimates_of(r), r.estimator)
    assert abs(r.statistics.loglik - at.loglik) <= LOGLIK_RELATIVE * abs(at.loglik)
