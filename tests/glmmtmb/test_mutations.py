"""Injected errors in a glmmTMB result are caught by the judge (as tests/test_judge_mutations.py
does for native and lme4).

Real native and glmmTMB fits of an ML and a REML random-slope LMM and a Laplace logit GLMM are
judged as they are (no unexplained cell), then again after one number of glmmTMB's result is
changed: a fixed effect by half an SE, its SE by 5 %, an sd by 5 %, an sd's SE by 5 % (glmmTMB's
delta-method SE), a correlation by 0.05, the log-likelihood by 1e-2, and every parameter by ten
times the tolerance of its check against native. Each change that moves a check beyond its
tolerance must leave that check unexplained: glmmTMB's log-likelihood is native's at its
estimates to 1.44e-12 relative (allowance 1e-11), so no change is hidden by an equally good
optimum.
"""

from __future__ import annotations

import math

import pytest

from harness.keys import ParamKey, Source
from harness.runner import RunOptions, run_specs
from harness.spec import load_specs
from tests.test_judge_mutations import cells, rejudge, with_loglik, with_parameter

pytestmark = [pytest.mark.needs_r, pytest.mark.slow]

SPECS = {"LMM random slope, ML": "lab1.stata1.1.rs_ml",
         "LMM random slope, REML": "lab1.ex1.1.mlm2a",
         "GLMM logit random slope, Laplace": "lab1.spss1.3b.bin_rs"}
GLMMTMB = Source.backend("glmmtmb")


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    from backends.base import get_backend

    if not get_backend("glmmtmb").availability().ok:
        pytest.skip(f"backend glmmtmb unavailable: "
                    f"{get_backend('glmmtmb').availability().message()}")
    specs = [(p, s) for p, s in load_specs(["specs"]) if s.id in SPECS.values()]
    suite = run_specs(specs, RunOptions(backends=["native", "glmmtmb"], jobs=2,
                                        data_dir=data_dir,
                                        cache_dir=tmp_path_factory.mktemp("fits")))
    return {run.spec.id: run for run in suite.runs}


@pytest.fixture(autouse=True)
def _required(request):
    from tests.conftest import require_backend

    require_backend(request, "glmmtmb")


def test_unchanged_fits_have_no_unexplained_cell(runs):
    for run in runs.values():
        assert run.results["glmmtmb"].status == "ok", run.results["glmmtmb"].message
        bad = [f"{c.key} {c.quantity} {c.source_a} vs {c.source_b}"
               for c in run.comparison.checks if c.verdict == "unexplained"]
        assert not bad, f"{run.spec.id}: {bad}"


def _mutations(run):
    r = run.results["glmmtmb"]
    fixed = max((p for p in r.parameters if p.effect == "fixed" and p.std_error),
                key=lambda q: abs(q.estimate / q.std_error))
    sd = next(p for p in r.parameters if p.param_key.kind == "ran_pars"
              and p.param_key.scale == "sd" and not p.param_key.is_residual)
    cor = next(p for p in r.parameters if p.param_key.scale == "cor")
    yield "fixed +0.5 SE", fixed.param_key, "estimate", \
        with_parameter(r, fixed.param_key, "estimate", fixed.estimate + 0.5 * fixed.std_error)
    yield "fixed SE x 1.05", fixed.param_key, "std_error", \
        with_parameter(r, fixed.param_key, "std_error", fixed.std_error * 1.05)
    yield "sd x 1.05", sd.param_key, "estimate", \
        with_parameter(r, sd.param_key, "estimate", sd.estimate * 1.05)
    yield "sd's SE x 1.05", sd.param_key, "std_error", \
        with_parameter(r, sd.param_key, "std_error", sd.std_error * 1.05)
    yield "correlation + 0.05", cor.param_key, "estimate", \
        with_parameter(r, cor.param_key, "estimate", cor.estimate + 0.05)
    yield "loglik + 0.01", ParamKey.stat("loglik"), "estimate", \
        with_loglik(r, r.statistics.loglik + 0.01)


@pytest.mark.parametrize("label", list(SPECS))
def test_large_errors_in_a_glmmtmb_result_are_caught(runs, label):
    run = runs[SPECS[label]]
    missed = []
    for name, key, quantity, changed in _mutations(run):
        if not cells(run.comparison, "glmmtmb", key, quantity):
            # nothing else reports it (no engine but glmmTMB gives REML variance SEs)
            assert label != "LMM random slope, ML", f"{name}: no check to catch it"
            continue
        beyond = [c for c in cells(rejudge(run, "glmmtmb", changed), "glmmtmb", key, quantity)
                  if c.abs_diff > c.tolerance]
        assert beyond, f"{label}: {name} moved no check beyond tolerance"
        missed += [f"{name}: {c.key} {c.verdict} {c.explanation[:90]}" for c in beyond
                   if c.verdict != "unexplained"]
    assert not missed, f"{label}: " + "; ".join(missed)


@pytest.mark.xfail(reason="not yet true for glmmTMB: a change of ten engine tolerances to a "
                   "weakly determined fixed effect (sch_2, sch_3: SE ~1) moves the logLik by "
                   "~1e-8, within the flat rule's reach, and a cov changed alone is not part of "
                   "the evaluated point (its sd and cor are); measured 2026-12-02, to be "
                   "resolved before glmmtmb joins the main job", strict=False)
@pytest.mark.parametrize("label", list(SPECS))
def test_errors_of_ten_tolerances_are_caught(runs, label):
    run = runs[SPECS[label]]
    native = Source.backend("native")
    missed, tried = [], 0
    for c in run.comparison.checks:
        if {c.source_a, c.source_b} != {GLMMTMB, native}:
            continue
        if c.key.kind not in ("fixed", "ran_pars") and c.key != ParamKey.stat("loglik"):
            continue
        mine = c.value_a if c.source_a == GLMMTMB else c.value_b
        theirs = c.value_b if c.source_a == GLMMTMB else c.value_a
        value = mine + math.copysign(10 * c.tolerance, mine - theirs or 1.0)
        if c.key.kind == "ran_pars" and c.key.scale in ("sd", "var") and value <= 0:
            continue
        r = run.results["glmmtmb"]
        changed = with_loglik(r, value) if c.key == ParamKey.stat("loglik") else \
            with_parameter(r, c.key, c.quantity, value)
        tried += 1
        for d in cells(rejudge(run, "glmmtmb", changed), "glmmtmb", c.key, c.quantity):
            if d.abs_diff > d.tolerance and d.verdict != "unexplained":
                missed.append(f"{c.key}:{c.quantity} vs {d.source_b} {d.verdict} "
                              f"[{d.known_id}] {d.explanation[:80]}")
    assert tried
    assert not missed, f"{label}: " + "; ".join(missed)
