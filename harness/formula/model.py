"""A parsed lme4-style model formula: response, fixed part (a syntax tree) and random terms.

Every backend renders the same :class:`ModelFormula` in its own dialect (the lme4 call, the
Stata command, the native design matrices); none of them sees the user's text. The random part
is normalised here, because packages read lme4's shorthands differently:

* ``(1 + x || g)`` becomes independent terms ``(1 | g) + (0 + x | g)``;
* ``(1 | a/b)`` becomes ``(1 | a) + (1 | a:b)``;
* ``(x | g)`` has an implicit intercept, ``(0 + x | g)`` / ``(-1 + x | g)`` has none.

Only plain column names are allowed inside random-effect terms (the course never needs more);
the fixed part takes the allow-list of :mod:`harness.formula.parser`.

Two model attributes can be written in the formula, as in R: ``offset(...)`` terms
(:attr:`ModelFormula.offsets`) and a binomial response out of trials, ``cbind(successes,
failures)`` or ``successes/trials`` (:attr:`ModelFormula.binomial`); ``response`` is then the
successes column. The spec's ``model.weights`` and ``model.offset`` join them in
:mod:`harness.attributes`, the one place that says what each attribute means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from harness.names import one_line
from harness.rsyntax import r_name

from .errors import FormulaError
from .parser import parse
from .syntax import Arith, Bar, Column, FactorCall, OffsetCall, One, Successes, Sum, Zero
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
    response: str  # the outcome column (for a binomial count out of trials: the successes)
    fixed_part: Sum = field(default_factory=lambda: Sum(()))
    random: tuple[RandomTerm, ...] = field(default_factory=tuple)
    binomial: Successes | None = None  # cbind(successes, failures) or successes/trials

    @property
    def offsets(self) -> tuple[Arith, ...]:
        """The arguments of the ``offset(...)`` terms, in formula order (R adds them up)."""
        return tuple(node.arg for _, node in self.fixed_part.items
                     if isinstance(node, OffsetCall))

    @property
    def trials(self) -> Arith | None:
        """The number of binomial trials the response says (None: a 0/1 or other outcome)."""
        return self.binomial.trials() if self.binomial else None

    def response_to_r(self) -> str:
        """The response as written (``y``, ``cbind(s, n - s)``, ``s/n``)."""
        return self.binomial.to_r() if self.binomial else r_name(self.response)

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
        """The formula as written, with every random term written out explicitly."""
        return f"{self.response_to_r()} ~ {self.rhs_to_r()}"

    lme4 = to_r

    def factor_variables(self) -> set[str]:
        """Columns the fixed part wraps in ``factor()`` or ``C()``: categorical whatever the
        type of their column."""
        return {v.column for v in self.terms.variables if isinstance(v, FactorCall)}

    def variables(self) -> set[str]:
        """Column names the model uses (response and trials, fixed-part variables and offsets,
        slopes, groups)."""
        names = {self.response, *self.fixed_part.columns()}
        if self.binomial:
            names.update(self.binomial.columns())
        for t in self.random:
            names.update(t.slopes)
            names.update(t.group_factors)
        return names


def parse_formula(text: str) -> ModelFormula:
    """Parse ``y ~ fixed + (re | g) + ...`` into a :class:`ModelFormula`."""
    written, fixed, bars = parse(text)
    binomial = written if isinstance(written, Successes) else None
    response = binomial.successes if binomial else str(written)
    random: list[RandomTerm] = []
    for bar in bars:
        random.extend(_random_terms(bar, text))
    _check_duplicates(random, text)
    formula = ModelFormula(response=response, fixed_part=fixed, random=tuple(random),
                           binomial=binomial)
    terms = formula.terms  # expands now, so a bad fixed part fails at parse time
    outcome = set(binomial.columns()) if binomial else {response}
    used = {c for v in terms.variables for c in v.columns()} | \
        {c for off in formula.offsets for c in off.columns()}
    if outcome & used:
        raise FormulaError(f"formula {one_line(text)!r}: the response "
                           f"{', '.join(sorted(outcome & used))!r} also appears on the "
                           "right-hand side")
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
