"""Grouping factors the data cannot identify, refused (or warned about) as lme4 and clmm do.

With as many groups as observations a random intercept is confounded with the residual: lme4
refuses such a model before fitting, and the native estimator used to fit it anyway and report
``converged=True``. The rules, from lme4 1.1-31's ``checkNlevels`` and ``checkZdims`` with the
default controls (``check.nlev.gtr.1``, ``check.nobs.vs.nlev`` and ``check.nobs.vs.nRE`` are
all "stop" for both lmer and glmer), and from ``ordinal::clmm`` 2022.11:

========================  ================================  ================================
check                     lmer (gaussian)                   glmer (binomial, Poisson)
========================  ================================  ================================
levels per factor         at least 2                        at least 2
levels vs observations    nlev < n                          nlev <= n
random effects per term   n > nlev x k                      n >= nlev x k
========================  ================================  ================================

clmm (ordinal) instead requires more than two levels per factor (a ``stopifnot``) and only warns
when a term has at least as many random effects as observations. ``n`` is the number of rows
that enter the model, ``k`` the effects of one term (``(1 + x | g)`` has 2). Terms are checked
in lme4's order (by decreasing number of levels) and the first failure is the message, worded as
lme4 words it so the two engines' errors read alike.
"""

from __future__ import annotations

from typing import Literal

from .design import Design

Rule = Literal["lmer", "glmer", "clmm"]


def rule_for(family: str) -> Rule:
    return "lmer" if family == "gaussian" else "clmm" if family == "ordinal" else "glmer"


def _terms(design: Design) -> list[tuple[str, int]]:
    """(lme4's term name ``1 + x | g``, number of random effects) in lme4's order."""
    out = []
    for f in design.factors:
        start = 0
        for size in f.term_sizes:
            cols = f.columns[start:start + size]
            start += size
            lhs = " + ".join("1" if c == "(Intercept)" else c for c in cols)
            if "(Intercept)" not in cols:
                lhs = "0 + " + lhs
            out.append((f"{lhs} | {f.name}", f.m, f.m * size))
    out.sort(key=lambda t: -t[1])  # mkReTrms orders terms by decreasing number of levels
    return [(name, q) for name, _, q in out]


def refusal(design: Design, rule: Rule) -> str | None:
    """lme4's (or clmm's) error message for the grouping factors of ``design``, or None."""
    n = design.n
    nlev = {f.name: f.m for f in design.factors}
    if rule == "clmm":
        few = [g for g, m in nlev.items() if m <= 2]
        if few:
            return (f"grouping factor(s) {', '.join(few)} have 2 levels or fewer; ordinal::clmm "
                    "requires more than 2 (all(sapply(gfl, nlevels) > 2) is not TRUE)")
        return None
    if any(m < 2 for m in nlev.values()):
        return "grouping factors must have > 1 sampled level"
    allow_n = rule == "glmer"
    bad = [g for g, m in nlev.items() if (m > n if allow_n else m >= n)]
    if bad:
        return (f"number of levels of each grouping factor must be {'<=' if allow_n else '<'} "
                f"number of observations (problems: {', '.join(bad)})")
    for name, q in _terms(design):
        if (n < q) if allow_n else (n <= q):
            rest = "" if allow_n else " and the residual variance (or scale parameter)"
            return (f"number of observations (={n}) {'<' if allow_n else '<='} number of random "
                    f"effects (={q}) for term ({name}); the random-effects parameters{rest} are "
                    "probably unidentifiable")
    return None


def warnings(design: Design, rule: Rule) -> list[str]:
    """clmm's warning for a term with at least as many random effects as observations."""
    if rule != "clmm":
        return []
    return [f"no. random effects (={q}) >= no. observations (={design.n}) for term: ({name})"
            for name, q in _terms(design) if q >= design.n]
