"""lme4's backend reports pbkrtest's Kenward-Roger tests (through lmerTest) on small REML LMMs,
and native recomputes them at lme4's own estimates (the flat-inference rule's evidence)."""

from __future__ import annotations

import pytest

from backends.native.design import build_design
from backends.native.evidence import EvidenceModel, estimates_of
from backends.native.gaussian_loglik import GaussianLikelihood
from harness.estimator import Estimator

from .helpers import make_spec

pytestmark = pytest.mark.needs_r

POP_RS = "popular ~ sex + extrav + texp + ext_exp + (1 + extrav | class)"
DERIVE = [{"name": "ext_exp", "expr": "extrav * texp"}]


def test_popular_rs_reml_kr_df_and_native_recomputes_them_at_lme4s_estimates(lme4, job_for):
    job = job_for(make_spec("popular2", {"formula": POP_RS, "method": "REML"}, derive=DERIVE))
    r = lme4.fit(job)
    assert r.status == "ok", r.message
    kr = {t.term: t for t in r.tests if t.df_method == "kenward-roger"}
    assert set(kr) == {"(Intercept)", "sex", "extrav", "texp", "ext_exp"}
    assert kr["extrav"].df == pytest.approx(80.934, rel=2e-3)   # pbkrtest at a tight optimum
    design = build_design(POP_RS, job.data)
    ev = EvidenceModel(GaussianLikelihood(design))
    reml = Estimator("REML")
    est = estimates_of(r)
    cov = ev.covariance(est, reml)
    got = ev.inference(est, reml, {**cov.std_errors, **cov.conditional_std_errors})
    for term, t in kr.items():
        assert got[f"fixed/{term}:df:kenward-roger"] == pytest.approx(t.df, rel=1e-6), term
        assert got[f"fixed/{term}:p:kenward-roger"] == pytest.approx(t.p_value, rel=1e-5), term


def test_kr_is_skipped_above_the_size_cap_with_a_message(fit):
    r = fit("gcse", {"formula": "gcse ~ lrt + (1 | school)", "method": "REML"})
    assert r.status == "ok", r.message
    assert not [t for t in r.tests if t.df_method == "kenward-roger"]
    assert [t for t in r.tests if t.df_method == "satterthwaite"]
    assert any("no Kenward-Roger df from pbkrtest: 4059 observations > 2500" in m
               for m in r.diagnostics.messages), r.diagnostics.messages
