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
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from harness.spec import Derived


class DeriveError(ValueError):
    """A derived variable that cannot be computed; the message names the variable and why."""


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
           ast.BitAnd: "&", ast.BitOr: "|"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FUNCS = {"isin", "where", "abs", "log", "exp", "sqrt"}


def parse_expr(text: str, name: str = "?") -> ast.expr:
    """Parse and check an expression; raises DeriveError naming the variable on anything unsafe."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as e:
        raise DeriveError(f"derived variable {name!r}: cannot parse {text!r} ({e.msg})") from None
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.Compare,
                               ast.Call, ast.List, ast.Load, ast.USub, ast.UAdd, ast.expr_context,
                               *_BINOPS, *_CMPOPS))
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            ok = False
        if isinstance(node, ast.Compare) and len(node.ops) != 1:
            raise DeriveError(f"derived variable {name!r}: write chained comparisons as "
                              f"(a < b) & (b < c) in {text!r}")
        if isinstance(node, ast.Call):
            ok = isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords
        if not ok:
            raise DeriveError(f"derived variable {name!r}: {ast.unparse(node)!r} in {text!r} is "
                              f"not allowed (columns, numbers, arithmetic, comparisons and "
                              f"{', '.join(sorted(_FUNCS))} only)")
    return tree


def expr_columns(text: str, name: str = "?") -> set[str]:
    """The columns an expression reads (every name that is not one of the functions)."""
    tree = parse_expr(text, name)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in _FUNCS}


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
        if fname == "isin":
            if len(args) != 2 or not isinstance(args[1], ast.List):
                raise DeriveError(f"derived variable {name!r}: isin takes (column, [values])")
            col = _eval(args[0], df, name)
            values = [float(ast.literal_eval(v)) for v in args[1].elts]
            return _with_missing(col.isin(values).astype("float64"), col)
        if fname == "where":
            if len(args) != 3:
                raise DeriveError(f"derived variable {name!r}: where takes (cond, a, b)")
            c, a, b = (_eval(x, df, name) for x in args)
            out = pd.Series(np.where(np.asarray(c) != 0, a, b), index=df.index, dtype="float64")
            return _with_missing(out, c)
        if len(args) != 1:
            raise DeriveError(f"derived variable {name!r}: {fname} takes one argument")
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
        src = df[step.source].astype("float64")
        mapped = src.map(step.recode)
        other = np.nan if step.otherwise is None else step.otherwise
        return mapped.where(src.isin(list(step.recode)), other).mask(src.isna())
    raise DeriveError(f"derived variable {step.name!r} has no operation")  # pragma: no cover


# ---- rendering as R and Stata code ------------------------------------------------------------

def _render(node: ast.expr, lang: str) -> str:
    def r(n: ast.expr) -> str:
        return _render(n, lang)

    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.Name):
        return node.id
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
            vals = ", ".join(repr(ast.literal_eval(v)) for v in args[1].elts)  # type: ignore
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


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def r_code(steps: Sequence[Derived], frame: str = "d") -> list[str]:
    """R statements that add the derived variables to data frame ``frame`` (base R only)."""
    lines = []
    for s in steps:
        by = s.by_columns
        groups = ", ".join(f"{frame}${b}" for b in by)
        if s.expr is not None:
            lines.append(f"{frame}${s.name} <- with({frame}, {_render(parse_expr(s.expr, s.name), 'r')})")
        elif s.group_mean is not None:
            lines.append(f"{frame}${s.name} <- ave({frame}${s.group_mean}, {groups}, "
                         "FUN = function(v) mean(v, na.rm = TRUE))")
        elif s.group_count:
            lines.append(f"{frame}${s.name} <- ave(rep(1, nrow({frame})), {groups}, "
                         "FUN = length)")
        elif s.group_first:
            lines.append(f"{frame}${s.name} <- as.numeric(!duplicated({frame}[, c("
                         + ", ".join(f'"{b}"' for b in by) + ")]))")
        elif s.group_id is not None:
            cols = ", ".join(f'"{c}"' for c in s.group_id)
            lines.append(f"{frame}${s.name} <- as.numeric(interaction({frame}[, c({cols})], "
                         f"drop = TRUE, lex.order = TRUE))")
        elif s.recode is not None:
            src = f"{frame}${s.source}"
            other = "NA" if s.otherwise is None else repr(s.otherwise)
            olds = ", ".join(repr(k) for k in s.recode)
            news = ", ".join(repr(v) for v in s.recode.values())
            lines.append(f"{frame}${s.name} <- ifelse(is.na({src}), NA, ifelse({src} %in% c({olds}), "
                         f"c({news})[match({src}, c({olds}))], {other}))")
    return lines


def stata_code(steps: Sequence[Derived]) -> list[str]:
    """Stata commands (generate/egen) that add the derived variables, in double precision."""
    lines = []
    for s in steps:
        by = " ".join(s.by_columns)
        if s.expr is not None:
            lines.append(f"generate double {s.name} = {_render(parse_expr(s.expr, s.name), 'stata')}")
        elif s.group_mean is not None:
            lines.append(f"bysort {by}: egen double {s.name} = mean({s.group_mean})")
        elif s.group_count:
            lines.append(f"bysort {by}: egen double {s.name} = count(1)")
        elif s.group_first:
            lines.append(f"egen byte {s.name} = tag({by})")
        elif s.group_id is not None:
            lines.append(f"egen double {s.name} = group({' '.join(s.group_id)})")
        elif s.recode is not None:
            lines.append(f"generate double {s.name} = "
                         f"{'.' if s.otherwise is None else repr(s.otherwise)} if !missing({s.source})")
            for old, new in s.recode.items():
                lines.append(f"replace {s.name} = {new!r} if {s.source} == {old!r}")
    return lines
