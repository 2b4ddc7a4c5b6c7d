"""Write a run's outputs: per-backend result JSON, ``summary.json``, ``junit.xml`` and the HTML
report (``index.html``, ``specs/<id>.html``, ``policy.html``), all standalone: inline CSS, inline
SVG plots, a few lines of inline JavaScript (filters, copy buttons) and no network access.

``summary.json`` is a contract for CI users. Its keys: ``schema_version``, ``run`` (date, command
line, machine, software, backends' availability), ``totals`` (``specs``, ``references`` — the
number of reference values — ``checks``, and the counts of spec x source cells by status:
``agree``, ``explained``, ``unexplained``, ``pending``, ``errors``, ``unavailable``,
``not_estimable``, ``info`` — references the course states in words only) and ``specs`` (per spec: ``id``, ``status``, ``backends`` {name: status},
``references`` {id: status}, ``unexplained`` — the differing rows). Added keys (schema 1 still:
keys are only ever added): ``totals.check_verdicts`` (checks by verdict), ``files`` (the report's
files); per spec ``title``, ``dataset``, ``family``, ``method``, ``model_class``, ``page``,
``counts`` (checks by verdict), ``explained`` (rows with their known-difference id).

Where a report goes, how the folder is locked and how an earlier report is replaced only when the
caller says so (``--overwrite``) is harness/report_folder.py; this module writes into a folder.
"""

from __future__ import annotations

import json
import platform
import re
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2

from harness import __version__
from harness.causes import unexplained_causes
from harness.compare import VERDICTS, Check, SpecComparison
from harness.filenames import report_stem
from harness.junit import junit_xml
from harness.keys import ParamKey
from harness.known_differences import BY_ID, DIFFERENCE_TITLES, REGISTRY, RULE_OF
from harness.labels import parameter_label, table_label, term_words
from harness.plots import caterpillar, coefficient_plot, scatter
from harness.postestimation import caterpillar_data, describe_icc
from harness.references import reference_values
from harness.runner import SpecRun, SuiteRun
from harness.sidebyside import parameter_keys, shown_sources, side_by_side
from harness.spec import Derived, Spec
from harness.tolerances import QUANTITY_CLASSES, policy_table

SUMMARY_SCHEMA_VERSION = 1
CATERPILLAR_MULTIPLIER = 1.96  # Stata's convention (catalogue D20); printed on every plot


def _cell_status(status: str) -> str:
    return "errors" if status == "error" else status


def _row_dict(c: Check) -> dict[str, Any]:
    return {"key": str(c.key), "quantity": c.quantity, "a": str(c.source_a),
            "b": str(c.source_b), "value_a": c.value_a, "value_b": c.value_b,
            "abs_diff": c.abs_diff, "tolerance": c.tolerance, "digits": round(c.digits, 2)}


def summary(suite: SuiteRun) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    specs = []
    n_refs = n_checks = 0
    for run in suite.runs:
        comp = run.comparison
        n_checks += len(comp.checks)
        verdicts.update(c.verdict for c in comp.checks)
        n_refs += sum(len(reference_values(r)) for r in run.spec.references)
        for s in comp.sources:
            totals[_cell_status(s.status)] += 1
        specs.append({
            "id": run.spec.id,
            "status": comp.status,
            "backends": {s.source.name: s.status for s in comp.sources if s.kind == "backend"},
            "references": {s.source.name: s.status
                           for s in comp.sources if s.kind == "reference"},
            "unexplained": [_row_dict(c) for c in comp.checks if c.verdict == "unexplained"],
            "title": run.spec.title,
            "dataset": run.spec.dataset,
            "family": run.spec.model.family,
            "method": run.spec.model.method_label(),
            "model_class": comp.model_class,
            "page": f"specs/{page_name(run.spec.id)}",
            "counts": comp.counts(),
            "explained": [{**_row_dict(c), "known_difference": c.known_id,
                           "explanation": c.explanation, "evidence": dict(c.evidence)}
                          for c in comp.checks if c.verdict == "explained"],
        })
    keys = ["agree", "explained", "unexplained", "pending", "errors", "unavailable",
            "not_estimable", "info"]
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run": run_header(suite),
        "totals": {"specs": len(suite.runs), "references": n_refs, "checks": n_checks,
                   **{k: totals.get(k, 0) for k in keys},
                   "check_verdicts": {v: verdicts.get(v, 0) for v in VERDICTS}},
        "specs": specs,
        "files": {"html": "index.html", "junit": "junit.xml", "policy": "policy.html",
                  "results": "results/<spec>/<backend>.json",
                  "tables": "tables/<spec>.csv|md|tex"},
    }


def run_header(suite: SuiteRun) -> dict[str, Any]:
    software: dict[str, str] = {"python": platform.python_version()}
    for a in suite.availability.values():
        software.update(dict(a.versions))
    for run in suite.runs:
        for r in run.results.values():
            for k, v in r.provenance.software.items():
                software.setdefault(k, v)
    return {
        "date": suite.started,
        "seconds": round(suite.seconds, 2),
        "command_line": suite.command_line,
        "platform": suite.platform,
        "mlm_harness": __version__,
        "backends": {name: {"available": a.ok, "message": a.message(),
                            "versions": dict(a.versions)}
                     for name, a in suite.availability.items()},
        "required": sorted(suite.options.required),
        "data": sorted({(r.spec.dataset, r.data.sha256 or "") for r in suite.runs}),
        "software": dict(sorted(software.items())),
        "machine": {"node": platform.node(), "processor": platform.machine(),
                    "python": platform.python_version()},
    }


# ---- HTML ----------------------------------------------------------------------------------


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["label"] = parameter_label
    env.filters["status_label"] = status_label
    env.globals["page_name"] = page_name
    return env


def status_label(status: str) -> str:
    """Readable status text: ``ok`` (fitted, nothing to compare with) reads as "fitted"."""
    return {"ok": "fitted", "not_estimable": "not estimable"}.get(status, status)


def format_number(v: float | None, sig: int = 7) -> str:
    if v is None:
        return ""
    if v == 0:
        return "0"
    return f"{v:.{sig}g}"


def page_name(spec_id: str) -> str:
    return report_stem(spec_id) + ".html"


def write_report(suite: SuiteRun, out: Path, all_columns: bool = False) -> dict[str, Any]:
    """Write results/, summary.json, junit.xml and the HTML pages into ``out``.

    The index shows a column for every backend that produced a result for some spec; a
    backend with none (Stata without a licence or stored results) gets a column only with
    ``all_columns``, and a sentence says which were left out and why."""
    data = summary(suite)
    for run in suite.runs:
        folder = out / "results" / page_name(run.spec.id).removesuffix(".html")
        folder.mkdir(parents=True, exist_ok=True)
        for name, result in run.results.items():
            (folder / f"{name}.json").write_text(result.to_json())
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    (out / "junit.xml").write_text(junit_xml([r.comparison for r in suite.runs]))
    env = _env()
    css = (Path(__file__).parent / "templates" / "style.css").read_text()
    js = (Path(__file__).parent / "templates" / "report.js").read_text()
    common = {"css": css, "js": js, "header": data["run"]}
    columns = index_columns(suite, all_columns)
    (out / "index.html").write_text(env.get_template("index.html").render(
        summary=data, runs=suite.runs, columns=columns, rows=index_rows(suite, columns),
        **common))
    (out / "policy.html").write_text(env.get_template("policy.html").render(
        policy=policy_table(), registry=REGISTRY, classes=QUANTITY_CLASSES, **common))
    pages = out / "specs"
    pages.mkdir(exist_ok=True)
    tables = out / "tables"
    tables.mkdir(exist_ok=True)
    for run in suite.runs:
        table = side_by_side(run.comparison)
        stem = page_name(run.spec.id).removesuffix(".html")
        for ext, text in (("csv", table.to_csv()), ("md", table.to_markdown()),
                          ("tex", table.to_latex())):
            (tables / f"{stem}.{ext}").write_text(text)
        (pages / page_name(run.spec.id)).write_text(env.get_template("spec.html").render(
            run=run, page=spec_page(run, suite.options.data_dir), **common))
    return data


def index_columns(suite: SuiteRun, all_columns: bool = False) -> dict[str, Any]:
    """The backends that get a column in the index, and those left out with the reason."""
    shown, hidden = [], []
    for name in suite.options.backends:
        statuses = Counter(run.results[name].status for run in suite.runs if name in run.results)
        if all_columns or statuses["ok"] or statuses["error"]:
            shown.append(name)
        else:
            counts = ", ".join(f"{n} {status_label(s)}" for s, n in statuses.most_common())
            hidden.append(f"{name} ({counts})")
    return {"shown": shown, "hidden": hidden}


def index_rows(suite: SuiteRun, columns: dict[str, Any]) -> list[dict[str, Any]]:
    backends = columns["shown"]
    rows = []
    for run in suite.runs:
        comp = run.comparison
        by_source = {s.source.name: s for s in comp.sources if s.kind == "backend"}
        sources = {r.id: r.source for r in run.spec.references}
        causes = unexplained_causes(comp)
        rows.append({
            "spec": run.spec, "status": comp.status, "counts": comp.counts(),
            "model_class": comp.model_class,
            "cells": [by_source.get(b) for b in backends],
            "refs": [{"status": s, "source": sources.get(s.source.name, ""),
                      "where": short_source(sources.get(s.source.name, ""))}
                     for s in comp.sources if s.kind == "reference"],
            "lead": causes[0].text if causes else "",
            "n_obs": _nobs(run),
        })
    return rows


def short_source(text: str, limit: int = 48) -> str:
    """Where a reference was printed, short enough for the index: ``talk 4 slide 6``."""
    head = re.split(r"[(;]", text, maxsplit=1)[0].strip() or text
    return head if len(head) <= limit else head[:limit - 1].rstrip() + "…"


def _nobs(run: SpecRun) -> int:
    for r in run.results.values():
        if r.status == "ok" and r.statistics.nobs:
            return int(r.statistics.nobs)
    return run.data.rows_after_subset


# ---- one spec's page -----------------------------------------------------------------------


def spec_page(run: SpecRun, data_dir: Path | None = None) -> dict[str, Any]:
    comp = run.comparison
    spec = run.spec
    ok = {n: r for n, r in run.results.items() if r.status == "ok"}
    model = spec.model
    stem = page_name(spec.id).removesuffix(".html")
    return {
        "words": model_in_words(spec),
        "formula": model.parsed.lme4(),
        "data": data_summary(run),
        "verdict_sentence": verdict_sentence(comp),
        "causes": unexplained_causes(comp),
        "table": parameter_table(comp),
        "side_by_side": side_by_side(comp).to_html(),
        "table_files": [(ext, f"../tables/{stem}.{ext}") for ext in ("csv", "md", "tex")],
        "coefficients": coefficients(comp),
        "unexplained": [c for c in comp.checks if c.verdict == "unexplained"],
        "fit_stats": fit_statistics(run),
        "diagnostics": diagnostics_text(run),
        "icc_definition": describe_icc(model.family, model.resolved_link),
        "blups": comp.blups,
        "caterpillars": caterpillars(ok),
        "scatters": scatters(comp, ok),
        "code": backend_code(run, data_dir),
        "used_known": used_known_differences(comp),
    }


_FAMILY_WORDS = {
    ("gaussian", "identity"): "A linear",
    ("binomial", "logit"): "A logistic (binary, logit link)",
    ("binomial", "probit"): "A probit (binary, probit link)",
    ("poisson", "log"): "A Poisson (count, log link)",
    ("ordinal", "logit"): "An ordinal (cumulative logit)",
    ("ordinal", "probit"): "An ordinal (cumulative probit)",
    ("multinomial", "logit"): "A multinomial logit",
}


def model_in_words(spec: Spec) -> str:
    """The model in one or two plain sentences (what a newcomer reads first)."""
    m = spec.model
    f = m.parsed
    kind = _FAMILY_WORDS.get((m.family, m.resolved_link), f"A {m.family}")
    kind += " mixed model" if f.has_random else " single-level regression"
    terms = f.terms.labels()  # R's terms: a*b reads "a, b, a:b"
    fixed = (f"with fixed effects for {', '.join(terms)}" if terms
             else "with an intercept only (a null model)")
    parts = [f"{kind} for {f.response} {fixed}"]
    by_group: dict[str, list] = {}
    for t in f.random:
        by_group.setdefault(t.group, []).append(t)
    for g, ts in by_group.items():
        where = " within ".join(reversed(g.split(":")))
        names = [("intercept" if n == "(Intercept)" else f"slope of {n}")
                 for t in ts for n in t.names]
        if len(names) == 1:
            parts.append(f"a random {names[0]} for each {where}")
        else:
            cov = ("correlated (unstructured covariance)" if len(ts) == 1
                   else "independent of each other (diagonal covariance)")
            parts.append(f"a random {' and '.join(names)} for each {where}, {cov}")
    text = parts[0] + (", and " + "; ".join(parts[1:]) if len(parts) > 1 else "") + "."
    method = {"REML": "restricted maximum likelihood (REML)", "ML": "maximum likelihood (ML)",
              "OLS": "ordinary least squares"}[m.method]
    if m.integration:
        how = ("the Laplace approximation" if m.integration.method == "laplace" else
               f"{m.integration.points}-point adaptive Gauss-Hermite quadrature")
        method += f", integrating over the random effects with {how}"
    if m.cluster_se:
        method += f", with cluster-robust SEs by {m.cluster_se}"
    text += f" Fitted by {method}."
    overrides = [f"{b}: " + ", ".join(f"{k} {v}" for k, v in s.model_dump(
        exclude_defaults=True).items()) for b, s in spec.backends.items()
        if s.model_dump(exclude_defaults=True)]
    if overrides:
        text += " Backend settings: " + "; ".join(overrides) + "."
    return text


def derived_definition(d: Derived) -> str:
    if d.expr:
        return d.expr
    by = ", ".join(d.by_columns)
    if d.group_mean:
        return f"mean of {d.group_mean} within {by}"
    if d.group_count:
        return f"number of rows in each {by}"
    if d.group_first:
        return f"1 on the first row of each {by}, else 0"
    if d.group_id:
        return f"one id per combination of {', '.join(d.group_id)} (sorted, as Stata's egen group)"
    if d.recode:
        # old values are numbers or, for a text column, its text ({Y: 1, N: 0}): show text as is
        pairs = ", ".join(f"{k if isinstance(k, str) else format(k, 'g')}→{v:g}"
                          for k, v in d.recode.items())
        return f"recode {d.source}: {pairs}" + (f", otherwise {d.otherwise:g}"
                                                 if d.otherwise is not None else "")
    return ""


def data_summary(run: SpecRun) -> dict[str, Any]:
    spec, data = run.spec, run.data
    frame = data.frame
    groups = []
    for g in spec.model.parsed.grouping_factors:
        cols = g.split(":")
        if not all(c in frame.columns for c in cols):
            continue
        sizes = frame.groupby(cols, dropna=True).size()
        if len(sizes):
            groups.append({"name": g, "n": int(len(sizes)), "min": int(sizes.min()),
                           "mean": float(sizes.mean()), "max": int(sizes.max())})
    return {
        "dataset": spec.dataset, "path": str(data.path) if data.path else "",
        "sha256": data.sha256 or "", "rows_in_file": data.rows_in_file,
        "rows_used": data.rows_after_subset, "nobs": _nobs(run), "subset": spec.subset,
        "derived": [{"name": d.name, "definition": derived_definition(d), "note": d.note or ""}
                    for d in spec.derive],
        "groups": groups,
        "replicate": spec.replicate.model_dump() if spec.replicate else None,
        "nesting": data.nesting,
    }


def verdict_sentence(comp: SpecComparison) -> str:
    n = comp.counts()
    total = sum(n.values())
    if not total:
        missing = [f"{s.source} {s.status.replace('_', ' ')}" for s in comp.sources
                   if s.status not in ("ok", "agree")]
        return ("Nothing to compare yet" + (f" ({'; '.join(missing)})" if missing else "") + ".")
    text = f"{total} comparisons: {n['agree']} agree"
    if n["explained"]:
        text += f", {n['explained']} differ for a known reason"
    if n["unexplained"]:
        text += f", {n['unexplained']} differ with no known reason (see the red rows)"
    return text + "."


def parameter_table(comp: SpecComparison) -> dict[str, Any]:
    """Rows keyed by canonical name with one column per source, and the checks per row."""
    sources = [s.source for s in comp.sources if s.kind == "reference"
               or s.status not in ("error", "unavailable", "not_estimable", "pending")]
    rows = []
    for key in sorted(comp.values, key=ParamKey.sort_key):
        by_source = comp.values[key]
        checks = [c for c in comp.checks if c.key == key]
        verdicts = {c.verdict for c in checks}
        verdict = next((v for v in ("unexplained", "explained", "agree") if v in verdicts), "")
        worst = min(checks, key=lambda c: c.digits) if checks else None
        rows.append({"key": key, "values": {s: by_source.get(s, {}) for s in sources},
                     "checks": checks, "verdict": verdict,
                     "digits": worst.digits if worst else None,
                     "group": key.kind, "explanations": row_explanations(comp, checks)})
    return {"sources": sources, "rows": rows}


def row_explanations(comp: SpecComparison, checks: list[Check]) -> list[dict[str, Any]]:
    """One entry per rule that explains checks of a row: its sentence once (the first
    check's), and every pair it explains with that pair's difference and evidence numbers."""
    spec_ids = {k.id for k in comp.spec.known_differences}
    out: dict[str, dict[str, Any]] = {}
    for c in checks:
        if c.verdict != "explained":
            continue
        entry = out.setdefault(c.known_id, {
            "id": c.known_id, "text": c.explanation, "pairs": [],
            "title": ("spec-level known difference" if c.known_id in spec_ids
                      else DIFFERENCE_TITLES.get(c.known_id, ""))})
        entry["pairs"].append(c)
    return list(out.values())


def coefficients(comp: SpecComparison) -> str:
    """The coefficient plot of the fixed effects (and thresholds) across engines and
    references, on the scale of the comparison (log-odds for logits)."""
    sources = shown_sources(comp)
    terms = []
    for key in parameter_keys(comp):
        if key.kind not in ("fixed", "threshold"):
            continue
        pts = [(str(s), v["estimate"], v.get("std_error")) for s in sources
               if "estimate" in (v := comp.values[key].get(s, {}))]
        terms.append((table_label(key), pts))
    return coefficient_plot(terms, f"Fixed effects across {len(sources)} sources")


def fit_statistics(run: SpecRun) -> list[dict[str, Any]]:
    rows = []
    for name, r in run.results.items():
        if r.status != "ok":
            continue
        s, d = r.statistics, r.diagnostics
        rows.append({"backend": name, "method": r.provenance.method or "", "nobs": s.nobs,
                     "groups": ", ".join(f"{g} {n}" for g, n in s.ngroups.items()),
                     "loglik": s.loglik, "reml": s.reml_criterion, "deviance": s.deviance,
                     "aic": s.aic, "bic": s.bic, "df": s.df, "optimizer": d.optimizer or "",
                     "evaluations": d.evaluations, "gradient": d.max_abs_gradient,
                     "seconds": r.timings.get("fit", r.timings.get("total"))})
    return rows


def diagnostics_text(run: SpecRun) -> list[dict[str, str]]:
    """Plain-language paragraphs: convergence, warnings, and which optimum is better."""
    out: list[dict[str, str]] = []
    ok = {n: r for n, r in run.results.items() if r.status == "ok"}
    for name, r in run.results.items():
        if r.status != "ok":
            why = {"unavailable": "could not run on this machine",
                   "not_estimable": "cannot fit this model",
                   "error": "failed with an error", "pending": "is not implemented yet"}.get(
                       r.status, r.status)
            out.append({"level": "muted", "text": f"{name} {why}: {r.message}"})
            continue
        d = r.diagnostics
        bits = []
        if d.converged is False:
            bits.append("did NOT report convergence")
        elif d.converged:
            bits.append("converged")
        if d.optimizer:
            bits.append(f"optimizer {d.optimizer}"
                        + (f", {d.evaluations} evaluations" if d.evaluations else ""))
        if d.max_abs_gradient is not None:
            bits.append(f"max |gradient| {d.max_abs_gradient:.2g}")
        out.append({"level": "bad" if d.converged is False else "ok",
                    "text": f"{name}: " + "; ".join(bits or ["no convergence information"]) + "."})
        for w in d.warnings:
            text = f"{name} warned: “{w}”."
            if "grad" in w.lower() or "converge" in w.lower():
                text += (" lme4 checks the scaled gradient at the optimum against 0.002; on flat "
                         "likelihoods (variance parameters, large n) it warns although the "
                         "optimum is fine. The log-likelihood comparison below says whether it "
                         "matters here.")
            out.append({"level": "warn", "text": text})
        if d.singular:
            out.append({"level": "warn", "text": (
                f"{name} reports a singular fit: a variance is (near) zero or a correlation is "
                "±1. The random part is over-parameterised for these data; variance parameters "
                "are ill-determined, so the comparison loosens their tolerance "
                "(model class near-singular).")})
        for m in d.messages:
            out.append({"level": "muted", "text": f"{name}: {m}"})
    names = list(ok)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra, rb = ok[a], ok[b]
            la, lb = ra.statistics.loglik, rb.statistics.loglik
            if la is None or lb is None:
                continue
            if not (ra.estimator and rb.estimator
                    and ra.estimator.same_estimates(rb.estimator)):
                out.append({"level": "muted", "text": (
                    f"{a} ({ra.provenance.method}) and {b} ({rb.provenance.method}) maximise "
                    "different likelihoods, so their log-likelihoods are not comparable.")})
                continue
            gap = la - lb
            if abs(gap) < 1e-4:
                warned = [n for n, r in ((a, ra), (b, rb)) if r.diagnostics.warnings
                          or r.diagnostics.converged is False]
                text = (f"{a} and {b} reach the same log-likelihood ({la:.6f} vs {lb:.6f}, "
                        f"difference {abs(gap):.1g}): the same optimum.")
                if warned:
                    text += (f" {' and '.join(warned)}'s convergence warning is a false alarm "
                             "here: its optimum is not worse.")
                out.append({"level": "ok", "text": text})
            else:
                better, worse = (a, b) if gap > 0 else (b, a)
                out.append({"level": "warn", "text": (
                    f"{better} reaches a higher log-likelihood than {worse} by {abs(gap):.3g} "
                    f"({la:.6f} vs {lb:.6f}): {better}'s estimates are the better optimum, "
                    f"and {worse}'s optimizer stopped short of the maximum.")})
    return out


def caterpillars(ok: dict) -> list[dict[str, str]]:
    out = []
    for name, r in ok.items():
        keys = sorted({(e.group, e.term) for e in r.random_effects})
        for g, t in keys:
            rows = caterpillar_data(r, g, t, CATERPILLAR_MULTIPLIER)
            svg = caterpillar(rows, f"{name}: {g} {term_words(t)}", g, CATERPILLAR_MULTIPLIER)
            if svg:
                out.append({"backend": name, "group": g, "term": t, "svg": svg})
    return out


def scatters(comp: SpecComparison, ok: dict) -> list[dict[str, str]]:
    """BLUPs of one backend against another (native vs lme4 first) with the identity line."""
    out = []
    order = sorted(comp.blups, key=lambda b: (not ({b.source_a, b.source_b} == {"native",
                                                                                  "lme4"}),))
    for ag in order:
        a, b = ag.source_a, ag.source_b
        if b == "native":  # native on the x axis
            a, b = b, a
        ea = {(e.level): e.estimate for e in ok[a].random_effects
              if e.group == ag.group and e.term == ag.term}
        eb = {(e.level): e.estimate for e in ok[b].random_effects
              if e.group == ag.group and e.term == ag.term}
        pts = [(f"{ag.group} {lv}", ea[lv], eb[lv]) for lv in ea if lv in eb]
        svg = scatter(pts, f"{ag.group} {term_words(ag.term)}: {b} vs {a}", f"{a} BLUP",
                      f"{b} BLUP")
        if svg:
            out.append({"a": a, "b": b, "group": ag.group, "term": ag.term, "svg": svg})
    return out


def api_snippet(run: SpecRun, data_dir: Path | None = None) -> str:
    """Python that refits this spec with the native engine and prints the side-by-side table,
    through the documented API (docs/api.md), runnable as shown."""
    import pprint

    if run.spec_path is not None:
        load = f"spec = mh.load({str(run.spec_path)!r})"
    else:
        literal = pprint.pformat(run.spec.model_dump(mode="json", exclude_defaults=True),
                                 width=88, sort_dicts=False)
        load = "spec = mh.from_dict(" + literal.replace("\n", "\n    ") + ")"
    where = f", data_dir={str(data_dir)!r}" if data_dir else ""
    return (f"import mlm_harness as mh\n\n{load}\n"
            f"comparison = mh.fit(spec, backends=[\"native\"]{where})\n"
            "print(comparison.to_markdown())")


def backend_code(run: SpecRun, data_dir: Path | None = None) -> list[dict[str, str]]:
    """The exact code each backend ran (provenance), else what it would run (render). For the
    native engine: the Python API call that refits the spec, then the estimator call it makes."""
    out = []
    for name, r in run.results.items():
        code, what = "", ""
        if name == "native":
            call = r.provenance.call or ""
            code = api_snippet(run, data_dir) + (
                "\n\n# inside, on the prepared data:\n# " + call.replace("\n", "\n# ")
                if call else "")
            out.append(_code_entry(name, code, "Python API: refits this spec and prints the "
                                               "side-by-side table"))
            continue
        if r.provenance.script:
            code, what = r.provenance.script, "script that reproduces the fit"
        elif r.provenance.call:
            code, what = r.provenance.call, "call"
        if r.provenance.script and r.provenance.call and r.provenance.call not in code:
            code += f"\n\n# call\n{r.provenance.call}"
        if not code:
            try:
                from backends.base import get_backend

                code = get_backend(name).render(run.spec)
                what = "code this backend would run (it did not run here)"
            except Exception:  # a backend that cannot even render must not break the report
                code = ""
        out.append(_code_entry(name, code, what))
    try:  # backends not in this run (e.g. Stata without a licence): what they would run
        from backends.base import backend_names, get_backend

        for name in backend_names():
            if name not in run.results:
                code = (api_snippet(run, data_dir) if name == "native"
                        else get_backend(name).render(run.spec))
                if code:
                    out.append(_code_entry(name, code, "not run here: the code it would run"))
    except Exception:  # rendering is a courtesy; it must never break the report
        pass
    return out


def _code_entry(name: str, code: str, what: str) -> dict[str, str]:
    lang = {"lme4": "R", "glmmtmb": "R", "stata": "Stata", "native": "Python"}.get(name, "")
    return {"backend": name, "code": code, "what": what, "lang": lang,
            "id": "code-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)}


def used_known_differences(comp: SpecComparison) -> list[dict[str, str]]:
    """The known differences behind this spec's explained cells, and the spec's own notes."""
    ids = sorted({c.known_id for c in comp.checks if c.known_id})
    out = []
    spec_ids = {k.id: k for k in comp.spec.known_differences}
    for i in ids:
        if i in spec_ids:
            out.append({"id": i, "title": "spec-level known difference",
                        "explanation": spec_ids[i].explanation, "source": "spec"})
        elif i in RULE_OF:
            rule = BY_ID[RULE_OF[i]]
            out.append({"id": i, "title": DIFFERENCE_TITLES[i], "explanation": rule.explanation,
                        "source": f"registry rule '{rule.id}' (evidence: {rule.evidence})"})
    for k in comp.spec.known_differences:
        if k.id not in ids:
            out.append({"id": k.id, "title": "spec-level known difference (not needed in this "
                        "run)", "explanation": k.explanation, "source": "spec"})
    for n in comp.spec.notes:
        out.append({"id": n.id, "title": "note", "explanation": n.text, "source": "spec"})
    return out
