"""Which names the harness accepts from a spec, and how free text is made safe to print.

Specs are written by other people (a student's pull request, a colleague's teaching example), so
every name in one (derived variables, columns, grouping factors, option values that name
columns) and every piece of free text (titles, notes, descriptions) is untrusted. Generated code
is the danger: a newline in a name or a title becomes its own line in an R script or a do-file.

The rule has two halves, one per kind of text:

* a *name* may contain any printable character, but no control characters (newline, NUL, ...),
  no Unicode line or paragraph separators and no invisible format characters (bidirectional
  overrides make code read differently from what runs). Each engine then emits an accepted name
  in its own way: R backquotes and escapes it (:mod:`harness.rsyntax`); Stata takes only its own
  name rules and says not estimable otherwise (:mod:`harness.statasyntax`);
* *free text* is emitted only inside comments, on one line: :func:`one_line` replaces every such
  character with a space.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_LENGTH = 256
"""Longer names are refused: no data set needs them, and they bloat every generated line."""

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a column or variable name in a spec (None when it can)."""
    if not isinstance(name, str):
        return f"a name must be text, not {type(name).__name__}"
    if not name:
        return "a name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a name has at most {MAX_NAME_LENGTH} characters (this one has {len(name)})"
    bad = next((ch for ch in name if _unsafe(ch)), None)
    if bad is not None:
        return (f"name {one_line(name)!r} contains the control or invisible character "
                f"U+{ord(bad):04X}; names may contain printable characters only")
    if name != name.strip():
        return f"name {name!r} starts or ends with white space"
    return None


def check_name(name: str) -> str:
    """``name`` itself when acceptable; otherwise ValueError saying what is wrong (a pydantic
    validator for every name in a spec)."""
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def one_line(text: object) -> str:
    """``text`` on one line, with control, separator and invisible characters as spaces.

    For free text emitted inside a comment of generated code: nothing in it can end the comment.
    """
    return "".join(" " if _unsafe(ch) else ch for ch in str(text))
