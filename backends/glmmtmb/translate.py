"""Translate a spec's model into the exact ``glmmTMB`` call the glmmTMB backend runs.

The call is built as the lme4 backend builds its calls (:mod:`backends.lme4.translate`, whose
module doc states the rules): the formula is written from the harness's syntax tree, factors
and contrasts by the same functions, names escaped by :func:`harness.rsyntax.r_name`, and no
user text is pasted into R. What glmmTMB would choose silently is written out: ``REML = TRUE``
or ``FALSE`` on every call (glmmTMB's default is ML, unlike lmer's REML), the family with its
link, and glmmTMB's default optimizer (``nlminb``) recorded in the result.

glmmTMB integrates the random effects by the Laplace approximation through TMB, at the exact
conditional modes (the inner Newton problem is solved to convergence at every evaluation): its
GLMM optimum is the exact Laplace optimum, like native's default, and not glmer's PIRLS path
(harness/evidence.py). For gaussian models the Laplace approximation is exact, so an LMM is an
ML (or REML) fit. What it cannot fit the way the spec asks is not estimable, with the reason.
"""

from __future__ import annotations

import pandas as pd

from backends.lme4.translate import (DATA_SYMBOL, RPlan, TranslationError, contrasts_argument,
                                     factor_columns, factor_line)
from harness.estimator import Estimator
from harness.rsyntax import r_name, r_string
from harness.spec import Model, Spec

FUNCTION = "glmmTMB::glmmTMB"
DEFAULT_CONTROL = "glmmTMBControl() default: optimizer nlminb (PORT routines)"

AGHQ_REASON = ("glmmTMB integrates random effects only by the Laplace approximation (TMB); the "
               "spec asks adaptive quadrature ({label})")
OPTIMIZER_REASON = ("model.optimizer {name!r} names an lme4 optimizer; glmmTMB runs nlminb and "
                    "the harness does not map lme4's optimizers onto it")
REASONS = {
    "multinomial": "glmmTMB has no multinomial family",
    "ordinal": "glmmTMB has no ordinal (cumulative-link) family; the lme4 backend fits it with "
               "ordinal::clmm",
    "OLS": "glmmTMB fits ML or REML; OLS (lm's sigma on n - p degrees of freedom) is not a "
           "glmmTMB estimator",
    "cluster_se": "glmmTMB has no cluster-robust standard errors",
    "gaussian_weights": "glmmTMB multiplies each row's log-likelihood by its weight; the "
                        "harness's gaussian weights are precision weights (Var(e_i) = "
                        "sigma^2 / w_i, harness/attributes.py), a different model",
    "trials_weights": "glmmTMB reads binomial weights as the trials of a proportion; weights "
                      "on a cbind(successes, failures) response would not be honoured",
}


def unsupported_reason(model: Model) -> str | None:
    """Why glmmTMB cannot fit ``model`` as specified, or None when it can."""
    f = model.parsed
    if model.family in ("multinomial", "ordinal"):
        return REASONS[model.family]
    if model.method == "OLS":
        return REASONS["OLS"]
    if model.integration is not None and model.integration.method == "aghq":
        return AGHQ_REASON.format(label=model.integration.label())
    if model.cluster_se:
        return REASONS["cluster_se"]
    if model.weights and model.family == "gaussian":
        return REASONS["gaussian_weights"]
    if model.weights and f.binomial is not None:
        return REASONS["trials_weights"]
    if model.optimizer:
        return OPTIMIZER_REASON.format(name=model.optimizer)
    return None


def estimator(model: Model) -> Estimator:
    """Laplace for GLMMs; ML or REML for LMMs (Laplace is exact there); ML without random
    effects."""
    if model.family != "gaussian" and model.parsed.has_random:
        return Estimator("ML", "laplace", 1)
    return Estimator(model.method)


def plan(spec: Spec, model: Model, frame: pd.DataFrame | None = None) -> RPlan:
    """The glmmTMB call for ``model``; ``frame`` (the prepared data) says which columns are
    text or categorical, as for the lme4 backend."""
    reason = unsupported_reason(model)
    if reason:
        raise TranslationError(reason)
    f = model.parsed
    rhs = f.rhs_to_r()
    if model.offset:
        rhs += f" + offset({r_name(model.offset)})"
    response = f.binomial.cbind_r() if f.binomial else r_name(f.response)
    family = model.family  # a closed set of R function names (harness.spec.Family)
    args = [f"{response} ~ {rhs}", f"data = {DATA_SYMBOL}",
            f"family = {family}(link = {r_string(model.resolved_link)})",
            # REML is glmmTMB's option for gaussian models only; ML is its default
            f"REML = {'TRUE' if model.method == 'REML' else 'FALSE'}"]
    if model.weights:
        args.append(f"weights = {r_name(model.weights)}")
    contrasts = contrasts_argument(spec, model)
    if contrasts:
        args.append(contrasts)
    notes = [DEFAULT_CONTROL]
    if model.max_iterations:
        n = int(model.max_iterations)
        args.append(f"control = glmmTMB::glmmTMBControl(optCtrl = list(iter.max = {n}, "
                    f"eval.max = {n}))")
        notes = [f"nlminb with iter.max = eval.max = {n} (model.max_iterations)"]
    factors = factor_columns(spec, model, frame)
    return RPlan(kind="glmmTMB", call=f"{FUNCTION}({', '.join(args)})",
                 columns=tuple(sorted(model.columns())),
                 factor_lines=tuple(factor_line(n, r) for n, r in sorted(factors.items())),
                 packages=("glmmTMB",), estimator=estimator(model),
                 gaussian=family == "gaussian", notes=tuple(notes))
