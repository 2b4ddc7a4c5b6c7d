"""How a model's random part maps onto statsmodels ``MixedLM``: ``groups``, ``exog_re`` and
variance components, or why it cannot.

statsmodels' MixedLM (0.14/0.15) has one grouping factor (``groups``), within it one random-effects
covariance matrix over the columns of ``exog_re`` (statsmodels' ``re_formula``), and any number of
*variance components* (``vc_formula`` / ``exog_vc``): independent scalar variances, each shared by
the columns a group's design matrix gives it. So, for the design built by the harness
(:func:`backends.native.design.build_design`: the formula tree, never the formula's text):

* the grouping factor that contains every other one (all others nested in it) is ``groups``;
  its one correlated term (``(1 + x | g)``, or its first term when all are scalar) is
  ``exog_re``; its other scalar terms (``(0 + x | g)`` beside ``(1 | g)``) are variance
  components with one column per group;
* every scalar term of a factor nested in ``groups`` (``(1 | ward)`` in hospitals) is a variance
  component whose columns within one group are that term's values times the indicator of each
  level of the factor found in the group;
* crossed factors (none contains all others) use the single-group trick statsmodels documents:
  one group holding every row, no ``exog_re``, and every term a variance component with one
  column per level. Its cost: each likelihood evaluation works with dense ``n x q`` blocks (q the
  total number of levels), so it is refused above :data:`MAX_SINGLE_GROUP_CELLS`;
* not expressible (:class:`NotExpressible`, the reason names the term): two correlated terms in
  the ``groups`` factor, or a correlated term (``(1 + x | f)``) of any other factor, because a
  variance component is one scalar variance, never a covariance matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.native.design import Design, FactorBlock, nested_in

#: the single-group trick builds dense n x q design blocks; above this many cells (8 bytes each,
#: 400 MB) the fit would take the machine's memory and hours of time, so it is refused instead
MAX_SINGLE_GROUP_CELLS = 50_000_000


class NotExpressible(ValueError):
    """The random part has a structure statsmodels' MixedLM cannot express; says which term."""


@dataclass(frozen=True)
class Term:
    """One random-effect term of one grouping factor: its columns in ``FactorBlock.columns``."""

    factor: FactorBlock
    start: int
    size: int

    @property
    def names(self) -> list[str]:
        return self.factor.columns[self.start:self.start + self.size]

    @property
    def values(self) -> np.ndarray:
        return self.factor.Z[:, self.start:self.start + self.size]

    def written(self) -> str:
        inner = " + ".join("1" if n == "(Intercept)" else n for n in self.names)
        if "(Intercept)" not in self.names:
            inner = "0 + " + inner
        return f"({inner} | {self.factor.name})"


@dataclass(frozen=True)
class Layout:
    """The MixedLM arguments for one design, and where each estimate goes back to.

    ``groups`` holds one integer code per row (statsmodels sorts the labels, so group ``i`` is
    code ``i``); ``re_term`` is the term fitted by ``exog_re`` (None in the single-group trick);
    ``vc_terms[k]`` is variance component ``k`` and ``vc_mats[k][i]`` its design matrix in group
    ``i`` (rows in data order, as statsmodels takes them).
    """

    group_factor: str | None  # None: the single-group trick for crossed factors
    groups: np.ndarray
    re_term: Term | None
    vc_terms: list[Term]
    vc_mats: list[list[np.ndarray]]
    vc_colnames: list[list[list[str]]]

    @property
    def exog_re(self) -> np.ndarray | None:
        return None if self.re_term is None else np.ascontiguousarray(self.re_term.values)

    @property
    def vc_names(self) -> list[str]:
        return [f"{t.factor.name}/{t.names[0]}" for t in self.vc_terms]

    def describe(self) -> str:
        """One line for the result's messages: what statsmodels was asked to fit."""
        re = f"exog_re {self.re_term.written()}" if self.re_term else "no exog_re"
        vcs = ", ".join(t.written() for t in self.vc_terms) or "none"
        grouping = (f"groups = {self.group_factor}" if self.group_factor else
                    "one group of all rows (crossed factors: statsmodels' single-group trick)")
        return f"MixedLM: {grouping}; {re}; variance components: {vcs}"


def terms_of(factor: FactorBlock) -> list[Term]:
    out, start = [], 0
    for size in factor.term_sizes:
        out.append(Term(factor, start, size))
        start += size
    return out


def layout(design: Design) -> Layout:
    """The MixedLM layout of ``design`` (which has at least one grouping factor)."""
    factors = design.factors
    outer = next((f for f in factors
                  if all(g is f or nested_in(g.codes, f.codes) for g in factors)), None)
    if outer is None:
        return _single_group(design)
    terms = terms_of(outer)
    correlated = [t for t in terms if t.size > 1]
    if len(correlated) > 1:
        raise NotExpressible(
            f"statsmodels' MixedLM has one random-effects covariance matrix per group; "
            f"{' and '.join(t.written() for t in correlated)} are two correlated blocks of "
            f"{outer.name}")
    re_term = correlated[0] if correlated else terms[0]
    order = np.argsort(outer.codes, kind="stable")
    bounds = np.searchsorted(outer.codes[order], np.arange(outer.m + 1))
    rows = [order[bounds[i]:bounds[i + 1]] for i in range(outer.m)]  # data order within group
    vc_terms, mats, names = [], [], []
    for t in terms:
        if t is not re_term:
            vc_terms.append(t)
            mats.append([t.values[r] for r in rows])
            names.append([[outer.levels[i]] for i in range(outer.m)])
    for f in factors:
        if f is outer:
            continue
        for t in terms_of(f):
            _scalar_component(t)
            vc_terms.append(t)
            group_mats, group_names = [], []
            for r in rows:
                levels = np.unique(f.codes[r])
                onehot = (f.codes[r][:, None] == levels[None, :]) * t.values[r]
                group_mats.append(onehot.astype(float))
                group_names.append([f.levels[int(v)] for v in levels])
            mats.append(group_mats)
            names.append(group_names)
    return Layout(outer.name, outer.codes, re_term, vc_terms, mats, names)


def _single_group(design: Design) -> Layout:
    q = sum(f.m for f in design.factors for _ in f.term_sizes)
    if design.n * q > MAX_SINGLE_GROUP_CELLS:
        raise NotExpressible(
            f"the grouping factors {', '.join(f.name for f in design.factors)} are crossed: "
            f"statsmodels needs its single-group trick, dense {design.n} x {q} design blocks "
            f"({design.n * q * 8 / 1e9:.1f} GB), beyond the {MAX_SINGLE_GROUP_CELLS} cells "
            "this backend allows")
    vc_terms, mats, names = [], [], []
    for f in design.factors:
        for t in terms_of(f):
            _scalar_component(t, crossed=True)
            levels = np.arange(f.m)
            vc_terms.append(t)
            mats.append([((f.codes[:, None] == levels[None, :]) * t.values).astype(float)])
            names.append([list(f.levels)])
    return Layout(None, np.zeros(design.n, dtype=np.int64), None, vc_terms, mats, names)


def _scalar_component(t: Term, crossed: bool = False) -> None:
    if t.size > 1:
        where = ("the grouping factors are crossed, so every term must be a variance component"
                 if crossed else f"{t.factor.name} is nested in the groups factor, so its terms "
                 "are variance components")
        raise NotExpressible(
            f"{t.written()} is a correlated block, but {where}: a statsmodels variance "
            "component is one scalar variance, not a covariance matrix")
