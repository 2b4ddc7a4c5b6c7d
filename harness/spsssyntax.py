"""SPSS syntax text for values: names, string literals, comments. The one place user text
(variable names, labels, paths, spec ids) becomes SPSS syntax.

SPSS ends a command at a period that is the last non-blank character of a line, and a ``*``
comment runs until such a period, so the rules are:

* a name must already be a plain SPSS name (:func:`spss_name_problem`): 1 to 64 characters,
  ASCII letters, digits and underscores, starting with a letter, not a reserved keyword
  (``ALL AND BY EQ GE GT LE LT NE NOT OR TO WITH``). SPSS itself also allows ``.``, ``@``,
  ``#`` and ``$``, but a period can end a command and ``#``/``$`` names are scratch or system
  variables, so those are refused: a spec whose names SPSS cannot take is not written, never
  rewritten;
* a string literal (:func:`spss_string`) is one line in apostrophes, an apostrophe inside
  doubled (SPSS's own escape), control characters refused, so it can neither end early nor
  run onto the next line;
* free text goes into ``*`` comment lines only (:func:`spss_comment`), each line ending in
  its own period, with ``/*`` and ``*/`` defused, so a comment can neither swallow the next
  command nor start one.
"""

from __future__ import annotations

import math
import re

from harness.names import one_line
from harness.rsyntax import r_number

MAX_NAME = 64
MAX_STRING = 240  # SPSS reads lines of at most 256 bytes in some modes; leave room for syntax
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESERVED = frozenset({"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO",
                      "WITH"})
"""SPSS's reserved keywords (Command Syntax Reference, "Reserved keywords")."""


class SpssTextError(ValueError):
    """Text that cannot be written into SPSS syntax safely; the message says which and why."""


def spss_name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain SPSS variable name (None when it is)."""
    if not _NAME.fullmatch(name):
        return (f"{one_line(name)!r} is not a plain SPSS name (ASCII letters, digits and "
                "underscores, starting with a letter)")
    if len(name) > MAX_NAME:
        return f"{name!r} is longer than SPSS's {MAX_NAME} characters"
    if name.upper() in RESERVED:
        return f"{name!r} is a reserved keyword in SPSS"
    return None


def spss_name(name: str, what: str = "name") -> str:
    """``name`` when SPSS can take it; SpssTextError saying why not otherwise."""
    problem = spss_name_problem(name)
    if problem:
        raise SpssTextError(f"{what} {problem}; rename it (a derived variable under 'derive' "
                            "can copy a column under a new name)")
    return name


def spss_string(text: str) -> str:
    """``text`` as an SPSS string literal ``'...'`` (apostrophes doubled)."""
    if one_line(text) != text:
        raise SpssTextError(f"cannot write {one_line(text)[:60]!r} into SPSS syntax: it holds a "
                            "line break or another control character")
    if len(text) > MAX_STRING:
        raise SpssTextError(f"cannot write {text[:60]!r}... into SPSS syntax: longer than "
                            f"{MAX_STRING} characters (SPSS syntax lines are limited)")
    return "'" + text.replace("'", "''") + "'"


def _defuse(text: str) -> str:
    """Comment text that SPSS cannot read as anything but comment text."""
    text = one_line(text)
    while "/*" in text or "*/" in text:
        text = text.replace("/*", "/ *").replace("*/", "* /")
    return text.rstrip()


def spss_comment(text: object, width: int = 120) -> str:
    """Free text as SPSS ``*`` comment lines of at most about ``width`` characters, each ended
    by its own `` .`` (a comment continued onto a next line would end early wherever a word
    ends in a period, and the rest would be read as a command)."""
    words, lines, line = _defuse(str(text)).split(" "), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(f"* {chunk.rstrip()} ." for chunk in lines)


def spss_number(value: float) -> str:
    """A finite number as SPSS reads it back exactly (``2``, ``0.5``, ``1e-05``)."""
    if not math.isfinite(float(value)):
        raise SpssTextError(f"{value!r} is not a finite number")
    return r_number(value, exact=True)  # R's exact literals are valid SPSS numbers
