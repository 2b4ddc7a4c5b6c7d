"""Stata do-file text for values: names, string literals, comments.

Stata has no way to quote an arbitrary name, and it expands macros (a backquote or ``$``) even
inside string literals, so the rules are stricter than R's:

* a name must already be a Stata name (:func:`stata_name_problem`): 1 to 32 characters, letters,
  digits and underscores, not starting with a digit, not a reserved word. A spec whose names
  Stata cannot take is not estimable in Stata (the reason names the name), never rewritten;
* a string literal (:func:`stata_string`) is written in compound quotes and refuses the
  characters Stata would expand or that would end it;
* free text goes into ``*`` comments only (:func:`stata_comment`), on one line, with the comment
  syntax Stata reads *inside* a line (``///`` continuation, ``/* */`` blocks, ``//``) and the
  macro characters defused, so a comment can neither swallow the next command nor start one.
"""

from __future__ import annotations

import math
import re

from harness.names import one_line
from harness.rsyntax import r_number

MAX_NAME = 32
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED = frozenset({"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in",
                      "int", "long", "_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL",
                      "using", "with"})
"""Stata's reserved names ([U] 11.3 Naming conventions); ``str1`` ... ``str2045`` too."""
_STR_TYPE = re.compile(r"str[0-9]+")


class StataTextError(ValueError):
    """Text that cannot be written into a do-file safely; the message says which and why."""


def stata_name_problem(name: str) -> str | None:
    """Why ``name`` is not a Stata variable name (None when it is)."""
    if not _NAME.fullmatch(name):
        return (f"{one_line(name)!r} is not a Stata name (letters, digits and underscores, not "
                "starting with a digit)")
    if len(name) > MAX_NAME:
        return f"{name!r} is longer than Stata's {MAX_NAME} characters"
    if name in RESERVED or _STR_TYPE.fullmatch(name):
        return f"{name!r} is a reserved word in Stata"
    return None


def stata_name(name: str, what: str = "name") -> str:
    """``name`` when Stata can take it; StataTextError saying why not otherwise."""
    problem = stata_name_problem(name)
    if problem:
        raise StataTextError(f"{what} {problem}; rename it (a derived variable under 'derive' "
                             "can copy a column under a new name)")
    return name


def stata_string(text: str, compound: bool = True) -> str:
    """``text`` as a Stata string literal: compound-quoted ```"..."'``, or ``"..."`` (which
    cannot hold a double quote) where the harness has always written plain quotes."""
    bad = [c for c in ("`", "$", "\"'" if compound else '"') if c in text]
    if bad or one_line(text) != text:
        raise StataTextError(f"cannot write {one_line(text)[:60]!r} into a do-file safely "
                             "(backquote, dollar sign, a closing quote or a control "
                             "character)")
    return f"`\"{text}\"'" if compound else f'"{text}"'



def _defuse(text: str) -> str:
    """Comment text that Stata cannot read as anything but comment text."""
    text = one_line(text).replace("`", "'").replace("$", "S")
    while "//" in text or "/*" in text or "*/" in text:
        text = text.replace("//", "/ /").replace("/*", "/ *").replace("*/", "* /")
    return text


def stata_comment(text: object) -> str:
    """Free text as one Stata ``*`` comment line."""
    return "* " + _defuse(str(text))


def inline_comment(text: object) -> str:
    """Free text as a ``//`` comment at the end of a command line."""
    return "// " + _defuse(str(text))


def stata_number(value: float) -> str:
    """A finite number as Stata reads it back exactly (``2``, ``0.5``, ``1e-05``)."""
    if not math.isfinite(float(value)):
        raise StataTextError(f"{value!r} is not a finite number")
    return r_number(value, exact=True)  # R's exact literals are valid Stata numbers
