"""The fixed part as R's ``terms()`` sees it: variables, terms in R's order, and their coding.

This is what makes native, lme4 and Stata columns line up without a translation table. It
reproduces, on the syntax tree and without data:

* the *variables* in order of first appearance (R's ``variables`` attribute), each named by its
  deparse (``factor(schgend)``, ``I(age^2)``), duplicates merged (``I(x**2)`` is ``I(x^2)``);
* the *terms*, sets of variables, from R's algebra: ``a*b`` = ``a + b + a:b`` (left terms, right
  terms, then every left:right pair), ``a/b`` = ``a + a:b`` (every right term with all variables
  of the left), ``(a + b):c``; repeats dropped, then sorted by order, stable (``keep.order =
  FALSE``). A term is labelled with its variables in variable order: ``y ~ x + f + f:x`` has the
  term ``x:f``;
* the *intercept*: present unless ``0`` or ``-1`` (the last ``0``/``1``/``-1`` wins, as in R);
* ``offset(...)`` terms are no terms (R keeps them in the ``offset`` attribute): they are
  skipped here and read by :attr:`harness.formula.ModelFormula.offsets`;
* the *coding* of each categorical variable in each term (:meth:`FixedTerms.codings`):
  contrasts, or indicators for every level, by R's rule (``TermCode`` in R's model.c, after
  *Statistical Models in S* p. 38): a factor in a term is coded by contrasts when the term
  without it is empty or contained in an earlier term, by indicators otherwise; and without an
  intercept the first factor of the first term that has one gets indicators. So ``0 +
  factor(s) + factor(s):x`` has one intercept and one slope per level, as in R.

Column names (:func:`column_names`) join the variables' column labels with ``:``, the first
variable varying fastest, as ``model.matrix`` does.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import FormulaError
from .syntax import (VARIABLE_TYPES, Bar, Cross, Expr, Group, OffsetCall, One, Sum, Variable,
                     Zero)

CONTRASTS, INDICATORS = 1, 2


@dataclass(frozen=True)
class FixedTerms:
    variables: tuple[Variable, ...]
    terms: tuple[tuple[int, ...], ...]  # each a sorted tuple of variable indices
    intercept: bool

    def label(self, term: tuple[int, ...]) -> str:
        """R's term label: ``x``, ``factor(g)``, ``x:factor(g)``."""
        return ":".join(self.variables[i].to_r() for i in term)

    def labels(self) -> list[str]:
        return [self.label(t) for t in self.terms]

    def signature(self) -> tuple[bool, frozenset[frozenset[str]]]:
        """What the fixed part estimates, whatever the writing: ``a*b`` equals
        ``b + a + b:a``. Two formulas with the same signature have the same X columns."""
        return self.intercept, frozenset(frozenset(self.variables[i].to_r() for i in t)
                                         for t in self.terms)

    def codings(self, is_factor: Sequence[bool]) -> list[tuple[int, ...]]:
        """Per term, per variable of the term: CONTRASTS or INDICATORS (numeric: CONTRASTS).

        ``is_factor[i]`` says whether variable ``i`` is categorical (with two or more levels),
        which for a bare column depends on the data or the spec.
        """
        sets = [frozenset(t) for t in self.terms]
        out: list[list[int]] = []
        for k, term in enumerate(self.terms):
            codes = []
            for v in term:
                margin = sets[k] - {v}
                if not margin or any(margin <= sets[j] for j in range(k)):
                    codes.append(CONTRASTS)
                else:
                    codes.append(INDICATORS)
            out.append(codes)
        if not self.intercept:
            for k, term in enumerate(self.terms):
                hit = next((pos for pos, v in enumerate(term) if is_factor[v]), None)
                if hit is not None:
                    out[k][hit] = INDICATORS
                    break
        return [tuple(c) for c in out]


def column_names(parts: Sequence[Sequence[str]]) -> list[str]:
    """Names of an interaction's columns from each variable's column names (first fastest)."""
    combos = itertools.product(*reversed([list(p) for p in parts]))
    return [":".join(reversed(c)) for c in combos]


class _Expander:
    def __init__(self) -> None:
        self.variables: list[Variable] = []
        self.index: dict[str, int] = {}

    def variable(self, node: Variable) -> int:
        label = node.to_r()
        if label not in self.index:
            self.index[label] = len(self.variables)
            self.variables.append(node)
        return self.index[label]

    def terms(self, node: Expr) -> list[frozenset[int]]:
        if isinstance(node, VARIABLE_TYPES):
            return [frozenset({self.variable(node)})]  # type: ignore[arg-type]
        if isinstance(node, Group):
            return self.terms(node.inner)
        if isinstance(node, Sum):
            out: list[frozenset[int]] = []
            for _, item in node.items:
                if isinstance(item, (One, Zero)):
                    raise FormulaError(f"{item.to_r()!r} inside parentheses: write the intercept "
                                       "(1, 0 or -1) as a term of its own")
                out.extend(self.terms(item))
            return _unique(out)
        if isinstance(node, Cross):
            left, right = self.terms(node.left), self.terms(node.right)
            if node.op == ":":
                return _unique([a | b for a in left for b in right])
            if node.op == "*":
                return _unique(left + right + [a | b for a in left for b in right])
            every = frozenset().union(*left)
            return _unique(left + [every | b for b in right])
        if isinstance(node, (One, Zero, Bar, OffsetCall)):  # pragma: no cover - parser keeps out
            raise FormulaError(f"{node.to_r()!r} cannot be part of a term")
        raise TypeError(f"not a formula node: {node!r}")  # pragma: no cover


def _unique(terms: list[frozenset[int]]) -> list[frozenset[int]]:
    seen: dict[frozenset[int], None] = {}
    for t in terms:
        seen.setdefault(t, None)
    return list(seen)


def expand(fixed: Sum) -> FixedTerms:
    """The fixed part's variables, terms (R's order) and intercept."""
    ex = _Expander()
    intercept = True
    terms: list[frozenset[int]] = []
    for sign, item in fixed.items:
        if isinstance(item, One):
            intercept = sign == "+"
        elif isinstance(item, Zero):
            intercept = False
        elif not isinstance(item, OffsetCall):  # an offset is no term (R's offset attribute)
            terms.extend(ex.terms(item))
    ordered = sorted(_unique(terms), key=len)  # stable: R sorts by order only
    return FixedTerms(variables=tuple(ex.variables),
                      terms=tuple(tuple(sorted(t)) for t in ordered), intercept=intercept)
