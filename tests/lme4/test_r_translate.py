"""Spec -> R call translation, script rendering and column transfer (pure Python: no R needed)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from backends.lme4 import backend as lme4_backend_module
from backends.lme4 import rscript, translate
from backends.lme4.backend import Lme4Backend, column_payload
from harness.spec import SpecError

from .helpers import GCSE_HI, POP3, make_spec

RI = {"formula": "gcse ~ lrt + girl + factor(schgend) + (1 | school)"}


def plan_for(dataset: str, model: dict, **extra) -> translate.RPlan:
    spec = make_spec(dataset, model, **extra)
    return translate.plan(spec, spec.model_for("lme4"))


def test_lmer_states_reml_explicitly_and_records_default_optimizer():
    ml = plan_for("gcse", {**RI, "method": "ML"})
    reml = plan_for("gcse", {**RI, "method": "REML"})
    assert ml.kind == "lmer"
    assert ml.call == ("lmer(gcse ~ lrt + girl + factor(schgend) + (1 | school), data = d, "
                       "REML = FALSE)")
    assert reml.call.endswith("REML = TRUE)")
    assert any("nloptwrap" in n for n in ml.notes)
    assert ml.columns == ("gcse", "girl", "lrt", "schgend", "school")  # model columns only


def test_glmer_family_link_and_nagq():
    model = {"formula": "hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school)", "family": "binomial",
             "method": "ML"}
    laplace = plan_for("gcse", {**model, "integration": {"method": "laplace"}}, derive=GCSE_HI)
    aghq = plan_for("gcse", {**model, "link": "probit",
                             "integration": {"method": "aghq", "points": 7}}, derive=GCSE_HI)
    assert laplace.call == ('glmer(hi_gcse ~ lrt + sch_2 + sch_3 + (1 | school), data = d, '
                            'family = binomial(link = "logit"), nAGQ = 1)')
    assert 'binomial(link = "probit"), nAGQ = 7' in aghq.call
    assert aghq.method_label == "AGHQ(7)" and laplace.method_label == "Laplace"
    pois = plan_for("popular2", {"formula": "popteach ~ sex + (1 | class)", "family": "poisson",
                                 "method": "ML", "integration": {"method": "laplace"}})
    assert 'family = poisson(link = "log")' in pois.call


def test_ordinal_single_and_multilevel():
    clmm = plan_for("popular2", {"formula": "pop3 ~ sex + Cextrav + Ctexp + (1 | class)",
                                 "family": "ordinal", "method": "ML",
                                 "integration": {"method": "laplace"}}, derive=POP3)
    assert clmm.call == ('ordinal::clmm(factor(pop3, ordered = TRUE) ~ sex + Cextrav + Ctexp + '
                         '(1 | class), data = d, link = "logit", nAGQ = 1)')
    clm = plan_for("popular2", {"formula": "pop3 ~ sex", "family": "ordinal", "link": "probit",
                                "method": "ML"}, derive=POP3)
    assert clm.kind == "clm"
    assert clm.call == ('ordinal::clm(factor(pop3, ordered = TRUE) ~ sex, data = d, '
                        'link = "probit")')


def test_single_level_ols_ml_and_cluster():
    ols = plan_for("gcse", {"formula": "gcse ~ lrt + girl", "method": "OLS",
                            "cluster_se": "school"})
    assert ols.kind == "lm" and ols.ols and ols.cluster == "school"
    assert ols.call == "lm(gcse ~ lrt + girl, data = d, subset = !is.na(school))"
    assert "school" in ols.columns
    ml = plan_for("gcse", {"formula": "gcse ~ lrt", "method": "ML"})
    assert ml.call == 'glm(gcse ~ lrt, data = d, family = gaussian(link = "identity"))'
    assert any("sqrt(n/(n - p))" in n for n in ml.notes)
    logit = plan_for("gcse", {"formula": "hi_gcse ~ lrt", "family": "binomial", "method": "ML"},
                     derive=GCSE_HI)
    assert logit.call == 'glm(hi_gcse ~ lrt, data = d, family = binomial(link = "logit"))'


def test_factors_have_explicit_sorted_levels_reference_first_and_C_becomes_factor():
    p = plan_for("gcse", {"formula": "gcse ~ lrt + C(schgend) + (1 | school)", "method": "ML",
                          "reference_level": {"schgend": 3}})
    assert "factor(schgend)" in p.call and "C(" not in p.call
    assert p.factor_lines == ('d$schgend <- factor(d$schgend, levels = c(3, setdiff('
                              'sort(unique(d$schgend), method = "radix"), 3)))',)
    declared = plan_for("gcse", {"formula": "gcse ~ lrt + vrband + (1 | school)",
                                 "method": "ML"}, columns={"vrband": "factor", "girl": "factor"})
    # only model columns are declared; girl is not in the model
    assert declared.factor_lines == ('d$vrband <- factor(d$vrband, levels = '
                                     'sort(unique(d$vrband), method = "radix"))',)
    assert translate.factor_line("x", translate.FactorLevels("a")) == (
        'd$x <- factor(d$x, levels = c("a", setdiff(sort(unique(d$x), method = "radix"), '
        '"a")))')


def test_control_and_optimizer_settings():
    opt = plan_for("gcse", {**RI, "method": "ML", "optimizer": "bobyqa",
                            "max_iterations": 5000})
    assert opt.call.endswith('control = lmerControl(optimizer = "bobyqa", '
                             'optCtrl = list(maxfun = 5000)))')
    typed = plan_for("gcse", {**RI, "method": "ML"},
                     backends={"lme4": {"options": {"optimizer": "nmkbw", "max_iterations": 99,
                                                    "calc_derivs": False, "timeout": 60}}})
    assert typed.call.endswith('control = lmerControl(optimizer = "nmkbw", '
                               'optCtrl = list(maxfeval = 99), calc.derivs = FALSE))')
    over = make_spec("gcse", {**RI, "method": "ML"},
                     backends={"lme4": {"method": "REML", "optimizer": "Nelder_Mead"}})
    p = translate.plan(over, over.model_for("lme4"))
    assert 'REML = TRUE, control = lmerControl(optimizer = "Nelder_Mead")' in p.call
    clmm = plan_for("popular2", {"formula": "pop3 ~ sex + (1 | class)", "family": "ordinal",
                                 "method": "ML", "integration": {"method": "laplace"}},
                    derive=POP3, backends={"lme4": {"options": {"optimizer": "ucminf"}}})
    assert clmm.call.endswith('control = ordinal::clmm.control(method = "ucminf"))')
    glm = plan_for("gcse", {"formula": "gcse ~ lrt", "method": "ML", "max_iterations": 50})
    assert glm.call.endswith("control = glm.control(maxit = 50))")


@pytest.mark.parametrize("backends, model, fragment", [
    # free R code is gone: control strings and unknown keys are spec errors naming the key
    ({"lme4": {"options": {"control": "lmerControl(optimizer = 'bobyqa')"}}}, {},
     "unknown key 'backends.lme4.options.control' (known keys here: optimizer, "
     "max_iterations, calc_derivs, timeout"),
    ({"lme4": {"options": {"optimizer": 'bobyqa"); system("touch x'}}}, {},
     "backends.lme4.options.optimizer"),
    ({}, {"optimizer": 'bobyqa"); system("x'}, "model.optimizer"),
    # an optimizer of the wrong R function
    ({"lme4": {"options": {"optimizer": "ucminf"}}}, {},
     "lme4 fits this model with lmer, whose optimizers are: nloptwrap, bobyqa"),
    ({}, {"optimizer": "nlminb"}, "model.optimizer 'nlminb' does not apply"),
    ({"lme4": {"options": {"calc_derivs": True}}},
     {"formula": "gcse ~ lrt", "method": "OLS"}, "calc_derivs applies to lmer/glmer only"),
])
def test_lme4_options_are_typed_and_checked_at_load(backends, model, fragment):
    with pytest.raises(SpecError, match=re.escape(fragment)):
        make_spec("gcse", {**RI, "method": "ML", **model}, backends=backends)


def test_unsupported_reasons():
    b = Lme4Backend()
    slope = make_spec("gcse", {"formula": "hi_gcse ~ lrt + (1 + lrt | school)",
                               "family": "binomial", "method": "ML",
                               "integration": {"method": "aghq", "points": 7}}, derive=GCSE_HI)
    assert b.unsupported_reason(slope.model) == translate.AGHQ_REASON
    two = make_spec("gcse", {"formula": "hi_gcse ~ lrt + (1 | school) + (1 | vrband)",
                             "family": "binomial", "method": "ML",
                             "integration": {"method": "aghq", "points": 5}}, derive=GCSE_HI)
    assert b.unsupported_reason(two.model) == translate.AGHQ_REASON
    fine = make_spec("gcse", {"formula": "hi_gcse ~ lrt + (1 + lrt | school)",
                              "family": "binomial", "method": "ML",
                              "integration": {"method": "laplace"}}, derive=GCSE_HI)
    assert b.unsupported_reason(fine.model) is None
    multi = make_spec("gcse", {"formula": "vrband ~ lrt", "family": "multinomial",
                               "method": "ML"})
    assert b.unsupported_reason(multi.model) == "lme4 has no multinomial family"


def test_render_script_with_placeholder_derive_subset_and_factors(monkeypatch, tmp_path):
    monkeypatch.setenv("MLM_HARNESS_DATA", str(tmp_path))  # no local copy of gcse.dta
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = make_spec("gcse", {"formula": "hi_gcse ~ lrt + C(schgend) + (1 | school)",
                              "family": "binomial", "method": "ML",
                              "integration": {"method": "laplace"}},
                     derive=GCSE_HI, subset="girl == 1", columns={"schgend": "factor"})
    text = Lme4Backend().render(spec)
    assert 'd <- foreign::read.dta("<path to gcse.dta>", convert.factors = FALSE)' in text
    assert "suppressPackageStartupMessages(library(lme4))" in text
    assert "d$hi_gcse <- as.numeric(d$gcse >= 10)" in text
    assert "d$.keep <- as.numeric(d$girl == 1)" in text
    assert "d <- d[!is.na(d$.keep) & d$.keep != 0, , drop = FALSE]" in text
    assert "d$schgend <- factor(d$schgend" in text
    assert text.rstrip().endswith("print(summary(fit))")
    assert rscript.read_line("/x/y.dta") == ('d <- foreign::read.dta("/x/y.dta", '
                                             'convert.factors = FALSE)')
    assert rscript.read_line("/x/y.sav") == ('d <- foreign::read.spss("/x/y.sav", '
                                             'to.data.frame = TRUE, use.value.labels = FALSE, '
                                             'use.missings = FALSE)')
    assert rscript.read_line("/x/y.csv") == 'd <- read.csv("/x/y.csv", check.names = FALSE)'
    multi = make_spec("gcse", {"formula": "vrband ~ lrt", "family": "multinomial",
                               "method": "ML"})
    assert "no multinomial family" in Lme4Backend().render(multi)


def test_column_payload_keeps_numbers_numeric_and_sends_text_as_text():
    """Numbers (a 0/1 dummy too) stay numbers, text stays text, and logicals stay logicals:
    R's model matrix codes a logical predictor as the dummy xTRUE, as native does, so sending
    it as 0/1 would name and code it differently in the two engines."""
    df = pd.DataFrame({"y": [1.5, np.nan, 2.0], "dummy": [0, 1, 1],
                       "flag": [True, False, True], "name": ["b", None, "a"],
                       "maybe": [True, None, False], "unused": [9, 9, 9]})
    header, buffers = column_payload(df, ("y", "dummy", "flag", "name", "maybe"))
    assert [h["type"] for h in header] == ["float64", "float64", "bool", "str", "bool"]
    assert header[3]["values"] == ["b", None, "a"]
    assert header[2]["values"] == [True, False, True]
    assert header[4]["values"] == [True, None, False]
    y = np.frombuffer(buffers[0], dtype="<f8")
    assert y[0] == 1.5 and np.isnan(y[1])
    assert np.frombuffer(buffers[1], dtype="<f8").tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(translate.TranslationError, match="no column"):
        column_payload(df, ("missing",))


def test_availability_messages_without_r(monkeypatch):
    """Exact reasons and fixes, with the probe simulated (no R needed)."""
    monkeypatch.setattr(lme4_backend_module.shutil, "which", lambda name: None)
    lme4_backend_module.reset_availability()
    try:
        a = lme4_backend_module.check_availability()
        assert not a.ok and "Rscript is not on PATH" in a.reason
        assert a.fix == "apt-get install r-base-core r-cran-lme4 r-cran-ordinal"

        monkeypatch.setattr(lme4_backend_module.shutil, "which", lambda name: "/usr/bin/" + name)
        monkeypatch.setattr(lme4_backend_module.client, "probe", lambda: {
            "status": "error", "message": "ModuleNotFoundError: No module named 'rpy2'"})
        a = lme4_backend_module.check_availability(refresh=True)
        assert not a.ok and "rpy2 is not installed" in a.reason
        assert a.fix == "bash scripts/install_rpy2.sh"

        monkeypatch.setattr(lme4_backend_module.client, "probe", lambda: {
            "status": "error", "message": "error: symbol 'R_getVar' not found in library "
            "'/usr/lib/R/lib/libR.so': /usr/lib/R/lib/libR.so: undefined symbol: R_getVar"})
        a = lme4_backend_module.check_availability(refresh=True)
        assert not a.ok and "R_getVar" in a.reason and "install_rpy2.sh" in a.fix

        monkeypatch.setattr(lme4_backend_module.client, "probe", lambda: {
            "status": "ok", "versions": {"R": "4.2.2", "lme4": "1.1.31", "Matrix": "1.5.3",
                                         "ordinal": None, "rpy2": "3.5.17"}})
        a = lme4_backend_module.check_availability(refresh=True)
        assert not a.ok and "ordinal is not installed" in a.reason
        assert a.fix == "apt-get install r-cran-ordinal"
    finally:
        lme4_backend_module.reset_availability()
