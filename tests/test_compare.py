"""The comparison engine on hand-made results: alignment by name, tolerances and verdicts."""

from harness.compare import compare_spec
from harness.references import parse_printed
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, Statistics,
                             residual_parameters, variance_parameters)
from harness.spec import parse_spec


def make_spec(references=(), known_differences=()):
    return parse_spec({
        "id": "t", "title": "t", "source": "s", "dataset": "gcse",
        "model": {"formula": "gcse ~ lrt + (1 | school)", "method": "ML"},
        "references": list(references), "known_differences": list(known_differences)}, "t.yaml")


def result(backend, b_lrt=0.5599630, var_u=8.110688, loglik=-14008.89117, method="ML",
           converged=True):
    params = [Parameter("fixed", None, "(Intercept)", -1.6815, 0.54),
              Parameter("fixed", None, "lrt", b_lrt, 0.012444)]
    params += variance_parameters("school", ["(Intercept)"], [var_u ** 0.5], None)
    params += residual_parameters(56.226895 ** 0.5)
    return FitResult("t", backend, parameters=params,
                     statistics=Statistics(nobs=4059, ngroups={"school": 65}, loglik=loglik),
                     diagnostics=Diagnostics(converged=converged,
                                             warnings=[] if converged else ["max|grad| 0.002"]),
                     provenance=Provenance(backend=backend, method=method))


def test_printed_precision():
    assert parse_printed(".5544234", "x").half_unit == 0.5e-7
    assert parse_printed("8.110", "x").half_unit == 0.5e-3
    assert parse_printed("−13986.738", "x").value == -13986.738
    assert parse_printed(3.0e-12, "x").half_unit == 0.5e-12


def test_engines_agree_and_reference_checked_at_printed_precision():
    spec = make_spec(references=[{"id": "stata", "software": "Stata", "source": "lab",
                                  "method": "ML", "values": {
                                      "ran_pars/school/var__(Intercept)": "8.11",
                                      "fixed/lrt": {"estimate": ".55996", "std_error": ".0124"},
                                      "stat/icc": ".1261"}}])
    comp = compare_spec(spec, {"native": result("native"), "lme4": result("lme4", b_lrt=0.5599631)})
    assert comp.status == "agree"
    icc = [c for c in comp.checks if c.key == "stat/icc"]
    assert icc and all(c.verdict == "agree" for c in icc)  # ICC computed from the components
    keys = {c.key for c in comp.checks if c.source_b == "ref:stata"}
    assert keys == {"ran_pars/school/var__(Intercept)", "fixed/lrt", "stat/icc"}


def test_perturbed_reference_is_unexplained_with_digits():
    spec = make_spec(references=[{"id": "x", "software": "Stata", "source": "s", "method": "ML",
                                  "values": {"ran_pars/school/var__(Intercept)": "8.13"}}])
    comp = compare_spec(spec, {"native": result("native")})
    (check,) = comp.checks
    assert check.verdict == "unexplained" and comp.status == "unexplained"
    assert 2.5 < check.digits < 3.0  # 8.1107 vs 8.13: about 2.6 digits


def test_different_method_is_explained_not_agreement():
    spec = make_spec(references=[{"id": "r", "software": "R", "source": "s", "method": "REML",
                                  "values": {"ran_pars/school/var__(Intercept)": "8.58"}}])
    comp = compare_spec(spec, {"native": result("native")})
    (check,) = comp.checks
    assert check.verdict == "explained" and "different estimators" in check.explanation
    assert check.known_id == "D1"


def test_optimizer_stopping_early_is_explained_by_the_likelihood():
    spec = make_spec()
    comp = compare_spec(spec, {
        "native": result("native", loglik=-13986.73805),
        "lme4": result("lme4", b_lrt=0.5601, loglik=-13986.7390, converged=False)})
    lrt = [c for c in comp.checks if c.key == "fixed/lrt" and c.quantity == "estimate"][0]
    assert lrt.verdict == "explained" and "native reaches" in lrt.explanation


def test_engine_disagreement_without_reason_is_unexplained():
    comp = compare_spec(make_spec(), {"native": result("native"),
                                      "lme4": result("lme4", b_lrt=0.57)})
    assert comp.status == "unexplained"


def test_spec_known_difference_explains():
    spec = make_spec(references=[{"id": "x", "software": "S", "source": "s", "method": "ML",
                                  "values": {"fixed/lrt": "0.57"}}],
                     known_differences=[{"id": "D14", "explanation": "coded differently",
                                         "applies_to": ["fixed/lrt"]}])
    (check,) = compare_spec(spec, {"native": result("native")}).checks
    assert check.verdict == "explained" and "D14" in check.explanation


def test_failed_backend_shows_status_and_no_checks():
    comp = compare_spec(make_spec(), {"native": result("native"),
                                      "lme4": FitResult.failed("t", "lme4", "unavailable", "no R")})
    statuses = {s.source: s.status for s in comp.sources}
    assert statuses == {"native": "ok", "lme4": "unavailable"}
    assert not comp.checks


def test_reference_stated_in_words_only_is_info_not_pending():
    spec = make_spec(references=[{"id": "N16", "software": "Stata", "source": "lab", "method": "ML",
                                  "note": "the LR test favours the random slope", "values": {}}])
    comp = compare_spec(spec, {"native": result("native")})
    (ref,) = [s for s in comp.sources if s.kind == "reference"]
    assert ref.status == "info"


def test_flat_likelihood_explains_only_when_both_points_are_equally_good():
    a = result("native", b_lrt=0.559963, loglik=-14008.891170)
    b = result("lme4", b_lrt=0.560100, loglik=-14008.891170)
    same = compare_spec(make_spec(), {"native": a, "lme4": b},
                        likelihood_at={"native": -14008.891170, "lme4": -14008.8911705})
    lrt = [c for c in same.checks if c.key == "fixed/lrt" and c.quantity == "estimate"][0]
    assert lrt.verdict == "explained" and "flat likelihood" in lrt.explanation
    # lme4 really is at a worse point (it says so itself, without a warning): not flat
    worse_b = result("lme4", b_lrt=0.560100, loglik=-14008.8912)
    worse = compare_spec(make_spec(), {"native": a, "lme4": worse_b},
                         likelihood_at={"native": -14008.891170, "lme4": -14008.8912})
    lrt = [c for c in worse.checks if c.key == "fixed/lrt" and c.quantity == "estimate"][0]
    assert lrt.verdict == "unexplained"
    # lme4 reports the optimum's likelihood, but its estimates give a worse one: misreported
    lying = compare_spec(make_spec(), {"native": a, "lme4": b},
                         likelihood_at={"native": -14008.891170, "lme4": -14008.9})
    lrt = [c for c in lying.checks if c.key == "fixed/lrt" and c.quantity == "estimate"][0]
    assert lrt.verdict == "unexplained"
