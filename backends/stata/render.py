"""Stata code from a spec: the estimation command, data preparation and the results export.

Two layers:

* :func:`plan` turns a spec (and, when available, its prepared data) into a :class:`Layout`: the
  Stata command, its fixed part, its random-effects equations in Stata's order, and the canonical
  names every Stata parameter maps back to. The layout is plain data (``to_dict``/``from_dict``) so
  it can travel inside an exported results file and be read back without the spec.
* :func:`model_do` writes one model's do-file (data preparation, estimation, post-estimation and
  the structured export of results, see ``results_file.py``); :func:`suite_do` writes one
  do-file for many models into ONE results file.

Nothing is left to a Stata default (models.md §1.4, D1-D3): ``mle``/``reml`` is always written for
``mixed``; ``cov(unstructured)``/``cov(independent)`` whenever an equation has more than one random
effect; ``intmethod()``/``intpoints()`` for every ``me*`` command.

Structure of the random part (models.md D11). Without data nothing tells nested from crossed
factors, so the order comes from, in this priority: the spec's ``backends.stata.options``
(``levels: [outer, inner]``, ``crossed: [factor]`` or ``crossed: true``), then the data (group
counts: the factor with fewer groups is the higher level, or the ``_all: R.`` term when crossed),
then the formula (factors in formula order, assumed nested; the do-file says so in a comment).

Model attributes (harness/attributes.py) are written only where Stata means the same: prior
weights of non-gaussian models as ``[fweight=]`` (whole numbers: R's weights multiply each row's
log-likelihood, as Stata's frequency weights do), an offset as ``offset(mlmh_offset)`` (for
gaussian models, which Stata's ``mixed``/``regress`` fit without one, the response less the
offset), binomial trials as ``binomial(mlmh_trials)`` (single-level: ``glm, family(binomial
mlmh_trials)``). Gaussian precision weights, contrasts other than treatment, and text used as a
factor or an outcome are not estimable in Stata, each with its reason; a text grouping factor
gets a numeric id (``egen group``) whose levels are written back by their text.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from harness.attributes import ModelAttributes
from harness.derive import stata_code, step_columns
from harness.estimator import Estimator
from harness.formula import ModelFormula, RandomTerm
from harness.formula.syntax import Column, FactorCall
from harness.options import StataOptions
from harness.spec import Derived, Model, Spec
from harness.statasyntax import (StataTextError, inline_comment, stata_comment, stata_name_problem,
                                 stata_string)

from .errors import StataRenderError
from .fixed import arithmetic, render_fixed

RESULTS_FORMAT = "mlmh-stata-results"
RESULTS_VERSION = 1
STATA_MIN_VERSION = 15  # e(b) stripes of me* (``/:var(_cons[g])``) as read here date from 15
RE_STUB, SE_STUB = "mlmh_re", "mlmh_se"
HANDLE = "mlmh_fh"


# ---- the layout ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Equation:
    """One Stata random-effects equation ``|| level: varlist, options``.

    ``effects`` are canonical names in Stata's order (slopes in varlist order, ``(Intercept)``
    last); ``stata_effects`` the matching Stata names (``lrt``, ``_cons``). ``path`` lists the
    Stata variables that identify one group (higher levels first: Stata's nested ids);
    ``label_vars`` the columns whose values, joined by ``:``, name the level the way lme4 does.
    ``factor`` is set for a crossed ``_all: R.factor`` term.
    """

    level: str
    group: str
    effects: tuple[str, ...]
    stata_effects: tuple[str, ...]
    covariance: str | None  # unstructured | independent | identity | None (one effect)
    path: tuple[str, ...]
    label_vars: tuple[str, ...]
    factor: str | None = None
    text_vars: tuple[str, ...] = ()  # label variables that hold text (written as text)

    def render(self) -> str:
        if self.factor:
            return f"|| _all: R.{self.factor}"
        slopes = [s for s in self.stata_effects if s != "_cons"]
        opts = []
        if "_cons" not in self.stata_effects:
            opts.append("noconstant")
        if len(self.stata_effects) > 1:
            opts.append(f"cov({self.covariance})")
        text = f"|| {self.level}:" + ("" if not slopes else " " + " ".join(slopes))
        return text + (", " + " ".join(opts) if opts else "")


@dataclass
class Layout:
    """Everything needed to write the Stata command and to map its results back by name."""

    spec_id: str
    command: str
    depvar: str
    fixed_terms: list[str]
    noconstant: bool
    options: list[str]
    equations: list[Equation]
    fixed_styles: dict[str, str]  # variable -> factor | bare (how R names its dummies)
    group_names: dict[str, list[str]]  # canonical group -> effect names in lme4 order
    correlated: list[list[str]]  # [group, effect, effect] pairs that have a cor/cov
    family: str
    link: str
    method: str  # Model.method ML/REML/OLS
    method_label: str  # OLS, ML, REML, Laplace, AGHQ(7)
    model: dict[str, Any]  # the fingerprint of the model this layout was made for
    generated_ids: list[tuple[str, list[str]]] = field(default_factory=list)
    structure_note: str = ""
    icc: bool = False
    setup: list[str] = field(default_factory=list)  # e.g. xtset school / svyset school
    panel: str | None = None  # the xtset panel variable (xtreg/xtlogit): the random group
    generated: dict[str, str] = field(default_factory=dict)  # made variable -> R column name
    transforms: list[str] = field(default_factory=list)  # commands making the generated ones
    weight: str = ""  # "[fweight=w]": the prior weights, where Stata means the same
    fixed_options: list[str] = field(default_factory=list)  # offset() of an me* equation

    @property
    def kind(self) -> str:
        """mixed | me | xt | single (how the random part is parameterised in e(b))."""
        if self.panel:
            return "xt"
        if not self.equations:
            return "single"
        return "mixed" if self.command in ("mixed", "meqrlogit") else "me"

    def command_line(self) -> str:
        """The estimation command. Global options share the last equation's comma, as Stata's
        syntax has it (``|| school: lrt, cov(unstructured) mle``); the fixed-effects equation
        takes its weight and its own options (``noconstant``, ``offset()``) before ``||``."""
        fixed = " ".join([self.command, self.depvar, *self.fixed_terms]
                         + ([self.weight] if self.weight else []))
        if not self.equations or self.panel:
            opts = (["noconstant"] if self.noconstant else []) + self.fixed_options + self.options
            return fixed + (", " + " ".join(opts) if opts else "")
        fe_opts = (["noconstant"] if self.noconstant else []) + self.fixed_options
        line = fixed + (", " + " ".join(fe_opts) if fe_opts else "")
        eqs = [e.render() for e in self.equations]
        line += " " + " ".join(eqs)
        if self.options:
            line += (" " if "," in eqs[-1] else ", ") + " ".join(self.options)
        return line

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["equations"] = [asdict(e) for e in self.equations]
        return json.loads(json.dumps(d))  # plain JSON types (lists, not tuples)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Layout":
        d = dict(d)
        d["equations"] = [Equation(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in e.items()}) for e in d["equations"]]
        d["generated_ids"] = [(a, list(b)) for a, b in d.get("generated_ids", [])]
        return cls(**d)


def normal_formula(formula: ModelFormula) -> str:
    """The formula with fixed and random terms sorted, so equivalent writings compare equal.

    Fixed terms are R's term labels (``a*b`` is ``a + b + a:b``), with ``0`` when there is no
    intercept and ``1`` when there are no other terms.
    """
    terms = formula.terms
    fixed = sorted(terms.labels()) or ["1"]
    if not terms.intercept:
        fixed = ["0"] + [t for t in fixed if t != "1"]
    random = sorted(t.lme4() for t in formula.random)
    return f"{formula.response} ~ " + " + ".join(fixed + random)


def model_fingerprint(model: Model) -> dict[str, Any]:
    """What a stored result must match to stand for ``model`` (attributes only when present,
    so results stored before attributes existed still match models without them)."""
    out: dict[str, Any] = {"formula": normal_formula(model.parsed), "family": model.family,
                           "link": model.resolved_link, "method": model.method,
                           "integration": model.method_label(), "cluster_se": model.cluster_se}
    attributes = ModelAttributes.of(model)
    if attributes:
        out["attributes"] = attributes.describe()
    return out


# ---- random part: structure -------------------------------------------------------------------

def _group_terms(formula: ModelFormula) -> dict[str, list[RandomTerm]]:
    out: dict[str, list[RandomTerm]] = {}
    for t in formula.random:
        out.setdefault(t.group, []).append(t)
    return out


def _keys(frame: pd.DataFrame, group: str) -> pd.Series:
    cols = group.split(":")
    if len(cols) == 1:
        return frame[cols[0]]
    return frame[cols].astype(str).agg(":".join, axis=1)


def _nested(frame: pd.DataFrame, inner: str, outer: str) -> bool:
    pairs = pd.DataFrame({"i": _keys(frame, inner), "o": _keys(frame, outer)}).dropna()
    return bool((pairs.groupby("i")["o"].nunique() <= 1).all())


def structure_from_data(groups: list[str], intercept_only: dict[str, bool],
                        frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(crossed factors for ``_all: R.``, nested chain from the highest level down) from data.

    The fewest ``_all: R.`` terms that leave a nested chain win; among equals, the factors with
    the fewest groups go to ``_all: R.`` (the course's choice, models.md D11).
    """
    counts = {g: int(_keys(frame, g).nunique()) for g in groups}
    order = {g: i for i, g in enumerate(groups)}
    candidates = [g for g in groups if intercept_only[g] and ":" not in g]
    for size in range(len(groups)):
        options = sorted(itertools.combinations(candidates, size),
                         key=lambda s: (sum(counts[g] for g in s), [order[g] for g in s]))
        for crossed in options:
            rest = sorted((g for g in groups if g not in crossed),
                          key=lambda g: (counts[g], order[g]))
            if all(_nested(frame, inner, outer) for outer, inner in zip(rest, rest[1:])):
                crossed_sorted = sorted(crossed, key=lambda g: (counts[g], order[g]))
                return list(crossed_sorted), rest
    raise StataRenderError(
        f"grouping factors {groups} are crossed and have random slopes; Stata's _all: R. "
        "syntax takes random intercepts only")


def _formula_order(groups: list[str]) -> list[str]:
    """Formula order, except that ``a:b`` comes after ``a`` (it is nested in it by definition)."""
    return sorted(groups, key=lambda g: (len(g.split(":")), groups.index(g)))


def plan_structure(formula: ModelFormula, options: StataOptions,
                   frame: pd.DataFrame | None) -> tuple[list[str], list[str], str]:
    """(crossed, chain, note): which factors become ``_all: R.`` terms and the nesting order."""
    by_group = _group_terms(formula)
    groups = list(by_group)
    intercept_only = {g: all(t.names == ["(Intercept)"] for t in ts) for g, ts in by_group.items()}
    if len(groups) <= 1:
        return [], groups, ""
    crossed_opt = options.crossed
    levels_opt = options.levels
    if crossed_opt or levels_opt:
        if crossed_opt is True:
            crossed = [groups[0]]
        else:
            crossed = list(crossed_opt or [])
        rest = [g for g in groups if g not in crossed]
        chain = list(levels_opt) if levels_opt else _formula_order(rest)
        unknown = set(crossed + chain) - set(groups)
        if unknown or sorted(crossed + chain) != sorted(groups):
            raise StataRenderError(
                f"backends.stata.options levels/crossed {crossed + chain} must name each "
                f"grouping factor of the formula exactly once ({groups})")
        bad = [g for g in crossed if not intercept_only[g] or ":" in g]
        if bad:
            raise StataRenderError(f"crossed factor(s) {bad} have random slopes or are "
                                   "interactions; _all: R. takes a plain random intercept")
        return crossed, chain, "structure stated in the spec (backends.stata.options)"
    if frame is not None and all(f in frame.columns for g in groups for f in g.split(":")):
        crossed, chain = structure_from_data(groups, intercept_only, frame)
        what = (f"crossed: {', '.join(crossed)} as _all: R. term(s); " if crossed else "") + \
            (f"nested: {' > '.join(chain)}" if len(chain) > 1 else "")
        return crossed, chain, f"structure from the data's group counts ({what.strip('; ')})"
    chain = _formula_order(groups)
    return [], chain, (
        f"NOTE: no data at render time, so the levels are ASSUMED NESTED in formula order "
        f"({' > '.join(chain)}). A fit decides from the data (crossed factors become "
        f"_all: R. terms); state backends.stata.options.levels or .crossed to fix it here")


def _equations_for(group: str, terms: list[RandomTerm], level: str, path: tuple[str, ...],
                   text: set[str]) -> list[Equation]:
    label_vars = tuple(group.split(":"))
    text_vars = tuple(v for v in label_vars if v in text)
    multi = [t for t in terms if len(t.names) > 1]
    singles = [t for t in terms if len(t.names) == 1]
    eqs = []
    for t in terms:
        if t in multi:
            slopes = list(t.slopes)
            stata = slopes + (["_cons"] if t.intercept else [])
            canon = slopes + (["(Intercept)"] if t.intercept else [])
            eqs.append((terms.index(t), Equation(level, group, tuple(canon), tuple(stata),
                                                 "unstructured", path, label_vars,
                                                 text_vars=text_vars)))
    if singles:
        slopes = [s for t in singles for s in t.slopes]
        has_int = any(t.intercept for t in singles)
        stata = slopes + (["_cons"] if has_int else [])
        canon = slopes + (["(Intercept)"] if has_int else [])
        cov = "independent" if len(stata) > 1 else None
        eqs.append((terms.index(singles[0]), Equation(level, group, tuple(canon), tuple(stata),
                                                      cov, path, label_vars,
                                                      text_vars=text_vars)))
    return [e for _, e in sorted(eqs, key=lambda x: x[0])]


def plan_random(formula: ModelFormula, options: StataOptions, frame: pd.DataFrame | None
                ) -> tuple[list[Equation], list[tuple[str, list[str]]], str]:
    by_group = _group_terms(formula)
    crossed, chain, note = plan_structure(formula, options, frame)
    text = text_columns(frame, {f for g in by_group for f in g.split(":")})
    bad = [g for g in crossed if g in text]
    if bad:
        raise StataRenderError(f"crossed grouping factor(s) {bad} hold text, and Stata's R. "
                               "notation needs numbers; recode them under 'derive' "
                               "(group_id: [column])")
    eqs: list[Equation] = []
    generated: list[tuple[str, list[str]]] = []
    for g in crossed:
        eqs.append(Equation("_all", g, ("(Intercept)",), ("_cons",), "identity", (g,), (g,),
                            factor=g))
    path: tuple[str, ...] = ()
    above: list[str] = []
    for g in chain:
        factors = g.split(":")
        if any(f in text for f in factors) or (len(factors) > 1 and above[-(len(factors) - 1):]
                                                != [":".join(factors[:i])
                                                    for i in range(1, len(factors))]):
            # "a:b" without "a" as the level above, or a text factor: an id variable
            idvar = f"mlmh_id{len(generated) + 1}"
            generated.append((idvar, factors))
            level = idvar
        else:
            level = factors[-1]
        path = path + (level,)
        above.append(g)
        eqs.extend(_equations_for(g, by_group[g], level, path, text))
    return eqs, generated, note


def text_columns(frame: pd.DataFrame | None, columns: set[str]) -> set[str]:
    """Which of ``columns`` hold text, R-style categories or logicals in the data (none without
    data). Logicals count as text: Stata has no logical type (``import delimited`` reads
    TRUE/FALSE as strings), and R codes a logical predictor as the dummy ``xTRUE``, a name
    Stata's ``x`` would not match."""
    if frame is None:
        return set()
    return {c for c in columns if c in frame.columns and (
        isinstance(frame[c].dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(frame[c])
        or not pd.api.types.is_numeric_dtype(frame[c]))}


def attributes_plan(spec: Spec, model: Model, frame: pd.DataFrame | None, depvar: str
                    ) -> tuple[str, str, list[str], list[str], str | None]:
    """(depvar, weight clause, generate commands, fixed-equation options, trials variable) for
    the model's attributes, or StataRenderError where Stata means something else by them
    (harness/attributes.py)."""
    a = ModelAttributes.of(model)
    lines: list[str] = []
    weight, fixed_options, trials = "", [], None
    if a.weights:
        if model.family == "gaussian":
            raise StataRenderError(
                "model.weights of a gaussian model are precision weights (Var = sigma^2 / w, "
                "lmer's weights=), which Stata's mixed and regress do not fit: [fweight=] "
                "replicates rows (sigma estimated on sum(w) observations), [aweight=] and "
                "[pweight=] mean other things")
        if frame is not None and a.weights in frame.columns:
            w = frame[a.weights].dropna().to_numpy(dtype=float)
            if (w != w.round()).any():
                raise StataRenderError(
                    f"model.weights {a.weights!r} are not whole numbers: R's prior weights "
                    "multiply each row's log-likelihood, which Stata's [fweight=] does only for "
                    "whole numbers")
        weight = f"[fweight={a.weights}]"
    offset = a.offset
    if offset is not None:
        lines.append(f"generate double mlmh_offset = {arithmetic(offset)}")
        if model.family == "gaussian":
            lines.append(f"generate double mlmh_y = {depvar} - mlmh_offset  "
                         + inline_comment("mixed and regress have no offset(): fit y - offset"))
            depvar = "mlmh_y"
        else:
            fixed_options.append("offset(mlmh_offset)")
    if a.trials is not None:
        lines.append(f"generate double mlmh_trials = {arithmetic(a.trials)}")
        trials = "mlmh_trials"
    return depvar, weight, lines, fixed_options, trials


def _unsupported_columns(spec: Spec, model: Model, frame: pd.DataFrame | None) -> None:
    """Contrasts Stata's factor variables cannot code, and text where Stata needs numbers."""
    f = model.parsed
    fixed_factors = {v.column for v in f.terms.variables if isinstance(v, FactorCall)} | \
        {v.name for v in f.terms.variables if isinstance(v, Column)}
    coded = sorted(c for c in spec.contrasts() if c in fixed_factors)
    if coded:
        raise StataRenderError(
            f"columns {coded} have {spec.contrasts()[coded[0]]} contrasts, and Stata's factor "
            "variables (i., ib.) code treatment contrasts only; not estimable in Stata (derive "
            "the contrast columns to fit it there)")
    text = sorted(text_columns(frame, fixed_factors | {f.response}))
    if text:
        raise StataRenderError(
            f"column(s) {text} hold text or logicals, and Stata's factor variables and outcomes "
            "need numbers; recode them under 'derive' (recode: {Y: 1, N: 0}) to fit the model "
            "in Stata")


# ---- the command ------------------------------------------------------------------------------

_ME = {("binomial", "logit"): "melogit", ("binomial", "probit"): "meprobit",
       ("poisson", "log"): "mepoisson", ("ordinal", "logit"): "meologit",
       ("ordinal", "probit"): "meoprobit"}
_SINGLE = {("binomial", "logit"): "logit", ("binomial", "probit"): "probit",
           ("poisson", "log"): "poisson", ("ordinal", "logit"): "ologit",
           ("ordinal", "probit"): "oprobit"}
_GLM_FAMILY = {"gaussian": "gaussian", "binomial": "binomial", "poisson": "poisson"}
_MEGLM_FAMILY = {"gaussian": "gaussian", "binomial": "bernoulli", "poisson": "poisson",
                 "ordinal": "ordinal"}


def unsupported_reason(model: Model) -> str | None:
    """None when Stata (official commands) can fit ``model``; otherwise why not."""
    if model.family == "multinomial":
        return ("Stata has no official random-effects multinomial logit (the course uses the "
                "user-written gllamm, models.md D17)" if model.parsed.has_random else None)
    try:
        render_fixed(model.parsed, {}, dict(model.reference_level))
    except StataRenderError as e:
        return str(e)
    return None


def stata_estimator(command: str, opts: list[str], equations: list[Equation],
                    setup: list[str]) -> Estimator:
    """What Stata estimates with ``command`` and ``opts``, as the harness's typed record.

    Stata's me* and ``xtlogit, re`` integrate by mean-variance adaptive quadrature
    (``intmethod(mvaghermite)``), ``meqrlogit`` by mode-curvature adaptive quadrature,
    ``xtreg, re`` is feasible GLS, and ``vce(robust)`` of a mixed model clusters at the top level.
    """
    text = " ".join(opts)
    points = re.search(r"intpoints\((\d+)\)", text)
    n = int(points.group(1)) if points else 7
    if command == "xtreg":
        est = Estimator("GLS")
    elif command == "mixed":
        est = Estimator("REML" if "reml" in opts else "ML")
    elif "intmethod(laplace)" in opts or (command == "meqrlogit" and n == 1):
        est = Estimator("ML", "laplace", 1)
    elif command == "meqrlogit":
        est = Estimator("ML", "aghq", n)
    elif equations:
        est = Estimator("ML", "mvaghq", n)
    else:
        est = Estimator("OLS" if command in ("regress", "svy: regress") else "ML")
    psu = next((line.split()[1] for line in setup if line.startswith("svyset ")), None)
    if command.startswith("svy:") and psu:
        return replace(est, se="linearized", cluster=psu)
    cluster = re.search(r"vce\(cluster ([^)]+)\)", text)
    if cluster:
        return replace(est, se="CR1", cluster=cluster.group(1))
    if "vce(robust)" in opts and equations:
        return replace(est, se="CR1", cluster=equations[0].group)
    return est


def stata_names(spec: Spec, model: Model, options: StataOptions) -> None:
    """Every name of ``spec`` that reaches Stata must be a Stata name (StataRenderError
    naming the first that is not: the model is then not estimable in Stata)."""
    f = model.parsed
    named: list[tuple[str, str]] = [("the response", f.response)]
    named += [("column", c) for c in sorted(model.columns() - {f.response})]
    for step in spec.derive:
        named += [(f"derived variable {step.name!r} uses", c) for c in step_columns(step)]
    if spec.subset:
        named += [("the subset uses", c) for c in step_columns(Derived(name="mlmh_keep",
                                                                        expr=spec.subset))]
    if spec.replicate:
        named += [("replicate", c) for c in (spec.replicate.cluster, spec.replicate.new_id) if c]
    named += [(key, c) for key, c in (("backends.stata.options.psu", options.psu),
                                      ("model.cluster_se", model.cluster_se)) if c]
    named += [("backends.stata.options.levels/crossed", c) for c in
              [*(options.levels or []), *(options.crossed if isinstance(options.crossed, list)
                                          else [])]]
    for what, name in named:
        problem = stata_name_problem(name)
        if problem:
            raise StataRenderError(f"{what} {problem}; Stata cannot take this name, so the model "
                                   "is not estimable in Stata (rename the column, e.g. with a "
                                   "derived variable)")


def plan(spec: Spec, frame: pd.DataFrame | None = None) -> Layout:
    """The Stata layout of ``spec`` (as ``spec.model_for('stata')``), using data when given."""
    model = spec.model_for("stata")
    settings = spec.backends.stata
    options = settings.options if settings is not None else StataOptions()
    f = model.parsed
    if model.family == "multinomial":
        if f.has_random:
            raise StataRenderError(unsupported_reason(model) or "multinomial")
    stata_names(spec, model, options)
    _unsupported_columns(spec, model, frame)
    fixed = render_fixed(f, {c: "factor" for c in spec.factor_columns()},
                         dict(model.reference_level))
    depvar, weight, attribute_lines, fixed_options, trials = attributes_plan(
        spec, model, frame, f.response)
    link = model.resolved_link
    opts: list[str] = []
    equations: list[Equation] = []
    generated: list[tuple[str, list[str]]] = []
    note = ""
    want = options.command
    if want == "gllamm":
        raise StataRenderError("gllamm is user-written (SSC); the harness does not drive it, so "
                               "this course fit has no Stata column")
    if want == "xtreg" and options.estimator != "re":
        raise StataRenderError("xtreg needs backends.stata.options.estimator: re (the only "
                               "estimator whose coefficients are the spec's terms)")
    setup: list[str] = []
    panel = None
    if f.has_random:
        equations, generated, note = plan_random(f, options, frame)
        if want in ("xtreg", "xtlogit"):
            if len(equations) != 1 or equations[0].effects != ("(Intercept)",):
                raise StataRenderError(f"{want} fits one random intercept only")
            if trials:
                raise StataRenderError(f"{want} has no binomial trials; use melogit (the "
                                       "default command) for successes out of trials")
            if weight:
                raise StataRenderError(f"{want}'s weights must be constant within a panel, "
                                       "unlike R's prior weights (one per row); use the "
                                       "default command (mixed, melogit) instead")
            panel = equations[0].level
            setup.append(f"xtset {panel}")
            command = want
            if want == "xtreg":
                opts.append("re")  # GLS (Swamy-Arora): not ML/REML, as the course ran it
            else:
                integ = model.integration
                opts += ["re", "intmethod(mvaghermite)",
                         f"intpoints({integ.points if integ and integ.method == 'aghq' else 12})"]
        elif want == "meqrlogit":
            command = "meqrlogit"
            if weight:
                raise StataRenderError("meqrlogit takes no weights; use melogit (the default "
                                       "command) for a model with model.weights")
            integ = model.integration
            opts.append(f"intpoints({integ.points if integ and integ.method == 'aghq' else 1})")
            if trials:
                opts.append(f"binomial({trials})")
        elif model.family == "gaussian" and want != "meglm":
            command = "mixed"
            opts.append("reml" if model.method == "REML" else "mle")
        else:
            if want == "meglm":
                command = "meglm"
                family = f"binomial {trials}" if trials else _MEGLM_FAMILY[model.family]
                opts += [f"family({family})", f"link({link})"]
            else:
                command = _ME[(model.family, link)]
                if trials:
                    opts.append(f"binomial({trials})")
            if model.family != "gaussian":
                integ = model.integration
                assert integ is not None  # the spec validator requires it for GLMMs
                if integ.method == "laplace":
                    opts.append("intmethod(laplace)")
                else:
                    opts += ["intmethod(mvaghermite)", f"intpoints({integ.points})"]
        cov = options.covariance
        if cov:
            for e in equations:
                if len(e.effects) > 1 and e.covariance != cov:
                    raise StataRenderError(
                        f"backends.stata.options.covariance is {cov!r} but the formula makes "
                        f"the {e.group} equation {e.covariance}; write the formula to match")
        if options.vce:
            opts.append(f"vce({options.vce})")
    else:
        if want == "svy: regress":
            psu = options.psu or model.cluster_se
            if not psu:
                raise StataRenderError("svy: regress needs backends.stata.options.psu")
            setup.append(f"svyset {psu}")
            command = "svy: regress"
        elif model.family == "gaussian":
            if want == "glm":
                command = "glm"
                opts += ["family(gaussian)", "link(identity)"]
            elif model.method == "OLS":
                command = "regress"
            else:
                command = "mixed"  # no random part: ML with divisor N, as the course does
                opts.append("mle")
        elif model.family == "multinomial":
            if fixed_options:
                raise StataRenderError("Stata's mlogit has no offset(); not estimable in Stata")
            command = "mlogit"
            opts.append("baseoutcome(1)")
        elif trials or (want == "glm" and model.family in _GLM_FAMILY):
            command = "glm"  # logit and probit take no trials; glm's binomial family does
            family = f"binomial {trials}" if trials else _GLM_FAMILY[model.family]
            opts += [f"family({family})", f"link({link})"]
        else:
            command = _SINGLE[(model.family, link)]
        if model.cluster_se and command != "svy: regress":
            opts.append(f"vce(cluster {model.cluster_se})")
        elif options.vce:
            opts.append(f"vce({options.vce})")
    iterate = options.iterate or model.max_iterations
    if iterate:
        opts.append(f"iterate({int(iterate)})")
    names: dict[str, list[str]] = {}
    correlated: list[list[str]] = []
    for t in f.random:
        names.setdefault(t.group, []).extend(t.names)
        if len(t.names) > 1:
            correlated += [[t.group, a, b] for a, b in itertools.combinations(t.names, 2)]
    ri_only = f.has_random and all(t.names == ["(Intercept)"] for t in f.random)
    icc = bool(ri_only and not any(e.factor for e in equations) and not panel
               and model.family in ("gaussian", "binomial", "ordinal")
               and command in ("mixed", "melogit", "meprobit", "meologit", "meoprobit"))
    return Layout(spec_id=spec.id, command=command, depvar=depvar, fixed_terms=fixed.terms,
                  noconstant=fixed.noconstant, options=opts, equations=equations,
                  fixed_styles=fixed.styles, group_names=names, correlated=correlated,
                  family=model.family, link=link, method=model.method,
                  method_label=stata_estimator(command, opts, equations, setup).label(),
                  model=model_fingerprint(model),
                  generated_ids=generated, structure_note=note, icc=icc, setup=setup,
                  panel=panel, generated=fixed.generated,
                  transforms=attribute_lines + fixed.lines, weight=weight,
                  fixed_options=fixed_options)


# ---- do-file text ------------------------------------------------------------------------------

DATA_MACRO = "$MLMH_DATA/"
"""Suite do-files load their datasets from this global, set once at the top of the file."""


def _quote(text: str, compound: bool = True) -> str:
    """A Stata string literal of ``text`` (StataRenderError when Stata cannot take it)."""
    try:
        return stata_string(text, compound)
    except StataTextError as e:
        raise StataRenderError(str(e)) from None


def stata_path(data_ref: str) -> str:
    """The data file as a Stata string; ``$MLMH_DATA/`` (written by the harness) expands."""
    prefix = DATA_MACRO if data_ref.startswith(DATA_MACRO) else ""
    return f'"{prefix}' + _quote(data_ref[len(prefix):], compound=False)[1:]


def _json(value: Any) -> str:
    """JSON for a do-file string: the macro characters ` and $ as JSON escapes."""
    return json.dumps(value, separators=(",", ":")).replace("`", "\\u0060").replace(
        "$", "\\u0024")


def data_lines(spec: Spec, data_ref: str, layout: Layout) -> list[str]:
    """Loading the data, replication, derived variables and the subset, as Stata commands."""
    lines = []
    path = stata_path(data_ref)
    if data_ref.lower().endswith(".csv"):
        lines.append(f"import delimited using {path}, clear case(preserve)")
    elif data_ref.lower().endswith((".sav", ".zsav")):
        lines.append(f"import spss using {path}, clear  // Stata 16+")
    else:
        lines.append(f"use {path}, clear")
    if spec.replicate:
        rep = spec.replicate
        lines += ["* stacked copies of the data (spec 'replicate')",
                  "generate long mlmh_row = _n",
                  f"expand {rep.times}",
                  "bysort mlmh_row: generate double rep1 = _n",
                  "sort rep1 mlmh_row",
                  "drop mlmh_row"]
        if rep.new_id:
            lines.append(f"generate double {rep.new_id} = {rep.cluster} * 100000 + rep1")
    derived = stata_code(spec.derive)
    if derived:
        lines.append("* derived variables (spec 'derive')")
        lines += derived
    if spec.subset:
        lines.append(stata_comment(f"subset (spec 'subset': {spec.subset}); missing counts as "
                                   "false"))
        keep = stata_code([Derived(name="mlmh_keep", expr=spec.subset)])
        lines += keep + ["keep if mlmh_keep != 0 & !missing(mlmh_keep)", "drop mlmh_keep"]
    for idvar, factors in layout.generated_ids:
        lines.append(f"egen long {idvar} = group({' '.join(factors)})  "
                     + inline_comment(f"one id per {':'.join(factors)} combination"))
    if layout.transforms:
        lines.append("* fixed-effect variables the formula computes (R's names in the results)")
        lines += layout.transforms
    lines += layout.setup
    return lines


def estimation_lines(layout: Layout) -> list[str]:
    lines = []
    if layout.structure_note:
        lines.append(stata_comment(f"random-part structure: {layout.structure_note}"))
    lines.append(layout.command_line())
    return lines


def postestimation_lines(layout: Layout) -> list[str]:
    lines = []
    if layout.equations and not layout.panel:
        lines.append("* empirical Bayes predictions with SEs: one variable per random effect, "
                     "higher levels first, slopes before the intercept")
        lines.append(f"predict {RE_STUB}*, reffects reses({SE_STUB}*)")
    if layout.icc:
        lines.append("estat icc")
    return lines


def _w(*parts: str) -> str:
    return f"file write {HANDLE} " + " ".join(parts) + " _n"


def export_lines(layout: Layout, spec_id: str, data_sha256: str | None) -> list[str]:
    """Write this model's results to the open results file: named fields, full precision."""
    L: list[str] = []
    w = L.append
    w(_w('"model"', "_tab", _quote(spec_id)))
    w(_w('"layout"', "_tab", _quote(_json(layout.to_dict()))))
    w(_w('"meta"', "_tab", '"data_sha256"', "_tab", _quote(data_sha256 or "")))
    w(_w('"meta"', "_tab", '"stata_version"', "_tab", '"`c(stata_version)\'"'))
    w('local mlmh_flavour = cond(c(MP), "MP", cond(c(SE), "SE", "BE/IC"))')
    w(_w('"meta"', "_tab", '"flavour"', "_tab", '"`mlmh_flavour\'"'))
    w(_w('"meta"', "_tab", '"date"', "_tab", '"`c(current_date)\' `c(current_time)\'"'))
    w(_w('"meta"', "_tab", '"datasignature"', "_tab", '"`mlmh_sig\'"'))
    w(_w('"rc"', "_tab", '"`mlmh_rc\'"'))
    w("if `mlmh_rc' == 0 {")
    for m in ("cmd", "cmdline", "depvar", "ivars", "vce", "method", "intmethod"):
        w("    " + _w('"macro"', "_tab", f'"{m}"', "_tab", f"`\"`e({m})'\"'"))
    for s in ("N", "ll", "converged", "rmse", "rank", "k", "N_clust", "ic", "n_quad", "df_r",
              "sigma_u", "sigma_e"):
        w("    " + _w('"scalar"', "_tab", f'"{s}"', "_tab", f"%21.0g (e({s}))"))
    w("    matrix mlmh_b = e(b)")
    w("    matrix mlmh_V = e(V)")
    w("    local mlmh_names : colfullnames mlmh_b")
    w("    local mlmh_k = colsof(mlmh_b)")
    w("    forvalues i = 1/`mlmh_k' {")
    w("        local mlmh_ni : word `i' of `mlmh_names'")
    w("        " + _w('"b"', "_tab", '"`mlmh_ni\'"', "_tab", "%21.0g (mlmh_b[1,`i'])"))
    w("        forvalues j = 1/`i' {")
    w("            local mlmh_nj : word `j' of `mlmh_names'")
    w("            " + _w('"V"', "_tab", '"`mlmh_ni\'"', "_tab", '"`mlmh_nj\'"', "_tab",
                        "%21.0g (mlmh_V[`i',`j'])"))
    w("        }")
    w("    }")
    if layout.equations and not layout.panel:
        w("    capture noisily " + postestimation_lines(layout)[1])
        w("    local mlmh_prc = _rc")
        w("    " + _w('"macro"', "_tab", '"predict_rc"', "_tab", '"`mlmh_prc\'"'))
        w("    if `mlmh_prc' == 0 {")
        counted: set[str] = set()
        var_index = 0
        for eq in layout.equations:
            w("        preserve")
            w("        quietly keep if e(sample)")
            w(f"        quietly bysort {' '.join(eq.path)}: keep if _n == 1")
            w("        local mlmh_n = _N")
            if eq.group not in counted:
                counted.add(eq.group)
                w("        " + _w('"ngroups"', "_tab", _quote(eq.group), "_tab",
                                  "%12.0f (`mlmh_n')"))
            w("        forvalues i = 1/`mlmh_n' {")
            label = ' ":" '.join(f"({v}[`i'])" if v in eq.text_vars else
                                 f"%21.0g ({v}[`i'])" for v in eq.label_vars)
            for canon in eq.effects:
                var_index += 1
                w("            " + _w('"re"', "_tab", _quote(eq.group), "_tab", _quote(canon),
                                      "_tab", label, "_tab",
                                      f"%21.0g ({RE_STUB}{var_index}[`i'])", "_tab",
                                      f"%21.0g ({SE_STUB}{var_index}[`i'])"))
            w("        }")
            w("        restore")
        w(f"        drop {RE_STUB}* {SE_STUB}*")
        w("    }")
    if layout.icc:
        w("    capture noisily estat icc")
        w("    if _rc == 0 {")
        for k in range(2, len({e.level for e in layout.equations}) + 2):
            w("        " + _w('"scalar"', "_tab", f'"icc{k}"', "_tab", f"%21.0g (r(icc{k}))"))
        w("    }")
    w("}")
    w(_w('"end"', "_tab", _quote(spec_id)))
    return L


def _header(title: str) -> list[str]:
    return [stata_comment(title),
            "* Written by mlm-harness (backends/stata). Runs in Stata 15 or newer: the line",
            "* version 15 below pins the e(b) names the harness reads (me* variance stripes "
            "/:var(_cons[g])).",
            f"version {STATA_MIN_VERSION}",
            "set more off"]


def _open(results_path: str) -> list[str]:
    return [stata_comment(f"mlmh-results: {results_path}"),
            f"capture file close {HANDLE}",
            f"file open {HANDLE} using {_quote(results_path, False)}, write text replace",
            _w(f'"{RESULTS_FORMAT}"', "_tab", f'"{RESULTS_VERSION}"')]


def _model_block(spec: Spec, layout: Layout, data_ref: str, data_sha256: str | None
                 ) -> list[str]:
    L = [stata_comment(f"==== {spec.id}: {spec.title} ===="), *data_lines(spec, data_ref, layout),
         "quietly datasignature", 'local mlmh_sig "`r(datasignature)\'"']
    if layout.structure_note:
        L.append(stata_comment(f"random-part structure: {layout.structure_note}"))
    L += [f"capture noisily {layout.command_line()}", "local mlmh_rc = _rc"]
    L += export_lines(layout, spec.id, data_sha256)
    return L


def model_do(spec: Spec, layout: Layout, data_ref: str, results_path: str,
             data_sha256: str | None = None) -> str:
    """One model's do-file: fit it and write its results to ``results_path``."""
    lines = _header(f"mlm-harness: {spec.id}") + _open(results_path)
    lines += _model_block(spec, layout, data_ref, data_sha256)
    lines += [f"file close {HANDLE}", ""]
    return "\n".join(lines)


def show_do(spec: Spec, layout: Layout, data_ref: str) -> str:
    """The readable form for ``mlm-harness show``: the analysis without the export plumbing."""
    lines = [stata_comment(f"{spec.id}: {spec.title}"), f"version {STATA_MIN_VERSION}",
             *data_lines(spec, data_ref, layout), *estimation_lines(layout),
             *postestimation_lines(layout)]
    return "\n".join(lines)


def suite_do(items: Sequence[tuple[Spec, Layout, str, str | None]], results_path: str,
             data_dir_hint: str = "") -> str:
    """One do-file for many models, all written into ONE results file.

    ``items`` are (spec, layout, data reference, data SHA-256). Data references may use the
    global ``$MLMH_DATA`` (set at the top), so the file runs unchanged on another machine after
    editing one line.
    """
    lines = _header(f"mlm-harness suite export: {len(items)} model(s)")
    lines += ["* Where the datasets are: edit this line on the machine that runs Stata.",
              f"global MLMH_DATA {_quote(data_dir_hint, False)}"] + _open(results_path)
    for spec, layout, ref, sha in items:
        lines += [""] + _model_block(spec, layout, ref, sha)
    lines += ["", f"file close {HANDLE}",
              "display as text "
              + _quote(f"mlm-harness: results written to {results_path}", False), ""]
    return "\n".join(lines)


def data_reference(spec: Spec, data_path: Path | None) -> str:
    """The file a do-file loads: the real path when known, else the registry's file name."""
    if data_path is not None:
        return str(data_path)
    try:
        from harness.datasets import load_registry
        entry = load_registry().get(spec.dataset)
        if entry is not None:
            return entry.file
    except Exception:  # the registry is optional for rendering
        pass
    return spec.dataset
