"""SPSS syntax from a spec: the data, the derived variables and the MIXED / GENLINMIXED call.

Nothing is left to an SPSS default (models.md §1.4, D16): MIXED always gets ``/METHOD=ML`` or
``REML`` and every ``/RANDOM`` its ``COVTYPE``; GENLINMIXED gets its distribution, link,
reference category, category order and iteration cap.

* LMMs (gaussian with random terms) -> ``MIXED``: one ``/RANDOM`` per lme4 term; a term with
  more than one effect is one covariance block, ``COVTYPE(UN)`` (lme4's unstructured), a term
  with one effect ``COVTYPE(VC)``; lme4's ``(1 | g) + (0 + x | g)`` (independent) is two
  ``/RANDOM`` statements on the same subject, as the course writes it. ``a:b`` is
  ``SUBJECT(a*b)``.
* GLMMs (binomial, Poisson, ordinal) -> ``GENLINMIXED``: every subject is declared nominal
  (GENLINMIXED needs a categorical subject, D16), the binary target nominal with reference 0 so
  the model is for P(y = 1) as in lme4, the Poisson target scale (D16: a Poisson target must be
  continuous), the ordinal target ordinal (cumulative link, ascending order). GENLINMIXED fits
  non-normal targets by pseudo-likelihood (PQL-type linearisation): not the spec's ML estimator,
  so its numbers are never ML references; the syntax says so in a comment.

Not written (each an error naming the spec and the reason): single-level models, multinomial
and binomial-with-trials targets, factors (SPSS's reference category is the LAST level, R's the
first: the coefficients would be different contrasts), ``scale()`` and ``poly()`` terms
(``I()``, ``log()``, ``exp()``, ``sqrt()`` become COMPUTEd ``mlmh_x<i>`` variables), weights,
offsets, cluster-robust SEs, replicated data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from harness.formula import ModelFormula, RandomTerm
from harness.formula.syntax import (Arith, BinOp, Column, Fn, ICall, MathCall, Neg, Num, Paren,
                                    Ref, Variable)
from harness.spec import Spec
from harness.spsssyntax import SpssTextError, spss_comment, spss_name, spss_number, spss_string

from .derive import derive_syntax, subset_syntax
from .errors import SpssRenderError

GLMM_FAMILIES = {"binomial": "BINOMIAL", "poisson": "POISSON", "ordinal": "MULTINOMIAL"}
GLMM_LINKS = {"logit": "LOGIT", "probit": "PROBIT", "log": "LOG", "identity": "IDENTITY"}
TARGET_LEVEL = {"binomial": "NOMINAL", "poisson": "SCALE", "ordinal": "ORDINAL"}
DEFAULT_GLMM_ITERATIONS = 100  # the course's cap for the random-intercept models (D16)
PSEUDO_LIKELIHOOD_NOTE = (
    "GENLINMIXED fits this non-normal target by pseudo-likelihood (linearisation), not by the "
    "spec's ML/Laplace/quadrature: its estimates are a different estimator and never ML "
    "references, and it prints no comparable log-likelihood (models.md D16)")
CATEGORICAL_SUBJECT_NOTE = ("GENLINMIXED needs categorical subjects: the VARIABLE LEVEL line "
                            "declares them nominal (the course recodes school to school2 for "
                            "this, D16)")


@dataclass(frozen=True)
class SpssFile:
    """Where SPSS reads a dataset: the command for its file type and its path there."""

    path: str

    def command(self) -> list[str]:
        suffix = PurePath(self.path).suffix.lower()
        lit = _text(self.path, "data path")
        if suffix == ".sav":
            return [f"GET FILE={lit}."]
        if suffix == ".dta":
            return [f"GET STATA FILE={lit}."]
        raise SpssRenderError(f"data file {self.path!r}: only .sav, .dta and .csv files are "
                              "written for SPSS (csv through csv_command)")


def csv_command(path: str, columns: dict[str, bool]) -> list[str]:
    """``GET DATA`` for a comma-separated file with a header row; ``columns`` maps each column
    (in file order) to True when it holds text. Numbers are read as F40 (delimited input keeps
    the decimals written in the file), text as A255."""
    if not columns:
        raise SpssRenderError(f"data file {path!r} has no columns")
    specs = [f"    {_name(c, 'data column')} {'A255' if text else 'F40'}"
             for c, text in columns.items()]
    return [f"GET DATA /TYPE=TXT /FILE={_text(path, 'data path')} /ENCODING='UTF8'",
             "  /ARRANGEMENT=DELIMITED /DELCASE=LINE /FIRSTCASE=2 /DELIMITERS=\",\" "
             "/QUALIFIER='\"'",
             "  /VARIABLES="] + specs[:-1] + [specs[-1] + "."]


def _name(name: str, what: str) -> str:
    try:
        return spss_name(name, what)
    except SpssTextError as e:
        raise SpssRenderError(str(e)) from None


def _text(text: str, what: str) -> str:
    try:
        return spss_string(text)
    except SpssTextError as e:
        raise SpssRenderError(f"{what}: {e}") from None


def unsupported_reason(spec: Spec) -> str | None:
    """Why SPSS syntax cannot be written for ``spec`` (None when it can)."""
    m = spec.model
    f = m.parsed
    if not f.has_random:
        return "single-level model (this exporter writes MIXED and GENLINMIXED for multilevel "\
               "models only)"
    if m.family == "gaussian" and m.resolved_link != "identity":
        return f"gaussian family with link {m.resolved_link!r} (MIXED is identity-only)"
    if m.family not in ("gaussian", *GLMM_FAMILIES):
        return f"family {m.family!r} (multinomial GENLINMIXED is not written by this exporter)"
    if m.family != "gaussian" and m.resolved_link not in GLMM_LINKS:
        return f"link {m.resolved_link!r}"
    if f.binomial is not None:
        return "a binomial count out of trials (cbind / proportion) response"
    for attr in ("weights", "offset", "cluster_se"):
        if getattr(m, attr):
            return f"model.{attr} ({getattr(m, attr)!r}) is not written for SPSS"
    if f.offsets:
        return "an offset() term in the formula"
    if spec.replicate is not None:
        return "replicated data (replicate:)"
    if spec.contrasts():
        return "contrasts other than treatment"
    for var in f.terms.variables:
        if not isinstance(var, (Column, ICall, MathCall)):
            return (f"fixed term {var.to_r()!r}: factors, scale() and poly() are not written "
                    "(SPSS's factor reference category is the last level, R's the first); "
                    "add numeric or indicator columns under 'derive'")
        if isinstance(var, Column) and spec.column_type(var.name) == "factor":
            return (f"column {var.name!r} is declared a factor (SPSS's reference category is "
                    "the last level, R's the first); add indicator columns under 'derive'")
    for t in f.random:
        for slope in t.slopes:
            if spec.column_type(slope) == "factor":
                return (f"random slope {slope!r} is declared a factor (SPSS would code it "
                        "with its last level as reference); add indicator columns")
    return None


GENERATED_PREFIX = "mlmh_x"  # I(), log(), exp(), sqrt() terms: COMPUTEd variables, as Stata's


def arithmetic(node: Arith) -> str:
    """An SPSS expression for a formula's arithmetic node, every operation in parentheses."""
    if isinstance(node, Num):
        return spss_number(node.value)
    if isinstance(node, Ref):
        return _name(node.name, "column")
    if isinstance(node, Neg):
        return f"(-{arithmetic(node.arg)})"
    if isinstance(node, Paren):
        return arithmetic(node.inner)
    if isinstance(node, Fn):
        return f"{'LN' if node.fn == 'log' else node.fn.upper()}({arithmetic(node.arg)})"
    if isinstance(node, BinOp):
        op = "**" if node.op == "^" else node.op
        return f"({arithmetic(node.left)} {op} {arithmetic(node.right)})"
    raise TypeError(f"not an arithmetic node: {node!r}")  # pragma: no cover


def _variable(var: Variable, i: int) -> str:
    """The SPSS variable for the i-th formula variable (a column, or a generated one)."""
    return _name(var.name, "column") if isinstance(var, Column) else f"{GENERATED_PREFIX}{i + 1}"


def generated_syntax(f: ModelFormula) -> list[str]:
    """COMPUTE lines for the formula's transformed terms (``I(x^2)``, ``log(x)``)."""
    lines = []
    for i, var in enumerate(f.terms.variables):
        if isinstance(var, (ICall, MathCall)):
            arg = var.arg if isinstance(var, ICall) else Fn(var.fn, var.arg)
            lines.append(spss_comment(f"{GENERATED_PREFIX}{i + 1} is {var.to_r()}"))
            lines.append(f"COMPUTE {GENERATED_PREFIX}{i + 1} = {arithmetic(arg)}.")
    return lines


def _fixed_effects(f: ModelFormula) -> list[str]:
    """Fixed terms in R's order, interactions as ``a*b`` (numeric variables only)."""
    names = [_variable(v, i) for i, v in enumerate(f.terms.variables)]
    return ["*".join(names[i] for i in term) for term in f.terms.terms]


def _covariates(f: ModelFormula) -> list[str]:
    seen: dict[str, None] = {}
    for i, v in enumerate(f.terms.variables):
        seen[_variable(v, i)] = None
    for t in f.random:
        for s in t.slopes:
            seen[_name(s, "random slope")] = None
    return list(seen)


def _subject(t: RandomTerm) -> str:
    return "*".join(_name(g, "grouping factor") for g in t.group_factors)


def _wrap(head: str, items: list[str], tail: str = "", width: int = 100) -> list[str]:
    """``head``, then ``items`` on lines of about ``width`` characters (SPSS limits a syntax
    line to 256 bytes; continuation lines are indented, as batch-mode syntax requires), then
    ``tail`` on the last line."""
    lines, line = [], head
    for item in items:
        if line != head and len(line) + len(item) > width:
            lines.append(line.rstrip())
            line = "    "
        line += item + " "
    lines.append(line.rstrip())
    lines[-1] += tail
    return lines


def _random_effects(t: RandomTerm) -> list[str]:
    return [_name(s, "random slope") for s in t.slopes]


def mixed_syntax(spec: Spec) -> list[str]:
    m, f = spec.model, spec.model.parsed
    depvar = _name(f.response, "response")
    covariates = _covariates(f)
    lines = _wrap(f"MIXED {depvar}" + (" WITH " if covariates else ""), covariates)
    fixed = _fixed_effects(f)
    suffix = "" if f.terms.intercept else " NOINT"
    lines += _wrap("  /FIXED=", fixed, f" |{suffix} SSTYPE(3)")
    lines.append("  /METHOD=" + ("REML" if m.method == "REML" else "ML"))
    iterations = m.max_iterations or 100
    lines.append(f"  /CRITERIA=CIN(95) MXITER({iterations}) MXSTEP(10) SCORING(1) "
                 "SINGULAR(0.000000000001) HCONVERGE(0, ABSOLUTE) LCONVERGE(0, ABSOLUTE) "
                 "PCONVERGE(0.000001, ABSOLUTE)")
    lines.append("  /PRINT=SOLUTION TESTCOV")
    for t in f.random:
        effects = (["INTERCEPT"] if t.intercept else []) + _random_effects(t)
        cov = "UN" if len(effects) > 1 else "VC"
        lines += _wrap("  /RANDOM=", effects, f" | SUBJECT({_subject(t)}) COVTYPE({cov})")
    lines[-1] += "."
    return lines


def genlinmixed_syntax(spec: Spec) -> list[str]:
    m, f = spec.model, spec.model.parsed
    target = _name(f.response, "response")
    subjects = list(dict.fromkeys(g for t in f.random for g in t.group_factors))
    lines = [spss_comment(PSEUDO_LIKELIHOOD_NOTE), spss_comment(CATEGORICAL_SUBJECT_NOTE)]
    lines += _wrap("VARIABLE LEVEL ", [_name(g, "grouping factor") for g in subjects],
                   " (NOMINAL).")
    lines.append(f"VARIABLE LEVEL {target} ({TARGET_LEVEL[m.family]}).")
    lines.append("GENLINMIXED")
    # every subject field once: each /RANDOM subject is one of them or a nesting of them
    lines.append(f"  /DATA_STRUCTURE SUBJECTS={'*'.join(_name(g, 'grouping factor') for g in subjects)}")
    lines.append(f"  /FIELDS TARGET={target} TRIALS=NONE OFFSET=NONE")
    options = (f"  /TARGET_OPTIONS DISTRIBUTION={GLMM_FAMILIES[m.family]} "
               f"LINK={GLMM_LINKS[m.resolved_link]}")
    if m.family == "binomial":
        options += " REFERENCE=0"
    lines.append(options)
    fixed = _fixed_effects(f)
    lines += _wrap("  /FIXED EFFECTS=" if fixed else "  /FIXED", fixed,
                   f" USE_INTERCEPT={'TRUE' if f.terms.intercept else 'FALSE'}")
    for t in f.random:
        effects = _random_effects(t)
        cov = "UNSTRUCTURED" if len(t.names) > 1 else "VARIANCE_COMPONENTS"
        head = "  /RANDOM" + (" EFFECTS=" + " ".join(effects) if effects else "")
        lines.append(f"{head} USE_INTERCEPT={'TRUE' if t.intercept else 'FALSE'} "
                     f"SUBJECTS={_subject(t)} COVARIANCE_TYPE={cov}")
    iterations = m.max_iterations or DEFAULT_GLMM_ITERATIONS
    lines.append("  /BUILD_OPTIONS TARGET_CATEGORY_ORDER=ASCENDING "
                 f"INPUTS_CATEGORY_ORDER=ASCENDING MAX_ITERATIONS={iterations} "
                 "CONFIDENCE_LEVEL=95 DF_METHOD=RESIDUAL COVB=MODEL")
    lines[-1] += "."
    return lines


def model_syntax(spec: Spec, data_command: list[str]) -> list[str]:
    """One model's SPSS syntax: read the data, derive, subset, estimate. SpssRenderError names
    the spec and the reason when SPSS cannot express the model."""
    reason = unsupported_reason(spec)
    if reason:
        raise SpssRenderError(f"spec {spec.id!r} cannot be written for SPSS: {reason}")
    try:
        body = (derive_syntax(spec.derive) + subset_syntax(spec.subset)
                + generated_syntax(spec.model.parsed)
                + (mixed_syntax(spec) if spec.model.family == "gaussian"
                   else genlinmixed_syntax(spec)))
    except SpssRenderError as e:
        raise SpssRenderError(f"spec {spec.id!r} cannot be written for SPSS: {e}") from None
    return ([spss_comment("=" * 60), spss_comment(f"spec {spec.id}: {spec.title}"),
             spss_comment(f"source: {spec.source}"),
             f"ECHO {_text('mlm-harness spec ' + spec.id, 'spec id')}."]
            + data_command + body + [""])
