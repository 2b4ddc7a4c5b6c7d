"""The statsmodels backend on simulated data: layout, not-estimable reasons, and agreement with
native on the models it expresses (groups + exog_re, nested and crossed variance components).

Native is the yardstick: it is tested against lme4 elsewhere, and the two must agree to the
measured statsmodels rows of harness/tolerances.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("statsmodels")

from backends.base import FitJob  # noqa: E402
from backends.native.design import build_design  # noqa: E402
from backends.statsmodels.backend import StatsmodelsBackend, mixedlm_model  # noqa: E402
from backends.statsmodels.layout import NotExpressible, layout  # noqa: E402
from harness.spec import Spec  # noqa: E402
from harness.tolerances import engine_rows, policy_row  # noqa: E402


def _data(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_h, wards, per = 12, 4, 8
    hosp = np.repeat(np.arange(n_h), wards * per)
    ward = np.repeat(np.arange(n_h * wards), per)
    x = rng.normal(size=hosp.size)
    rater = rng.integers(0, 15, size=hosp.size)  # crossed with hospitals
    y = (1 + 0.5 * x + rng.normal(size=n_h)[hosp] + 0.4 * rng.normal(size=n_h)[hosp] * x
         + 0.6 * rng.normal(size=n_h * wards)[ward] + 0.5 * rng.normal(size=15)[rater]
         + rng.normal(size=hosp.size))
    return pd.DataFrame({"y": y, "x": x, "hosp": hosp, "ward": ward, "rater": rater})


def _spec(formula: str, method: str = "REML", **model) -> Spec:
    return Spec.model_validate({"id": "t", "title": "t", "dataset": "t", "source": "test",
                                "model": {"formula": formula, "family": model.pop("family",
                                                                                  "gaussian"),
                                          "method": method, **model}})


def _fit(formula: str, method: str = "REML", data: pd.DataFrame | None = None):
    spec = _spec(formula, method)
    job = FitJob(spec=spec, model=spec.model, data=_data() if data is None else data)
    sm = StatsmodelsBackend().fit(job)
    from backends.native.backend import NativeBackend
    return sm, NativeBackend().fit(job)


def _close(sm, nat, quantity="estimate"):
    """Largest relative difference of sm vs native over each quantity class."""
    a = {p.key: p for p in nat.parameters}
    worst: dict[str, float] = {}
    for p in sm.parameters:
        q = a[p.key]
        x, y = getattr(p, quantity), getattr(q, quantity)
        if x is None or y is None:
            continue
        scale = max(abs(y), q.std_error or 0.0) if p.effect == "fixed" else max(abs(y), 1e-12)
        cls = p.effect + ("/cor" if p.term.startswith("cor__") else "")
        worst[cls] = max(worst.get(cls, 0.0), abs(x - y) / (scale if "cor" not in cls else 1))
    return worst


@pytest.mark.parametrize("formula, method, grouping, k_vc", [
    ("y ~ x + (1 + x | hosp)", "ML", "hosp", 0),
    ("y ~ x + (1 + x | hosp)", "REML", "hosp", 0),
    ("y ~ x + (1 | hosp) + (0 + x | hosp)", "ML", "hosp", 1),
    ("y ~ x + (1 | hosp) + (1 | ward)", "REML", "hosp", 1),
    ("y ~ x + (1 + x | hosp) + (1 | ward)", "ML", "hosp", 1),
    ("y ~ x + (1 | hosp) + (1 | rater)", "ML", None, 2),
])
def test_statsmodels_agrees_with_native(formula, method, grouping, k_vc):
    sm, nat = _fit(formula, method)
    assert sm.status == "ok", sm.message
    assert sm.diagnostics.converged is True
    assert sm.estimator is not None and sm.estimator.criterion == method
    design = build_design(formula, _data())
    plan = layout(design)
    assert plan.group_factor == grouping and len(plan.vc_terms) == k_vc
    assert {p.key for p in sm.parameters} == {p.key for p in nat.parameters}
    worst = _close(sm, nat)
    assert worst["fixed"] < 1e-3 and worst["ran_pars"] < 1e-2, worst
    assert abs(sm.statistics.loglik - nat.statistics.loglik) < 1e-4
    assert sm.statistics.df == nat.statistics.df
    assert sm.statistics.ngroups == nat.statistics.ngroups
    se = _close(sm, nat, "std_error")["fixed"]
    # statsmodels' joint Hessian moves its SEs from the conditional ones (SM1, < 4.5 %)
    assert se < 4.5e-2, se


def test_reml_se_gap_is_the_joint_hessian_cross_block():
    """The SM1 mechanism: inverting only the fixed-effect block of statsmodels' own Hessian
    gives native's (and lme4's) SEs; statsmodels' reported SEs (the joint inverse) differ."""
    formula = "y ~ x + (1 | hosp) + (1 | ward)"
    data = _data()
    design = build_design(formula, data)
    fitted = mixedlm_model(design, layout(design)).fit(reml=True)
    hess, _ = fitted.model.hessian(fitted.params_object)
    conditional = np.sqrt(np.diag(np.linalg.inv(-hess[:design.p, :design.p])))
    sm, nat = _fit(formula, "REML", data)
    native_se = np.array([p.std_error for p in nat.parameters if p.effect == "fixed"])
    # measured: conditional within 1.2e-5 of native, statsmodels' own 3.4e-3 from it
    assert np.allclose(conditional, native_se, rtol=1e-4)
    assert np.abs(np.asarray(fitted.bse_fe) / native_se - 1).max() > 1e-3
    assert [p.std_error for p in sm.parameters if p.effect == "fixed"] == \
        pytest.approx(list(fitted.bse_fe), rel=1e-6)  # the result reports statsmodels' own


@pytest.mark.parametrize("formula, words", [
    ("y ~ x + (1 + x | hosp) + (1 + x | ward)", "correlated block"),
    ("y ~ x + (1 + x | hosp) + (1 | rater)", "crossed"),
])
def test_inexpressible_random_parts_say_why(formula, words):
    design = build_design(formula, _data())
    with pytest.raises(NotExpressible, match=words):
        layout(design)
    sm, _ = _fit(formula)
    assert sm.status == "not_estimable" and words in sm.message


def test_two_correlated_blocks_of_the_group_factor_are_not_estimable():
    data = _data().assign(z=lambda d: d.x ** 2, w=lambda d: np.sin(d.x))
    design = build_design("y ~ x + (1 + x | hosp) + (0 + z + w | hosp)", data)
    with pytest.raises(NotExpressible, match="two correlated blocks"):
        layout(design)


@pytest.mark.parametrize("model, words", [
    ({"family": "binomial", "integration": {"method": "laplace"}}, "variational-Bayes"),
    ({"weights": "x"}, "prior weights"),
    ({"offset": "x"}, "no offset"),
])
def test_unsupported_models_are_not_estimable_with_the_reason(model, words):
    formula = "b ~ x + (1 | hosp)" if model.get("family") == "binomial" else \
        "y ~ x + (1 | hosp)"
    spec = _spec(formula, "ML", **model)
    reason = StatsmodelsBackend().unsupported_reason(spec.model)
    assert reason and words in reason


def test_single_level_models_are_not_estimable():
    spec = _spec("y ~ x", "OLS")
    assert "mixed models (MixedLM) only" in StatsmodelsBackend().unsupported_reason(spec.model)


def test_non_convergence_is_reported_and_gets_no_tolerance(monkeypatch):
    """statsmodels' converged flag reaches the result, and such a result's pair gets the
    'unconverged' rows (no tolerance at all)."""
    from statsmodels.regression.mixed_linear_model import MixedLM
    fit = MixedLM.fit
    monkeypatch.setattr(MixedLM, "fit", lambda self, **kw: fit(self, **{**kw, "maxiter": 1}))
    sm, nat = _fit("y ~ x + (1 + x | hosp)", "ML")
    assert sm.status == "ok" and sm.diagnostics.converged is False
    assert any("did not converge" in m for m in sm.diagnostics.messages)
    assert engine_rows(nat, sm) == "unconverged"
    assert engine_rows(nat, None) == "engines"


def test_statsmodels_rows_fall_back_to_the_engine_rows():
    assert policy_row("statsmodels", "LMM", "count").pair == "engines"
    assert policy_row("statsmodels", "LMM", "fixed").pair == "statsmodels"
    assert policy_row("statsmodels", "near-singular", "variance").pair == "engines"


def test_render_shows_the_call_without_executing_user_text():
    spec = _spec("y ~ x + (1 | hosp)", "ML")
    code = StatsmodelsBackend().render(spec)
    assert "mixedlm_model(design, layout(design))" in code
    assert "'y ~ x + (1 | hosp)'" in code  # the formula only as a Python string literal
