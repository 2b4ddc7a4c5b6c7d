"""The spec's derived variables and subset as SPSS transformations (COMPUTE, RECODE,
AGGREGATE, SELECT IF), from the parsed expression tree of harness/derive.py.

Semantics match R's (harness/derive.py): a comparison is 1/0 and missing when an operand is
missing (SPSS's logical values are the same); ``a & b`` is ``(a ~= 0 AND b ~= 0)`` (SPSS's
AND is false when either side is false, even with the other missing, as R's ``&``); ``isin``
is ``ANY``; a recode keeps missing values missing (``(MISSING=SYSMIS)`` first: SPSS applies
the first matching value, and its ``ELSE`` would otherwise catch missing values too).
What SPSS has no single expression for (``where``, ``group_first``, a ``group_id`` over several
columns) is a :class:`SpssRenderError` naming the variable.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from harness.derive import DeriveError, parse_expr
from harness.spec import Derived
from harness.spsssyntax import SpssTextError, spss_name, spss_number, spss_string

from .errors import SpssRenderError

_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_LOGIC = {ast.BitAnd: "AND", ast.BitOr: "OR"}
_CMP = {ast.Eq: "=", ast.NotEq: "~=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FN = {"abs": "ABS", "log": "LN", "exp": "EXP", "sqrt": "SQRT"}


def _column(name: str) -> str:
    try:
        return spss_name(name, "column")
    except SpssTextError as e:
        raise SpssRenderError(str(e)) from None


def expression(node: ast.expr, what: str) -> str:
    """An SPSS numeric expression for a parsed derive/subset expression, fully parenthesised."""
    def r(n: ast.expr) -> str:
        return expression(n, what)

    if isinstance(node, ast.Constant):
        return spss_number(node.value)
    if isinstance(node, ast.Name):
        return _column(node.id)
    if isinstance(node, ast.UnaryOp):
        return f"(-{r(node.operand)})" if isinstance(node.op, ast.USub) else r(node.operand)
    if isinstance(node, ast.BinOp):
        if type(node.op) in _LOGIC:
            return f"(({r(node.left)} ~= 0) {_LOGIC[type(node.op)]} ({r(node.right)} ~= 0))"
        return f"({r(node.left)} {_ARITH[type(node.op)]} {r(node.right)})"
    if isinstance(node, ast.Compare):
        return f"({r(node.left)} {_CMP[type(node.ops[0])]} {r(node.comparators[0])})"
    if isinstance(node, ast.Call):
        fname = node.func.id  # type: ignore[union-attr]
        if fname == "isin":
            values = ", ".join(spss_number(v.value)  # type: ignore[attr-defined]
                               for v in node.args[1].elts)  # type: ignore[attr-defined]
            return f"ANY({r(node.args[0])}, {values})"
        if fname in _FN:
            return f"{_FN[fname]}({r(node.args[0])})"
        raise SpssRenderError(f"{what}: {fname}() cannot be written for SPSS (SPSS has no "
                              "conditional expression); derive it in the data instead")
    raise SpssRenderError(f"{what}: this expression cannot be written for SPSS")  # pragma: no cover


def _parsed(text: str, what: str) -> ast.expr:
    try:
        return parse_expr(text, what)
    except DeriveError as e:
        raise SpssRenderError(str(e)) from None


def _old(value: float | str) -> str:
    try:
        return spss_string(value) if isinstance(value, str) else spss_number(value)
    except SpssTextError as e:
        raise SpssRenderError(str(e)) from None


def derive_syntax(steps: Sequence[Derived]) -> list[str]:
    """SPSS commands that add the derived variables in order; SpssRenderError names the first
    one SPSS cannot compute."""
    lines: list[str] = []
    for s in steps:
        what = f"derive: variable {s.name!r}"
        name = _column(s.name)
        by = " ".join(_column(b) for b in s.by_columns)
        if s.expr is not None:
            lines.append(f"COMPUTE {name} = {expression(_parsed(s.expr, s.name), what)}.")
        elif s.group_mean is not None or s.group_count:
            fn = f"MEAN({_column(s.group_mean)})" if s.group_mean is not None else "NU"
            # NU: the unweighted count of cases, R's n() per group (not N, which is weighted)
            lines.append(f"AGGREGATE /OUTFILE=* MODE=ADDVARIABLES /BREAK={by} /{name}={fn}.")
        elif s.group_id is not None and len(s.group_id) == 1:
            # AUTORECODE numbers the sorted distinct values 1.., as harness/derive.py does
            lines.append(f"AUTORECODE VARIABLES={_column(s.group_id[0])} /INTO {name}.")
        elif s.recode is not None:
            src = _column(s.source)  # type: ignore[arg-type]
            pairs = " ".join(f"({_old(old)}={spss_number(new)})" for old, new in s.recode.items())
            other = "SYSMIS" if s.otherwise is None else spss_number(s.otherwise)
            lines.append(f"RECODE {src} (MISSING=SYSMIS) {pairs} (ELSE={other}) INTO {name}.")
        else:
            kind = "group_first" if s.group_first else "group_id over several columns"
            raise SpssRenderError(f"{what}: {kind} cannot be written for SPSS; derive it in the "
                                  "data instead")
    return lines


def subset_syntax(subset: str | None) -> list[str]:
    """``SELECT IF`` for the spec's subset (SPSS drops cases where it is false or missing, as
    the harness does)."""
    if not subset:
        return []
    return [f"SELECT IF {expression(_parsed(subset, 'subset'), 'subset')}."]
