"""A parsed lme4-style model formula: response, fixed part (a syntax tree) and random terms.

Every backend renders the same :class:`ModelFormula` in its own dialect (the lme4 call, the
Stata command, the native design matrices); none of them sees the user's text. The random part
is normalised here, because packages read lme4's shorthands differently:

* ``(1 + x || g)`` becomes independent terms ``(1 | g) + (0 + x | g)``;
* ``(1 | a/b)`` becomes ``(1 | a) + (1 | a:b)``;
* ``(x | g)`` has an implicit intercept, ``(0 + x | g)`` / ``(-1 + x | g)`` has none.

Only plain column names are allowed inside random-effect terms (the course never needs more);
the fixed part takes the allow-list of :mod:`harness.formula.parser`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from harness.names import one_line
from harness.rsyntax import r_name

from .errors import FormulaError
from .parser import parse
from .syntax import Bar, Column, FactorCall, One, Sum, Zero
from .terms import FixedTerms, expand


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(intercept + slopes | group)`` with one covariance block.

    ``group`` is one grouping factor or an interaction ``a:b`` of factors (a nested id).
    Terms in one block are correlated (unstructured covariance); independence is expressed by
    splitting into several terms with the same group.
    """

    group: str
    intercept: bool
    slopes: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Random-effect names in lme4's order: ``(Intercept)`` first, then slopes."""
        return (["(Intercept)"] if self.intercept else []) + list(self.slopes)

    @property
    def group_factors(self) -> list[str]:
        return self.group.split(":")

    def lme4(self) -> str:
        """The term in R syntax, names backquoted where R needs it."""
        lhs = " + ".join((["1"] if self.intercept else ["0"]) + [r_name(s) for s in self.slopes])
        return f"({lhs} | {':'.join(r_name(g) for g in self.group_factors)})"


@dataclass(frozen=True)
class ModelFormula:
    response: str
    fixed_part: Sum = field(default_factory=lambda: Sum(()))
    random: tuple[RandomTerm, ...] = field(default_factory=tuple)

    @property
    def has_random(self) -> bool:
        return bool(self.random)

    @property
    def grouping_factors(self) -> list[str]:
        """Distinct grouping factors, in order of first appearance (``a:b`` counts as one)."""
        seen: dict[str, None] = {}
        for term in self.random:
            seen.setdefault(term.group, None)
        return list(seen)

    @cached_property
    def terms(self) -> FixedTerms:
        """The fixed part as R's ``terms()``: variables, ordered terms, intercept, codings."""
        return expand(self.fixed_part)

    @property
    def fixed(self) -> str:
        """The fixed part in R syntax, as written (``lrt + factor(schgend)``; ``1`` if empty)."""
        return self.fixed_part.to_r()

    def rhs_to_r(self) -> str:
        """The right-hand side in R syntax, every random term written out explicitly."""
        return " + ".join([self.fixed] + [t.lme4() for t in self.random])

    def to_r(self) -> str:
        """The formula as lme4 reads it, with every random term written out explicitly."""
        return f"{r_name(self.response)} ~ {self.rhs_to_r()}"

    lme4 = to_r

    def factor_variables(self) -> set[str]:
        """Columns the fixed part wraps in ``factor()`` or ``C()``: categorical whatever the
        type of their column."""
        return {v.column for v in self.terms.variables if isinstance(v, FactorCall)}

    def variables(self) -> set[str]:
        """Column names the model uses (response, fixed-part variables, slopes, groups)."""
        names = {self.response, *self.fixed_part.columns()}
        for t in self.random:
            names.update(t.slopes)
            names.update(t.group_factors)
        return names


def parse_formula(text: str) -> ModelFormula:
    """Parse ``y ~ fixed + (re | g) + ...`` into a :class:`ModelFormula`."""
    response, fixed, bars = parse(text)
    random: list[RandomTerm] = []
    for bar in bars:
        random.extend(_random_terms(bar, text))
    _check_duplicates(random, text)
    formula = ModelFormula(response=response, fixed_part=fixed, random=tuple(random))
    terms = formula.terms  # expands now, so a bad fixed part fails at parse time
    if response in {c for v in terms.variables for c in v.columns()}:
        raise FormulaError(f"formula {one_line(text)!r}: the response {response!r} also appears "
                           "on the right-hand side")
    return formula


def _random_terms(bar: Bar, text: str) -> list[RandomTerm]:
    intercept = True
    slopes: list[str] = []
    for sign, node in bar.lhs.items:  # the parser allows 1, 0, -1 and plain columns only
        if isinstance(node, One):
            intercept = sign == "+"
        elif isinstance(node, Zero):
            intercept = False
        elif isinstance(node, Column):
            slopes.append(node.name)
    if not intercept and not slopes:
        raise FormulaError(f"random term {bar.to_r()} in {one_line(text)!r} has no effects")
    if len(set(slopes)) != len(slopes):
        raise FormulaError(f"random term {bar.to_r()} in {one_line(text)!r} repeats a slope")
    groups = [":".join(f for level in bar.levels[: i + 1] for f in level)
              for i in range(len(bar.levels))]
    terms: list[RandomTerm] = []
    for g in groups:
        if bar.double:
            if intercept:
                terms.append(RandomTerm(g, True, ()))
            terms.extend(RandomTerm(g, False, (s,)) for s in slopes)
        else:
            terms.append(RandomTerm(g, intercept, tuple(slopes)))
    return terms


def _check_duplicates(terms: list[RandomTerm], text: str) -> None:
    seen: set[tuple[str, str]] = set()
    for t in terms:
        for n in t.names:
            if (t.group, n) in seen:
                raise FormulaError(f"{n} appears twice for grouping factor {t.group} in "
                                   f"{one_line(text)!r}")
            seen.add((t.group, n))
