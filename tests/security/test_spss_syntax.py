"""SPSS syntax cannot be hijacked by a spec: checked structurally (there is no SPSS here).

SPSS ends a command at a period that ends a line and runs ``HOST``, ``INSERT`` or ``SCRIPT``
commands from any line that starts one. The attacks put newlines, periods, quotes, ``*``,
``/*`` and subcommand text into every piece of free text a spec has (title, source, the spec
id, the data path) and into names. What must hold for every generated syntax file:

* every line that is not a comment starts with one of the exporter's own commands, or is an
  indented continuation (``  /SUBCOMMAND`` or a list of names);
* user text appears only in ``*`` comment lines (each ending in its own period, with no
  ``/*``/``*/``) or inside one ``'...'`` literal whose apostrophes are doubled;
* a name SPSS cannot take makes the spec not writable, naming it.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.spss.errors import SpssRenderError
from backends.spss.export import export_syntax
from backends.spss.render import model_syntax
from harness.spec import parse_spec
from harness.spsssyntax import (SpssTextError, spss_comment, spss_name, spss_name_problem,
                                spss_string)

from .test_properties import SETTINGS

PAYLOADS = ["HOST COMMAND=['touch /tmp/PWNED'].", "INSERT FILE='/tmp/evil.sps'.",
            "/RANDOM=ALL.", "x.", "*/ FREQ ALL.", "/* ", "' . HOST COMMAND=['id'].", '"', "''"]
EVIL = "\n".join(["title", *PAYLOADS, "\r\n\u2028end."])
VOCABULARY = {"GET", "COMPUTE", "RECODE", "AGGREGATE", "AUTORECODE", "SELECT", "VARIABLE",
              "MIXED", "GENLINMIXED", "ECHO", "SET"}
LITERAL = re.compile(r"'(?:[^'\n]|'')*'")


def evil_spec(**changes):
    spec = parse_spec({
        "id": "attack", "title": EVIL, "source": EVIL, "dataset": "gcse", "description": EVIL,
        "derive": [{"name": "sch_2", "expr": "schgend == 2", "note": EVIL}],
        "subset": "(sch_2 >= 0 #\n)",
        "model": {"formula": "gcse ~ lrt + sch_2 + (1 + lrt | school)", "method": "REML"}})
    return spec.model_copy(update=changes)


def assert_only_comments_and_literals_carry_user_text(text: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        assert "\r" not in line and "\u2028" not in line, where
        if not line.strip():
            continue
        if line.startswith("*"):
            assert line.startswith("* ") and line.endswith(" ."), where
            assert "/*" not in line and "*/" not in line, where
            continue
        code = LITERAL.sub("''", line)
        assert "'" not in code.replace("''", ""), where  # every quote belongs to a literal
        for payload in ("HOST", "INSERT", "touch", "PWNED", "FREQ", "evil"):
            assert payload not in code, where
        if line.startswith(" "):
            assert line.startswith("  /") or line.startswith("    "), where
        else:
            assert line.split()[0] in VOCABULARY, where


@pytest.mark.parametrize("spec_id", ["attack", "x'. HOST COMMAND=['id'].", "a/RANDOM=ALL.*"])
def test_free_text_and_spec_ids_stay_in_comments_and_literals(spec_id: str) -> None:
    spec = evil_spec(id=spec_id)
    text, _ = export_syntax([spec], spss_data_dir="/d/it's here")
    assert_only_comments_and_literals_carry_user_text(text)
    assert "HOST COMMAND" in text  # the title is shown, but as a comment
    assert "GET STATA FILE='/d/it''s here/gcse.dta'." in text


def test_a_spec_id_with_a_newline_is_refused() -> None:
    with pytest.raises(SpssRenderError, match="spec id"):
        export_syntax([evil_spec(id="x'.\nHOST COMMAND=['id'].")], spss_data_dir="/d")


def test_a_data_path_with_a_newline_is_refused() -> None:
    with pytest.raises(SpssRenderError, match="data path"):
        export_syntax([evil_spec()], spss_data_dir="/d\nHOST COMMAND=['id'].")


@pytest.mark.parametrize("name", ["a.b", "x'y", 'x"y', "a*b", "a. HOST x", "a/FIXED", "BY",
                                  "with", "_x", "#scratch", "$sysmis", "x y", "é", "a" * 65])
def test_names_spss_cannot_take_are_refused_naming_them(name: str) -> None:
    quoted = "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
    spec = parse_spec({"id": "t", "title": "t", "source": "s", "dataset": "gcse",
                       "model": {"formula": f"gcse ~ {quoted} + (1 | school)",
                                 "method": "ML"}})
    with pytest.raises(SpssRenderError, match="spec 't' cannot be written for SPSS") as e:
        model_syntax(spec, [])
    assert "SPSS" in str(e.value)


def test_a_name_with_a_newline_is_refused_by_the_escaper_too() -> None:
    # the spec already refuses it (harness/names.py); the escaper does not rely on that
    assert spss_name_problem("a\nHOST COMMAND=['id']") is not None


@settings(max_examples=300, **SETTINGS)
@given(st.text(max_size=80))
def test_string_literals_are_one_token_that_reads_back(text: str) -> None:
    try:
        lit = spss_string(text)
    except SpssTextError:
        return
    assert LITERAL.fullmatch(lit) and "\n" not in lit
    assert lit[1:-1].replace("''", "'") == text


@settings(max_examples=300, **SETTINGS)
@given(st.text(max_size=400))
def test_comments_are_whole_lines_ended_by_their_own_period(text: str) -> None:
    for line in spss_comment(text).split("\n"):
        assert line.startswith("* ") and line.endswith(" .")
        assert "/*" not in line and "*/" not in line
        assert not any(c in line for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


@settings(max_examples=300, **SETTINGS)
@given(st.text(max_size=70))
def test_accepted_names_are_plain_identifiers(name: str) -> None:
    if spss_name_problem(name) is None:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name)
        assert spss_name(name) == name
    else:
        with pytest.raises(SpssTextError):
            spss_name(name)
