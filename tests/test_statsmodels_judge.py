"""The judge on statsmodels fits, tested as test_judge_mutations.py tests it on lme4's: real
native and statsmodels fits of course LMMs are judged as they are (no unexplained cell), then
after one number of the statsmodels result is changed. A change beyond its tolerance must come
out ``unexplained``, a third of it must stay ``agree``; a statsmodels fit that did not converge
is never ``agree``; and a variance statsmodels puts at the boundary neither agrees with native's
nor makes the group near-singular (which would loosen the tolerance of every pair).

No R is needed: native is the other engine (lme4 vs statsmodels uses the same rows).
"""

from __future__ import annotations

import copy
import math

import pytest

pytest.importorskip("statsmodels")

from harness.compare import compare_spec  # noqa: E402
from harness.evidence import build_evidence  # noqa: E402
from harness.keys import ParamKey, Source  # noqa: E402
from harness.results import FitResult  # noqa: E402
from harness.runner import RunOptions, run_specs  # noqa: E402
from harness.spec import load_specs  # noqa: E402
from tests.test_judge_mutations import with_loglik, with_parameter  # noqa: E402

pytestmark = [pytest.mark.slow]

SM = Source.backend("statsmodels")
CLASSES = {
    "random intercept, ML": "lab1.stata1.1.ri_ml",
    "random slope, ML (unstructured)": "lab1.stata1.1.rs_ml",
    "random slope, REML": "lab1.ex1.2.fm5",
    "three levels, nested (variance component)": "lab1.stata1.5.l3_a",
    "independent slope (variance component in groups)": "lab1.spss1.4.l3_d_vc",
}


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    specs = [(p, s) for p, s in load_specs(["specs"]) if s.id in CLASSES.values()]
    suite = run_specs(specs, RunOptions(backends=["native", "statsmodels"], jobs=1,
                                        data_dir=data_dir,
                                        cache_dir=tmp_path_factory.mktemp("fits")))
    return {run.spec.id: run for run in suite.runs}


def rejudge(run, changed: FitResult):
    results = {**run.results, "statsmodels": changed}
    ev = build_evidence(run.spec, run.data.frame, run.data.nesting, results,
                        run.comparison.evidence.bridges)
    return compare_spec(run.spec, results, run.data.nesting, evidence=ev)


def engine_checks(comp, key: ParamKey | None = None, quantity: str | None = None):
    return [c for c in comp.checks if {c.source_a, c.source_b} == {SM, Source.backend("native")}
            and (key is None or c.key == key) and (quantity is None or c.quantity == quantity)]


@pytest.mark.parametrize("label", list(CLASSES))
def test_unchanged_statsmodels_fits_have_no_unexplained_cell(runs, label):
    run = runs[CLASSES[label]]
    assert run.results["statsmodels"].status == "ok"
    bad = [f"{c.key} {c.quantity} {c.source_a} vs {c.source_b}: {c.value_a} {c.value_b}"
           for c in run.comparison.checks if c.verdict == "unexplained"]
    assert not bad, bad


def _moved(run, factor: float):
    """(key, quantity, changed result) for every statsmodels number moved by ``factor`` x its
    tolerance against native, away from native."""
    out = []
    for c in engine_checks(run.comparison):
        if c.key.kind not in ("fixed", "ran_pars") and c.key != ParamKey.stat("loglik"):
            continue
        mine, theirs = (c.value_a, c.value_b) if c.source_a == SM else (c.value_b, c.value_a)
        value = mine + math.copysign(factor * c.tolerance, mine - theirs or 1.0)
        if c.key.kind == "ran_pars" and c.key.scale in ("sd", "var") and value <= 0:
            continue
        r = run.results["statsmodels"]
        changed = with_loglik(r, value) if c.key == ParamKey.stat("loglik") else \
            with_parameter(r, c.key, c.quantity, value)
        out.append((c, changed))
    return out


@pytest.mark.parametrize("label", list(CLASSES))
def test_statsmodels_errors_of_ten_tolerances_are_caught(runs, label):
    run = runs[CLASSES[label]]
    missed = []
    moved = _moved(run, 10.0)
    assert moved
    for before, changed in moved:
        if before.key.kind == "fixed" and before.quantity == "std_error":
            # ten engine tolerances (1e-3) of a fixed-effect SE lie inside SM1's measured bound
            # (4.5 %) for statsmodels' joint-Hessian SEs, so they cannot be seen; the 5 % test
            # below is what the judge can promise for them
            continue
        for c in engine_checks(rejudge(run, changed), before.key, before.quantity):
            if c.verdict != "unexplained":
                missed.append(f"{c.key}:{c.quantity} {c.verdict} [{c.known_id}]")
    assert not missed, missed


@pytest.mark.parametrize("label", list(CLASSES))
def test_statsmodels_changes_within_a_third_of_tolerance_still_agree(runs, label):
    run = runs[CLASSES[label]]
    checked = 0
    for before, changed in _moved(run, 1 / 3):
        if before.verdict != "agree" or before.abs_diff >= before.tolerance / 3:
            continue
        for c in engine_checks(rejudge(run, changed), before.key, before.quantity):
            assert c.verdict == "agree", f"{c.key}:{c.quantity} {c.verdict}"
            checked += 1
    assert checked


@pytest.mark.parametrize("label", ["random slope, REML", "random intercept, ML"])
def test_a_statsmodels_se_off_by_five_percent_is_caught(runs, label):
    """SM1 explains statsmodels' SE formula only within its measured bound (4.5 %)."""
    run = runs[CLASSES[label]]
    r = run.results["statsmodels"]
    p = next(p for p in r.parameters if p.effect == "fixed" and p.std_error)
    changed = with_parameter(r, p.param_key, "std_error", p.std_error * 1.05)
    found = engine_checks(rejudge(run, changed), p.param_key, "std_error")
    assert found and all(c.verdict == "unexplained" for c in found)


@pytest.mark.parametrize("label", list(CLASSES))
def test_an_unconverged_statsmodels_fit_never_agrees(runs, label):
    run = runs[CLASSES[label]]
    changed = copy.deepcopy(run.results["statsmodels"])
    changed.diagnostics.converged = False
    comp = rejudge(run, changed)
    agreed = [f"{c.key}:{c.quantity}" for c in comp.checks
              if SM in (c.source_a, c.source_b) and c.verdict == "agree" and c.abs_diff > 0]
    assert not agreed, agreed
    assert all(c.tolerance == 0 for c in comp.checks if SM in (c.source_a, c.source_b))


@pytest.mark.parametrize("label", ["random slope, ML (unstructured)",
                                   "three levels, nested (variance component)"])
def test_a_boundary_variance_from_statsmodels_is_caught_and_loosens_nothing(runs, label):
    run = runs[CLASSES[label]]
    r = run.results["statsmodels"]
    sd = next(p for p in r.parameters if p.effect == "ran_pars" and p.group != "Residual"
              and p.term.startswith("sd__"))
    var_key = ParamKey("ran_pars", sd.group, "var__" + sd.term[4:])
    changed = with_parameter(r, sd.param_key, "estimate", 1e-7)
    changed = with_parameter(changed, var_key, "estimate", 1e-14)
    comp = rejudge(run, changed)
    assert sd.group not in comp.singular
    assert comp.class_of(sd.param_key) == "LMM"
    for key in (sd.param_key, var_key):
        found = engine_checks(comp, key, "estimate")
        assert found and all(c.verdict == "unexplained" for c in found), key
