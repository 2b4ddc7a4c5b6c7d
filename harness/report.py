"""Write a run's outputs: per-backend result JSON, ``summary.json`` and the HTML report.

``summary.json`` is a contract for CI users. Its keys: ``schema_version``, ``run`` (date, command
line, machine, software, backends' availability), ``totals`` (``specs``, ``references`` — the
number of reference values — ``checks``, and the counts of spec x source cells by status:
``agree``, ``explained``, ``unexplained``, ``pending``, ``errors``, ``unavailable``,
``not_estimable``) and ``specs`` (per spec: ``id``, ``status``, ``backends`` {name: status},
``references`` {id: status}, ``unexplained`` — the differing rows).

Reports go to a new folder, or to a named one that is empty or was made by this tool; an existing
report is replaced only when the caller says so (``--overwrite``).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2

from harness import __version__
from harness.compare import SpecComparison
from harness.references import reference_values
from harness.runner import SuiteRun

SUMMARY_SCHEMA_VERSION = 1
_MARKER = ".mlm-harness-report"


class ReportFolderError(ValueError):
    pass


def prepare_folder(out: Path, overwrite: bool) -> None:
    """Refuse to write into a folder that holds anything this tool did not write."""
    if out.exists() and any(out.iterdir()):
        if not (out / _MARKER).exists():
            raise ReportFolderError(f"{out} exists and is not empty; choose a new folder with "
                                    "--out (nothing was written)")
        if not overwrite:
            raise ReportFolderError(f"{out} holds an earlier report; pass --overwrite to replace "
                                    "it, or choose a new folder with --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / _MARKER).write_text("written by mlm-harness; safe to replace with --overwrite\n")


def _cell_status(status: str) -> str:
    return "errors" if status == "error" else status


def summary(suite: SuiteRun) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    specs = []
    n_refs = n_checks = 0
    for run in suite.runs:
        comp = run.comparison
        n_checks += len(comp.checks)
        n_refs += sum(len(reference_values(r)) for r in run.spec.references)
        for s in comp.sources:
            totals[_cell_status(s.status)] += 1
        specs.append({
            "id": run.spec.id,
            "status": comp.status,
            "backends": {s.source: s.status for s in comp.sources if s.kind == "backend"},
            "references": {s.source.removeprefix("ref:"): s.status
                           for s in comp.sources if s.kind == "reference"},
            "unexplained": [
                {"key": c.key, "quantity": c.quantity, "a": c.source_a, "b": c.source_b,
                 "value_a": c.value_a, "value_b": c.value_b, "abs_diff": c.abs_diff,
                 "tolerance": c.tolerance, "digits": round(c.digits, 2)}
                for c in comp.checks if c.verdict == "unexplained"],
        })
    keys = ["agree", "explained", "unexplained", "pending", "errors", "unavailable",
            "not_estimable"]
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "run": run_header(suite),
        "totals": {"specs": len(suite.runs), "references": n_refs, "checks": n_checks,
                   **{k: totals.get(k, 0) for k in keys}},
        "specs": specs,
    }


def run_header(suite: SuiteRun) -> dict[str, Any]:
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
    }


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.globals["page_name"] = page_name
    return env


def format_number(v: float | None, sig: int = 7) -> str:
    if v is None:
        return ""
    if v == 0:
        return "0"
    return f"{v:.{sig}g}"


def page_name(spec_id: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in spec_id) + ".html"


def write_report(suite: SuiteRun, out: Path) -> dict[str, Any]:
    """Write results/, summary.json and the HTML pages into ``out`` (prepared by the caller)."""
    data = summary(suite)
    for run in suite.runs:
        folder = out / "results" / page_name(run.spec.id).removesuffix(".html")
        folder.mkdir(parents=True, exist_ok=True)
        for name, result in run.results.items():
            (folder / f"{name}.json").write_text(result.to_json())
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    env = _env()
    css = (Path(__file__).parent / "templates" / "style.css").read_text()
    (out / "index.html").write_text(env.get_template("index.html").render(
        summary=data, runs=suite.runs, css=css))
    pages = out / "specs"
    pages.mkdir(exist_ok=True)
    for run in suite.runs:
        (pages / page_name(run.spec.id)).write_text(env.get_template("spec.html").render(
            run=run, table=parameter_table(run.comparison), css=css, header=data["run"]))
    return data


def parameter_table(comp: SpecComparison) -> dict[str, Any]:
    """Rows keyed by canonical name with one column per source, and the checks per row."""
    sources = [s.source for s in comp.sources]
    rows = []
    for key in sorted(comp.values, key=_row_order):
        by_source = comp.values[key]
        checks = [c for c in comp.checks if c.key == key]
        verdicts = {c.verdict for c in checks}
        verdict = next((v for v in ("unexplained", "explained", "agree") if v in verdicts), "")
        rows.append({"key": key, "values": {s: by_source.get(s, {}) for s in sources},
                     "checks": checks, "verdict": verdict})
    return {"sources": sources, "rows": rows}


def _row_order(key: str) -> tuple[int, str]:
    order = {"fixed": 0, "threshold": 1, "ran_pars": 2, "stat": 3}
    return (order.get(key.split("/")[0], 9), key)

