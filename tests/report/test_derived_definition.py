"""The report's one-line definition of each derived variable (report.derived_definition)."""

from __future__ import annotations

from harness.report import derived_definition
from harness.spec import Derived


def test_text_recode_is_shown_with_its_text_values() -> None:
    # A recode of a Y/N text column (the Contraception gallery spec) once crashed the report
    # (format code 'g' applied to the text 'Y').
    d = Derived(name="use_y", recode={"Y": 1, "N": 0}, source="use")
    assert derived_definition(d) == "recode use: Y→1, N→0"


def test_numeric_recode_keeps_its_number_format() -> None:
    d = Derived(name="tory", recode={-9: 0, 2.5: 1}, source="numhrs", otherwise=3)
    assert derived_definition(d) == "recode numhrs: -9→0, 2.5→1, otherwise 3"
