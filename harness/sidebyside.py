"""The side-by-side table of one comparison, laid out as modelsummary and Stata's esttab do.

One column per engine that produced a fit and per reference that prints numbers; the rows are the
fixed effects (thresholds for ordinal models), the random-effect standard deviations and
correlations, each estimate with its standard error in brackets on the line below, and below a
rule the fit statistics (observations, groups, log-likelihood, AIC, BIC) and the estimator. A
variance or covariance row appears where a reference printed that scale (Stata's default
display), so every printed number has its row. Below an estimate's SE come its confidence
interval ``[lower, upper]`` on each convention a reference printed (``wald/log/z``: Stata's
sd intervals), and under a fixed effect its denominator df per df method any engine reports
(Satterthwaite from lmerTest and native). The last column is the row's verdict.

The same table is the report's "side by side" section and what ``to_markdown()``,
``to_latex()``, ``to_csv()`` and ``to_html()`` of the Python API (harness/api.py) return.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.compare import Check, SpecComparison
from harness.keys import ParamKey, Source
from harness.labels import table_label
from harness.results import CI_PREFIX, DF_PREFIX
from harness.tables import Row, Table, format_value

PARAMETER_KINDS = ("fixed", "threshold", "ran_pars")
#: fit statistics at the bottom of the table, in this order (then one ``Groups`` row per factor)
STAT_ROWS = ("nobs", "loglik", "reml_criterion", "aic", "bic", "icc")
_COUNTS = ("nobs", "df")
_ORDER = ("unexplained", "explained", "agree")


def shown_sources(comp: SpecComparison) -> list[Source]:
    """Engines that produced a fit, then references that print at least one number."""
    out = [s.source for s in comp.sources if s.kind == "backend" and
           comp.results.get(s.source.name) is not None and
           comp.results[s.source.name].status == "ok"]
    with_values = {src for by_source in comp.values.values() for src in by_source}
    out += [s.source for s in comp.sources if s.kind == "reference" and s.source in with_values]
    return out


def worst_verdict(checks: Iterable[Check]) -> str:
    """``unexplained`` over ``explained`` over ``agree``; "" when there is no check."""
    verdicts = {c.verdict for c in checks}
    return next((v for v in _ORDER if v in verdicts), "")


def checks_of(comp: SpecComparison, key: ParamKey, source: Source | None = None) -> list[Check]:
    return [c for c in comp.checks if c.key == key and (source is None or c.involves(source))]


def parameter_keys(comp: SpecComparison) -> list[ParamKey]:
    """The model's parameters in the order the engines report them (fixed effects as in the
    formula, then each grouping factor, the residual last), then any a reference adds."""
    keys: dict[ParamKey, None] = {}
    for r in comp.results.values():
        if r.status == "ok":
            for p in r.parameters:
                keys.setdefault(p.param_key, None)
    for key in sorted(comp.values, key=ParamKey.sort_key):
        if key.kind in PARAMETER_KINDS:
            keys.setdefault(key, None)
    return [k for k in keys if k in comp.values]


def _shown(key: ParamKey, refs: list[Source], comp: SpecComparison) -> bool:
    """SDs and correlations always; variances and covariances where a reference printed them."""
    if key.kind != "ran_pars" or key.scale in ("sd", "cor"):
        return True
    return any(src in comp.values.get(key, {}) for src in refs)


def side_by_side(comp: SpecComparison, digits: int = 3, verdicts: bool = True) -> Table:
    """The table described in the module docstring: ``digits`` decimals for every number, or
    fewer where a reference printed fewer."""
    sources = shown_sources(comp)
    refs = [s for s in sources if s.kind == "reference"]
    printed = printed_decimals(comp)
    header = ("", *map(str, sources), *(("verdict",) if verdicts else ()))
    rows: list[Row] = []

    def cell(s: Source, key: ParamKey, quantity: str) -> str | None:
        v = comp.values[key].get(s, {}).get(quantity)
        if v is None:
            return None
        return format_value(v, min(digits, printed.get((s, key, quantity), digits)))

    for key in parameter_keys(comp):
        if not _shown(key, refs, comp):
            continue
        est = [cell(s, key, "estimate") or "" for s in sources]
        se = [cell(s, key, "std_error") for s in sources]
        tail = (worst_verdict(checks_of(comp, key)),) if verdicts else ()
        rows.append(Row((table_label(key), *est, *tail)))
        if any(v is not None for v in se):
            rows.append(Row(("", *(f"({v})" if v is not None else "" for v in se),
                             *(("",) if verdicts else ())), "se"))
        for name in _printed_intervals(comp, key, refs):
            lo = [cell(s, key, f"{name}:lower") for s in sources]
            hi = [cell(s, key, f"{name}:upper") for s in sources]
            rows.append(Row((f"  {name.removeprefix(CI_PREFIX)} CI",
                             *(f"[{a}, {b}]" if a is not None and b is not None else ""
                               for a, b in zip(lo, hi)), *(("",) if verdicts else ())), "se"))
        for q in _df_quantities(comp, key, sources):
            dfs = [cell(s, key, q) for s in sources]
            rows.append(Row((f"  df ({q.removeprefix(DF_PREFIX)})", *(v or "" for v in dfs),
                             *(("",) if verdicts else ())), "se"))
    stats = [ParamKey.stat(n) for n in STAT_ROWS[:1]]
    stats += sorted((k for k in comp.values if k.kind == "stat" and k.name.startswith("ngroups/")),
                    key=ParamKey.sort_key)
    stats += [ParamKey.stat(n) for n in STAT_ROWS[1:]]
    first = True
    for key in stats:
        by_source = comp.values.get(key, {})
        if not any(s in by_source for s in sources):
            continue
        cells = [_stat_text(key, by_source.get(s, {}).get("estimate"),
                            min(digits, printed.get((s, key, "estimate"), digits)))
                 for s in sources]
        tail = (worst_verdict(checks_of(comp, key)),) if verdicts else ()
        rows.append(Row((table_label(key), *cells, *tail), "stat", rule_before=first))
        first = False
    rows.append(Row(("Estimator", *(estimator_label(comp, s) for s in sources),
                     *(("",) if verdicts else ())), "stat", rule_before=first))
    notes = ["Standard errors in parentheses."]
    if verdicts:
        notes.append("verdict: the worst of the row's comparisons (agree, explained, "
                     "unexplained); tolerances and evidence in the HTML report.")
    return Table(header=header, rows=rows, title=comp.spec.title, notes=notes)


def _printed_intervals(comp: SpecComparison, key: ParamKey, refs: list[Source]) -> list[str]:
    """The interval conventions (``ci:wald/log/z``) a reference printed for ``key``."""
    names = {q.rsplit(":", 1)[0] for src in refs for q in comp.values.get(key, {}).get(src, {})
             if q.startswith(CI_PREFIX)}
    return sorted(names)


def _df_quantities(comp: SpecComparison, key: ParamKey, sources: list[Source]) -> list[str]:
    """The df methods (``df:satterthwaite``) any shown source has for ``key``."""
    return sorted({q for src in sources for q in comp.values.get(key, {}).get(src, {})
                   if q.startswith(DF_PREFIX)})


def printed_decimals(comp: SpecComparison) -> dict[tuple[Source, ParamKey, str], int]:
    """How many decimals each reference printed: a table never shows a printed ``-1.68`` as
    ``-1.680``, which would claim a digit the printout does not have."""
    from harness.references import reference_values

    out = {}
    for ref in comp.spec.references:
        for rv in reference_values(ref):
            out[(Source.reference(ref.id), rv.key, rv.quantity)] = rv.number.decimals
    return out


def _stat_text(key: ParamKey, v: float | None, digits: int) -> str:
    if v is None:
        return ""
    if key.name in _COUNTS or key.stat_head == "ngroups":
        return f"{v:.0f}" if float(v).is_integer() else format_value(v, digits)
    return format_value(v, digits)


def estimator_label(comp: SpecComparison, source: Source) -> str:
    """What produced the column's numbers: an engine's fit, or the method a reference states."""
    if source.kind == "backend":
        r = comp.results.get(source.name)
        return (r.provenance.method or "") if r is not None else ""
    ref = next((r for r in comp.spec.references if r.id == source.name), None)
    if ref is None:
        return ""
    return ref.method or comp.spec.model.method_label()
