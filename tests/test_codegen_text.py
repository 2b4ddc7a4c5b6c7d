"""The functions through which user text enters generated code, against every character class.

R literals and symbols are read back by R itself (one Rscript run for all cases, marked
needs_r): what R reads must be exactly the text, code points and all. Stata has no interpreter
here, so its rules are checked as rules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.names import name_problem, one_line
from harness.rsyntax import is_syntactic, r_comment, r_literal, r_name, r_number, r_string
from harness.statasyntax import (StataTextError, inline_comment, stata_comment,
                                 stata_name_problem, stata_string)

TEXTS = {
    "plain": "abc",
    "double quote": 'say "hi"',
    "single quote": "it's",
    "backslash": "a\\b\\\\c\\",
    "backtick": "a`b``",
    "newline and return": "line1\nline2\r\nline3",
    "tab and bell": "a\tb\x07c\x1b",
    "delete and C1": "x\x7fy\x85z",
    "non-ASCII": "école, Ärger, 中文, 😀",
    "percent and sprintf": "100% %s %d %%",
    "R code": 'x"); system("touch /tmp/x"); ("',
    "dollar and at": "$HOME @x ~y",
    "line separators": "a\u2028b\u2029c",
    "bidi override": "abc\u202edcba",
    "empty": "",
}


def test_r_string_is_one_printable_ascii_line() -> None:
    for what, text in TEXTS.items():
        lit = r_string(text)
        assert lit.startswith('"') and lit.endswith('"'), what
        assert all(0x20 <= ord(c) < 0x7F for c in lit), what  # every other character escaped
    with pytest.raises(ValueError, match="NUL"):
        r_string("a\x00b")
    assert r_literal(True) == "TRUE" and r_literal(3) == "3" and r_literal(2.5) == "2.5"
    assert r_literal("x") == '"x"'


def test_r_names_and_numbers() -> None:
    assert [is_syntactic(n) for n in ["x", "x.y_1", ".x", "é", "_x", "2x", ".2x", "TRUE", "in",
                                      "...", "..1", "a b", "a`b"]] == \
        [True, True, True, True, False, False, False, False, False, False, False, False, False]
    assert r_name("x") == "x" and r_name("a b") == "`a b`"
    assert r_name("a`b\\c") == "`a\\`b\\\\c`"
    with pytest.raises(ValueError, match="U\\+000A"):
        r_name("a\nb")
    # R's deparse: 15 significant digits, fixed unless scientific is narrower
    assert [r_number(v) for v in [2, 2.0, 0.5, 1e5, 123456, 1e-4, 0.001, 1.5e20, -3.25,
                                  0.1234567890123456789, 1e-300, 0]] == \
        ["2", "2", "0.5", "1e+05", "123456", "1e-04", "0.001", "1.5e+20", "-3.25",
         "0.123456789012346", "1e-300", "0"]
    assert r_number(0.1 + 0.2, exact=True) == "0.30000000000000004"
    with pytest.raises(ValueError):
        r_number(float("inf"))


def test_comments_are_one_line() -> None:
    for text in TEXTS.values():
        for comment in (r_comment(text), stata_comment(text), inline_comment(text)):
            assert "\n" not in comment and "\r" not in comment
            assert "\u2028" not in comment and "\u202e" not in comment
    s = stata_comment("a /// b /* c */ d // e ` f $g ////")
    assert s.startswith("* ") and not any(t in s[1:] for t in ("//", "/*", "*/", "`", "$"))


def test_names_and_stata_text_rules() -> None:
    assert name_problem("x y") is None and name_problem("a`b\"c") is None
    for bad in ["", "a\nb", "a\x00", "a\u2028b", "a\u202eb", " x", "x" * 300]:
        assert name_problem(bad), repr(bad)
    assert one_line("a\nb\tc") == "a b c"
    assert stata_name_problem("school_2") is None
    for bad in ["2x", "a b", "a-b", "é", "_cons", "in", "str80", "strL", "x" * 33, ""]:
        assert stata_name_problem(bad), bad
    assert stata_string("C:/data/x.dta") == '`"C:/data/x.dta"\''
    for bad in ["a`b", "a$b", 'a"\'b', "a\nb"]:
        with pytest.raises(StataTextError):
            stata_string(bad)
    with pytest.raises(StataTextError):
        stata_string('a"b', compound=False)


@pytest.mark.needs_r
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not on PATH")
def test_r_reads_back_every_literal_and_symbol(tmp_path: Path) -> None:
    """Each string literal and each backquoted symbol, parsed by R, is exactly the text."""
    lines = ["out <- list()"]
    for i, text in enumerate(TEXTS.values()):
        lines.append(f"out[[{i + 1}]] <- utf8ToInt(enc2utf8({r_string(text)}))")
    names = [t for t in TEXTS.values() if name_problem(t) is None]
    for i, name in enumerate(names):
        lines.append(f"{r_name(name)} <- {i}")
        lines.append(f"out[[{len(TEXTS) + i + 1}]] <- utf8ToInt(enc2utf8("
                     f"deparse(quote({r_name(name)}), backtick = FALSE)))")
    lines.append("cat(paste(sapply(out, function(v) paste(v, collapse = ',')), collapse = '\\n'))")
    script = tmp_path / "read_back.R"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = done.stdout.split("\n")
    expected = list(TEXTS.values()) + names
    assert len(got) == len(expected)
    for text, codes in zip(expected, got):
        assert [int(c) for c in codes.split(",") if c] == [ord(c) for c in text], json.dumps(text)
