"""Formula text -> tokens: names, numbers and the few operators an lme4 formula uses.

The lexer is the first half of the allow-list: a character that no token can start with (a
quote, ``$``, ``[``, ``@``, ``;``, ``{``, ...) is a :class:`FormulaError` naming it, so text like
``I(system("..."))`` or ``I([].__class__)`` never gets as far as a parser, let alone R or Python.

Names are R's: ``[letter or . or _][letters, digits, . and _]*`` (letters beyond ASCII count),
or anything printable in backquotes (```my var```, with ``\\``` and ``\\\\`` as escapes).
R's reserved words (``TRUE``, ``NULL``, ``function``, ...) are ``keyword`` tokens: the parser
takes ``TRUE``/``FALSE`` as the value of ``poly(..., raw = TRUE)`` and nothing else (a column
called ``TRUE`` is written ```TRUE```). Numbers are R's decimal literals (``2``, ``0.5``, ``.5``, ``1e-3``); R's ``L``, ``i``
and hexadecimal forms are refused rather than guessed at.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from harness.names import name_problem, one_line
from harness.rsyntax import RESERVED

from .errors import FormulaError

TokenKind = Literal["name", "keyword", "number", "op", "end"]

OPERATORS = ("||", "**", "~", "+", "-", "*", "/", ":", "^", "|", "(", ")", ",", "=")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHITESPACE = " \t\r\n"
MAX_LENGTH = 10_000
"""Longer formulas are refused before parsing (nothing in a course comes close)."""


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # the name (unquoted), the number as written, or the operator
    pos: int  # offset in the formula text, for messages
    quoted: bool = False  # a backquoted name

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the formula"
        return f"{self.text!r} at position {self.pos + 1}"


def _name_start(ch: str) -> bool:
    return ch in "._" or unicodedata.category(ch).startswith("L")


def _name_char(ch: str) -> bool:
    return _name_start(ch) or unicodedata.category(ch) == "Nd"


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an ``end`` token."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is {len(text)} characters long; at most {MAX_LENGTH} "
                           "are accepted")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _WHITESPACE:
            i += 1
            continue
        if ch == "`":
            name, i = _quoted_name(text, i)
            tokens.append(Token("name", name, i, quoted=True))
            continue
        m = _NUMBER.match(text, i)
        if m and (ch.isdigit() or ch == "."):
            end = m.end()
            if end < n and (_name_char(text[end])):
                raise FormulaError(
                    f"cannot read the number {text[i:end + 1]!r} at position {i + 1}: only "
                    "decimal numbers such as 2, 0.5 or 1e-3 are allowed")
            tokens.append(Token("number", m.group(), i))
            i = end
            continue
        if _name_start(ch):
            j = i + 1
            while j < n and _name_char(text[j]):
                j += 1
            word = text[i:j]
            if word == ".":
                raise FormulaError(f"'.' at position {i + 1} (R's 'every other column') is not "
                                   "supported: list the columns")
            reserved = word in RESERVED or re.fullmatch(r"\.\.(\.|[0-9]+)", word)
            tokens.append(Token("keyword" if reserved else "name", word, i))
            i = j
            continue
        op = next((o for o in OPERATORS if text.startswith(o, i)), None)
        if op is None:
            shown = ch if ch.isprintable() else f"U+{ord(ch):04X}"
            raise FormulaError(
                f"character {shown!r} at position {i + 1} cannot appear in a formula (allowed: "
                "column names, numbers, + - * / : ^ | ~ ( ) , = and the functions factor, C, "
                "I, log, exp, sqrt, poly, scale)")
        tokens.append(Token("op", op, i))
        i += len(op)
    tokens.append(Token("end", "", n))
    return tokens


def _quoted_name(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "`":
            name = "".join(out)
            problem = name_problem(name)
            if problem:
                raise FormulaError(f"backquoted name at position {start + 1}: {problem}")
            return name, i + 1
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in ("`", "\\"):
                raise FormulaError(f"backquoted name at position {start + 1}: only \\` and \\\\ "
                                   "are escapes inside backquotes")
            out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise FormulaError(f"the backquoted name starting at position {start + 1} "
                       f"({one_line(text[start:start + 20])!r}) has no closing backquote")
