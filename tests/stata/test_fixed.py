"""The Stata lines that make I(), log, scale and poly variables compute what R computes.

There is no Stata here, so the generated commands (a handful of ``generate``, ``replace``,
``summarize`` and ``scalar`` lines, nothing else) are run by a tiny interpreter of exactly that
subset of Stata, with Stata's rules that matter: missing in, missing out; ``summarize`` over the
non-missing values (SD with n - 1). The results are compared with the native model matrix,
which tests/test_formula_vs_lme4.py checks against lme4's.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from backends.native.design import build_design
from backends.stata.fixed import render_fixed
from harness.formula import parse_formula

_COMMAND = re.compile(r"^(generate double|replace) (\w+) = (.+)$")
_SUMMARIZE = re.compile(r"^quietly summarize (\w+)(, meanonly)?$")
_SCALAR = re.compile(r"^scalar (\w+) = (.+)$")


def run_stata_subset(lines: list[str], data: pd.DataFrame) -> dict[str, np.ndarray]:
    """Run the transform lines on ``data``; returns every variable that exists at the end."""
    variables = {c: data[c].to_numpy(dtype=float) for c in data.columns}
    scalars: dict[str, float] = {}
    r: dict[str, float] = {}

    def value(expr: str) -> np.ndarray | float:
        py = re.sub(r"r\((\w+)\)", r'R["\1"]', expr).replace("^", "**").replace("ln(", "log(")
        env = {"R": r, "log": np.log, "exp": np.exp, "sqrt": np.sqrt, **variables, **scalars}
        with np.errstate(all="ignore"):
            return eval(py, {"__builtins__": {}}, env)  # harness-written Stata, not user text

    for line in lines:
        if m := _COMMAND.match(line):
            variables[m.group(2)] = np.broadcast_to(value(m.group(3)), len(data)).astype(float)
        elif m := _SUMMARIZE.match(line):
            v = variables[m.group(1)]
            ok = v[~np.isnan(v)]
            r.clear()
            r.update(N=float(ok.size), mean=ok.mean(), sum=ok.sum())
            if not m.group(2):
                r["sd"] = ok.std(ddof=1)
        elif m := _SCALAR.match(line):
            scalars[m.group(1)] = float(value(m.group(2)))
        elif line.startswith("scalar drop "):
            for name in line.split()[2:]:
                del scalars[name]
        elif line.startswith("drop "):
            for name in line.split()[1:]:
                del variables[name]
        else:
            raise AssertionError(f"the interpreter does not know {line!r}: extend it after "
                                 "checking the command in the Stata manual")
    return variables


@pytest.mark.parametrize("formula", [
    "y ~ I(x^2) + I(-x^2 + 3 * z) + log(z) + exp(x / 10) + sqrt(z)",
    "y ~ scale(x) + scale(x * z)",
    "y ~ poly(x, 3) + poly(z, 2, raw = TRUE)",
    "y ~ poly(x + z, 2)",
])
def test_generated_variables_equal_the_native_columns(formula: str) -> None:
    rng = np.random.default_rng(3)
    n = 200
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n) * 3,
                         "z": rng.uniform(0.5, 4, size=n)})
    data.loc[[3, 17], "z"] = np.nan  # scale over the non-missing values, as R and Stata do
    if "poly(x + z" in formula or "poly(z" in formula:
        data = data.dropna()  # R's poly() refuses missing values
    fixed = render_fixed(parse_formula(formula), {}, {})
    made = run_stata_subset(fixed.lines, data)
    design = build_design(formula, data)
    rows = data.index.get_indexer(design.row_index)
    for stata_var, r_name in fixed.generated.items():
        column = design.X[:, design.x_names.index(r_name)]
        np.testing.assert_allclose(made[stata_var][rows], column, rtol=1e-10, atol=1e-12,
                                   err_msg=f"{stata_var} = {r_name}")
    leftovers = {v for v in made if v.startswith("mlmh_")} - set(fixed.generated)
    assert not leftovers  # helper variables are dropped
