"""R source text for values: names, string and number literals, comments.

Everything the harness writes into R code that came from a spec goes through one of these
functions, so user text reaches R as a symbol or a literal, never as code:

* :func:`r_name` — a column name as an R symbol: as is when it is syntactic, else backquoted
  with ``\\`` and backquotes escaped (R reads ``\\``` and ``\\\\`` inside backquotes);
* :func:`r_string` — any text as a double-quoted R string literal, with every character that is
  not printable ASCII escaped (``\\n``, ``\\uhhhh``; never ``\\xhh``, which R refuses to mix
  with ``\\u`` in one literal), so the literal is one line and reads the same in every
  locale; NUL cannot be in an R string and is refused;
* :func:`r_number` — a finite number the way R's ``deparse`` prints it (15 significant digits,
  fixed or scientific notation by width), which is also how R names model-matrix columns
  (``I(x * 1e+05)``);
* :func:`r_comment` — free text as a one-line ``#`` comment.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from harness.names import one_line

RESERVED = frozenset({
    "if", "else", "repeat", "while", "function", "for", "next", "break", "in", "TRUE", "FALSE",
    "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_"})
"""R's reserved words (?Reserved); ``...`` and ``..1``, ``..2``, ... are reserved too."""

_DOTS = re.compile(r"\.\.(\.|[0-9]+)")


def _letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _word_char(ch: str) -> bool:
    return _letter(ch) or unicodedata.category(ch) == "Nd" or ch in "._"


def is_syntactic(name: str) -> bool:
    """Whether R reads ``name`` as a symbol without backquotes (?make.names).

    A letter, or a dot not followed by a digit, then letters, digits, dots and underscores;
    not a reserved word. Letters beyond ASCII count as R counts them in a UTF-8 locale.
    """
    if not name or name in RESERVED or _DOTS.fullmatch(name):
        return False
    first = name[0]
    if first == ".":
        if len(name) > 1 and unicodedata.category(name[1]) == "Nd":
            return False
    elif not _letter(first):
        return False
    return all(_word_char(ch) for ch in name[1:])


def r_name(name: str) -> str:
    """``name`` as an R symbol (``x``, ```my var```, ```a\\`b```)."""
    if is_syntactic(name):
        return name
    bad = next((ch for ch in name if unicodedata.category(ch) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ValueError(f"name {one_line(name)!r} contains U+{ord(bad):04X}, which cannot be "
                         "written as an R symbol")
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def r_string(text: str) -> str:
    """``text`` as one double-quoted R string literal that reads back as exactly ``text``."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code == 0:
            raise ValueError("an R string cannot contain the NUL character")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"text contains the lone surrogate U+{code:04X}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def r_number(value: float, exact: bool = False) -> str:
    """A finite number as R's ``deparse`` writes it: ``2``, ``0.5``, ``1e+05``, ``1e-04``.

    R keeps up to 15 significant digits and chooses fixed notation when it is not wider than
    scientific notation (``formatReal`` with ``scipen = 0``). That is how R names columns; with
    ``exact`` the literal is instead the shortest one that reads back as the same double (for
    data, where a 16th digit matters).
    """
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{value!r} is not a finite number")
    if exact:
        return str(int(v)) if v.is_integer() and abs(v) < 2 ** 53 else repr(v)
    if v == 0:
        return "0"
    mantissa, exponent = f"{abs(v):.14e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    nsig, kp = len(digits), int(exponent)
    neg = 1 if v < 0 else 0
    if kp >= 0:
        left, right = kp + 1, max(0, nsig - kp - 1)
    else:
        left, right = 1, nsig - kp - 1
    fixed_width = neg + left + (right + 1 if right else 0)
    sci_width = neg + (nsig + 1 if nsig > 1 else 1) + (5 if abs(kp) >= 100 else 4)
    if fixed_width <= sci_width:
        return f"{v:.{right}f}"
    mant = digits[0] + ("." + digits[1:] if nsig > 1 else "")
    return f"{'-' if neg else ''}{mant}e{'-' if kp < 0 else '+'}{abs(kp):02d}"


def r_literal(value: Any) -> str:
    """A Python scalar as an R literal: ``TRUE``, ``3``, ``2.5``, ``"text"``."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return r_number(value)
    return r_string(str(value))


def r_comment(text: object) -> str:
    """Free text as one R comment line (R comments have no continuation and no block form)."""
    return "# " + one_line(text)
