"""Printouts read into keys and printed texts (no data, no fitting).

The expected numbers are independent of the parser: the course's own values as the suite's
specs already hold them (typed by hand from models.md), and the published Stata outputs' numbers
as their sources print them (tests/printouts/files/README.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.printouts import detect, parse
from harness.printouts.base import PrintoutError, number_text
from harness.printouts.resolve import reference_values, resolve
from harness.references import reference_values as judged_values
from harness.spec import Reference, load_spec

FILES = Path(__file__).parent / "files"
SPECS = Path(__file__).resolve().parents[2] / "specs"


def values_of(name: str, fmt: str | None = None) -> tuple[dict, str | None]:
    printout = parse((FILES / name).read_text(), fmt)
    return reference_values(resolve(printout, None, {}, name)), printout.method


def spec_reference(path: str, ref_id: str) -> dict:
    spec = load_spec(SPECS / path)
    return next(r for r in spec.references if r.id == ref_id).values


@pytest.mark.parametrize("name,fmt", [
    ("r_lmer_reml_ri.txt", "r-lmer"), ("r_glmer_agq7.txt", "r-glmer"),
    ("r_clmm_laplace.txt", "r-clmm"), ("stata_mixed_rs_ml_sd__course_talk4_p6.txt", "stata-mixed"),
    ("stata_melogit_slide18__course_talk2_p18.txt", "stata-me"),
    ("stata_xtmixed_hsb_reml__ucla_singer_p329.txt", "stata-mixed"),
    ("spss_mixed_popular_un__layout_from_lme4_reml.txt", "spss-mixed"),
])
def test_the_format_is_recognised(name: str, fmt: str) -> None:
    assert detect((FILES / name).read_text()) == fmt


def test_stata_mixed_course_block_c_equals_the_specs_hand_typed_values() -> None:
    values, method = values_of("stata_mixed_rs_ml_sd__course_talk4_p6.txt")
    assert method == "ML"
    # the parser reads estimates and SEs; N19 also states the slide's printed intervals and
    # p-values (issue 15), which the parser does not read yet
    n19 = spec_reference("gcse/lab1.stata1.1.rs_ml.yaml", "N19")
    assert values == {k: {q: v[q] for q in ("estimate", "std_error") if q in v}
                      if isinstance(v, dict) else v for k, v in n19.items()}


def test_stata_melogit_slide_18_equals_the_specs_hand_typed_values() -> None:
    values, method = values_of("stata_melogit_slide18__course_talk2_p18.txt")
    assert method == "MVAGHQ(7)"
    assert values == spec_reference("census/slide.talk2.p18.poor_health_rs.yaml", "N64")


def test_stata_three_levels_and_crossed_factors_name_their_groups() -> None:
    nested, _ = values_of("stata_mixed_census_nested__course_lab1_stata_ex1_5_partial.txt")
    n61 = spec_reference("census/lab1.stata1.5.m3a.yaml", "N61")
    assert nested == {k: v for k, v in n61.items() if k.startswith("ran_pars/")}
    crossed, _ = values_of("stata_mixed_census_crossed__course_lab1_stata_ex1_5_partial.txt")
    assert crossed == {"ran_pars/rel_eth_gp/var__(Intercept)": ".0113245",
                       "ran_pars/occ_ind_gp/var__(Intercept)": ".0332933",
                       "ran_pars/Residual/var__Observation": ".6392549"}


def test_spss_course_variances_equal_the_specs_hand_typed_values() -> None:
    values, _ = values_of("spss_mixed_nurses_null3__course_lab1_spss_ex1_4i_partial.txt")
    n53 = spec_reference("nurses/lab1.spss1.4.null3_reml.yaml", "N53")
    assert values == {k: v for k, v in n53.items() if k.startswith("ran_pars/")}


def test_published_stata_manual_pig_weights() -> None:
    values, method = values_of("stata_mixed_pig_weights__stata_manual_ME_mixed_ex1.txt")
    assert method == "ML"
    assert values == {
        "stat/nobs": "432", "stat/ngroups/id": "48", "stat/loglik": "-1014.9268",
        "fixed/week": {"estimate": "6.209896", "std_error": ".0390124"},
        "fixed/(Intercept)": {"estimate": "19.35561", "std_error": ".5974059"},
        "ran_pars/id/var__(Intercept)": {"estimate": "14.81751", "std_error": "3.124226"},
        "ran_pars/Residual/var__Observation": {"estimate": "4.383264", "std_error": ".3163348"}}


def test_published_ucla_stddev_display_with_a_factor_variable() -> None:
    printout = parse((FILES / "stata_mixed_depression_sd__ucla_oarc_diparm_faq.txt").read_text())
    values = reference_values(resolve(printout, None, {}, "depression"))
    assert values["ran_pars/sid/sd__visit"] == {"estimate": ".9108339", "std_error": ".1544413"}
    assert values["ran_pars/sid/sd__(Intercept)"] == {"estimate": "5.066354",
                                                      "std_error": ".6109308"}
    assert values["ran_pars/Residual/sd__Observation"]["estimate"] == "2.892052"
    assert values["fixed/visit"] == {"estimate": "-1.20499", "std_error": ".1651257"}
    assert values["fixed/(Intercept)"]["estimate"] == "17.96487"
    # a value label (estrogen) cannot say which level it is: R's names are candidates only
    assert "fixed/factor(group)estrogen" in values
    # the correlation's key follows the model's order, which the spec decides
    valid = {"ran_pars/sid/cor__(Intercept).visit", "ran_pars/sid/sd__visit",
             "ran_pars/sid/sd__(Intercept)", "ran_pars/Residual/sd__Observation", "fixed/visit",
             "fixed/(Intercept)", "fixed/group1", "stat/nobs", "stat/ngroups/sid",
             "stat/loglik"}
    placed = reference_values(resolve(printout, valid, {"estrogen.group": "fixed/group1"}, "d"))
    assert placed["ran_pars/sid/cor__(Intercept).visit"]["estimate"] == "-.5506068"
    assert placed["fixed/group1"]["estimate"] == "-3.795494"
    with pytest.raises(PrintoutError, match=r"'estrogen.group'.*--rename 'estrogen.group=<key>'"):
        resolve(printout, valid, {}, "d")


def test_published_ucla_reml_variance_display() -> None:
    values, method = values_of("stata_xtmixed_hsb_reml__ucla_singer_p329.txt")
    assert method == "REML"
    assert values["stat/loglik"] == "-23558.397" and values["stat/nobs"] == "7185"
    assert values["ran_pars/school/var__(Intercept)"] == {"estimate": "8.614034",
                                                          "std_error": "1.078805"}


def test_odds_ratios_return_to_the_log_odds_with_their_printed_precision() -> None:
    """The derived or-display of slide 18 (exp(b), exp(b)·SE to 7 digits) gives back the
    slide's coefficients within the precision the odds ratios were printed at."""
    values, _ = values_of("stata_melogit_or__derived_from_talk2_p18.txt")
    assert values["fixed/female"] == {"estimate": "1.136807", "std_error": ".0610011",
                                      "display": "exp"}
    assert values["ran_pars/occ_ind_gp/var__(Intercept)"]["estimate"] == ".2134169"  # untouched
    judged = {(str(v.key), v.quantity): v.number
              for v in judged_values(Reference(id="or", software="Stata", source="t",
                                               values=values))}
    slide = spec_reference("census/slide.talk2.p18.poor_health_rs.yaml", "N64")
    for term in ("female", "c_age", "age_fem", "(Intercept)"):
        for quantity in ("estimate", "std_error"):
            number = judged[(f"fixed/{term}", quantity)]
            printed = float(slide[f"fixed/{term}"][quantity])
            assert abs(number.value - printed) <= number.half_unit, (term, quantity)
            assert number.half_unit < 1e-4 * max(abs(printed), 1e-3)  # and still informative


def test_r_random_effects_keep_both_scales_and_the_correlation() -> None:
    values, method = values_of("r_lmer_ml_rs.txt")
    assert method == "ML"
    assert values["ran_pars/school/var__lrt"] == "0.01465"
    assert values["ran_pars/school/sd__lrt"] == "0.121"
    assert values["ran_pars/school/cor__(Intercept).lrt"] == "0.59"
    assert values["ran_pars/Residual/var__Observation"] == "55.01941"
    assert values["stat/loglik"] == "-13986.7" and values["stat/deviance"] == "27973.5"
    assert values["fixed/sch_3"] == {"estimate": "1.74827", "std_error": "0.78768"}


def test_r_second_term_of_a_factor_and_factor_names() -> None:
    printout = parse((FILES / "r_lmer_factor_indep.txt").read_text())
    values = reference_values(resolve(printout, None, {}, "indep"))
    assert values["ran_pars/school/var__lrt"] == "0.01466"  # printed as group school.1
    assert values["fixed/factor(schgend)2"] == {"estimate": "0.88134", "std_error": "1.12888"}
    assert values["stat/reml_criterion"] == "28012.6"
    assert printout.method == "REML"


def test_r_glmer_and_clmm_methods_and_thresholds() -> None:
    assert values_of("r_glmer_agq7.txt")[1] == "AGHQ(7)"
    assert values_of("r_glmer_laplace.txt")[1] == "Laplace"
    values, method = values_of("r_clmm_laplace.txt")
    assert method == "Laplace"
    assert values["threshold/1|2"] == {"estimate": "4.3042", "std_error": "0.3381"}
    assert values["stat/ngroups/class"] == "100" and values["stat/nobs"] == "2000"


def test_spss_unstructured_covariances_and_the_reml_criterion() -> None:
    values, method = values_of("spss_mixed_popular_un__layout_from_lme4_reml.txt")
    assert method == "REML"
    assert values["ran_pars/class/cov__(Intercept).Cextrav"] == "-.004372"
    assert values["ran_pars/class/var__Cextrav"] == ".005409"
    assert values["stat/reml_criterion"] == "4780.452"  # thousands separator removed
    assert values["fixed/(Intercept)"] == {"estimate": "4.367990", "std_error": ".059394"}
    spaced = (FILES / "spss_mixed_popular_un__layout_from_lme4_reml.txt").read_text()
    again = reference_values(resolve(parse(spaced.replace("\t", "    ")), None, {}, "spaces"))
    assert again == values  # the same tables exported with spaces instead of tabs


def test_spss_redundant_levels_are_listed_not_dropped_silently() -> None:
    text = ("Estimates of Fixed Effects(a)\nParameter\tEstimate\tStd. Error\n"
            "Intercept\t5.1\t.2\n[sex=0]\t-.4\t.1\n[sex=1]\t0b\t0\n")
    printout = parse(text)
    assert [v.printed for v in printout.values] == ["Intercept", "[sex=0]"]
    assert any("[sex=1]: redundant" in s for s in printout.skipped)
    assert printout.values[1].candidates[0].name == "factor(sex)0"


@pytest.mark.parametrize("text,words", [
    ("hello world", "cannot tell which software"),
    ("Linear mixed model fit by REML\nLinear mixed model fit by REML\n", "2 models"),
    ("Linear mixed model fit by REML ['lmerMod']\nFormula: y ~ 1\n", "no 'Fixed effects:'"),
    ("Mixed-effects ML regression\nnothing else\n", "no Stata estimation table"),
])
def test_unreadable_printouts_say_what_was_expected(text: str, words: str) -> None:
    with pytest.raises(PrintoutError, match=words):
        parse(text)


@pytest.mark.parametrize("token,text", [
    ("4,059", "4059"), ("-.0066825", "-.0066825"), ("\u22121.5", "-1.5"), ("2.5e-05", "2.5e-05"),
    ("1,5", None), ("abc", None), ("-", None), ("<2e-16", None),
])
def test_number_texts_keep_their_digits(token: str, text: str | None) -> None:
    assert number_text(token) == text


def test_precision_of_an_exp_value_covers_the_printed_interval() -> None:
    ref = Reference(id="x", software="s", source="t",
                    values={"fixed/a": {"estimate": "2.50", "std_error": ".10", "display": "exp"}})
    est, se = (v.number for v in judged_values(ref))
    lo, hi = math.log(2.495), math.log(2.505)
    assert est.value - est.half_unit <= lo and hi <= est.value + est.half_unit
    assert se.value - se.half_unit <= .095 / 2.505 and .105 / 2.495 <= se.value + se.half_unit
