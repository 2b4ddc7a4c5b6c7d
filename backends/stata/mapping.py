"""Stata's parameter names and metrics -> the canonical (broom.mixed) form, by name only.

Where Stata keeps what (models.md D4, D6; checked against the Stata manuals, see docs/stata.md):

* Fixed effects: e(b) columns ``<depvar>:<coef>`` (``_cons`` is ``(Intercept)``; factor dummies
  ``2.schgend`` are ``factor(schgend)2`` or ``schgend2`` as R names them; base and omitted levels
  ``1b.x``/``3o.x`` carry no estimate and are skipped). ``regress`` has no equation name.
* ``mixed``: random part on the estimation metric, one equation per parameter:
  ``lns<L>_<k>_<j>:_cons`` = log SD of effect j of equation k at level L, ``atr<L>_<k>_<i>_<j>``
  = atanh of the correlation of effects i and j, ``lnsig_e:_cons`` = log residual SD. Levels
  count from the highest; effects follow the equation's varlist with ``_cons`` last.
  So var = exp(2 lns), corr = tanh(atr).
* ``me*`` (Stata 15+): natural metric, equation ``/``: ``/:var(_cons[school])``,
  ``/:var(lrt[school])``, ``/:cov(lrt[school],_cons[school])``, nested levels as
  ``var(_cons[hospital>wardid])``; ordinal cut points ``/:cut1`` (``cut1:_cons`` before 15).
* SEs of every derived scale come from e(V) by the delta method, with the gradient taken on the
  metric e(b) is stored in; the diagnostics say which metric that was.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

from backends.stata.render import Layout
from backends.stata.results_file import StataRecord
from harness.estimator import Estimator
from harness.intervals import wald_intervals
from harness.rsyntax import r_name
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, RandomEffect,
                             Statistics, residual_parameters, result_problems,
                             variance_parameters)

_LNS = re.compile(r"^lns(\d+)_(\d+)_(\d+)$")
_ATR = re.compile(r"^atr(\d+)_(\d+)_(\d+)_(\d+)$")
_ME_VAR = re.compile(r"^var\((.+)\[(.+)\]\)$")
_ME_COV = re.compile(r"^cov\((.+)\[(.+)\],(.+)\[(.+)\]\)$")
_CUT = re.compile(r"^cut(\d+)$")
_FV = re.compile(r"^(\d+)([bno]*)\.(.+)$")


# ---- names ------------------------------------------------------------------------------------

def split_name(full: str) -> tuple[str, str]:
    """``gcse:lrt`` -> (``gcse``, ``lrt``); ``lrt`` -> ("", ``lrt``); ``/:var(...)`` -> ("/", ...)."""
    if ":" in full:
        eq, _, coef = full.partition(":")
        return eq, coef
    return "", full


def fixed_name(coef: str, styles: dict[str, str],
               generated: dict[str, str] | None = None) -> str | None:
    """R's name for a Stata fixed-effect column, or None for base/omitted/empty cells.

    ``generated`` maps the variables the do-file made for ``I()``, ``log``, ``poly``, ...
    (:mod:`backends.stata.fixed`) back to R's column names; other variables are R symbols
    (backquoted where R would, e.g. ``_x``).
    """
    if coef == "_cons":
        return "(Intercept)"
    generated = generated or {}
    parts = []
    for piece in coef.split("#"):
        m = _FV.match(piece)
        if m:
            level, flags, var = m.groups()
            # b = base, o = omitted, n = empty cell: no estimate; "bn" is a level of a factor
            # written ibn. (no base level), which is estimated
            if flags and flags != "bn":
                return None
            style = styles.get(var, "factor")
            name = r_name(var)
            parts.append(f"{name}{level}" if style == "bare" else f"{style}({name}){level}")
        else:
            if piece.startswith(("o.", "co.")):
                return None
            var = piece[2:] if piece.startswith("c.") else piece
            parts.append(generated.get(var) or r_name(var))
    return ":".join(parts)


# ---- delta method -----------------------------------------------------------------------------

@dataclass
class Quantity:
    """A derived value and its gradient over e(b) names (for the delta method)."""

    value: float
    grad: dict[str, float] = field(default_factory=dict)

    def se(self, record: StataRecord) -> float | None:
        if not self.grad:
            return None
        total = 0.0
        for a, ga in self.grad.items():
            for b, gb in self.grad.items():
                v = record.cov(a, b)
                if v is None or math.isnan(v):
                    return None
                total += ga * gb * v
        return math.sqrt(total) if total >= 0 else None


def _sd_from_lns(name: str, lns: float) -> Quantity:
    sd = math.exp(lns)
    return Quantity(sd, {name: sd})


def _sd_from_var(name: str, var: float) -> Quantity:
    sd = math.sqrt(max(var, 0.0))
    return Quantity(sd, {name: 1 / (2 * sd)} if sd > 0 else {})


# ---- the random part --------------------------------------------------------------------------

@dataclass
class GroupPart:
    sds: dict[str, Quantity] = field(default_factory=dict)  # effect -> SD
    cors: dict[frozenset[str], Quantity] = field(default_factory=dict)
    covs: dict[frozenset[str], Quantity] = field(default_factory=dict)


def _mixed_random(record: StataRecord, layout: Layout, warnings: list[str]
                  ) -> tuple[dict[str, GroupPart], Quantity | None]:
    levels: list[str] = []
    eq_index: dict[tuple[int, int], Any] = {}
    counters: dict[str, int] = {}
    for eq in layout.equations:
        if eq.level not in levels:
            levels.append(eq.level)
        L = levels.index(eq.level) + 1
        counters[eq.level] = counters.get(eq.level, 0) + 1
        eq_index[(L, counters[eq.level])] = eq
    groups: dict[str, GroupPart] = {}
    resid = None
    atrs: list[tuple[str, Any, int, int, float]] = []
    for full, value in record.b.items():
        eqname, coef = split_name(full)
        if eqname == "lnsig_e":
            resid = _sd_from_lns(full, value)
            continue
        m = _LNS.match(eqname)
        if m:
            L, k, j = map(int, m.groups())
            eq = eq_index.get((L, k))
            if eq is None or j > len(eq.effects):
                warnings.append(f"e(b) column {full} does not match the model's random part")
                continue
            groups.setdefault(eq.group, GroupPart()).sds[eq.effects[j - 1]] = \
                _sd_from_lns(full, value)
            continue
        m = _ATR.match(eqname)
        if m:
            L, k, i, j = map(int, m.groups())
            eq = eq_index.get((L, k))
            if eq is None:
                warnings.append(f"e(b) column {full} does not match the model's random part")
                continue
            atrs.append((full, eq, i, j, value))
    for full, eq, i, j, value in atrs:
        part = groups.setdefault(eq.group, GroupPart())
        a, b = eq.effects[i - 1], eq.effects[j - 1]
        if a not in part.sds or b not in part.sds:  # record_to_result rejects the block
            warnings.append(f"e(b) column {full} correlates effects without a variance")
            continue
        r = math.tanh(value)
        dr = 1 - r * r
        pair = frozenset((a, b))
        part.cors[pair] = Quantity(r, {full: dr})
        sa, sb = part.sds[a], part.sds[b]
        cov = r * sa.value * sb.value
        grad = {full: dr * sa.value * sb.value}
        for name in (*sa.grad, *sb.grad):
            grad[name] = grad.get(name, 0.0) + cov  # d cov / d lns = cov, for each lns
        part.covs[pair] = Quantity(cov, grad)
    return groups, resid


def _me_path_group(layout: Layout, effect: str, path: str) -> tuple[str, str] | None:
    """(group, canonical effect) for an me* name ``effect[path]``; path ``a>b`` is nested."""
    last = path.split(">")[-1]
    for eq in layout.equations:
        if eq.factor and (last == eq.factor or effect in (f"R.{eq.factor}", eq.factor)):
            return eq.group, "(Intercept)"
        if eq.level == last and effect in eq.stata_effects:
            return eq.group, eq.effects[eq.stata_effects.index(effect)]
    return None


def _me_random(record: StataRecord, layout: Layout, warnings: list[str]
               ) -> dict[str, GroupPart]:
    groups: dict[str, GroupPart] = {}
    covs = []
    for full, value in record.b.items():
        eqname, coef = split_name(full)
        if eqname not in ("/", ""):
            if eqname.startswith(("var(", "cov(")):  # Stata 13/14 stripes: var(...):_cons
                coef = eqname
            else:
                continue
        m = _ME_VAR.match(coef)
        if m:
            found = _me_path_group(layout, m.group(1), m.group(2))
            if found is None:
                warnings.append(f"e(b) column {full} does not match the model's random part")
                continue
            g, eff = found
            groups.setdefault(g, GroupPart()).sds[eff] = _sd_from_var(full, value)
            continue
        m = _ME_COV.match(coef)
        if m:
            covs.append((full, m.groups(), value))
    for full, (e1, p1, e2, p2), value in covs:
        f1, f2 = _me_path_group(layout, e1, p1), _me_path_group(layout, e2, p2)
        if f1 is None or f2 is None or f1[0] != f2[0]:
            warnings.append(f"e(b) column {full} does not match the model's random part")
            continue
        g = f1[0]
        part = groups.setdefault(g, GroupPart())
        a, b = f1[1], f2[1]
        if a not in part.sds or b not in part.sds:  # record_to_result rejects the block
            warnings.append(f"e(b) column {full} is a covariance of effects without a variance")
            continue
        pair = frozenset((a, b))
        sa, sb = part.sds[a], part.sds[b]
        va, vb = sa.value ** 2, sb.value ** 2
        part.covs[pair] = Quantity(value, {full: 1.0})
        r = value / (sa.value * sb.value)
        na = next(iter(sa.grad), None)
        nb = next(iter(sb.grad), None)
        grad = {full: 1 / (sa.value * sb.value)}
        if na:
            grad[na] = -r / (2 * va)
        if nb:
            grad[nb] = grad.get(nb, 0.0) - r / (2 * vb)
        part.cors[pair] = Quantity(r, grad)
    return groups


def _variance_rows(groups: dict[str, GroupPart], layout: Layout, record: StataRecord
                   ) -> list[Parameter]:
    rows: list[Parameter] = []
    for g, names in layout.group_names.items():
        part = groups.get(g)
        if part is None:
            continue
        names = [n for n in names if n in part.sds]
        sds = [part.sds[n].value for n in names]
        base = variance_parameters(g, names, sds, None)
        ses: dict[str, float | None] = {}
        for n in names:
            q = part.sds[n]
            ses[f"sd__{n}"] = q.se(record)
            ses[f"var__{n}"] = Quantity(q.value ** 2, {k: 2 * q.value * v
                                                       for k, v in q.grad.items()}).se(record)
        base = [replace(p, std_error=ses.get(p.term)) for p in base]
        pairs = []
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                pair = frozenset((names[i], names[j]))
                if pair in part.cors:
                    c, v = part.cors[pair], part.covs[pair]
                    pairs += [Parameter("ran_pars", g, f"cor__{names[i]}.{names[j]}", c.value,
                                        c.se(record)),
                              Parameter("ran_pars", g, f"cov__{names[i]}.{names[j]}", v.value,
                                        v.se(record))]
        rows += base + pairs
    return rows


def _xt_random(record: StataRecord, layout: Layout, warnings: list[str], messages: list[str]
               ) -> tuple[dict[str, GroupPart], Quantity | None]:
    """xtreg, re: e(sigma_u), e(sigma_e) (no SEs); xtlogit, re: ``/:lnsig2u`` = log variance."""
    group = layout.equations[0].group
    part = GroupPart()
    resid = None
    if layout.command == "xtreg":
        su, se_ = record.scalars.get("sigma_u"), record.scalars.get("sigma_e")
        if su is not None:
            part.sds["(Intercept)"] = Quantity(su)
        if se_ is not None:
            resid = Quantity(se_)
        messages.append("xtreg, re: sigma_u and sigma_e are GLS (Swamy-Arora) estimates, "
                        "not ML/REML; Stata gives no SEs for them")
    else:
        name = next((k for k in record.b if split_name(k)[1] == "lnsig2u"
                     or split_name(k)[0] == "lnsig2u"), None)
        if name is None:
            warnings.append("xtlogit results have no lnsig2u")
        else:
            sd = math.exp(record.b[name] / 2)
            part.sds["(Intercept)"] = Quantity(sd, {name: sd / 2})
            messages.append("variance-parameter SEs: delta method from e(V) on xtlogit's "
                            "log-variance metric (lnsig2u)")
    return ({group: part} if part.sds else {}), resid


# ---- whole result ----------------------------------------------------------------------------

def record_to_result(record: StataRecord, *, mode: str, source: str | None = None,
                     script: str | None = None, layout: Layout | None = None) -> FitResult:
    """A canonical :class:`FitResult` from one model's Stata results, or an error result.

    A record without e(b) (Stata stopped, a licence check failed, the file is truncated) is an
    error, never an empty success.
    """
    backend = "stata"
    layout = layout or (Layout.from_dict(record.layout) if record.layout else None)
    if layout is None:
        return FitResult.failed(record.spec_id, backend, "error",
                                "the Stata results have no layout line (not written by this "
                                "harness's do-file?)")
    prov = Provenance(
        backend=backend, mode=mode,
        software={k: v for k, v in (("Stata", record.meta.get("stata_version", "")),
                                    ("flavour", record.meta.get("flavour", "")),
                                    ("datasignature", record.meta.get("datasignature", "")))
                  if v},
        data_sha256=record.meta.get("data_sha256") or None,
        call=record.macros.get("cmdline") or layout.command_line(), script=script,
        source=source, date=record.meta.get("date") or None)
    if record.rc not in (0, None):
        r = FitResult.failed(record.spec_id, backend, "error",
                             f"Stata stopped with r({record.rc}) running: "
                             f"{layout.command_line()}")
        r.provenance = prov
        return r
    problems = record.problems + _layout_mismatches(record, layout)
    if problems:
        r = FitResult.failed(record.spec_id, backend, "error",
                             "the Stata results cannot be used: " + "; ".join(problems))
        r.provenance = prov
        return r
    if not record.b:
        r = FitResult.failed(record.spec_id, backend, "error",
                             "the Stata results have no e(b): the model was not estimated "
                             "(see the log)" + ("" if record.complete else
                                                "; the results block is incomplete"))
        r.provenance = prov
        return r
    warnings: list[str] = []
    messages: list[str] = []
    params: list[Parameter] = []
    thresholds: list[Parameter] = []
    depvar = record.macros.get("depvar") or layout.depvar
    n_estimated = 0
    for full, value in record.b.items():
        eqname, coef = split_name(full)
        if eqname in ("", "_", depvar) and not _CUT.match(coef) and coef != "lnsig2u":
            name = fixed_name(coef, layout.fixed_styles, layout.generated)
            if name is None:
                continue
            var = record.cov(full, full)
            se = math.sqrt(var) if var is not None and var >= 0 else None
            params.append(Parameter("fixed", None, name, value, se))
            n_estimated += 1
            continue
        cut = _CUT.match(coef) if eqname in ("/", "") else _CUT.match(eqname)
        if cut:
            var = record.cov(full, full)
            # Canonical threshold names follow ordinal::clmm ("1|2" between categories 1 and
            # 2). Stata's cut k is the k-th threshold; naming it "k|k+1" is exact for outcomes
            # coded 1..K, which every ordinal model of the course uses.
            k = int(cut.group(1))
            thresholds.append(Parameter("threshold", None, f"{k}|{k + 1}", value,
                                        math.sqrt(var) if var is not None and var >= 0
                                        else None))
            n_estimated += 1
            continue
        n_estimated += 1  # a random-part parameter; mapped below
    resid = None
    if layout.command == "mixed" or layout.kind == "mixed":
        groups, resid = _mixed_random(record, layout, warnings)
        messages.append("variance-parameter SEs: delta method from e(V) on Stata mixed's "
                        "estimation metric (log SD, atanh correlation)")
    elif layout.kind == "me":
        groups = _me_random(record, layout, warnings)
        messages.append("variance-parameter SEs: delta method from e(V) on the variance/"
                        "covariance metric of Stata's me* e(b)")
    elif layout.kind == "xt":
        groups, resid = _xt_random(record, layout, warnings, messages)
    else:
        groups = {}
    lost = [f"{g}/{n}" for g, names in layout.group_names.items() for n in names
            if n not in groups.get(g, GroupPart()).sds]
    if lost:
        r = FitResult.failed(record.spec_id, backend, "error",
                             f"the Stata results for the model on line {record.line} have no "
                             f"variance for {', '.join(lost)}, which its layout names")
        r.provenance = prov
        return r
    known = {"lnsig_e", "lnsig2u"} | {split_name(k)[0] for k in record.b if _LNS.match(split_name(k)[0])
                            or _ATR.match(split_name(k)[0])}
    for full in record.b:
        eqname, coef = split_name(full)
        if eqname in ("", "_", depvar) or eqname in known or coef in known or \
                _CUT.match(coef) or \
                _CUT.match(eqname) or _ME_VAR.match(coef) or _ME_COV.match(coef) or \
                _ME_VAR.match(eqname) or _ME_COV.match(eqname):
            continue
        warnings.append(f"e(b) column {full} was not mapped to a canonical parameter")
    params += thresholds
    params += _variance_rows(groups, layout, record)
    if resid is not None:
        rows = residual_parameters(resid.value)
        se_sd = resid.se(record)
        se_var = Quantity(resid.value ** 2, {k: 2 * resid.value * v
                                             for k, v in resid.grad.items()}).se(record)
        params += [replace(rows[0], std_error=se_sd), replace(rows[1], std_error=se_var)]
    elif layout.command == "regress" and record.scalars.get("rmse") is not None:
        params += residual_parameters(float(record.scalars["rmse"]))  # type: ignore[arg-type]
        messages.append("residual SD: regress's root MSE (divisor N - K)")
    s = record.scalars
    ll = s.get("ll")
    nobs = int(s["N"]) if s.get("N") is not None else None
    df = n_estimated + (1 if layout.command in ("regress", "xtreg") else 0)
    stats = Statistics(nobs=nobs, ngroups=dict(record.ngroups), loglik=ll, df=df)
    if ll is not None:
        if layout.method == "REML":
            stats.reml_criterion = -2 * ll
        elif layout.family == "gaussian":
            stats.deviance = -2 * ll
        stats.aic = -2 * ll + 2 * df
        if nobs:
            stats.bic = -2 * ll + math.log(nobs) * df
    conv = s.get("converged")
    diag = Diagnostics(converged=bool(conv) if conv is not None else
                       (True if layout.command in ("regress", "svy: regress", "xtreg") else None),
                       warnings=warnings, optimizer=record.macros.get("intmethod") or None,
                       messages=messages)
    if layout.structure_note:
        diag.messages.append(f"random-part structure: {layout.structure_note}")
    for k, v in s.items():
        if k.startswith("icc") and v is not None:
            diag.messages.append(f"estat icc: r({k}) = {v!r}")
    if record.macros.get("predict_rc") not in (None, "", "0"):
        diag.warnings.append(f"predict, reffects failed with r({record.macros['predict_rc']}); "
                             "no random effects")
    ranef = [RandomEffect(g, lvl, term, est, se) for g, term, lvl, est, se in record.re]
    # mixed / me*: Wald z intervals as Stata prints them (variance parameters on the log-sd and
    # atanh scales, from its own e(V)), each named with its scale (harness/intervals.py)
    intervals = wald_intervals(params) if layout.kind in ("mixed", "me") else []
    result = FitResult(spec_id=record.spec_id, backend=backend, status="ok", parameters=params,
                       statistics=stats, random_effects=ranef, diagnostics=diag, provenance=prov,
                       intervals=intervals)
    result.set_estimator(Estimator.parse(layout.method_label))
    problems = result_problems(result.to_dict())
    if problems:  # never an ok fit with a number that is not one
        r = FitResult.failed(record.spec_id, backend, "error",
                             f"the Stata results for the model on line {record.line} cannot be "
                             "used: " + "; ".join(problems))
        r.provenance = prov
        return r
    return result


def _layout_mismatches(record: StataRecord, layout: Layout) -> list[str]:
    """Names in the results that contradict the layout they carry (an edited or mixed file)."""
    out = []
    if layout.spec_id != record.spec_id:
        out.append(f"line {record.line}: the block is for model {record.spec_id!r} but its "
                   f"layout is for {layout.spec_id!r}")
    depvar = record.macros.get("depvar")
    if depvar and depvar.split()[0] != layout.depvar:
        out.append(f"the block's e(depvar) is {depvar!r}, but its layout fits {layout.depvar!r}")
    return out
