"""The fixed part of a Stata command, from the formula tree (never from the formula's text).

Each term of R's expansion (:attr:`harness.formula.ModelFormula.terms`) becomes one
factor-variable term, variables in R's order so Stata's column names map back piece by piece:

* a numeric column ``x`` is ``x`` (``c.x`` inside an interaction);
* a factor (``factor(x)``, ``C(x)``, or a column declared ``factor``) is ``i.x``, ``ib3.x`` for
  an explicit reference level 3, and ``ibn.x`` where R codes it by indicators for every level
  (no intercept, or an interaction without its margin: ``0 + factor(s) + factor(s):x``) — Stata
  keeps a base level even under ``noconstant`` unless told ``bn``;
* ``I(...)``, ``log``/``exp``/``sqrt``, ``scale`` and ``poly`` become generated double variables
  ``mlmh_x1``, ``mlmh_x2_1``, ... made by ``generate`` lines from the tree (``^`` as ``^``,
  ``log`` as ``ln``, every operation parenthesised). ``scale`` divides by the SD of the
  non-missing values, ``poly`` runs R's three-term recurrence for orthogonal polynomials over
  the non-missing values, so the columns equal R's. ``generated`` maps each such variable back
  to its R column name (``I(age^2)``, ``poly(x, 2)1``).

Every data column must be a Stata name (:func:`harness.statasyntax.stata_name`); otherwise the
model is not estimable in Stata, with the name in the reason.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from harness.formula import INDICATORS, ModelFormula
from harness.formula.syntax import (Arith, BinOp, Column, FactorCall, Fn, ICall, MathCall, Neg,
                                    Num, Paren, PolyCall, Ref, ScaleCall, Variable)
from harness.statasyntax import StataTextError, stata_name, stata_number

from .errors import StataRenderError

GENERATED_PREFIX = "mlmh_x"


@dataclass
class FixedPart:
    terms: list[str]
    noconstant: bool
    styles: dict[str, str]  # factor column -> factor | bare (how R names its dummies)
    generated: dict[str, str] = field(default_factory=dict)  # Stata variable -> R column name
    lines: list[str] = field(default_factory=list)  # commands that make the generated variables


def _factor_prefix(var: str, reference: dict[str, Any], coding: int) -> str:
    if coding == INDICATORS:
        return "ibn."
    if var not in reference:
        return "i."
    ref = reference[var]
    try:
        as_float = float(ref)
    except (TypeError, ValueError):
        as_float = -1.0
    if not as_float.is_integer() or as_float < 0:
        raise StataRenderError(f"reference level {ref!r} of {var!r}: Stata factor levels are "
                               "non-negative integers")
    return f"ib{int(as_float)}."


def _name(name: str) -> str:
    try:
        return stata_name(name, "column")
    except StataTextError as e:
        raise StataRenderError(str(e)) from None


def arithmetic(node: Arith) -> str:
    """A Stata expression for an arithmetic node, every operation in parentheses."""
    if isinstance(node, Num):
        return stata_number(node.value)
    if isinstance(node, Ref):
        return _name(node.name)
    if isinstance(node, Neg):
        return f"(-{arithmetic(node.arg)})"
    if isinstance(node, Paren):
        return arithmetic(node.inner)
    if isinstance(node, Fn):
        return f"{'ln' if node.fn == 'log' else node.fn}({arithmetic(node.arg)})"
    if isinstance(node, BinOp):
        return f"({arithmetic(node.left)} {node.op} {arithmetic(node.right)})"
    raise TypeError(f"not an arithmetic node: {node!r}")  # pragma: no cover


def _generate(var: Variable, stem: str) -> tuple[list[str], list[str], list[str]]:
    """(Stata variables, their R names, commands) for a transformed variable."""
    label = var.to_r()
    if isinstance(var, (ICall, MathCall)):
        arg = var.arg if isinstance(var, ICall) else Fn(var.fn, var.arg)
        return [stem], [label], [f"generate double {stem} = {arithmetic(arg)}"]
    if isinstance(var, ScaleCall):
        return [stem], [label], [f"generate double {stem} = {arithmetic(var.arg)}",
                                 f"quietly summarize {stem}",
                                 f"replace {stem} = ({stem} - r(mean)) / r(sd)"]
    assert isinstance(var, PolyCall)
    names = [f"{stem}_{k}" for k in range(1, var.degree + 1)]
    labels = [f"{label}{k}" for k in range(1, var.degree + 1)]
    x = arithmetic(var.arg)
    if var.raw:
        return names, labels, [f"generate double {v} = {x}^{k}" for k, v in enumerate(names, 1)]
    return names, labels, _orthogonal_poly(stem, x, var.degree)


def _orthogonal_poly(stem: str, x: str, degree: int) -> list[str]:
    """R's ``poly(x, degree)`` in Stata: the monic orthogonal polynomials of the non-missing
    values by the three-term recurrence (R's ``predict.poly``), each divided by its norm.

    ``P0 = 1``, ``P1 = x - a1``, ``Pk = (x - ak) P(k-1) - (n(k-1) / n(k-2)) P(k-2)`` with
    ``n(j) = sum Pj^2`` and ``ak = sum x P(k-1)^2 / n(k-1)``.
    """
    p = [f"{stem}_{k}" for k in range(degree + 1)]  # p[0] holds x itself (P0 = 1 is implicit)
    w, a = f"{stem}_w", f"{stem}_a"
    n = [f"{stem}_n{k}" for k in range(degree + 1)]
    lines = [f"generate double {p[0]} = {x}",
             f"quietly summarize {p[0]}, meanonly",
             f"scalar {n[0]} = r(N)",
             f"scalar {a} = r(mean)",
             f"generate double {p[1]} = {p[0]} - {a}",
             f"generate double {w} = {p[1]}^2",
             f"quietly summarize {w}, meanonly",
             f"scalar {n[1]} = r(sum)"]
    for k in range(2, degree + 1):
        previous = f" * {p[k - 2]}" if k > 2 else ""
        lines += [f"replace {w} = {p[0]} * {p[k - 1]}^2",
                  f"quietly summarize {w}, meanonly",
                  f"scalar {a} = r(sum) / {n[k - 1]}",
                  f"generate double {p[k]} = ({p[0]} - {a}) * {p[k - 1]} - "
                  f"({n[k - 1]} / {n[k - 2]}){previous}",
                  f"replace {w} = {p[k]}^2",
                  f"quietly summarize {w}, meanonly",
                  f"scalar {n[k]} = r(sum)"]
    lines += [f"replace {p[k]} = {p[k]} / sqrt({n[k]})" for k in range(1, degree + 1)]
    lines += [f"drop {p[0]} {w}", f"scalar drop {' '.join(n)} {a}"]
    return lines


def render_fixed(formula: ModelFormula, columns: dict[str, str], reference: dict[str, Any]
                 ) -> FixedPart:
    """The Stata fixed part of ``formula`` (``columns``: the spec's column types)."""
    terms = formula.terms
    is_factor = [isinstance(v, FactorCall) or (isinstance(v, Column)
                                               and columns.get(v.name) == "factor")
                 for v in terms.variables]
    out = FixedPart(terms=[], noconstant=not terms.intercept, styles={})
    # per variable: (is factor, Stata variable names)
    stata_vars: list[list[str]] = []
    for i, var in enumerate(terms.variables):
        if isinstance(var, FactorCall):
            stata_vars.append([_name(var.column)])
            out.styles[var.column] = "factor"
        elif isinstance(var, Column):
            stata_vars.append([_name(var.name)])
            if is_factor[i]:
                out.styles[var.name] = "bare"
        else:
            names, labels, lines = _generate(var, f"{GENERATED_PREFIX}{i + 1}")
            stata_vars.append(names)
            out.generated.update(zip(names, labels))
            out.lines += lines
    for term, codes in zip(terms.terms, terms.codings(is_factor)):
        alone = len(term) == 1
        options: list[list[str]] = []
        for v, code in zip(term, codes):
            if is_factor[v]:
                col = stata_vars[v][0]
                options.append([_factor_prefix(col, reference, code) + col])
            else:
                options.append(stata_vars[v] if alone else [f"c.{s}" for s in stata_vars[v]])
        out.terms += ["#".join(combo) for combo in itertools.product(*options)]
    return out
