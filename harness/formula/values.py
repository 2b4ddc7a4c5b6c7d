"""The value of the formula's arithmetic on a data frame, with numpy (no text is evaluated).

One evaluator for every place that needs the numbers of an arithmetic node: the native design
(``I()``, ``log()``, ``poly()``, ... in :mod:`backends.native.model_matrix`) and the model
attributes (``offset(log(x))``, the trials ``successes + failures`` of ``cbind()``, in
:mod:`harness.attributes`), so an offset and a predictor written alike cannot be computed
differently. IEEE rules apply, as in R: ``1/0`` is Inf, ``log(-1)`` NaN, a missing operand
gives NaN.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from .errors import FormulaError
from .syntax import Arith, BinOp, Fn, Neg, Num, Paren, Ref


class FormulaDataError(FormulaError):
    """A formula term that cannot be evaluated on these data; the message names it and why."""


def numeric_column(data: pd.DataFrame, name: str, label: str) -> np.ndarray:
    """Column ``name`` as float64 (NaN for missing); ``label`` names the term in messages.

    A logical column counts as 0/1, as R's arithmetic takes it.
    """
    s = data[name]
    if pd.api.types.is_bool_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if not pd.api.types.is_numeric_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
        raise FormulaDataError(f"{label}: column {name!r} must be numeric (it is {s.dtype}); "
                               "use factor() or declare it under 'columns' for a factor")
    return s.to_numpy(dtype=float, na_value=np.nan)


def arithmetic(node: Arith, data: pd.DataFrame, label: str,
               categorical: Collection[str] = ()) -> np.ndarray:
    """The value of an arithmetic node on every row of ``data``.

    ``categorical`` names columns that are factors in this model: arithmetic on them is an
    error, not a silent use of their codes.
    """
    with np.errstate(all="ignore"):
        return _arith(node, data, label, categorical)


def _arith(node: Arith, data: pd.DataFrame, label: str,
           categorical: Collection[str]) -> np.ndarray:
    if isinstance(node, Num):
        return np.full(len(data), node.value)
    if isinstance(node, Ref):
        if node.name in categorical:
            raise FormulaDataError(f"{label}: {node.name!r} is categorical (a factor), so "
                                   "arithmetic on it is not meaningful")
        return numeric_column(data, node.name, label)
    if isinstance(node, Neg):
        return -_arith(node.arg, data, label, categorical)
    if isinstance(node, Paren):
        return _arith(node.inner, data, label, categorical)
    if isinstance(node, Fn):
        return {"log": np.log, "exp": np.exp, "sqrt": np.sqrt}[node.fn](
            _arith(node.arg, data, label, categorical))
    if isinstance(node, BinOp):
        a = _arith(node.left, data, label, categorical)
        b = _arith(node.right, data, label, categorical)
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return a * b
        if node.op == "/":
            return a / b
        return np.power(a, b)
    raise TypeError(f"not an arithmetic node: {node!r}")  # pragma: no cover
