"""Translate a spec's model into the exact R call the lme4 backend runs (and prints in its script).

One :class:`RPlan` per fit holds everything R needs: which columns to send, the R statements that
declare factors, the call text, and what kind of object comes back. The same plan renders the
live call in the worker and the self-contained R script (:mod:`backends.lme4.rscript`), so the two
can never drift apart: the script *is* the call the worker evaluated.

No user text is pasted into the call. The formula is written from the harness's syntax tree
(:mod:`harness.formula`: column names as R symbols, backquoted and escaped when they are not
syntactic); option values come from closed sets (:mod:`harness.options`); everything else that
came from a spec (a reference level, a file path) is an R literal made by
:func:`harness.rsyntax.r_literal`. Choices that R would otherwise make silently are written out:

* ``REML = TRUE/FALSE`` on every ``lmer`` call, ``nAGQ`` on every ``glmer``/``clmm`` call;
* factors get explicit levels, sorted (numerically for numbers, by code point for text: the C
  locale's order, whatever the user's locale) with the spec's reference level first, or in the
  stored order of a categorical column (a factor read from .rds or parquet); every other column
  stays numeric, so a 0/1 dummy is never turned into a factor. Text columns the model uses as
  categories (a bare predictor, a binomial or ordinal outcome) are declared too, so R never
  sorts them in its own locale;
* contrasts other than treatment are the ``contrasts =`` argument (``contr.sum``,
  ``contr.helmert``, ``MASS::contr.sdif``), named by the model-frame variable (``x``,
  ``factor(x)``);
* the model attributes (harness/attributes.py): ``weights =`` the weights column; the offset as
  ``offset(...)`` terms of the formula (``model.offset`` too: clm and clmm take offsets only in
  the formula, and R adds the ``offset =`` argument and offset terms alike); binomial trials as
  ``cbind(successes, failures)`` (``successes/trials`` is written so: R reads ``y/n`` as
  proportions that need ``weights = n``);
* ``C(x)`` (patsy/formulaic) is read as ``factor(x)``;
* lme4's default optimizer is recorded when the spec gives none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from harness.estimator import Estimator
from harness.formula import ModelFormula
from harness.formula.syntax import Column, FactorCall
from harness.options import Lme4Options, RFunction, r_function
from harness.rsyntax import r_literal, r_name, r_string
from harness.spec import Model, Spec

Kind = RFunction | Literal["glmmTMB"]  # glmmTMB: backends/glmmtmb/translate.py

DATA_SYMBOL = "d"
"""The R symbol the data frame is bound to, in the worker and in the script alike."""

AGHQ_REASON = ("lme4 allows adaptive quadrature (nAGQ > 1) only for a single scalar random "
               "effect; use integration laplace for lme4")
MULTINOMIAL_REASON = "lme4 has no multinomial family"

# What lme4 1.1-31 / ordinal 2022.11.16 use when no control is given (recorded in the result).
DEFAULT_CONTROL = {
    "lmer": "lmerControl() default: optimizer nloptwrap (NLopt BOBYQA)",
    "glmer": "glmerControl() default: optimizer c('bobyqa', 'Nelder_Mead') (bobyqa for the "
             "nAGQ = 0 stage, Nelder_Mead for the final stage)",
    "clmm": "clmm.control() default: method nlminb",
    "clm": "clm.control() default: method Newton",
    "lm": "lm: QR least squares",
    "glm": "glm: IRLS",
}
_MAXITER_ARG = {"nloptwrap": "maxeval", "bobyqa": "maxfun", "Nelder_Mead": "maxfun",
                "nlminbwrap": "iter.max", "nmkbw": "maxfeval"}


class TranslationError(ValueError):
    """The spec cannot be written as an R call; the message says what to change."""


@dataclass(frozen=True)
class RPlan:
    kind: Kind
    call: str  # the R call, evaluated with the data bound to DATA_SYMBOL
    columns: tuple[str, ...]  # data columns the model uses (sent to R, in this order)
    factor_lines: tuple[str, ...]  # R statements that turn declared columns into factors
    packages: tuple[str, ...]  # R packages the script attaches
    estimator: Estimator
    gaussian: bool
    cluster: str | None = None  # cluster-robust SEs by this column (single-level only)
    ols: bool = False  # OLS (lm): Stata's CR1 uses the (N-1)/(N-K) factor too
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def method_label(self) -> str:
        return self.estimator.label()


def unsupported_reason(model: Model) -> str | None:
    """Why lme4 cannot fit ``model`` as specified, or None when it can."""
    if model.family == "multinomial":
        return MULTINOMIAL_REASON
    f = model.parsed
    if model.integration is not None and model.integration.method == "aghq" and f.has_random:
        single_scalar = len(f.random) == 1 and len(f.random[0].names) == 1
        if not single_scalar:
            return AGHQ_REASON
    return None


@dataclass(frozen=True)
class FactorLevels:
    """How R must see a column as a factor: its reference level (None: the first) and, for a
    categorical column of the data, its stored level order (None: sorted)."""

    reference: Any = None
    levels: tuple[Any, ...] | None = None


def _categorical_uses(model: Model) -> set[str]:
    """Columns the model reads as categories when their data are text: bare fixed-part
    predictors, ``factor()`` columns and a binomial (not a count) or ordinal outcome."""
    f = model.parsed
    out = {v.name for v in f.terms.variables if isinstance(v, Column)} | f.factor_variables()
    if model.family in ("binomial", "ordinal") and f.binomial is None:
        out.add(f.response)
    return out


def factor_columns(spec: Spec, model: Model, frame: pd.DataFrame | None = None
                   ) -> dict[str, FactorLevels]:
    """Model columns that R must see as factors -> their levels.

    Declared factors and reference-level columns always; with the data, also text and
    categorical columns the model reads as categories (:func:`_categorical_uses`), so their
    levels are the harness's (stored order for categorical data) and not R's locale's.
    """
    used = model.columns()
    names: set[str] = {n for n in spec.factor_columns() if n in used}
    names |= {n for n in model.reference_level if n in used}
    if frame is not None:
        for n in _categorical_uses(model):
            if n in frame.columns and _text_or_categorical(frame[n]):
                names.add(n)
    out = {}
    for n in sorted(names):
        levels = None
        if frame is not None and n in frame.columns and \
                isinstance(frame[n].dtype, pd.CategoricalDtype):
            present = set(frame[n].dropna().unique())
            levels = tuple(str(c) for c in frame[n].cat.categories if c in present)
        out[n] = FactorLevels(model.reference_level.get(n), levels)
    return out


def _text_or_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def factor_line(name: str, factor: FactorLevels, frame: str = DATA_SYMBOL) -> str:
    """``x`` as a factor with levels sorted (numerically for numbers) or in the stored order of
    a categorical column, the reference first.

    ``method = "radix"`` sorts strings in the C locale, as Python does, so the level order does
    not depend on the user's locale.
    """
    col = f"{frame}${r_name(name)}"
    if factor.levels is not None:
        levels = f"c({', '.join(r_literal(v) for v in factor.levels)})"
    else:
        levels = f'sort(unique({col}), method = "radix")'
    if factor.reference is not None:
        ref = r_literal(factor.reference)
        levels = f"c({ref}, setdiff({levels}, {ref}))"
    return f"{col} <- factor({col}, levels = {levels})"


#: R's contrast functions for the spec's contrasts (harness.spec.Contrasts)
R_CONTRASTS = {"sum": '"contr.sum"', "helmert": '"contr.helmert"', "sdif": "MASS::contr.sdif"}


def contrasts_argument(spec: Spec, model: Model) -> str | None:
    """``contrasts = list(x = "contr.sum", ...)`` for the fixed-part variables of columns with
    other than treatment contrasts (None when there is none). Entries are named by the
    model-frame variable (``x``, or ``factor(x)`` when the formula writes that): R ignores a
    contrast whose name is not a variable, with only a warning."""
    wanted = spec.contrasts()
    entries = []
    for v in model.parsed.terms.variables:
        col = v.name if isinstance(v, Column) else v.column if isinstance(v, FactorCall) \
            else None
        if col in wanted:
            entries.append(f"{r_name(v.to_r())} = {R_CONTRASTS[wanted[col]]}")
    return f"contrasts = list({', '.join(entries)})" if entries else None


def _control(kind: Kind, model: Model, options: Lme4Options) -> tuple[str | None, list[str]]:
    """The ``control =`` argument from the typed options (the spec loader checked that each
    applies to ``kind``); ``backends.lme4.options`` win over the model-level settings."""
    notes: list[str] = []
    optimizer = options.optimizer or model.optimizer
    max_iter = options.max_iterations or model.max_iterations
    if kind == "lm":
        if model.max_iterations:
            notes.append("model.max_iterations does not apply to lm (least squares has no "
                         "iterations)")
        notes.append(DEFAULT_CONTROL[kind])
        return None, notes
    if not (optimizer or max_iter or options.calc_derivs is not None):
        notes.append(DEFAULT_CONTROL[kind])
        return None, notes
    args: list[str] = []
    if kind in ("lmer", "glmer"):
        fn = "lmerControl" if kind == "lmer" else "glmerControl"
        if optimizer:
            args.append(f"optimizer = {r_string(optimizer)}")
        if max_iter:
            opt = optimizer or ("nloptwrap" if kind == "lmer" else None)
            # glmer's default runs two stages with different optimizers; maxfun is the one
            # control both take
            arg = _MAXITER_ARG.get(opt, "maxfun") if opt else "maxfun"
            args.append(f"optCtrl = list({arg} = {int(max_iter)})")
        if options.calc_derivs is not None:
            args.append(f"calc.derivs = {r_literal(options.calc_derivs)}")
    elif kind in ("clmm", "clm"):
        fn = f"ordinal::{kind}.control"
        if optimizer:
            args.append(f"method = {r_string(optimizer)}")
        if max_iter:
            args.append(f"maxIter = {int(max_iter)}")
    else:  # glm
        fn = "glm.control"
        if max_iter:
            args.append(f"maxit = {int(max_iter)}")
    return f"{fn}({', '.join(args)})", notes


def _integrated(nagq: int) -> Estimator:
    """glmer's and clmm's nAGQ: 1 is Laplace, n > 1 adaptive quadrature at the conditional mode."""
    return Estimator("ML", "laplace", 1) if nagq == 1 else Estimator("ML", "aghq", nagq)


def plan(spec: Spec, model: Model, frame: pd.DataFrame | None = None) -> RPlan:
    """The R call for ``model`` (already with the spec's lme4 overrides applied); ``frame``,
    the prepared data when fitting, says which columns are text or categorical."""
    reason = unsupported_reason(model)
    if reason:
        raise TranslationError(reason)
    f: ModelFormula = model.parsed
    settings = spec.backends.lme4
    options = settings.options if settings is not None else Lme4Options()
    notes: list[str] = []
    rhs = f.rhs_to_r()
    if model.offset:
        rhs += f" + offset({r_name(model.offset)})"
    response = f.binomial.cbind_r() if f.binomial else r_name(f.response)
    link = r_string(model.resolved_link)
    family = model.family  # a closed set of R function names (harness.spec.Family)
    data = f"data = {DATA_SYMBOL}"
    nagq = model.integration.points if model.integration else 1
    cluster = model.cluster_se
    kind = r_function(family, f.has_random, model.method)

    if kind in ("clmm", "clm"):
        args = [f"factor({response}, ordered = TRUE) ~ {rhs}", data, f"link = {link}"]
        if kind == "clmm":
            args.append(f"nAGQ = {nagq}")
        estimator = _integrated(nagq) if kind == "clmm" else Estimator("ML")
        packages: tuple[str, ...] = ("ordinal",)
    elif kind == "lmer":
        args = [f"{response} ~ {rhs}", data,
                f"REML = {'TRUE' if model.method == 'REML' else 'FALSE'}"]
        estimator = Estimator(model.method)
        packages = ("lme4",)
    elif kind == "glmer":
        args = [f"{response} ~ {rhs}", data, f"family = {family}(link = {link})",
                f"nAGQ = {nagq}"]
        estimator = _integrated(nagq)
        packages = ("lme4",)
    elif kind == "lm":
        args = [f"{response} ~ {rhs}", data]
        estimator = Estimator("OLS")
        packages = ()
    else:
        args = [f"{response} ~ {rhs}", data, f"family = {family}(link = {link})"]
        estimator = Estimator("ML")
        packages = ()
        if family == "gaussian":
            notes.append("gaussian ML fitted with glm: sigma and logLik are the ML ones "
                         "(sigma = sqrt(RSS/n)); the standard errors use glm's dispersion "
                         "RSS/(n - p), larger than ML standard errors by sqrt(n/(n - p))")
    if cluster:
        if kind not in ("lm", "glm"):
            raise TranslationError("cluster_se is supported for single-level lm/glm fits only")
        # rows without a cluster id cannot be clustered; Stata drops them too
        args.append(f"subset = !is.na({r_name(cluster)})")
        estimator = replace(estimator, se="CR1", cluster=cluster)
        notes.append(f"cluster-robust (CR1) standard errors by {cluster}: "
                     + ("G/(G-1) * (N-1)/(N-K), as Stata's regress, vce(cluster)" if kind == "lm"
                        else "G/(G-1), as Stata's ML commands with vce(cluster)"))
    if model.weights:
        args.append(f"weights = {r_name(model.weights)}")
    contrasts = contrasts_argument(spec, model)
    if contrasts:
        args.append(contrasts)
    control, control_notes = _control(kind, model, options)
    notes.extend(control_notes)
    if control is not None:
        args.append(f"control = {control}")
    fn = {"lmer": "lmer", "glmer": "glmer", "clmm": "ordinal::clmm", "clm": "ordinal::clm",
          "lm": "lm", "glm": "glm"}[kind]
    call = f"{fn}({', '.join(args)})"
    columns = sorted(model.columns() | ({cluster} if cluster else set()))
    factors = factor_columns(spec, model, frame)
    return RPlan(kind=kind, call=call, columns=tuple(columns),
                 factor_lines=tuple(factor_line(n, r) for n, r in sorted(factors.items())),
                 packages=packages, estimator=estimator, gaussian=family == "gaussian",
                 cluster=cluster, ols=kind == "lm", notes=tuple(notes))
