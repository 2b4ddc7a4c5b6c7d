"""lme4-style model formulas, split into a fixed part and explicit random-effects terms.

The parser works on text only and never sees data (as formulaic's parser does): every backend
renders the same :class:`ModelFormula` in its own dialect (lme4 call, Stata ``mixed`` equation,
native design matrices). It normalises the lme4 shorthands that packages read differently:

* ``(1 + x || g)`` becomes independent terms ``(1 | g) + (0 + x | g)``;
* ``(1 | a/b)`` becomes ``(1 | a) + (1 | a:b)``;
* ``(x | g)`` has an implicit intercept, ``(0 + x | g)`` / ``(-1 + x | g)`` has none.

Only simple variable names are allowed inside random-effect terms (the course never needs more);
the fixed part may use anything the native formula library and R both understand
(``factor(x)``, ``C(x)``, ``a:b``, ``a*b``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


class FormulaError(ValueError):
    """A formula the harness cannot read; the message says which part and why."""


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
        lhs = " + ".join((["1"] if self.intercept else ["0"]) + list(self.slopes))
        return f"({lhs} | {self.group})"


@dataclass(frozen=True)
class ModelFormula:
    response: str
    fixed: str  # right-hand side of the fixed part, e.g. "lrt + girl + factor(schgend)" or "1"
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

    def lme4(self) -> str:
        """The formula as lme4 reads it, with every random term written out explicitly."""
        parts = [self.fixed] + [t.lme4() for t in self.random]
        return f"{self.response} ~ " + " + ".join(parts)

    def factor_variables(self) -> set[str]:
        """Variables the fixed part wraps in ``factor()`` or ``C()``: categorical whatever the
        type of their column."""
        return set(_CALL.findall(self.fixed))

    def variables(self) -> set[str]:
        """Column names the model uses (response, fixed-part variables, slopes, groups)."""
        names = {self.response}
        names.update(_fixed_variables(self.fixed))
        for t in self.random:
            names.update(t.slopes)
            names.update(t.group_factors)
        return names


def parse_formula(text: str) -> ModelFormula:
    """Parse ``y ~ fixed + (re | g) + ...`` into a :class:`ModelFormula`."""
    if text.count("~") != 1:
        raise FormulaError(f"formula {text!r} must contain exactly one '~'")
    lhs, rhs = (s.strip() for s in text.split("~"))
    if not _NAME.match(lhs):
        raise FormulaError(
            f"response {lhs!r} must be a plain column name; derive transformed or ordered "
            "outcomes under 'derive' and set the family instead")
    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    for part in _split_top_level(rhs):
        if part.startswith("(") and part.endswith(")") and "|" in part:
            random.extend(_parse_bar(part[1:-1], text))
        else:
            fixed_parts.append(part)
    fixed = " + ".join(fixed_parts) if fixed_parts else "1"
    _check_duplicates(random, text)
    return ModelFormula(response=lhs, fixed=fixed, random=tuple(random))


def _split_top_level(rhs: str) -> list[str]:
    """Split on '+' outside parentheses, keeping '(... | g)' groups whole."""
    parts, depth, current = [], 0, []
    for ch in rhs:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"unbalanced ')' in {rhs!r}")
        if ch == "+" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise FormulaError(f"unbalanced '(' in {rhs!r}")
    parts.append("".join(current).strip())
    if any(p == "" for p in parts):
        raise FormulaError(f"empty term in {rhs!r}")
    return parts


def _parse_bar(inner: str, text: str) -> list[RandomTerm]:
    independent = "||" in inner
    lhs, group = (s.strip() for s in inner.split("||" if independent else "|"))
    if "|" in group:
        raise FormulaError(f"random term ({inner}) in {text!r} has more than one bar")
    intercept = True
    slopes: list[str] = []
    for tok in (t.strip() for t in re.split(r"\+", lhs)):
        if tok == "1":
            intercept = True
        elif tok in ("0", "-1"):
            intercept = False
        elif tok.startswith("-1") or tok.startswith("0 "):
            raise FormulaError(f"cannot read {tok!r} in random term ({inner})")
        elif _NAME.match(tok):
            slopes.append(tok)
        else:
            raise FormulaError(
                f"random term ({inner}) in {text!r}: {tok!r} is not a plain variable name; "
                "derive it as a column first (see the spec's 'derive' section)")
    groups = _expand_nesting(group, inner, text)
    terms: list[RandomTerm] = []
    for g in groups:
        if independent:
            if intercept:
                terms.append(RandomTerm(g, True, ()))
            terms.extend(RandomTerm(g, False, (s,)) for s in slopes)
        else:
            terms.append(RandomTerm(g, intercept, tuple(slopes)))
    if not intercept and not slopes:
        raise FormulaError(f"random term ({inner}) in {text!r} has no effects")
    return terms


def _expand_nesting(group: str, inner: str, text: str) -> list[str]:
    pieces = [p.strip() for p in group.split("/")]
    for p in pieces:
        for f in p.split(":"):
            if not _NAME.match(f.strip()):
                raise FormulaError(f"grouping factor {f!r} in ({inner}) of {text!r} is not a "
                                   "column name")
    return [":".join(pieces[: i + 1]) for i in range(len(pieces))]


def _check_duplicates(terms: list[RandomTerm], text: str) -> None:
    seen: set[tuple[str, str]] = set()
    for t in terms:
        for n in t.names:
            if (t.group, n) in seen:
                raise FormulaError(f"{n} appears twice for grouping factor {t.group} in {text!r}")
            seen.add((t.group, n))


_CALL = re.compile(r"\b(?:factor|C)\(\s*([A-Za-z_.][A-Za-z0-9_.]*)")
_TOKEN = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_FUNCTIONS = {"factor", "C", "I", "log", "exp", "sqrt", "poly", "scale", "center", "Treatment"}


def _fixed_variables(fixed: str) -> set[str]:
    names = set(_CALL.findall(fixed))
    for tok in _TOKEN.findall(fixed):
        if tok not in _FUNCTIONS:
            names.add(tok)
    names.discard("1")
    return names
