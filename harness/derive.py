"""Derived variables: one small, safe vocabulary, evaluated in pandas and rendered for R and Stata.

A spec defines derived variables once (``derive:`` in the YAML). The harness computes them in
Python for the native backend and writes the same definitions as R and Stata code for the scripts
that each backend shows, so every package fits the model on identical columns.

``expr`` takes a Python-like expression, checked against a whitelist (no attribute access, no
arbitrary calls): column names, numbers, ``+ - * / **``, comparisons (``== != < <= > >=``, which
give 0/1), ``&`` and ``|`` on 0/1 values, unary minus, and the functions ``isin(col, [v, ...])``,
``where(cond, a, b)``, ``abs``, ``log``, ``exp``, ``sqrt``.

Missing values: any operation with a missing operand gives missing, comparisons included. This
is R's rule; Stata treats missing as larger than every number, so the Stata rendering guards every
comparison with ``!missing()``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from harness.names import name_problem, one_line
from harness.rsyntax import r_name, r_number, r_string
from harness.spec import Derived
from harness.statasyntax import StataTextError, stata_name, stata_string


class DeriveError(ValueError):
    """A derived variable that cannot be computed; the message names the variable and why."""


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
           ast.BitAnd: "&", ast.BitOr: "|"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FUNCS = {"isin", "where", "abs", "log", "exp", "sqrt"}


MAX_EXPR_LENGTH = 10_000
MAX_EXPR_DEPTH = 64


def parse_expr(text: str, name: str = "?") -> ast.expr:
    """Parse and check an expression; raises DeriveError naming the variable on anything unsafe.

    The check is an allow-list over Python's syntax tree (the text is parsed, never evaluated):
    column names, finite numbers, ``+ - * / **``, ``&``/``|``, unary minus, single comparisons,
    and calls of the functions in ``_FUNCS`` with their fixed arity (``isin``'s values a list
    of numbers). Nesting is limited, so no expression can exhaust the evaluator's stack.
    """
    if not isinstance(text, str) or len(text) > MAX_EXPR_LENGTH:
        raise DeriveError(f"derived variable {name!r}: the expression must be text of at most "
                          f"{MAX_EXPR_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise DeriveError(f"derived variable {name!r}: cannot parse {one_line(text)!r} "
                          f"({e.msg})") from None
    except (ValueError, RecursionError, MemoryError):  # NUL bytes, absurd nesting
        raise DeriveError(f"derived variable {name!r}: cannot parse {one_line(text)[:80]!r}"
                          ) from None
    _check(tree, text, name, 0)
    return tree


def _refuse(node: ast.AST, text: str, name: str) -> DeriveError:
    return DeriveError(f"derived variable {name!r}: {one_line(ast.unparse(node))!r} in "
                       f"{one_line(text)!r} is not allowed (columns, numbers, arithmetic, "
                       f"comparisons and {', '.join(sorted(_FUNCS))} only)")


def _check(node: ast.AST, text: str, name: str, depth: int) -> None:
    if depth > MAX_EXPR_DEPTH:
        raise DeriveError(f"derived variable {name!r}: the expression is nested more than "
                          f"{MAX_EXPR_DEPTH} levels deep")
    d = depth + 1
    if isinstance(node, ast.Name):
        problem = name_problem(node.id)
        if problem:
            raise DeriveError(f"derived variable {name!r}: {problem}")
    elif isinstance(node, ast.Constant):
        _number(node, text, name)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check(node.operand, text, name, d)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check(node.left, text, name, d)
        _check(node.right, text, name, d)
    elif isinstance(node, ast.Compare):
        if len(node.ops) != 1:
            raise DeriveError(f"derived variable {name!r}: write chained comparisons as "
                              f"(a < b) & (b < c) in {one_line(text)!r}")
        if type(node.ops[0]) not in _CMPOPS:
            raise _refuse(node, text, name)
        _check(node.left, text, name, d)
        _check(node.comparators[0], text, name, d)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _FUNCS and not node.keywords:
        fname, args = node.func.id, node.args
        arity = {"isin": 2, "where": 3}.get(fname, 1)
        if len(args) != arity or any(isinstance(a, ast.Starred) for a in args):
            usage = {"isin": "isin(column, [values])", "where": "where(cond, a, b)"}.get(
                fname, f"{fname}(x)")
            raise DeriveError(f"derived variable {name!r}: {fname} takes {arity} argument(s): "
                              f"{usage}")
        if fname == "isin":
            if not isinstance(args[1], ast.List) or not args[1].elts:
                raise DeriveError(f"derived variable {name!r}: isin takes (column, [values])")
            for v in args[1].elts:
                _literal_number(v, text, name)
            args = args[:1]
        for a in args:
            _check(a, text, name, d)
    else:
        raise _refuse(node, text, name)


def _number(node: ast.Constant, text: str, name: str) -> float:
    value = node.value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        finite = ok and math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:
        raise DeriveError(f"derived variable {name!r}: {one_line(ast.unparse(node))!r} in "
                          f"{one_line(text)!r} is not a finite number")
    return float(value)


def _literal_number(node: ast.expr, text: str, name: str) -> float:
    """A number written as ``3``, ``-3`` or ``+3`` (isin's values)."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if not isinstance(node, ast.Constant):
        raise DeriveError(f"derived variable {name!r}: isin's values must be numbers, not "
                          f"{one_line(ast.unparse(node))!r}")
    return sign * _number(node, text, name)


def expr_columns(text: str, name: str = "?") -> list[str]:
    """The column names an expression reads."""
    tree = parse_expr(text, name)
    called = {id(c.func) for c in ast.walk(tree) if isinstance(c, ast.Call)}
    return list(dict.fromkeys(n.id for n in ast.walk(tree)
                              if isinstance(n, ast.Name) and id(n) not in called))


def step_columns(step: Derived) -> list[str]:
    """Every column name a derivation reads or writes (for engines with name rules)."""
    names = [step.name, *(step.by_columns), *(step.group_id or [])]
    names += [c for c in (step.group_mean, step.source) if c]
    if step.expr is not None:
        names += expr_columns(step.expr, step.name)
    return list(dict.fromkeys(names))


# ---- evaluation in pandas ----------------------------------------------------------------------

def _eval(node: ast.expr, df: pd.DataFrame, name: str) -> pd.Series | float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in df.columns:
            raise DeriveError(f"derived variable {name!r} uses column {node.id!r}, which the data "
                              f"do not have (columns: {', '.join(map(str, df.columns))})")
        return df[node.id].astype("float64")
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, df, name)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, df, name), _eval(node.right, df, name)
        op = type(node.op)
        if op in (ast.BitAnd, ast.BitOr):
            res = ((a != 0) & (b != 0)) if op is ast.BitAnd else ((a != 0) | (b != 0))
            return _with_missing(res.astype("float64"), a, b)
        return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                ast.Div: lambda: a / b, ast.Pow: lambda: a ** b}[op]()
    if isinstance(node, ast.Compare):
        a, b = _eval(node.left, df, name), _eval(node.comparators[0], df, name)
        fn: Callable = {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less,
                        ast.LtE: np.less_equal, ast.Gt: np.greater,
                        ast.GtE: np.greater_equal}[type(node.ops[0])]
        return _with_missing(pd.Series(fn(a, b), index=df.index).astype("float64"), a, b)
    if isinstance(node, ast.Call):
        fname, args = node.func.id, node.args  # type: ignore[union-attr]
        if fname == "isin":  # arities and isin's number list were checked by parse_expr
            col = _eval(args[0], df, name)
            values = [_literal_number(v, "", name) for v in args[1].elts]  # type: ignore
            return _with_missing(col.isin(values).astype("float64"), col)
        if fname == "where":
            c, a, b = (_eval(x, df, name) for x in args)
            out = pd.Series(np.where(np.asarray(c) != 0, a, b), index=df.index, dtype="float64")
            return _with_missing(out, c)
        v = _eval(args[0], df, name)
        return {"abs": np.abs, "log": np.log, "exp": np.exp, "sqrt": np.sqrt}[fname](v)
    raise DeriveError(f"derived variable {name!r}: unsupported expression")  # pragma: no cover


def _with_missing(result: pd.Series, *operands: pd.Series | float) -> pd.Series:
    """Missing in, missing out (R's rule), including for comparisons."""
    for op in operands:
        if isinstance(op, pd.Series):
            result = result.mask(op.isna())
    return result


def evaluate_expr(text: str, df: pd.DataFrame, name: str) -> pd.Series:
    """Evaluate an expression over ``df`` (used for derived variables and a spec's subset)."""
    value = _eval(parse_expr(text, name), df, name)
    return value if isinstance(value, pd.Series) else pd.Series(value, index=df.index)


def apply_derivations(df: pd.DataFrame, steps: Sequence[Derived]) -> pd.DataFrame:
    """A copy of ``df`` with every derived variable added, in the order the spec lists them."""
    out = df.copy()
    for step in steps:
        if step.name in df.columns:
            raise DeriveError(f"derived variable {step.name!r} would overwrite a column of the "
                              "data; choose another name")
        out[step.name] = _derive_one(out, step)
    return out


def _check_columns(df: pd.DataFrame, cols: list[str], name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DeriveError(f"derived variable {name!r} needs column(s) {missing}, which the data "
                          "do not have")


def _derive_one(df: pd.DataFrame, step: Derived) -> pd.Series:
    if step.expr is not None:
        return evaluate_expr(step.expr, df, step.name)
    by = step.by_columns
    if step.group_mean is not None:
        _check_columns(df, [step.group_mean, *by], step.name)
        return df.groupby(by, dropna=False)[step.group_mean].transform("mean").astype("float64")
    if step.group_count:
        _check_columns(df, by, step.name)
        return df.groupby(by, dropna=False)[by[0]].transform("size").astype("float64")
    if step.group_first:
        _check_columns(df, by, step.name)
        return (~df.duplicated(subset=by)).astype("float64")
    if step.group_id is not None:
        _check_columns(df, step.group_id, step.name)
        keys = df[step.group_id]
        codes = keys.groupby(step.group_id, sort=True, dropna=True).ngroup() + 1
        return codes.astype("float64").where(keys.notna().all(axis=1))
    if step.recode is not None:
        _check_columns(df, [step.source], step.name)  # type: ignore[list-item]
        other = np.nan if step.otherwise is None else step.otherwise
        if step.recodes_text():
            src = df[step.source].astype(object)
            text = src.map(lambda v: v if isinstance(v, str) else None)
            if bool((src.notna() & text.isna()).any()):
                raise DeriveError(f"derived variable {step.name!r} recodes text values, but "
                                  f"column {step.source!r} holds numbers; write the old values "
                                  "as numbers")
            mapped = text.map(step.recode).astype("float64")
            return mapped.where(text.isin(list(step.recode)), other).mask(text.isna())
        src = df[step.source].astype("float64")
        mapped = src.map(step.recode)
        return mapped.where(src.isin(list(step.recode)), other).mask(src.isna())
    raise DeriveError(f"derived variable {step.name!r} has no operation")  # pragma: no cover


# ---- rendering as R and Stata code ------------------------------------------------------------

def _number_text(value: float) -> str:
    """A finite number as R and Stata both read it back exactly."""
    return r_number(value, exact=True)


def _render(node: ast.expr, lang: str, ref: Callable[[str], str]) -> str:
    """``node`` as R or Stata code; ``ref`` writes a column reference (``d$x``, ``x``)."""
    def r(n: ast.expr) -> str:
        return _render(n, lang, ref)

    if isinstance(node, ast.Constant):
        return _number_text(node.value)  # parse_expr admitted finite numbers only
    if isinstance(node, ast.Name):
        return ref(node.id)
    if isinstance(node, ast.UnaryOp):
        return f"-{r(node.operand)}" if isinstance(node.op, ast.USub) else r(node.operand)
    if isinstance(node, ast.BinOp):
        op = _BINOPS[type(node.op)]
        if op == "**":
            op = "^"
        if lang == "r" and op in ("&", "|"):
            return f"as.numeric(({r(node.left)} != 0) {op} ({r(node.right)} != 0))"
        return f"({r(node.left)} {op} {r(node.right)})"
    if isinstance(node, ast.Compare):
        a, b, op = r(node.left), r(node.comparators[0]), _CMPOPS[type(node.ops[0])]
        if lang == "r":
            return f"as.numeric({a} {op} {b})"
        guards = [f"!missing({x})" for x in (a, b) if not _is_number(x)]
        return f"cond({' & '.join(guards)}, ({a} {op} {b}), .)" if guards else f"({a} {op} {b})"
    if isinstance(node, ast.Call):
        fname, args = node.func.id, node.args  # type: ignore[union-attr]
        if fname == "isin":
            col = r(args[0])
            vals = ", ".join(_number_text(_literal_number(v, "", "?"))
                             for v in args[1].elts)  # type: ignore[attr-defined]
            if lang == "r":
                return f"ifelse(is.na({col}), NA, as.numeric({col} %in% c({vals})))"
            return f"cond(!missing({col}), inlist({col}, {vals}), .)"
        if fname == "where":
            c, a, b = (r(x) for x in args)
            return f"ifelse({c} != 0, {a}, {b})" if lang == "r" else f"cond({c} != 0, {a}, {b})"
        inner = r(args[0])
        if lang == "stata" and fname == "log":
            return f"ln({inner})"
        return f"{fname}({inner})"
    raise DeriveError("unsupported expression")  # pragma: no cover


def _old_value(value: float | str, lang: str) -> str:
    """A recode's old value as an R or Stata literal: a number, or text in quotes (a text
    column's value; Stata's ``missing()`` is true for the empty string, as R's ``is.na`` is
    for NA)."""
    if not isinstance(value, str):
        return _number_text(value)
    if lang == "r":
        return r_string(value)
    try:
        return stata_string(value)
    except StataTextError as e:
        raise DeriveError(str(e)) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def r_code(steps: Sequence[Derived], frame: str = "d") -> list[str]:
    """R statements that add the derived variables to data frame ``frame`` (base R only).

    Columns are referenced as ``frame$name`` (backquoted where R needs it), never looked up by
    bare name, so an expression cannot reach anything in R but the data's columns.
    """
    def col(name: str) -> str:
        return f"{frame}${r_name(name)}"

    lines = []
    for s in steps:
        by = s.by_columns
        groups = ", ".join(col(b) for b in by)
        target = col(s.name)
        if s.expr is not None:
            lines.append(f"{target} <- {_render(parse_expr(s.expr, s.name), 'r', col)}")
        elif s.group_mean is not None:
            lines.append(f"{target} <- ave({col(s.group_mean)}, {groups}, "
                         "FUN = function(v) mean(v, na.rm = TRUE))")
        elif s.group_count:
            lines.append(f"{target} <- ave(rep(1, nrow({frame})), {groups}, FUN = length)")
        elif s.group_first:
            names = ", ".join(r_string(b) for b in by)
            lines.append(f"{target} <- as.numeric(!duplicated({frame}[, c({names})]))")
        elif s.group_id is not None:
            names = ", ".join(r_string(c) for c in s.group_id)
            lines.append(f"{target} <- as.numeric(interaction({frame}[, c({names})], "
                         f"drop = TRUE, lex.order = TRUE))")
        elif s.recode is not None:
            src = col(s.source)  # type: ignore[arg-type]
            other = "NA" if s.otherwise is None else _number_text(s.otherwise)
            olds = ", ".join(_old_value(k, "r") for k in s.recode)
            news = ", ".join(_number_text(v) for v in s.recode.values())
            lines.append(f"{target} <- ifelse(is.na({src}), NA, ifelse({src} %in% c({olds}), "
                         f"c({news})[match({src}, c({olds}))], {other}))")
    return lines


def stata_code(steps: Sequence[Derived]) -> list[str]:
    """Stata commands (generate/egen) that add the derived variables, in double precision.

    Every name must be a Stata name (:func:`harness.statasyntax.stata_name` raises otherwise);
    the Stata backend checks them all before it writes any code.
    """
    def v(name: str) -> str:
        return stata_name(name, "derived-variable column")

    lines = []
    for s in steps:
        by = " ".join(v(b) for b in s.by_columns)
        name = v(s.name)
        if s.expr is not None:
            lines.append(f"generate double {name} = "
                         f"{_render(parse_expr(s.expr, s.name), 'stata', v)}")
        elif s.group_mean is not None:
            lines.append(f"bysort {by}: egen double {name} = mean({v(s.group_mean)})")
        elif s.group_count:
            lines.append(f"bysort {by}: egen double {name} = count(1)")
        elif s.group_first:
            lines.append(f"egen byte {name} = tag({by})")
        elif s.group_id is not None:
            lines.append(f"egen double {name} = group({' '.join(v(c) for c in s.group_id)})")
        elif s.recode is not None:
            src = v(s.source)  # type: ignore[arg-type]
            other = "." if s.otherwise is None else _number_text(s.otherwise)
            lines.append(f"generate double {name} = {other} if !missing({src})")
            for old, new in s.recode.items():
                lines.append(f"replace {name} = {_number_text(new)} if {src} == "
                             f"{_old_value(old, 'stata')}")
    return lines
