"""The formula syntax tree: an allow-list of node types, each able to write itself as R.

Two layers of nodes:

* *arithmetic* (inside ``I()``, ``log()``, ``exp()``, ``sqrt()``, ``scale()``, ``poly()``,
  ``offset()`` and the failures of ``cbind()``): :class:`Num`, :class:`Ref` (a column),
  :class:`Neg`, :class:`BinOp` (``+ - * / ^``), :class:`Paren` and :class:`Fn` (``log``,
  ``exp``, ``sqrt`` of arithmetic);
* *formula* nodes: the model-frame variables (:class:`Column`, :class:`FactorCall`,
  :class:`ICall`, :class:`MathCall`, :class:`PolyCall`, :class:`ScaleCall`), the term operators
  (:class:`Sum` with ``+``/``-``, :class:`Cross` for ``*``, ``/`` and ``:``, :class:`Group` for
  parentheses), the intercept markers :class:`One`/:class:`Zero` and random-effect terms
  (:class:`Bar`, ``(lhs | group)`` or ``||``);
* the model attributes a formula can carry: :class:`OffsetCall` (``offset(...)``, a term that
  adds to the linear predictor and makes no column) and :class:`Successes`, a binomial response
  out of trials (``cbind(successes, failures)`` or ``successes/trials``).

Nothing else can be built, so nothing else can reach an engine. ``to_r()`` writes a node the way
R's ``deparse`` writes the parsed expression (``I(x^2)``, ``I(x * 2)``, ``I(x/2)``, ``log(x +
1)``, ``poly(x, 2)``, non-syntactic names in backquotes), which makes it the R call text *and*
the canonical variable name: R names model-matrix columns by deparsing, so these strings are the
names lme4 prints. ``C(x)`` is read as ``factor(x)`` (R's ``C()`` needs a contrast argument the
harness does not take) and ``**`` as ``^`` (R's parser does the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from harness.rsyntax import r_name, r_number

# ---- shared behaviour --------------------------------------------------------------------------

MATH_FUNCTIONS = ("log", "exp", "sqrt")


class _NoColumns:
    def columns(self) -> tuple[str, ...]:
        return ()


class _Named:
    """A column by its ``name``, written as an R symbol."""

    def to_r(self) -> str:
        return r_name(self.name)  # type: ignore[attr-defined]

    def columns(self) -> tuple[str, ...]:
        return (self.name,)  # type: ignore[attr-defined]


class _OfArg:
    """A node wrapping one argument ``arg``: it uses the argument's columns."""

    def columns(self) -> tuple[str, ...]:
        return self.arg.columns()  # type: ignore[attr-defined]


class _OfInner:
    """Parentheses around ``inner``."""

    def to_r(self) -> str:
        return f"({self.inner.to_r()})"  # type: ignore[attr-defined]

    def columns(self) -> tuple[str, ...]:
        return self.inner.columns()  # type: ignore[attr-defined]


class _OfOperands:
    """A binary node: the columns of ``left`` then ``right``."""

    def columns(self) -> tuple[str, ...]:
        return self.left.columns() + self.right.columns()  # type: ignore[attr-defined]


# ---- arithmetic ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num(_NoColumns):
    value: float

    def to_r(self) -> str:
        return r_number(self.value)


@dataclass(frozen=True)
class Ref(_Named):
    """A column used inside arithmetic."""

    name: str


@dataclass(frozen=True)
class Neg(_OfArg):
    arg: "Arith"

    def to_r(self) -> str:
        return "-" + self.arg.to_r()


_R_SPACING = {"+": " + ", "-": " - ", "*": " * ", "/": "/", "^": "^"}


@dataclass(frozen=True)
class BinOp(_OfOperands):
    op: str  # + - * / ^
    left: "Arith"
    right: "Arith"

    def to_r(self) -> str:
        return self.left.to_r() + _R_SPACING[self.op] + self.right.to_r()


@dataclass(frozen=True)
class Paren(_OfInner):
    inner: "Arith"


@dataclass(frozen=True)
class Fn(_OfArg):
    fn: str  # one of MATH_FUNCTIONS
    arg: "Arith"

    def to_r(self) -> str:
        return f"{self.fn}({self.arg.to_r()})"


Arith = Union[Num, Ref, Neg, BinOp, Paren, Fn]


# ---- model-frame variables ---------------------------------------------------------------------

@dataclass(frozen=True)
class Column(_Named):
    """A bare column: numeric, or categorical when the data or the spec make it a factor."""

    name: str


@dataclass(frozen=True)
class FactorCall:
    """``factor(x)`` (also written ``C(x)``): a column as categorical, treatment contrasts."""

    column: str

    def to_r(self) -> str:
        return f"factor({r_name(self.column)})"

    def columns(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True)
class ICall(_OfArg):
    """``I(arithmetic)``: the value of the arithmetic, as one numeric column."""

    arg: Arith

    def to_r(self) -> str:
        return f"I({self.arg.to_r()})"


@dataclass(frozen=True)
class MathCall(_OfArg):
    """``log(...)``, ``exp(...)``, ``sqrt(...)`` of arithmetic, as one numeric column."""

    fn: str
    arg: Arith

    def to_r(self) -> str:
        return f"{self.fn}({self.arg.to_r()})"


@dataclass(frozen=True)
class PolyCall(_OfArg):
    """``poly(x, degree)``: R's orthogonal polynomials (``raw = TRUE``: plain powers).

    ``degree`` columns, named ``poly(x, 2)1``, ``poly(x, 2)2`` as R names them.
    """

    arg: Arith
    degree: int
    raw: bool = False

    def to_r(self) -> str:
        raw = ", raw = TRUE" if self.raw else ""
        return f"poly({self.arg.to_r()}, {self.degree}{raw})"


@dataclass(frozen=True)
class ScaleCall(_OfArg):
    """``scale(x)``: centred by the mean and divided by the SD (n - 1), as R's ``scale``."""

    arg: Arith

    def to_r(self) -> str:
        return f"scale({self.arg.to_r()})"


@dataclass(frozen=True)
class OffsetCall(_OfArg):
    """``offset(arithmetic)``: added to the linear predictor with coefficient 1 (R's offset
    attribute of ``terms()``); it is no term and makes no column of X."""

    arg: Arith

    def to_r(self) -> str:
        return f"offset({self.arg.to_r()})"


@dataclass(frozen=True)
class Successes:
    """A binomial response out of trials, as R writes it.

    ``cbind(successes, failures)``: ``failures`` is arithmetic over columns (``size -
    incidence``); ``successes/trials`` (``form="proportion"``): both plain columns. Either way
    the outcome is the column ``successes`` and the number of trials is :meth:`trials`.
    """

    successes: str
    other: Arith  # the failures (cbind) or the trials column (proportion)
    form: str  # "cbind" | "proportion"

    def to_r(self) -> str:
        """The response as written."""
        if self.form == "proportion":
            return f"{r_name(self.successes)}/{self.other.to_r()}"
        return self.cbind_r()

    def cbind_r(self) -> str:
        """``cbind(successes, failures)``: how R's glm and glmer take successes out of trials
        without prior weights (``s/n`` needs ``weights = n``, which is the trials, not weights)."""
        if self.form == "proportion":
            failures = f"{self.other.to_r()} - {r_name(self.successes)}"
        else:
            failures = self.other.to_r()
        return f"cbind({r_name(self.successes)}, {failures})"

    def trials(self) -> Arith:
        """The number of trials: the trials column, or successes + failures."""
        if self.form == "proportion":
            return self.other
        return BinOp("+", Ref(self.successes), Paren(self.other))

    def columns(self) -> tuple[str, ...]:
        return (self.successes,) + self.other.columns()


Variable = Union[Column, FactorCall, ICall, MathCall, PolyCall, ScaleCall]
VARIABLE_TYPES = (Column, FactorCall, ICall, MathCall, PolyCall, ScaleCall)


# ---- term structure ----------------------------------------------------------------------------

@dataclass(frozen=True)
class One(_NoColumns):
    """``1``: the intercept (the default)."""

    def to_r(self) -> str:
        return "1"


@dataclass(frozen=True)
class Zero(_NoColumns):
    """``0``: no intercept (as ``-1``)."""

    def to_r(self) -> str:
        return "0"


@dataclass(frozen=True)
class Sum:
    """Terms joined by ``+`` (and ``-``, which the harness allows before ``1`` only)."""

    items: tuple[tuple[str, "Expr"], ...]  # (sign, node); sign "+" or "-"

    def to_r(self) -> str:
        if not self.items:
            return "1"
        out = ""
        for i, (sign, node) in enumerate(self.items):
            text = node.to_r()
            if i == 0:
                out = ("-" if sign == "-" else "") + text
            else:
                out += f" {sign} {text}"
        return out

    def columns(self) -> tuple[str, ...]:
        return tuple(c for _, node in self.items for c in node.columns())


_CROSS_SPACING = {"*": " * ", "/": "/", ":": ":"}


@dataclass(frozen=True)
class Cross(_OfOperands):
    """``a * b`` (main effects and interaction), ``a / b`` (b nested in a), ``a : b``."""

    op: str
    left: "Expr"
    right: "Expr"

    def to_r(self) -> str:
        return self.left.to_r() + _CROSS_SPACING[self.op] + self.right.to_r()


@dataclass(frozen=True)
class Group(_OfInner):
    """Parentheses around formula terms, ``(a + b):c``."""

    inner: "Expr"


@dataclass(frozen=True)
class Bar:
    """A random-effects term as written: ``(lhs | group)`` or ``(lhs || group)``.

    ``lhs`` holds :class:`One`, :class:`Zero`, ``-1`` and plain columns only; ``levels`` is the
    grouping structure, one tuple of factors per ``/`` level (``a/b:c`` is ``(("a",), ("b",
    "c"))``).
    """

    lhs: Sum
    levels: tuple[tuple[str, ...], ...]
    double: bool = False

    def to_r(self) -> str:
        group = "/".join(":".join(r_name(f) for f in level) for level in self.levels)
        return f"({self.lhs.to_r()} {'||' if self.double else '|'} {group})"

    def columns(self) -> tuple[str, ...]:
        return self.lhs.columns() + tuple(f for level in self.levels for f in level)


Expr = Union[Column, FactorCall, ICall, MathCall, PolyCall, ScaleCall, OffsetCall, One, Zero, Sum,
             Cross, Group, Bar]
