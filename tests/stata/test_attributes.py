"""Model attributes and column codings in the Stata do-file: written where Stata means the same
as R (weights as [fweight=] for non-gaussian models, offset(), binomial trials), and refused
with the reason where it does not (gaussian precision weights, sum contrasts, text columns)."""

from __future__ import annotations

import pandas as pd
import pytest

from backends.stata.render import StataRenderError, model_do, plan
from harness.spec import Spec, parse_spec


def _spec(formula: str, family: str = "binomial", columns: dict | None = None,
          options: dict | None = None, **model) -> Spec:
    m = {"formula": formula, "family": family, "method": "ML", **model}
    if family != "gaussian" and "(" in formula.split("~")[1] and "|" in formula:
        m.setdefault("integration", {"method": "laplace"})
    return parse_spec({"id": "x", "title": "x", "source": "x", "dataset": "d", "model": m,
                       "columns": columns or {},
                       **({"backends": {"stata": {"options": options}}} if options else {})})


def _frame(**extra) -> pd.DataFrame:
    base = {"y": [1, 0, 1, 0], "s": [3, 1, 2, 0], "f": [1, 2, 2, 4], "n": [4, 3, 4, 4],
            "x": [0.1, 0.2, 0.3, 0.4], "g": [1, 1, 2, 2], "w": [1, 2, 3, 1],
            "e": [1.0, 2.0, 3.0, 4.0]}
    return pd.DataFrame({**base, **extra})


def test_cbind_trials_go_to_binomial_option_of_melogit() -> None:
    lay = plan(_spec("cbind(s, f) ~ x + (1 | g)"), _frame())
    assert lay.command_line() == "melogit s x || g:, binomial(mlmh_trials) intmethod(laplace)"
    assert lay.transforms[0] == "generate double mlmh_trials = (s + f)"


def test_proportion_trials_single_level_use_glm_binomial_family() -> None:
    lay = plan(_spec("s/n ~ x"), _frame())
    assert lay.command_line() == "glm s x, family(binomial mlmh_trials) link(logit)"
    assert "generate double mlmh_trials = n" in lay.transforms


def test_offset_terms_and_attribute_are_summed_into_one_offset_variable() -> None:
    lay = plan(_spec("y ~ x + offset(log(e)) + (1 | g)", family="poisson", offset="x"), _frame())
    assert lay.transforms[0] == "generate double mlmh_offset = (ln(e) + x)"
    assert lay.command_line() == \
        "mepoisson y x, offset(mlmh_offset) || g:, intmethod(laplace)"
    single = plan(_spec("y ~ x + offset(log(e))", family="poisson"), _frame())
    assert single.command_line() == "poisson y x, offset(mlmh_offset)"


def test_gaussian_offset_is_fitted_as_response_less_offset() -> None:
    lay = plan(_spec("y ~ x + (1 | g)", family="gaussian", offset="e"), _frame())
    assert lay.depvar == "mlmh_y"
    assert lay.command_line().startswith("mixed mlmh_y x || g:")
    assert any(t.startswith("generate double mlmh_y = y - mlmh_offset") for t in lay.transforms)
    text = model_do(_spec("y ~ x + (1 | g)", family="gaussian", offset="e"), lay, "/d.dta",
                    "@R@", "0" * 64)
    assert text.index("generate double mlmh_offset") < text.index("generate double mlmh_y")


def test_whole_number_weights_of_a_glmm_are_frequency_weights() -> None:
    lay = plan(_spec("y ~ x + (1 | g)", weights="w"), _frame())
    assert lay.command_line() == "melogit y x [fweight=w] || g:, intmethod(laplace)"
    both = plan(_spec("cbind(s, f) ~ x + (1 | g)", weights="w", offset="e"), _frame())
    assert both.command_line() == ("melogit s x [fweight=w], offset(mlmh_offset) || g:, "
                                   "binomial(mlmh_trials) intmethod(laplace)")


@pytest.mark.parametrize("spec_kw, frame, message", [
    ({"formula": "y ~ x + (1 | g)", "family": "gaussian", "weights": "w"}, None,
     "precision weights"),
    ({"formula": "y ~ x + (1 | g)", "weights": "e"}, _frame(e=[1.5, 1, 1, 1]),
     "not whole numbers"),
    ({"formula": "y ~ x + (1 | g)", "weights": "w", "options": {"command": "xtlogit",
                                                              "estimator": "re"}},
     None, "constant within a panel"),
    ({"formula": "y ~ x + (1 | g)", "weights": "w", "options": {"command": "meqrlogit"}},
     None, "meqrlogit takes no weights"),
    ({"formula": "y ~ x + offset(e)", "family": "multinomial"}, None, "mlogit has no offset"),
])
def test_attributes_stata_does_not_mean_the_same_are_not_estimable(spec_kw, frame, message):
    with pytest.raises(StataRenderError, match=message):
        plan(_spec(**spec_kw), _frame() if frame is None else frame)


def test_weights_column_must_be_a_stata_name() -> None:
    frame = _frame().rename(columns={"w": "_w"})
    frame["w.1"] = frame["_w"]
    with pytest.raises(StataRenderError, match="w.1"):
        plan(_spec("y ~ x + (1 | g)", weights="w.1"), frame)


def test_sum_contrasts_and_text_or_logical_columns_are_not_estimable() -> None:
    with pytest.raises(StataRenderError, match=r"\['g'\] have sum contrasts"):
        plan(_spec("y ~ g + (1 | x)", columns={"g": {"type": "factor", "contrasts": "sum"}}),
             _frame())
    with pytest.raises(StataRenderError, match=r"\['h'\] hold text or logicals"):
        plan(_spec("y ~ h + (1 | g)"), _frame(h=["a", "b", "a", "b"]))
    with pytest.raises(StataRenderError, match=r"\['h'\] hold text or logicals"):
        plan(_spec("h ~ x + (1 | g)"), _frame(h=[True, False, True, False]))


def test_text_grouping_factor_gets_an_id_and_its_labels_are_written_as_text() -> None:
    spec = _spec("y ~ x + (1 | t)")
    lay = plan(spec, _frame(t=["b", "b", "a", "a"]))
    assert [e.level for e in lay.equations] == ["mlmh_id1"]
    assert lay.equations[0].text_vars == ("t",)
    text = model_do(spec, lay, "/d.dta", "@R@", "0" * 64)
    assert "(t[`i'])" in text and "%21.0g (t[`i'])" not in text
    with pytest.raises(StataRenderError, match="crossed grouping factor"):
        plan(_spec("y ~ x + (1 | t) + (1 | g)", options={"crossed": True}),
             _frame(t=["b", "a", "a", "b"]))
