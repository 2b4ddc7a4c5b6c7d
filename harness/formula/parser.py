"""Tokens -> syntax tree, by recursive descent with R's operator precedence.

Precedence, loosest first, as R parses formulas: ``~``; ``|``/``||`` (inside parentheses only,
which makes a random-effects term); ``+``/``-``; ``*``/``/``; ``:``; then the atoms (a column, a
call of an allowed function, ``0``/``1``, parentheses). Inside arithmetic: ``+``/``-``;
``*``/``/``; unary minus; ``^`` (right-associative, so ``-x^2`` is ``-(x^2)`` and ``2^-1`` is
allowed, as in R).

Anything outside the allow-list is a :class:`FormulaError` that names the token, its position
and what would be allowed there. Nesting is limited (:data:`MAX_DEPTH`) so that no formula can
exhaust the parser's stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from harness.names import one_line
from harness.rsyntax import r_number

from .errors import FormulaError
from .lexer import Token, tokenize
from .syntax import (MATH_FUNCTIONS, Arith, BinOp, Bar, Column, Cross, Expr, FactorCall, Fn,
                     Group, ICall, MathCall, Neg, Num, OffsetCall, One, Paren, PolyCall, Ref,
                     ScaleCall, Successes, Sum, Zero)

MAX_DEPTH = 64
MAX_POLY_DEGREE = 20
FUNCTIONS = ("factor", "C", "I", *MATH_FUNCTIONS, "poly", "scale", "offset")
_ALLOWED_CALLS = ("factor(x), C(x), I(<arithmetic>), log(...), exp(...), sqrt(...), "
                  "poly(x, degree), poly(x, degree, raw = TRUE), scale(x), offset(...)")
Response = str | Successes
"""A response as written: a column, or a binomial count out of trials (:class:`Successes`)."""


class Parser:
    """One formula's tokens and a cursor; each ``_rule`` method parses one grammar rule."""

    def __init__(self, text: str):
        self.text = text
        self.tokens: list[Token] = tokenize(text)
        self.i = 0
        self.depth = 0

    # ---- cursor ----------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def take(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def expect(self, op: str, context: str) -> Token:
        if not self.at(op):
            if op == ")" and self.tok.kind == "end":
                self.fail(f"unbalanced '(': {context} is not closed")
            self.fail(f"expected {op!r} {context}, found {self.tok.describe()}")
        return self.take()

    def fail(self, message: str) -> None:
        raise FormulaError(f"formula {one_line(self.text)!r}: {message}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nested more than {MAX_DEPTH} levels deep")

    # ---- the formula -------------------------------------------------------------------------
    def formula(self) -> tuple[Response, Sum, list[Bar]]:
        tildes = sum(1 for t in self.tokens if t.kind == "op" and t.text == "~")
        if tildes != 1:
            self.fail("a formula must contain exactly one '~' (response ~ terms)")
        response = self.response()
        self.expect("~", "after the response")
        if self.tok.kind == "end":
            self.fail("there is nothing after '~' (write 1 for an intercept-only model)")
        rhs = self.sum(top=True)
        if self.at(")"):
            self.fail(f"unbalanced ')' at position {self.tok.pos + 1}")
        if self.at("|", "||"):
            self.fail(f"{self.tok.describe()}: random-effects terms go in parentheses, "
                      "e.g. (1 + x | g)")
        if self.tok.kind != "end":
            self.fail(f"unexpected {self.tok.describe()}")
        # an intercept-only fixed part is written "1" (R's reading of "y ~ (1 | g)")
        fixed = tuple((s, n) for s, n in rhs.items if not isinstance(n, Bar))
        if not any(not isinstance(n, OffsetCall) for _, n in fixed):
            fixed = (("+", One()),) + fixed
        bars = [n for _, n in rhs.items if isinstance(n, Bar)]
        return response, Sum(fixed), bars

    def response(self) -> Response:
        """A column, ``cbind(successes, failures)`` or ``successes/trials``."""
        tok = self.tok
        nxt = self.tokens[self.i + 1]
        if tok.kind == "name" and nxt.kind == "op" and nxt.text == "~":
            self.take()
            return tok.text
        if tok.kind == "name" and not tok.quoted and tok.text == "cbind" \
                and nxt.kind == "op" and nxt.text == "(":
            self.take()
            self.take()
            successes = self.response_column("cbind()'s first argument (the successes)")
            self.expect(",", "between cbind()'s successes and failures")
            failures = self.arith()
            self.expect(")", f"to close cbind( at position {tok.pos + 1}")
            return Successes(successes, failures, "cbind")
        if tok.kind == "name" and nxt.kind == "op" and nxt.text == "/":
            self.take()
            self.take()
            trials = self.response_column("the trials after '/'")
            return Successes(tok.text, Ref(trials), "proportion")
        lhs = self.text.split("~")[0].strip()
        self.fail(f"the response {one_line(lhs)!r} must be a plain column name, "
                  "cbind(successes, failures) or successes/trials (binomial); derive "
                  "transformed or ordered outcomes under 'derive' and set the family instead")
        raise AssertionError  # pragma: no cover (fail raises)

    def response_column(self, what: str) -> str:
        tok = self.tok
        nxt = self.tokens[self.i + 1]
        if tok.kind != "name" or (nxt.kind == "op" and nxt.text == "("):
            self.fail(f"{what} must be a column name, not {tok.describe()}")
        self.take()
        return tok.text

    def sum(self, top: bool = False) -> Sum:
        items: list[tuple[str, Expr]] = []
        sign = "+"
        if self.at("-"):
            self.take()
            sign = "-"
        while True:
            start = self.tok
            node = self.product()
            if sign == "-" and not isinstance(node, One):
                self.fail(f"'-' before {start.describe()}: the harness allows '-' only to "
                          "remove the intercept (-1); leave the term out instead")
            if isinstance(node, (Bar, OffsetCall)) and not top:
                what = "random-effects term" if isinstance(node, Bar) else "offset()"
                self.fail(f"the {what} at position {start.pos + 1} must be a top-level term "
                          "of the formula")
            items.append((sign, node))
            if not self.at("+", "-"):
                return Sum(tuple(items))
            sign = self.take().text
            if self.tok.kind == "end" or self.at(")", "+", "|", "||"):
                self.fail(f"empty term after {sign!r} at position {self.tok.pos + 1}")

    def product(self) -> Expr:
        left = self.interaction()
        while self.at("*", "/"):
            op = self.take()
            left = Cross(op.text, self.operand(left, op), self.operand(self.interaction(), op))
        return left

    def interaction(self) -> Expr:
        left = self.atom()
        while self.at(":"):
            op = self.take()
            left = Cross(":", self.operand(left, op), self.operand(self.atom(), op))
        return left

    def operand(self, node: Expr, op: Token) -> Expr:
        """``node`` as an operand of ``op``: random-effects terms and 0/1 cannot be crossed."""
        if isinstance(node, (Bar, One, Zero, OffsetCall)):
            what = "a random-effects term" if isinstance(node, Bar) else f"{node.to_r()!r}"
            self.fail(f"{what} cannot be an operand of {op.describe()}"
                      + ("; write offset() as a term of its own" if isinstance(node, OffsetCall)
                         else ""))
        return node

    def atom(self) -> Expr:
        tok = self.tok
        if tok.kind == "number":
            self.take()
            value = float(tok.text)
            if value in (0.0, 1.0):
                return One() if value == 1.0 else Zero()
            self.fail(f"the number {tok.describe()} cannot be a term (only 1 for the intercept "
                      "or 0 to remove it; arithmetic goes inside I(...))")
        if tok.kind == "name":
            self.take()
            if self.at("("):
                if tok.quoted:
                    self.fail(f"{tok.describe()} is called like a function; only {_ALLOWED_CALLS} "
                              "may be called")
                return self.call(tok)
            return Column(tok.text)
        if tok.kind == "keyword":
            self.fail(f"{tok.describe()} is an R reserved word, not a column name (write "
                      f"`{tok.text}` in backquotes if a column is called that)")
        if self.at("("):
            return self.parenthesised()
        if self.at("^", "**"):
            self.fail(f"{tok.describe()}: '^' outside I() would cross terms in R; write a power "
                      "as I(x^2) and interactions with ':' or '*'")
        if tok.kind == "end":
            self.fail("empty term at the end of the formula")
        self.fail(f"unexpected {tok.describe()}")
        raise AssertionError  # pragma: no cover (fail raises)

    def parenthesised(self) -> Expr:
        open_tok = self.take()
        self.enter()
        inner = self.sum()
        if self.at("|", "||"):
            bar = self.take()
            node: Expr = self.bar(inner, bar)
        else:
            node = Group(inner.items[0][1] if len(inner.items) == 1
                         and inner.items[0][0] == "+" else inner)
        self.expect(")", f"for the '(' at position {open_tok.pos + 1}")
        self.depth -= 1
        return node

    # ---- random-effects terms ------------------------------------------------------------------
    def bar(self, lhs: Sum, bar: Token) -> Bar:
        for sign, node in lhs.items:
            if isinstance(node, (One, Zero)) or (isinstance(node, Column) and sign == "+"):
                continue
            self.fail(f"random term before {bar.describe()}: {node.to_r()!r} is not a plain "
                      "variable name; derive it as a column first (see the spec's 'derive' "
                      "section)")
        levels: list[tuple[str, ...]] = []
        while True:
            factors = [self.group_factor()]
            while self.at(":"):
                self.take()
                factors.append(self.group_factor())
            levels.append(tuple(factors))
            if not self.at("/"):
                break
            self.take()
        if self.at("|", "||"):
            self.fail(f"the random term has more than one bar ({self.tok.describe()})")
        return Bar(lhs, tuple(levels), double=bar.text == "||")

    def group_factor(self) -> str:
        tok = self.tok
        if tok.kind != "name" or (self.tokens[self.i + 1].kind == "op"
                                  and self.tokens[self.i + 1].text == "("):
            self.fail(f"grouping factor {tok.describe()} is not a column name")
        if ":" in tok.text or "/" in tok.text:
            self.fail(f"grouping factor {tok.text!r}: a grouping column's name cannot contain "
                      "':' or '/' (they combine and nest factors)")
        self.take()
        return tok.text

    # ---- calls -------------------------------------------------------------------------------
    def call(self, name: Token) -> Expr:
        fn = name.text
        if fn not in FUNCTIONS:
            self.fail(f"function {fn!r} at position {name.pos + 1} is not allowed in a formula; "
                      f"allowed: {_ALLOWED_CALLS}")
        self.take()  # "("
        self.enter()
        context = f"to close {fn}( at position {name.pos + 1}"
        node: Expr
        if fn in ("factor", "C"):
            col = self.tok
            if col.kind != "name" or self.tokens[self.i + 1].text != ")":
                self.fail(f"{fn}() takes one column name (found {col.describe()}); declare "
                          "contrasts and reference levels in the spec (columns, "
                          "reference_level), not in the call")
            self.take()
            node = FactorCall(col.text)
        elif fn == "poly":
            node = self.poly_args(name)
        else:
            arg = self.arith()
            if self.at(","):
                self.fail(f"{fn}() takes one argument ({self.tok.describe()})")
            if fn in ("I", "scale", "offset"):
                node = {"I": ICall, "scale": ScaleCall, "offset": OffsetCall}[fn](arg)
            else:
                node = MathCall(fn, arg)
        self.expect(")", context)
        self.depth -= 1
        return node

    def poly_args(self, name: Token) -> PolyCall:
        arg = self.arith()
        degree: int | None = None
        raw = False
        while self.at(","):
            self.take()
            key = None
            if self.tok.kind == "name" and self.tokens[self.i + 1].text == "=":
                key = self.take().text
                self.take()
            if key in (None, "degree") and degree is None:
                degree = self.poly_degree()
            elif key == "raw":
                value = self.tok
                if value.kind != "keyword" or value.text not in ("TRUE", "FALSE"):
                    self.fail(f"poly(raw = ...) takes TRUE or FALSE, not {value.describe()}")
                self.take()
                raw = value.text == "TRUE"
            else:
                self.fail(f"poly() at position {name.pos + 1} takes (x, degree) and optionally "
                          "raw = TRUE")
        if degree is None:
            self.fail(f"poly() at position {name.pos + 1} needs its degree: poly(x, 2)")
        return PolyCall(arg, degree, raw)  # type: ignore[arg-type]

    def poly_degree(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not float(tok.text).is_integer() \
                or not 1 <= float(tok.text) <= MAX_POLY_DEGREE:
            self.fail(f"the degree of poly() must be a whole number from 1 to "
                      f"{MAX_POLY_DEGREE}, not {tok.describe()}")
        self.take()
        return int(float(tok.text))

    # ---- arithmetic ----------------------------------------------------------------------------
    def number(self, tok: Token) -> float:
        """A number as R will read the formula the harness writes: finite, 15 significant
        digits (R's deparse), so the value native computes with is the value R uses."""
        value = float(tok.text)
        if not math.isfinite(value):
            self.fail(f"the number {tok.describe()} is too large")
        return float(r_number(value))

    def arith(self) -> Arith:
        return self.left_associative(("+", "-"), self.arith_term)

    def arith_term(self) -> Arith:
        return self.left_associative(("*", "/"), self.arith_unary)

    def left_associative(self, ops: tuple[str, ...], operand: Callable[[], Arith]) -> Arith:
        left = operand()
        while self.at(*ops):
            op = self.take().text
            left = BinOp(op, left, operand())
        return left

    def arith_unary(self) -> Arith:
        if self.at("-"):
            self.take()
            self.enter()
            node = Neg(self.arith_unary())
            self.depth -= 1
            return node
        return self.arith_power()

    def arith_power(self) -> Arith:
        base = self.arith_primary()
        if self.at("^", "**"):
            self.take()
            self.enter()
            node = BinOp("^", base, self.arith_unary())
            self.depth -= 1
            return node
        return base

    def arith_primary(self) -> Arith:
        tok = self.tok
        if tok.kind == "number":
            self.take()
            return Num(self.number(tok))
        if tok.kind == "name":
            self.take()
            if self.at("("):
                if tok.quoted or tok.text not in MATH_FUNCTIONS:
                    self.fail(f"function {tok.text!r} at position {tok.pos + 1} is not allowed "
                              f"in arithmetic; allowed: {', '.join(MATH_FUNCTIONS)}")
                self.take()
                self.enter()
                arg = self.arith()
                self.expect(")", f"to close {tok.text}( at position {tok.pos + 1}")
                self.depth -= 1
                return Fn(tok.text, arg)
            return Ref(tok.text)
        if self.at("("):
            open_tok = self.take()
            self.enter()
            inner = self.arith()
            self.expect(")", f"for the '(' at position {open_tok.pos + 1}")
            self.depth -= 1
            return Paren(inner)
        if tok.kind == "keyword":
            self.fail(f"{tok.describe()} is an R reserved word, not a column name or number")
        self.fail(f"unexpected {tok.describe()} in arithmetic (allowed: columns, numbers, "
                  "+ - * / ^, parentheses and log, exp, sqrt)")
        raise AssertionError  # pragma: no cover


def parse(text: str) -> tuple[Response, Sum, list[Bar]]:
    """(response, fixed part, random-effects terms as written) of formula ``text``."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be text, not {type(text).__name__}")
    return Parser(text).formula()
