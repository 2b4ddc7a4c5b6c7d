"""SPSS syntax export: golden fragments of the rendered MIXED / GENLINMIXED calls for course
specs (SPSS's documented grammar: Command Syntax Reference, MIXED and GENLINMIXED), the derive
vocabulary, models SPSS cannot express, and the CLI. There is no SPSS here: these tests assert
the text."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from backends.spss.errors import SpssRenderError
from backends.spss.export import export_syntax
from backends.spss.render import model_syntax
from harness.cli import main
from harness.spec import load_specs, parse_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"


@functools.cache
def course_specs() -> tuple:
    return tuple(s for _, s in load_specs([SPECS]) if "optional" not in s.tags)


def course(spec_id: str):
    return next(s for s in course_specs() if s.id == spec_id)


def syntax(spec_id: str) -> str:
    return "\n".join(
        model_syntax(course(spec_id), ["GET STATA FILE='/data/x.dta'."]))


def test_random_slope_reml_mixed() -> None:
    text = syntax("lab1.ex1.1.mlm2a")
    assert "MIXED gcse WITH lrt girl sch_2 sch_3\n" in text
    assert "  /FIXED=lrt girl sch_2 sch_3 | SSTYPE(3)\n" in text
    assert "  /METHOD=REML\n" in text
    assert "  /PRINT=SOLUTION TESTCOV\n" in text
    assert text.rstrip().endswith("/RANDOM=INTERCEPT lrt | SUBJECT(school) COVTYPE(UN).")
    assert "COMPUTE sch_2 = (schgend = 2)." in text


def test_random_slope_ml_and_null_model() -> None:
    assert "  /METHOD=ML\n" in syntax("lab1.stata1.1.rs_ml")
    null = syntax("lab1.ex1.1.mlm0a")
    assert "MIXED gcse\n  /FIXED= | SSTYPE(3)\n  /METHOD=REML\n" in null
    assert "/RANDOM=INTERCEPT | SUBJECT(school) COVTYPE(VC)." in null


def test_independent_slope_is_two_random_statements_and_three_levels() -> None:
    text = syntax("lab1.stata1.5.l3_c")
    assert ("  /RANDOM=INTERCEPT | SUBJECT(hospital) COVTYPE(VC)\n"
            "  /RANDOM=expcon | SUBJECT(hospital) COVTYPE(VC)\n"
            "  /RANDOM=INTERCEPT | SUBJECT(wardid) COVTYPE(VC).") in text


def test_crossed_random_intercepts() -> None:
    text = syntax("lab2.stata2.5.m3c")
    assert ("/RANDOM=INTERCEPT | SUBJECT(pschool) COVTYPE(VC)\n"
            "  /RANDOM=INTERCEPT | SUBJECT(sschool) COVTYPE(VC).") in text


def test_binomial_glmm_states_subject_reference_and_pseudo_likelihood() -> None:
    text = syntax("lab1.spss1.3b.bin_ri")
    assert "VARIABLE LEVEL school (NOMINAL)." in text
    assert "VARIABLE LEVEL hi_gcse (NOMINAL)." in text
    assert "GENLINMIXED\n  /DATA_STRUCTURE SUBJECTS=school\n" in text
    assert "/TARGET_OPTIONS DISTRIBUTION=BINOMIAL LINK=LOGIT REFERENCE=0\n" in text
    assert ("/RANDOM USE_INTERCEPT=TRUE SUBJECTS=school COVARIANCE_TYPE=VARIANCE_COMPONENTS"
            in text)
    assert "pseudo-likelihood" in text and "never ML" in text
    assert "MAX_ITERATIONS=100" in text


def test_poisson_random_slope_glmm() -> None:
    text = syntax("lab1.spss1.3b.pois_rs")
    assert "VARIABLE LEVEL ct_gcse2 (SCALE)." in text
    assert "DISTRIBUTION=POISSON LINK=LOG\n" in text
    assert ("/RANDOM EFFECTS=lrt USE_INTERCEPT=TRUE SUBJECTS=school "
            "COVARIANCE_TYPE=UNSTRUCTURED") in text


def test_ordinal_glmm() -> None:
    text = syntax("lab1.spss1.3b.ord_ri")
    assert "VARIABLE LEVEL ord_gcse (ORDINAL)." in text
    assert "DISTRIBUTION=MULTINOMIAL LINK=LOGIT\n" in text
    assert "TARGET_CATEGORY_ORDER=ASCENDING" in text


@pytest.mark.parametrize("spec_id, reason", [
    ("lab1.ex1.1.lin1", "single-level"),
    ("lab1.spss1.3b.mlogit_ri", "multinomial"),
])
def test_models_spss_cannot_express_name_the_spec(spec_id: str, reason: str) -> None:
    with pytest.raises(SpssRenderError, match=rf"spec '{spec_id}'.*{reason}"):
        model_syntax(course(spec_id), [])


def spec_with(formula: str, derive: list | None = None, **extra) -> object:
    return parse_spec({"id": "t", "title": "t", "source": "s", "dataset": "gcse",
                       "derive": derive or [], "model": {"formula": formula, "method": "ML",
                                                         **extra}})


@pytest.mark.parametrize("formula, fragment", [
    ("gcse ~ factor(schgend) + (1 | school)", "factor"),
    ("gcse ~ poly(lrt, 2) + (1 | school)", "poly(lrt, 2)"),
])
def test_factors_and_transformed_terms_are_not_simplified(formula: str, fragment: str) -> None:
    with pytest.raises(SpssRenderError, match=r"spec 't'.*" + fragment.replace("(", r"\(")
                       .replace(")", r"\)").replace("^", r"\^")):
        model_syntax(spec_with(formula), [])


def test_transformed_terms_are_computed_variables() -> None:
    text = "\n".join(model_syntax(spec_with("gcse ~ lrt + I(lrt^2) + log(lrt + 50) + "
                                            "(1 | school)"), []))
    assert "COMPUTE mlmh_x2 = (lrt ** 2)." in text
    assert "COMPUTE mlmh_x3 = LN((lrt + 50))." in text
    assert "MIXED gcse WITH lrt mlmh_x2 mlmh_x3\n  /FIXED=lrt mlmh_x2 mlmh_x3 | SSTYPE(3)" in text


def test_a_factor_random_slope_is_refused() -> None:
    spec = parse_spec({"id": "t", "title": "t", "source": "s", "dataset": "gcse",
                       "columns": {"girl": "factor"},
                       "model": {"formula": "gcse ~ lrt + (1 + girl | school)", "method": "ML"}})
    with pytest.raises(SpssRenderError, match="random slope 'girl' is declared a factor"):
        model_syntax(spec, [])


def test_weights_are_refused_not_dropped() -> None:
    with pytest.raises(SpssRenderError, match="weights"):
        model_syntax(spec_with("gcse ~ lrt + (1 | school)", weights="lrt"), [])


def test_interactions_nested_subjects_and_no_intercept() -> None:
    text = "\n".join(model_syntax(spec_with("gcse ~ 0 + lrt * girl + (1 | school:girl)"), []))
    assert "/FIXED=lrt girl lrt*girl | NOINT SSTYPE(3)" in text
    assert "SUBJECT(school*girl) COVTYPE(VC)." in text


def test_derive_vocabulary() -> None:
    derive = [{"name": "hi", "expr": "(gcse > 0) & isin(schgend, [2, 3])"},
              {"name": "m", "group_mean": "lrt", "by": "school"},
              {"name": "n", "group_count": True, "by": "school"},
              {"name": "r", "recode": {1: 0, 2: 1}, "source": "schgend", "otherwise": 5},
              {"name": "l", "expr": "log(abs(lrt) + 1) ** 2"}]
    text = "\n".join(model_syntax(spec_with("gcse ~ hi + m + n + r + l + (1 | school)",
                                            derive), []))
    assert "COMPUTE hi = (((gcse > 0) ~= 0) AND (ANY(schgend, 2, 3) ~= 0))." in text
    assert "AGGREGATE /OUTFILE=* MODE=ADDVARIABLES /BREAK=school /m=MEAN(lrt)." in text
    assert "/n=NU." in text
    assert "RECODE schgend (MISSING=SYSMIS) (1=0) (2=1) (ELSE=5) INTO r." in text
    assert "COMPUTE l = (LN((ABS(lrt) + 1)) ** 2)." in text


def test_derived_variable_spss_cannot_compute_is_named() -> None:
    derive = [{"name": "w", "expr": "where(gcse > 0, 1, 0)"}]
    with pytest.raises(SpssRenderError, match=r"'w'.*cannot be written for SPSS"):
        model_syntax(spec_with("gcse ~ w + (1 | school)", derive), [])


def test_cli_export_suite_with_skip_reasons(tmp_path: Path, capsys) -> None:
    out = tmp_path / "suite.sps"
    args = ["spss", "export", str(SPECS / "gcse"), "--out", str(out), "--spss-data-dir", "/d"]
    assert main(args) == 2
    assert "cannot be written for SPSS" in capsys.readouterr().err
    assert not out.exists()
    assert main(args + ["--skip-unsupported"]) == 0
    text = out.read_text()
    assert "GET STATA FILE='/d/gcse.dta'." in text
    assert "* NOT WRITTEN: spec 'lab1.ex1.1.lin1'" in text
    assert "/RANDOM=INTERCEPT lrt | SUBJECT(school) COVTYPE(UN)." in text
    assert main(args + ["--skip-unsupported"]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err


def test_whole_course_suite_is_written_or_explained() -> None:
    specs = course_specs()
    text, skipped = export_syntax(specs, spss_data_dir="/d", skip_unsupported=True)
    written = text.count("\nECHO 'mlm-harness spec ")
    assert written + len(skipped) == len(specs)
    assert written >= 20
    assert all("cannot be written for SPSS" in r for r in skipped)
    assert max(len(line.encode()) for line in text.splitlines()) <= 256  # SPSS's line limit


def test_long_variable_lists_are_wrapped_onto_indented_lines() -> None:
    names = [f"covariate_with_a_long_name_{i}" for i in range(12)]
    derive = [{"name": n, "expr": "lrt"} for n in names]
    lines = model_syntax(spec_with("gcse ~ " + " + ".join(names) + " + (1 | school)", derive),
                         [])
    start = lines.index(next(x for x in lines if x.startswith("MIXED")))
    assert all(len(x) <= 110 for x in lines[start:] if "covariate" in x)
    assert lines[start + 1].startswith("    covariate") and not lines[start].endswith(".")


def test_a_csv_dataset_is_read_with_get_data(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("y,x,g,label\n1.5,2,1,a\n2.5,3,2,b\n")
    spec = parse_spec({"id": "t", "title": "t", "source": "s", "dataset": str(data),
                       "model": {"formula": "y ~ x + (1 | g)", "method": "REML"}})
    text, _ = export_syntax([spec], spss_data_dir="/d")
    assert ("GET DATA /TYPE=TXT /FILE='/d/d.csv' /ENCODING='UTF8'\n"
            "  /ARRANGEMENT=DELIMITED /DELCASE=LINE /FIRSTCASE=2 /DELIMITERS=\",\" "
            "/QUALIFIER='\"'\n  /VARIABLES=\n    y F40\n    x F40\n    g F40\n    label A255.\n"
            ) in text
    assert "/RANDOM=INTERCEPT | SUBJECT(g) COVTYPE(VC)." in text
