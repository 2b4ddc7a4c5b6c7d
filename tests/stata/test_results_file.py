"""The one results reader: the format the do-files write (named fields, %21.0g numbers)."""

from __future__ import annotations

import pytest

from backends.stata.results_file import (ResultsFileError, level_label, number, parse_results,
                                         write_results)
from tests.stata.fixtures import block_c_b, record
from tests.stata.specs import specs

# What Stata's `file write ... %21.0g` produces: right-justified, leading-dot style.
STATA_TEXT = """mlmh-stata-results\t1
model\tlab1.stata1.1.rs_ml
meta\tstata_version\t17
meta\tflavour\tSE
rc\t0
macro\tcmdline\tmixed gcse lrt girl sch_2 sch_3 || school: lrt, cov(unstructured) mle
scalar\tN\t                 4059
scalar\tll\t   -13986.73805183
scalar\trmse\t                    .
b\tgcse:lrt\t     .554423443120452
b\tlns1_1_1:_cons\t    -2.11158412434061
V\tgcse:lrt\tgcse:lrt\t  .000397527921235
V\tlns1_1_1:_cons\tgcse:lrt\t  -1.2345e-06
ngroups\tschool\t          65
re\tschool\tlrt\t                   48 :                    3\t  -.0123\t   .11
re\tschool\t(Intercept)\t                    1\t 3.71\t .
end\tlab1.stata1.1.rs_ml
"""


def test_reads_stata_formatted_numbers_and_fields() -> None:
    rec = parse_results(STATA_TEXT)["lab1.stata1.1.rs_ml"]
    assert rec.complete and rec.rc == 0
    assert rec.scalars["N"] == 4059 and rec.scalars["ll"] == -13986.73805183
    assert rec.scalars["rmse"] is None  # "." is missing
    assert rec.b["gcse:lrt"] == pytest.approx(.554423443120452, rel=0)
    assert rec.cov("gcse:lrt", "lns1_1_1:_cons") == -1.2345e-06
    assert rec.ngroups == {"school": 65}
    assert rec.re[0] == ("school", "lrt", "48:3", -.0123, .11)
    assert rec.re[1][4] is None
    assert rec.macros["cmdline"].startswith("mixed gcse")


def test_numbers_and_levels() -> None:
    assert number("  .5") == .5 and number("-.0066825") == -.0066825
    assert number(".") is None and number(".a") is None and number("") is None
    assert level_label("   12 :     3") == "12:3" and level_label(" 2.5") == "2.5"


def test_round_trip_through_writer() -> None:
    spec = specs()["lab1.stata1.1.rs_ml"]
    b, se = block_c_b()
    rec = record(spec, b, se, scalars={"N": 4059, "ll": -13986.738}, ngroups={"school": 65},
                 re=[("school", "lrt", "1", .01, .002)])
    again = parse_results(write_results([rec]))[spec.id]
    assert again.b == rec.b and again.V == rec.V and again.layout == rec.layout
    assert again.re == rec.re and again.scalars == rec.scalars


@pytest.mark.parametrize("text,match", [
    ("hello\n", "not a mlm-harness"),
    ("mlmh-stata-results\t9\n", "version 9"),
    ("mlmh-stata-results\t1\nb\tx\t1\n", "before any 'model'"),
    ("mlmh-stata-results\t1\nmodel\tm\nbogus\t1\n", "unknown field"),
    ("mlmh-stata-results\t1\nmodel\tm\nrc\t0\nmodel\tm\n", "second block for model 'm'"),
])
def test_bad_files_say_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(ResultsFileError, match=match):
        parse_results(text)


@pytest.mark.parametrize("line,problem", [
    ("scalar\tN\tabc", "line 3: scalar N: 'abc' is not a number"),
    ("b\tgcse:lrt\tnan", "line 3: e(b) column gcse:lrt: 'nan' is not a finite number"),
    ("b\tgcse:lrt\tinf", "line 3: e(b) column gcse:lrt: 'inf' is not a finite number"),
    ("b\tgcse:lrt\t.", "line 3: e(b) column gcse:lrt is missing"),
    ("V\tgcse:lrt\tgcse:lrt\t-inf", "line 3: e(V)[gcse:lrt, gcse:lrt]: '-inf' is not a finite"),
    ("re\tschool\tlrt\t1\tNaN\t.1", "line 3: random effect school/lrt/1: 'NaN' is not a"),
])
def test_a_value_that_is_not_a_number_is_a_problem_of_its_model_with_its_line(
        line: str, problem: str) -> None:
    """Stata writes finite numbers or '.' (missing); anything else means the block cannot be
    trusted, so it is recorded against that model (which imports as an error) while the other
    models of the file still import."""
    recs = parse_results(f"mlmh-stata-results\t1\nmodel\tm\n{line}\nend\tm\n"
                         "model\tok\nrc\t0\nend\tok\n")
    assert any(p.startswith(problem) for p in recs["m"].problems), recs["m"].problems
    assert recs["ok"].problems == []


def test_truncated_block_is_not_complete() -> None:
    recs = parse_results("mlmh-stata-results\t1\nmodel\tm\nrc\t0\n")
    assert not recs["m"].complete and not recs["m"].b
