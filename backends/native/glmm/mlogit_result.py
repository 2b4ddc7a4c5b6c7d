"""The harness side of the native multinomial logit: spec -> :mod:`.mlogit` -> FitResult.

What native fits exactly (everything else is "not estimable" with the reason, never a
different model): the baseline-category logit with at most one grouping factor carrying one
random intercept *shared by all non-base logits* (gllamm's ``link(mlogit)`` with a single
random intercept, the course's ``cen_mlogit_ri``), by mode/curvature AGHQ. SPSS GENLINMIXED's
multinomial random effects (``mlogit_ri``/``mlogit_rs``) are fitted by pseudo-likelihood
(D16) with category-specific effects and, for ``rs``, a random slope: not this model.

Keys: one coefficient per non-base category and term, ``fixed/<category>/<term>``
(``fixed/2/agegpt``): the category is the response level as R prints it; ``/`` keeps it apart
from an interaction's ``:``. The random intercept is ``ran_pars/<group>/sd__(Intercept)`` (and
``var__``), with SEs by the delta method from the log-sd scale. The base category is the
spec's ``reference_level`` for the response, else the lowest level (nnet::multinom's choice;
Stata's ``mlogit`` would pick the most frequent, so a spec should state it).
"""

from __future__ import annotations

import math

import numpy as np

from harness.estimator import Estimator
from harness.results import Diagnostics, FitResult, Parameter, Provenance, Statistics
from harness.spec import Model

from ..design import Design, DesignError, build_design
from ..names import level_label
from ..ranef import by_level, rows
from .mlogit import MlogitData, MlogitFit, fit_mlogit_ri, fit_single


def mlogit_unsupported_reason(model: Model) -> str | None:
    """None when native fits ``model`` exactly; otherwise why it cannot."""
    f = model.parsed
    if model.resolved_link != "logit":
        return f"native multinomial models support the logit link only, not {model.resolved_link}"
    if len(f.random) > 1:
        return ("native random-effects multinomial logits take one random-effects term; this model "
                f"has {len(f.random)} random terms")
    for term in f.random:
        if term.names != ["(Intercept)"]:
            return ("native random-effects multinomial logits fit one random intercept shared "
                    "by all non-base logits (gllamm's model); random slopes or category-specific "
                    "effects are not implemented")
    if f.has_random:
        integ = model.integration
        if integ is not None and integ.method not in ("aghq", "laplace"):
            return (f"native random-effects multinomial logits use mode/curvature adaptive "
                    f"quadrature; {integ.method} is not implemented")
    return None


def response_codes(design: Design, reference: object | None) -> tuple[np.ndarray, list[str]]:
    """Response -> codes with 0 the base category ``reference`` (None: the lowest level); the
    category labels in code order."""
    values = np.unique(design.y)
    labels = ([design.response_levels[int(v)] for v in values] if design.response_levels
              else [level_label(v) for v in values])
    base = 0
    if reference is not None:
        if level_label(reference) not in labels:
            raise DesignError(f"reference_level {reference!r} for the response "
                              f"{design.formula.response!r} is not one of its levels {labels}")
        base = labels.index(level_label(reference))
    order = [base] + [i for i in range(len(labels)) if i != base]
    code_of = np.empty(len(labels), dtype=int)
    code_of[order] = np.arange(len(labels))
    return code_of[np.searchsorted(values, design.y)], [labels[i] for i in order]


def script(model: Model, dataset: str) -> str:
    """A script that reproduces the fit from the spec's model (the backend's ``render``)."""
    integ = model.integration
    points = integ.points if integ is not None and integ.method == "aghq" else 1
    fit = (f"fit_mlogit_ri(data, points={points})" if model.parsed.has_random
           else "fit_single(data)")
    show = ("result.beta, result.sd, result.loglik" if model.parsed.has_random
            else "result[0], result[2]")
    return ("from backends.native.design import build_design\n"
            "from backends.native.glmm.mlogit import MlogitData, fit_mlogit_ri, fit_single\n"
            "from backends.native.glmm.mlogit_result import response_codes\n"
            f"# frame: dataset {dataset!r} with the spec's derived columns\n"
            f"design = build_design({model.formula!r}, frame)\n"
            f"y, categories = response_codes(design, "
            f"{dict(model.reference_level).get(model.parsed.response)!r})\n"
            "data = MlogitData.of(design.X, y, design.factors[0].codes if design.factors "
            "else None)\n"
            f"result = {fit}\nprint(categories, {show})")


def fit_mlogit_job(job, inputs, provenance: Provenance) -> FitResult:
    """Fit ``job.model`` (family multinomial) and return the canonical FitResult."""
    model = job.model
    kw = inputs.keywords()
    if any(kw.get(k) is not None for k in ("weights", "offset", "trials")):
        return FitResult.failed(job.spec.id, "native", "not_estimable",
                                "native multinomial logits take no weights, offset or trials")
    response = model.parsed.response
    reference = dict(kw.pop("reference") or {})
    base = reference.pop(response, None)
    design = build_design(model.formula, job.data, kw["factors"], reference or None,
                          contrasts=kw.get("contrasts"))
    y, labels = response_codes(design, base)
    group = design.factors[0].codes if design.factors else None
    data = MlogitData.of(design.X, y, group)
    integ = model.integration
    points = integ.points if integ is not None and integ.method == "aghq" else 1
    provenance.call = (f"fit_mlogit_ri(MlogitData.of(X, y, group), points={points})"
                       if group is not None else "fit_single(MlogitData.of(X, y))")
    provenance.script = script(model, job.spec.dataset)
    if group is None:
        beta, cov, ll, ok = fit_single(data)
        fit = MlogitFit(beta=beta, sd=0.0, loglik=ll, cov=cov, points=0, converged=ok,
                        failures=[] if ok else ["Newton-Raphson did not converge"],
                        max_abs_gradient=math.nan, evaluations=0, ranef=np.zeros(0),
                        ranef_sd=np.zeros(0), single_loglik=ll)
    else:
        fit = fit_mlogit_ri(data, points)
    return to_fit_result(fit, design, labels, job.spec.id, provenance)


def coefficient_names(labels: list[str], x_names: list[str]) -> list[str]:
    """The fixed-effect names ``<category>/<term>`` for every non-base category (``labels[0]``
    is the base), category-major as :class:`.mlogit.MlogitData` orders the coefficients."""
    return [f"{lab}/{term}" for lab in labels[1:] for term in x_names]


def to_fit_result(fit: MlogitFit, design: Design, labels: list[str], spec_id: str,
                  provenance: Provenance) -> FitResult:
    se = fit.std_errors
    names = coefficient_names(labels, design.x_names)
    params = [Parameter("fixed", None, n, float(b), None if se is None else float(s))
              for n, b, s in zip(names, fit.beta, se if se is not None else [None] * len(names))]
    factors = design.factors
    ngroups: dict[str, int] = {}
    ranef = []
    if factors:
        f = factors[0]
        sd_se = fit.sd_se
        params += [Parameter("ran_pars", f.name, "sd__(Intercept)", fit.sd, sd_se),
                   Parameter("ran_pars", f.name, "var__(Intercept)", fit.sd ** 2,
                             None if sd_se is None else 2.0 * fit.sd * sd_se)]
        ngroups = {f.name: f.m}
        ranef = rows(by_level([f], [fit.ranef[:, None]], [(fit.ranef_sd ** 2)[:, None, None]]))
    df = len(params) - (1 if factors else 0)          # var__ restates sd__
    n = design.n
    dev = -2.0 * fit.loglik
    stats = Statistics(nobs=n, ngroups=ngroups, loglik=fit.loglik, deviance=dev,
                       aic=dev + 2 * df, bic=dev + math.log(n) * df, df=df,
                       nobs_dropped=design.nobs_dropped)
    method = f"AGHQ({fit.points})" if factors else "ML"
    messages = list(fit.messages) + [
        f"baseline-category logit, base category {labels[0]!r}; coefficients keyed "
        "fixed/<category>/<term>",
        "logLik is the full multinomial log-likelihood (Stata's and gllamm's scale)"]
    if factors:
        messages += [
            "one random intercept per group shared by all non-base logits (gllamm's mlogit "
            f"model), mode/curvature adaptive Gauss-Hermite quadrature with {fit.points} points",
            "random_effects are posterior means with posterior SDs (as gllamm's gllapred, u)",
            f"single-level (sd = 0) logLik {fit.single_loglik:.6f}"]
    diag = Diagnostics(converged=fit.converged, singular=bool(factors) and fit.sd < 1e-4,
                       max_abs_gradient=None if math.isnan(fit.max_abs_gradient)
                       else fit.max_abs_gradient,
                       warnings=list(fit.failures),
                       optimizer=("nlopt LN_BOBYQA (scaled) + Newton polish" if factors
                                  else "Newton-Raphson"),
                       evaluations=fit.evaluations, messages=messages)
    result = FitResult(spec_id=spec_id, backend="native", status="ok", parameters=params,
                       statistics=stats, random_effects=ranef, diagnostics=diag,
                       provenance=provenance, timings={"fit_seconds": fit.seconds})
    return result.set_estimator(Estimator.parse(method))
