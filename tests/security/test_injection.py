"""Every way a spec used to run code (issue 12 item 1) is refused or made inert.

Found on main by an attacker: R code in the lme4 worker (the free ``control`` option, a quote in
``model.optimizer``, ``I(system(...))`` in the never-validated fixed part with derived columns
called ``system`` and ``c`` to pass the unknown-name check, backticks in ``cluster_se`` or a
derived name), Python code in the harness (formulaic's ``eval`` of ``I(...)``), and generated
scripts hijacked by a newline in a title or a derived name. Each attack below names a marker
file; the tests assert that it was NOT created, by loading the spec, building native designs,
fitting through the live lme4 backend (tests/security/test_r_live.py) and running the generated
R script with Rscript. Do-files cannot run here (no Stata), so :mod:`.test_do_files` checks
them structurally.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends.native.design import build_design
from harness.formula import FormulaError, parse_formula
from harness.spec import SpecError, parse_spec

BASE = {"id": "attack", "title": "attack", "source": "tests/security", "dataset": "gcse"}
RI = {"formula": "gcse ~ lrt + (1 | school)", "method": "ML"}


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "an attack ran code: the marker file exists"


def spec_with(**keys):
    return parse_spec({**BASE, "model": RI, **keys})


def r_attacks(marker: Path) -> dict[str, dict]:
    touch_r = f"system('touch {marker}')"
    derive_cover = [{"name": "system", "expr": "lrt"}, {"name": "c", "expr": "lrt"}]
    return {
        "lme4 control option": {"backends": {"lme4": {"options": {
            "control": f"{{{touch_r}; lmerControl()}}"}}}},
        "optimizer breaks out of its quotes": {"model": {**RI, "optimizer": f'bobyqa"); '
                                                         f'{touch_r}; ("'}},
        "lme4 option optimizer breaks out": {"backends": {"lme4": {"options": {
            "optimizer": f'bobyqa"); {touch_r}; ("'}}}},
        "I(system()) with covering derived columns": {
            "derive": derive_cover,
            "model": {**RI, "formula": f'gcse ~ I(system("touch {marker}")) + (1 | school)'}},
        "system() without quotes": {
            "derive": derive_cover,
            "model": {**RI, "formula": "gcse ~ I(system(c(1))) + (1 | school)"}},
        "backquoted function call": {
            "derive": derive_cover,
            "model": {**RI, "formula": "gcse ~ `system`(1) + (1 | school)"}},
        "unknown function in the fixed part": {
            "derive": derive_cover, "model": {**RI, "formula": "gcse ~ c(lrt) + (1 | school)"}},
        "R code after a newline in a derived name": {
            "derive": [{"name": f"x\n{touch_r}\n", "expr": "lrt"}]},
        "newline in group_mean": {
            "derive": [{"name": "m", "group_mean": f"lrt\n{touch_r}", "by": "school"}]},
        "newline in by": {
            "derive": [{"name": "m", "group_mean": "lrt", "by": f"school\n{touch_r}"}]},
        "newline in a recode source": {
            "derive": [{"name": "m", "recode": {1: 2}, "source": f"girl\n{touch_r}"}]},
        "newline in cluster_se": {
            "model": {"formula": "gcse ~ lrt", "method": "OLS",
                      "cluster_se": f"school\n{touch_r}"}},
        "non-finite recode value": {"derive": [{"name": "m", "recode": {1: float("inf")},
                                                "source": "girl"}]},
    }


def python_attacks(marker: Path) -> list[str]:
    touch = f"__import__('os').system('touch {marker}')"
    return [
        f"gcse ~ I({touch}) + (1 | school)",
        "gcse ~ I([].__class__.__base__.__subclasses__()) + (1 | school)",
        f"gcse ~ I(lrt + {touch}) + (1 | school)",
        "gcse ~ I(getattr(lrt, '__class__')) + (1 | school)",
        "gcse ~ lrt + (1 + lrt[0] | school)",
        "gcse ~ lrt + (1 | school; import os)",
        "gcse ~ I(`__import__`('os')) + (1 | school)",
        "gcse ~ I(lambda: 1) + (1 | school)",
        "gcse ~ I(1e999) + (1 | school)",
    ]


def test_r_attacks_do_not_load(marker: Path) -> None:
    for what, keys in r_attacks(marker).items():
        with pytest.raises(SpecError) as info:
            spec_with(**keys)
        assert str(info.value), what


@pytest.mark.parametrize("index", range(9))
def test_python_attacks_are_formula_errors_before_any_data(index: int, marker: Path) -> None:
    formula = python_attacks(marker)[index]
    with pytest.raises(FormulaError):
        parse_formula(formula)
    frame = pd.DataFrame({"gcse": np.arange(6.0), "lrt": np.arange(6.0) ** 2,
                          "school": [1, 1, 2, 2, 3, 3]})
    with pytest.raises(FormulaError):
        build_design(formula, frame)
    with pytest.raises(SpecError):
        spec_with(model={**RI, "formula": formula})


def test_a_dotted_name_is_only_ever_a_column_name() -> None:
    """R's names may contain dots, so ``lrt.__class__`` is a (missing) column, never an
    attribute: the data are asked for that column and nothing is evaluated."""
    from backends.native.design import DesignError

    assert parse_formula("gcse ~ I(lrt.__class__)").variables() == {"gcse", "lrt.__class__"}
    with pytest.raises(DesignError, match=r"column\(s\) lrt.__class__ not in the data"):
        build_design("gcse ~ I(lrt.__class__)", pd.DataFrame({"gcse": [1.0], "lrt": [2.0]}))


def test_error_messages_name_the_token_and_what_is_allowed() -> None:
    with pytest.raises(FormulaError, match=r"function 'system' at position 10 is not allowed in "
                                           r"arithmetic; allowed: log, exp, sqrt"):
        parse_formula("gcse ~ I(system(1))")
    with pytest.raises(FormulaError, match=r"character '\"' at position 17 cannot appear in a "
                                           r"formula \(allowed: column names, numbers"):
        parse_formula('gcse ~ I(system("x"))')
    with pytest.raises(FormulaError, match=r"function 'c' at position 8 is not allowed in a "
                                           r"formula; allowed: factor\(x\), C\(x\), I\("):
        parse_formula("gcse ~ c(lrt)")
    with pytest.raises(SpecError, match=r"unknown key 'backends.lme4.options.control' \(known "
                                        r"keys here: optimizer, max_iterations, calc_derivs, "
                                        r"timeout"):
        spec_with(backends={"lme4": {"options": {"control": "lmerControl()"}}})
    with pytest.raises(SpecError, match=r"key 'derive.0.name': name 'x y' contains the control "
                                        r"or invisible character U\+000A"):
        spec_with(derive=[{"name": "x\ny", "expr": "lrt"}])


def test_names_that_are_not_r_syntactic_are_escaped_symbols_not_code() -> None:
    """A name may hold quotes, backticks and parentheses: R gets it as one backquoted symbol."""
    from backends.lme4 import translate

    weird = "x`); system('touch /tmp/x'); (`"
    spec = spec_with(derive=[{"name": weird, "expr": "lrt"}],
                     model={"formula": "gcse ~ `x\\`); system('touch /tmp/x'); (\\`` + "
                                       "(1 | school)", "method": "ML"})
    assert spec.model.parsed.variables() == {"gcse", weird, "school"}
    call = translate.plan(spec, spec.model).call
    assert call.startswith("lmer(gcse ~ `x\\`); system('touch /tmp/x'); (\\`` + (1 | school)")
    assert call.count("`") == 4  # two symbols' delimiters plus the two escaped backticks
