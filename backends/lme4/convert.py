"""Turn the worker's plain reply (lists of numbers from extract.R) into the canonical FitResult.

Naming follows harness.results (broom.mixed): variance parameters come from
:func:`harness.results.variance_parameters`, the residual from
:func:`harness.results.residual_parameters`. lme4 calls a second term of the same grouping
factor ``school.1`` in ``VarCorr``; the extraction already uses the real factor names
(``fit@cnms``), and :func:`group_name` maps any remaining ``.1`` suffix (ordinal) back.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from backends.lme4.translate import RPlan
from harness.keys import ParamKey
from harness.results import (Diagnostics, FitResult, FixedTest, Interval, Parameter,
                             RandomEffect, Statistics, residual_parameters, variance_parameters)


def _one(value: Any) -> Any:
    """First element of an R vector (a list here), or None for NULL/empty/NA."""
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _num(value: Any) -> float | None:
    v = _one(value)
    return None if v is None else float(v)


def _int(value: Any) -> int | None:
    v = _one(value)
    return None if v is None else int(v)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def group_name(name: str, known: list[str]) -> str:
    """``school.1`` -> ``school`` when ``school`` is a grouping factor of the formula."""
    if name in known:
        return name
    base = re.sub(r"\.\d+$", "", name)
    return base if base in known else name


def _table(effect: str, table: dict[str, Any] | None) -> list[Parameter]:
    if not table:
        return []
    out = []
    for name, est, se in zip(table["names"], table["estimate"], table["std_error"]):
        out.append(Parameter(effect, None, str(name), float(est), _finite(se)))  # type: ignore[arg-type]
    return out


def parameters(reply: dict[str, Any], plan: RPlan, groups: list[str]) -> list[Parameter]:
    rows = _table("fixed", reply.get("fixed"))
    rows += _table("threshold", reply.get("thresholds"))
    for block in reply.get("varcorr") or []:
        names = _strings(block["names"])
        sds = [float(s) for s in block["sd"]]
        corr = None
        if block.get("corr") is not None and len(names) > 1:
            n = len(names)
            flat = block["corr"]
            corr = [[flat[i + j * n] for j in range(n)] for i in range(n)]  # R is column-major
        block_rows = variance_parameters(group_name(_one(block["group"]), groups), names, sds,
                                         corr)
        rows += _with_std_errors(block_rows, names, block)
    sigma = _num(reply.get("sigma"))
    if plan.gaussian and sigma is not None:
        rows += _with_std_errors(residual_parameters(sigma), ["Observation"],
                                 {"sd_se": reply.get("sigma_sd_se"),
                                  "var_se": reply.get("sigma_var_se")})
    return rows


def _with_std_errors(rows: list[Parameter], names: list[str], block: dict[str, Any]
                     ) -> list[Parameter]:
    """Standard errors of variance parameters, when the engine reports them (glmmTMB does, by
    the delta method from its log-sd scale: backends/glmmtmb/extract.R; lme4 does not): one
    list per scale, terms in model order and pairs in the order of variance_parameters."""
    by_term: dict[str, float | None] = {}
    pairs = [f"{a}.{b}" for i, a in enumerate(names) for b in names[i + 1:]]
    for scale, terms in (("sd", names), ("var", names), ("cor", pairs), ("cov", pairs)):
        ses = block.get(f"{scale}_se")
        if ses is None:
            continue
        for term, se in zip(terms, ses if isinstance(ses, list) else [ses]):
            by_term[f"{scale}__{term}"] = _finite(float(se)) if se is not None else None
    return [replace(row, std_error=by_term[row.term]) if row.term in by_term else row
            for row in rows]


def random_effects(reply: dict[str, Any], groups: list[str]) -> list[RandomEffect]:
    re_ = reply.get("ranef")
    if not re_:
        return []
    return [RandomEffect(group_name(str(g), groups), str(lv), str(t), float(e), _finite(s))
            for g, t, lv, e, s in zip(re_["group"], re_["term"], re_["level"], re_["estimate"],
                                      re_["std_error"])]


def statistics(reply: dict[str, Any], plan: RPlan, rows_sent: int) -> Statistics:
    ng = reply.get("ngroups") or {"names": [], "values": []}
    ngroups = {str(k): int(v) for k, v in zip(ng["names"], ng["values"])}
    if plan.cluster and "cluster" in ngroups:
        ngroups = {plan.cluster: ngroups.pop("cluster")}
    nobs = _int(reply.get("nobs"))
    return Statistics(nobs=nobs, ngroups=ngroups, loglik=_num(reply.get("loglik")),
                      reml_criterion=_num(reply.get("reml_criterion")),
                      deviance=_num(reply.get("deviance")), aic=_num(reply.get("aic")),
                      bic=_num(reply.get("bic")), df=_int(reply.get("df")),
                      nobs_dropped=max(0, rows_sent - nobs) if nobs is not None else 0)


def diagnostics(reply: dict[str, Any], plan: RPlan) -> Diagnostics:
    warnings = _strings(reply.get("warnings"))
    messages = _strings(reply.get("messages")) + _strings(reply.get("loglik_note"))
    # lme4's own convergence messages (optinfo$conv$lme4$messages) and optimizer warnings:
    # usually also raised as R warnings or messages, kept once.
    for text in _strings(reply.get("conv_messages")) + _strings(reply.get("optimizer_warnings")):
        if text not in warnings and text not in messages:
            warnings.append(text)
    opt_code = _num(reply.get("opt_code"))
    lme4_code = _int(reply.get("lme4_code")) or 0
    failed_warning = any("converge" in w.lower() for w in warnings)
    converged = (opt_code == 0) and lme4_code == 0 and not failed_warning
    notes = list(plan.notes)
    raw = _num(reply.get("max_grad_raw"))
    check = _num(reply.get("max_grad_check"))
    if raw is not None and plan.kind == "glmmTMB":
        notes.append(f"max|gradient| = {raw:.6g} (TMB's gradient of -logLik at the optimum)")
    elif raw is not None and plan.kind in ("lmer", "glmer"):
        notes.append(f"max|gradient| = {raw:.6g} (raw); lme4's check max(pmin(|solve(chol(H), g)|,"
                     f" |g|)) = {check:.6g}" if check is not None else
                     f"max|gradient| = {raw:.6g} (raw); scaled gradient not available")
    for text in _strings(reply.get("optimizer_message")):
        notes.append(f"optimizer: {text}")
    cond = _num(reply.get("hessian_condition"))
    if cond is not None:
        notes.append(f"condition number of the Hessian: {cond:.4g}")
    aliased = _strings(reply.get("aliased"))
    if aliased:
        notes.append(f"aliased (NA) coefficients dropped: {', '.join(aliased)}")
    return Diagnostics(converged=converged, singular=_one(reply.get("singular")),
                       max_abs_gradient=check, warnings=warnings,
                       optimizer=_one(reply.get("optimizer")),
                       evaluations=_int(reply.get("evaluations")), messages=messages + notes)


def _inference(reply: dict[str, Any]) -> dict[str, Any]:
    return reply.get("inference") or {}


def intervals(reply: dict[str, Any], fixed: list[Parameter]) -> list[Interval]:
    """``confint(fit, method = "Wald")`` of the fixed effects: z intervals on the natural
    scale (lme4 gives NA for the variance parameters with this method). The SE is the one of
    the matching fixed-effect row."""
    wald = _inference(reply).get("wald")
    if not wald:
        return []
    se = {p.term: p.std_error for p in fixed if p.effect == "fixed"}
    level = _num(wald.get("level")) or 0.95
    return [Interval(str(ParamKey.fixed(str(n))), "wald", "natural", level, float(lo), float(hi),
                     se.get(str(n)))
            for n, lo, hi in zip(_strings(wald["names"]), wald["lower"], wald["upper"])
            if _finite(lo) is not None and _finite(hi) is not None]


def tests(reply: dict[str, Any]) -> list[FixedTest]:
    """lmerTest's Satterthwaite t tests (``summary(as_lmerModLmerTest(fit))``) and, for REML
    fits up to extract.R's ``HARNESS_KR_MAX_NOBS`` rows, its Kenward-Roger ones (pbkrtest; the
    t value is on the KR-adjusted SE). A skipped KR says why in the inference note."""
    out = []
    for block, method in (("satterthwaite", "satterthwaite"), ("kenward_roger", "kenward-roger")):
        got = _inference(reply).get(block)
        if got:
            out += [FixedTest(str(n), method, float(df), float(t), float(p))
                    for n, df, t, p in zip(_strings(got["names"]), got["df"], got["statistic"],
                                           got["p_value"])]
    return out


def to_result(spec_id: str, reply: dict[str, Any], plan: RPlan, groups: list[str],
              rows_sent: int, backend: str = "lme4") -> FitResult:
    """The canonical result of a successful fit (provenance and timings are set by the caller);
    the glmmTMB backend's replies have the same shape (backends/glmmtmb/extract.R), without the
    inference block (no confint or lmerTest there)."""
    params = parameters(reply, plan, groups)
    diag = diagnostics(reply, plan)
    diag.messages += _strings(_inference(reply).get("note"))
    result = FitResult(spec_id=spec_id, backend=backend, status="ok", parameters=params,
                       statistics=statistics(reply, plan, rows_sent),
                       random_effects=random_effects(reply, groups), diagnostics=diag,
                       intervals=intervals(reply, params), tests=tests(reply))
    seconds = _num(_inference(reply).get("seconds"))
    if seconds is not None:
        result.timings["inference_r"] = seconds    # confint(Wald) + lmerTest (+ KR), in R
    return result
