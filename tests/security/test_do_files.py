"""Do-files cannot be hijacked by a spec: checked structurally (there is no Stata here).

A do-file runs on the Stata user's machine, where ``shell``, ``!``, ``winexec`` or an ``include``
would run anything. The attacks put such lines into every piece of free text a spec has (title,
description, source, notes, the subset's text, a skip reason) and names Stata cannot take.
What must hold for every generated do-file (one model, the readable ``show`` form, the suite
export):

* every line that is not a comment starts with one of the harness's own commands;
* user text appears only in ``*`` comment lines, which contain nothing Stata reads inside a
  line (``///`` continuation, ``/* */``, ``//``, macro characters);
* a name Stata cannot take makes the model not estimable in Stata, naming it.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from backends.base import FitJob
from backends.stata.backend import StataBackend
from backends.stata.render import StataRenderError, model_do, plan, show_do
from backends.stata.stored import export_do
from harness.spec import Spec, parse_spec

PAYLOADS = ["shell touch /tmp/PWNED", "!touch /tmp/PWNED", "winexec calc",
            "include /tmp/evil.do", "* ///", "/* ", " */", "`c(pwd)'", "$HOME", "#delimit ;"]
EVIL = "\n".join(["title", *PAYLOADS, "\r\n\u2028end"])

# The first word of every command the harness writes (collected from the course specs' do-files;
# a new command in render.py belongs here after review).
VOCABULARY = {"bysort", "capture", "display", "drop", "egen", "expand", "file", "forvalues",
              "generate", "global", "if", "keep", "local", "matrix", "preserve", "quietly",
              "replace", "restore", "scalar", "set", "sort", "svyset", "use", "import",
              "version", "xtset", "}", "mixed", "regress", "melogit", "mepoisson", "predict",
              "estat", "meologit"}


def evil_spec(**model) -> Spec:
    return parse_spec({
        "id": "attack", "title": EVIL, "source": EVIL, "dataset": "gcse", "description": EVIL,
        "derive": [{"name": "sch_2", "expr": "schgend == 2", "note": EVIL}],
        "subset": "(sch_2 >= 0 #\n)",  # a Python comment and a newline inside the subset text
        "known_issues": [{"id": "k", "description": EVIL}],
        "model": {"formula": "gcse ~ lrt + sch_2 + I(lrt^2) + poly(lrt, 2) + (1 | school)",
                  "method": "ML", **model},
        "backends": {"native": {"skip": EVIL}}})


def assert_only_comments_carry_user_text(text: str) -> None:
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        where = f"line {number}: {line!r}"
        assert "\r" not in line and "\u2028" not in line, where
        if not stripped:
            continue
        if stripped.startswith("*"):
            body = stripped[1:]
            for token in ("///", "/*", "*/", "//", "`", "$"):
                assert token not in body, where
            continue
        assert stripped.split()[0] in VOCABULARY, where
        assert not stripped.endswith("///"), where
        for payload in ("touch", "winexec", "evil.do", "#delimit", "$HOME", "c(pwd)"):
            if payload in stripped:  # user text outside a comment: only ever a comment tail
                assert "//" in stripped and payload in stripped.split("//", 1)[1], where


def test_free_text_stays_in_one_line_comments() -> None:
    spec = evil_spec()
    layout = plan(spec)
    for text in (model_do(spec, layout, "/data/gcse.dta", "@RESULTS@", "0" * 64),
                 show_do(spec, layout, "/data/gcse.dta")):
        assert_only_comments_carry_user_text(text)
        assert "shell touch /tmp/PWNED" in text  # the title is shown, but as a comment


def test_suite_export_with_skip_reasons_and_titles() -> None:
    skipped = parse_spec({"id": "skipped", "title": EVIL, "source": "s", "dataset": "gcse",
                          "model": {"formula": "gcse ~ lrt", "method": "OLS"},
                          "backends": {"stata": {"skip": EVIL}}})
    text = export_do([evil_spec(), skipped], use_data=False, stata_data_dir="/data")
    assert_only_comments_carry_user_text(text)
    assert "skipped: title" in text


def test_transform_lines_use_only_validated_names_and_numbers() -> None:
    layout = plan(evil_spec())
    assert layout.generated == {"mlmh_x3": "I(lrt^2)", "mlmh_x4_1": "poly(lrt, 2)1",
                                "mlmh_x4_2": "poly(lrt, 2)2"}
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", " ".join(layout.transforms)))
    harness_words = {"generate", "double", "replace", "quietly", "summarize", "meanonly",
                     "scalar", "drop", "r", "N", "mean", "sum", "sqrt", "lrt"}
    assert {w for w in words if not w.startswith("mlmh_x")} <= harness_words


@pytest.mark.parametrize("name, fragment", [
    ("x y", "'x y' is not a Stata name"),
    ("x`y", "is not a Stata name"),
    ("x$y", "is not a Stata name"),
    ("_cons", "'_cons' is a reserved word in Stata"),
    ("str12", "'str12' is a reserved word in Stata"),
    ("a" * 33, "longer than Stata's 32 characters"),
    ("été", "is not a Stata name"),
])
def test_names_stata_cannot_take_are_not_estimable(name: str, fragment: str) -> None:
    spec = parse_spec({"id": "x", "title": "t", "source": "s", "dataset": "gcse",
                       "derive": [{"name": name, "expr": "lrt * 2"}],
                       "model": {"formula": f"gcse ~ `{name.replace('`', chr(92) + '`')}` + "
                                            "(1 | school)", "method": "ML"}})
    with pytest.raises(StataRenderError, match=re.escape(fragment)):
        plan(spec)
    frame = pd.DataFrame({"gcse": [1.0, 2.0], name: [1.0, 2.0], "school": [1.0, 2.0]})
    result = StataBackend().fit(FitJob(spec=spec, model=spec.model_for("stata"), data=frame))
    assert result.status == "not_estimable" and fragment in result.message


def test_names_in_every_spec_key_are_checked_for_stata() -> None:
    base = {"id": "x", "title": "t", "source": "s", "dataset": "gcse",
            "model": {"formula": "gcse ~ lrt", "method": "OLS"}}
    cases = [
        ("bad name", {"derive": [{"name": "m", "group_mean": "lrt", "by": "bad name"}]}),
        ("bad name", {"derive": [{"name": "m", "recode": {1: 2}, "source": "bad name"}]}),
        ("bad name", {"derive": [{"name": "m", "group_id": ["school", "bad name"]}]}),
        ("été", {"derive": [{"name": "m", "expr": "été + 1"}]}),
        ("été", {"subset": "été > 0"}),
        ("bad name", {"replicate": {"times": 2, "cluster": "bad name"}}),
        ("bad name", {"model": {"formula": "gcse ~ lrt", "method": "OLS",
                                "cluster_se": "bad name"}}),
        ("bad name", {"backends": {"stata": {"options": {"command": "svy: regress",
                                                         "psu": "bad name"}}}}),
    ]
    for name, extra in cases:
        with pytest.raises(StataRenderError, match=f"'{name}' is not a Stata name"):
            plan(parse_spec({**base, **extra}))
