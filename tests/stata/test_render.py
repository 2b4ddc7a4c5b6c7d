"""Stata code generation: golden do-files, reviewed by hand against the Stata manuals.

The goldens in tests/stata/golden/ are the complete batch do-files (data preparation, estimation,
post-estimation, results export). They were read line by line against the syntax documented in
[ME] mixed, [ME] melogit / meologit / mepoisson, [ME] mixed postestimation, [R] regress and
[P] file (docs/stata.md lists what was checked). Regenerate with MLMH_REGEN_GOLDEN=1 and review
the diff by hand before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends.stata.render import (Layout, StataRenderError, model_do, plan, render_fixed,
                                   show_do, unsupported_reason)
from backends.stata.mapping import fixed_name
from harness.formula import parse_formula
from harness.spec import Spec, SpecError, parse_spec
from tests.stata.specs import specs

GOLDEN = Path(__file__).parent / "golden"
SPECS = specs()


def crossed_frame(n_a: int = 3, n_b: int = 5, reps: int = 4) -> pd.DataFrame:
    a, b = np.meshgrid(np.arange(1, n_a + 1), np.arange(1, n_b + 1))
    return pd.DataFrame({"rel_eth_gp": np.repeat(a.ravel(), reps).astype(float),
                         "occ_ind_gp": np.repeat(b.ravel(), reps).astype(float)})


def nested_frame() -> pd.DataFrame:
    hospital = np.repeat(np.arange(1, 4), 8).astype(float)
    wardid = (hospital * 10 + np.tile(np.repeat([1, 2], 4), 3)).astype(float)
    return pd.DataFrame({"hospital": hospital, "wardid": wardid})


GOLDEN_CASES = {
    "regress_cluster": ("lab2.stata2.2.gcse_robust/robust", None, "/data/gcse.dta"),
    "mixed_ml_unstructured": ("lab1.stata1.1.rs_ml", None, "/data/gcse.dta"),
    "mixed_reml_independent": ("lab1.stata1.3.rs_biv_reml", None, "/data/gcse.dta"),
    "mixed_3level_nested": ("lab1.stata1.5.l3_c", "nested", "/data/nurses.dta"),
    "mixed_crossed": ("lab1.stata1.5.cross", "crossed",
                      "/data/censusmicroteaching11s.dta"),
    "melogit_aghq7_independent": ("slide.talk2.p18.poor_health_rs", None,
                                  "/data/censusmicroteaching11s.dta"),
    "meologit": ("lab1.stata1.4.cen_ologit_ri", None, "/data/censusmicroteaching11s.dta"),
    "mepoisson": ("lab1.stata1.4.cen_pois_ri", None, "/data/censusmicroteaching11s.dta"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_do_files(name: str) -> None:
    spec_id, frame_kind, data = GOLDEN_CASES[name]
    frame = {"nested": nested_frame(), "crossed": crossed_frame(), None: None}[frame_kind]
    spec = SPECS[spec_id]
    text = model_do(spec, plan(spec, frame), data, "@RESULTS@", "0" * 64)
    path = GOLDEN / f"{name}.do"
    if os.environ.get("MLMH_REGEN_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden {path}; run with MLMH_REGEN_GOLDEN=1 and review it"
    assert text == path.read_text()


def test_commands_state_every_setting() -> None:
    lines = {k: plan(s).command_line() for k, s in SPECS.items()}
    assert lines["lab2.stata2.2.gcse_robust/robust"] == \
        "regress gcse lrt girl sch_2 sch_3, vce(cluster school)"
    assert lines["lab1.stata1.1.rs_ml"] == \
        "mixed gcse lrt girl sch_2 sch_3 || school: lrt, cov(unstructured) mle"
    # independent terms of one group: one equation, covariance stated
    assert lines["lab1.stata1.3.rs_biv_reml"] == "mixed gcse lrt || school: lrt, cov(independent) reml"
    assert lines["slide.talk2.p18.poor_health_rs"].endswith(
        "|| occ_ind_gp: agegpt, cov(independent) intmethod(mvaghermite) intpoints(7)")
    assert lines["lab1.stata1.4.bin_rs/laplace"].endswith("intmethod(laplace)")
    assert lines["lab1.stata1.4.cen_ologit_ri"].startswith("meologit health1 agegpt || occ_ind_gp:")
    assert lines["lab1.stata1.4.cen_pois_ri"].startswith("mepoisson ")
    for k, line in lines.items():  # mixed always states mle or reml
        if line.startswith("mixed"):
            assert line.endswith((" mle", " reml")), k


def test_nested_levels_from_data_highest_first() -> None:
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "nurses",
                       "model": {"formula": "stress ~ 1 + (1 | wardid) + (1 | hospital)",
                                 "method": "ML"}})
    lay = plan(spec, nested_frame())
    assert lay.command_line() == "mixed stress || hospital: || wardid:, mle"
    assert "group counts" in lay.structure_note
    # without data: formula order, and the do-file says it is an assumption
    lay = plan(spec)
    assert lay.command_line() == "mixed stress || wardid: || hospital:, mle"
    assert "ASSUMED NESTED" in lay.structure_note
    assert "ASSUMED NESTED" in show_do(spec, lay, "nurses.dta")


def test_crossed_factor_with_fewer_levels_goes_to_all() -> None:
    spec = SPECS["lab1.stata1.5.cross"]
    assert plan(spec, crossed_frame(3, 5)).command_line().startswith(
        "mixed health1 c_age c_age2 || _all: R.rel_eth_gp || occ_ind_gp:")
    assert plan(spec, crossed_frame(7, 5)).command_line().startswith(
        "mixed health1 c_age c_age2 || _all: R.occ_ind_gp || rel_eth_gp:")


def test_structure_stated_in_options() -> None:
    base = {"id": "x", "title": "x", "source": "x", "dataset": "pupcross",
            "model": {"formula": "achiev ~ 1 + (1 | pschool) + (1 | sschool)", "method": "ML"}}
    crossed_first = parse_spec({**base, "backends": {"stata": {"options": {"crossed": True}}}})
    assert plan(crossed_first).command_line() == "mixed achiev || _all: R.pschool || sschool:, mle"
    named = parse_spec({**base, "backends": {"stata": {"options": {"crossed": ["sschool"]}}}})
    assert plan(named).command_line() == "mixed achiev || _all: R.sschool || pschool:, mle"
    levels = parse_spec({**base, "backends": {"stata": {"options": {"levels": ["sschool",
                                                                                 "pschool"]}}}})
    assert plan(levels).command_line() == "mixed achiev || sschool: || pschool:, mle"


def test_pupcross_cell_model_from_data() -> None:
    """pbys4: sschool x pschool crossed plus a cell intercept (course: _all: R.sschool)."""
    rng = np.random.default_rng(1)
    p = rng.integers(1, 6, 200).astype(float)
    s = rng.integers(1, 4, 200).astype(float)
    frame = pd.DataFrame({"pschool": p, "sschool": s, "cell": p * 100 + s})
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "pupcross",
                       "model": {"formula": "achiev ~ 1 + (1 | sschool) + (1 | pschool) + (1 | cell)",
                                 "method": "ML"}})
    assert plan(spec, frame).command_line() == \
        "mixed achiev || _all: R.sschool || pschool: || cell:, mle"


def test_unstructured_and_independent_blocks_of_one_group() -> None:
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "d",
                       "model": {"formula": "y ~ x + (1 + x | g) + (0 + z | g)", "method": "REML"}})
    lay = plan(spec)
    assert lay.command_line() == "mixed y x || g: x, cov(unstructured) || g: z, noconstant reml"
    assert [e.effects for e in lay.equations] == [("x", "(Intercept)"), ("z",)]


def test_slash_nesting_and_interaction_groups() -> None:
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "d",
                       "model": {"formula": "y ~ 1 + (1 | a/b)", "method": "ML"}})
    lay = plan(spec)
    assert lay.command_line() == "mixed y || a: || b:, mle"
    assert lay.equations[1].group == "a:b" and lay.equations[1].label_vars == ("a", "b")
    alone = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "d",
                        "model": {"formula": "y ~ 1 + (1 | a:b)", "method": "ML"}})
    lay = plan(alone)
    assert lay.command_line() == "mixed y || mlmh_id1:, mle"
    assert lay.generated_ids == [("mlmh_id1", ["a", "b"])]


def _fixed(formula: str, columns: dict | None = None, reference: dict | None = None):
    return render_fixed(parse_formula(f"y ~ {formula}"), columns or {}, reference or {})


def test_fixed_part_factors_and_interactions() -> None:
    fx = _fixed("lrt + factor(schgend) + girl:lrt + a*b + hospsize", {"hospsize": "factor"},
                {"schgend": 2})
    # R's term order (main effects, then interactions), variables in R's order within a term
    assert fx.terms == ["lrt", "ib2.schgend", "a", "b", "i.hospsize", "c.lrt#c.girl",
                        "c.a#c.b"]
    assert fx.styles == {"schgend": "factor", "hospsize": "bare"}
    assert not fx.noconstant and fx.generated == {} and fx.lines == []
    nocons = _fixed("0 + x")
    assert nocons.noconstant and nocons.terms == ["x"]
    # where R codes a factor by indicators for every level, Stata must not drop a base level
    statsby = _fixed("0 + factor(school) + factor(school):lrt")
    assert statsby.terms == ["ibn.school", "ibn.school#c.lrt"]
    assert _fixed("x + factor(g):x").terms == ["x", "c.x#i.g"]  # R: x:factor(g)2
    with pytest.raises(StataRenderError, match="non-negative integers"):
        _fixed("factor(g)", {}, {"g": "boys"})


def test_transforms_become_generated_variables_named_as_r_names_them() -> None:
    fx = _fixed("I(age^2) + log(x + 1) + scale(z) + poly(w, 2) + I(age^2):z")
    assert fx.terms == ["mlmh_x1", "mlmh_x2", "mlmh_x3", "mlmh_x4_1", "mlmh_x4_2",
                        "c.mlmh_x1#c.z"]
    assert fx.generated == {"mlmh_x1": "I(age^2)", "mlmh_x2": "log(x + 1)",
                            "mlmh_x3": "scale(z)", "mlmh_x4_1": "poly(w, 2)1",
                            "mlmh_x4_2": "poly(w, 2)2"}
    assert fx.lines[:2] == ["generate double mlmh_x1 = (age ^ 2)",
                            "generate double mlmh_x2 = ln((x + 1))"]
    assert "replace mlmh_x3 = (mlmh_x3 - r(mean)) / r(sd)" in fx.lines
    assert fixed_name("c.mlmh_x1#c.z", fx.styles, fx.generated) == "I(age^2):z"
    assert fixed_name("mlmh_x4_2", fx.styles, fx.generated) == "poly(w, 2)2"
    raw = _fixed("poly(w, 2, raw = TRUE)")
    assert raw.lines == ["generate double mlmh_x1_1 = w^1", "generate double mlmh_x1_2 = w^2"]


def test_subset_replicate_and_single_level_ml() -> None:
    spec = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "gcse",
                       "derive": [{"name": "n_school", "group_count": True, "by": "school"}],
                       "subset": "n_school >= 5",
                       "replicate": {"times": 10, "cluster": "school", "new_id": "school2"},
                       "model": {"formula": "gcse ~ lrt", "method": "ML"}})
    lay = plan(spec)
    assert lay.command_line() == "mixed gcse lrt, mle"
    text = show_do(spec, lay, "gcse.dta")
    assert "expand 10" in text
    assert "generate double school2 = school * 100000 + rep1" in text
    assert "bysort school: egen double n_school = count(1)" in text
    assert "keep if mlmh_keep != 0 & !missing(mlmh_keep)" in text
    assert text.index("expand 10") < text.index("egen double n_school") < text.index("keep if")


def test_unsupported_models() -> None:
    multi = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "d",
                        "model": {"formula": "y ~ x + (1 | g)", "family": "multinomial",
                                  "method": "ML", "integration": {"method": "laplace"}}})
    assert "gllamm" in unsupported_reason(multi.model)
    assert unsupported_reason(SPECS["lab1.stata1.1.rs_ml"].model) is None
    slopes = parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "d",
                         "model": {"formula": "y ~ x + (1 + x | a) + (1 + x | b)",
                                   "method": "ML"}})
    with pytest.raises(StataRenderError, match="_all: R."):
        plan(slopes, crossed_frame().rename(columns={"rel_eth_gp": "a", "occ_ind_gp": "b"}))


def test_layout_round_trips_through_json() -> None:
    lay = plan(SPECS["slide.talk2.p18.poor_health_rs"])
    again = Layout.from_dict(lay.to_dict())
    assert again == lay
    assert again.command_line() == lay.command_line()


def _with_options(formula: str, options: dict, **model) -> Spec:
    from harness.spec import parse_spec as ps
    return ps({"id": "x", "title": "x", "source": "x", "dataset": "gcse",
               "model": {"formula": formula, "method": "ML", **model},
               "backends": {"stata": {"options": options}}})


def test_spec_options_used_by_the_course_specs() -> None:
    ri = "hi_gcse ~ lrt + (1 | school)"
    glmm = {"family": "binomial", "integration": {"method": "aghq", "points": 12}}
    xtl = plan(_with_options(ri, {"command": "xtlogit", "estimator": "re"}, **glmm))
    assert xtl.setup == ["xtset school"] and xtl.kind == "xt"
    assert xtl.command_line() == "xtlogit hi_gcse lrt, re intmethod(mvaghermite) intpoints(12)"
    xtr = plan(_with_options("gcse ~ lrt + (1 | school)", {"command": "xtreg", "estimator": "re"}))
    assert xtr.command_line() == "xtreg gcse lrt, re"
    meqr = plan(_with_options(ri, {"command": "meqrlogit"}, family="binomial",
                              integration={"method": "aghq", "points": 7}))
    assert meqr.command_line() == "meqrlogit hi_gcse lrt || school:, intpoints(7)"
    robust = plan(_with_options("gcse ~ lrt + (1 | school)", {"vce": "robust", "iterate": 30}))
    assert robust.command_line() == "mixed gcse lrt || school:, mle vce(robust) iterate(30)"
    svy = plan(_with_options("gcse ~ lrt", {"command": "svy: regress", "psu": "school"},
                             method="OLS", cluster_se="school"))
    assert svy.setup == ["svyset school"] and svy.command_line() == "svy: regress gcse lrt"
    with pytest.raises(StataRenderError, match="gllamm is user-written"):
        plan(_with_options(ri, {"command": "gllamm"}, family="binomial",
                           integration={"method": "aghq", "points": 8}))
    # typed options: unknown keys and values are spec errors when the spec loads
    with pytest.raises(SpecError, match="backends.stata.options.estimator"):
        _with_options("gcse ~ lrt + girl", {"command": "xtreg", "estimator": "fe"},
                      method="OLS")
    with pytest.raises(SpecError, match=r"unknown key 'backends.stata.options.colour' \(known "
                                        r"keys here: command, estimator"):
        _with_options("gcse ~ lrt", {"colour": "red"}, method="OLS")
    with pytest.raises(SpecError, match="backends.stata.options.nip"):
        _with_options(ri, {"command": "gllamm", "nip": 8}, family="binomial",
                      integration={"method": "aghq", "points": 8})
    with pytest.raises(StataRenderError, match="formula makes"):
        plan(_with_options("gcse ~ lrt + (1 | school) + (0 + lrt | school)",
                           {"covariance": "unstructured"}))
    # S23: unstructured asked for a random intercept only is harmless
    assert plan(_with_options("gcse ~ lrt + (1 | school)", {"covariance": "unstructured"}))
