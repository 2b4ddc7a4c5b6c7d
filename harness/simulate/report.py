"""The study's HTML report: verdict, design, coverage and bias plots with MC error bars, rates.

Standalone like the run report (inline CSS from harness/templates/style.css, inline SVG, no
network). Plots are drawn per design grid against the grid's first numeric dimension that
varies (k for a k × n grid, the ICC for an ICC grid), one line per fit and value of the next
varying dimension, one plot per family and parameter: fixed effects with Wald intervals,
random-effect sds with Wald intervals on the log scale (both types are in the tables).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .plots import Series, line_plot
from .study import DIMENSIONS, LoadedStudy, expand_cells, value_label
from .verdicts import verdict

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
X_ORDER = ("clusters", "cluster_size", "cases", "icc")
DIM_TEXT = {"clusters": "k (clusters)", "cluster_size": "n (cluster size)",
            "cases": "cases", "icc": "ICC", "family": "family", "outcome": "outcome"}


def _plot_keys(summary: pd.DataFrame) -> list[str]:
    keys = sorted(k for k in summary["key"].unique() if isinstance(k, str) and (
        k.startswith("fixed/") or ("/sd__" in k and k.startswith("ran_pars/"))))
    return keys


def _numeric(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.replace("", pd.NA), errors="coerce")


def plot_groups(loaded: LoadedStudy, summary: pd.DataFrame) -> list[dict[str, Any]]:
    groups = []
    for i, grid in enumerate(loaded.study.grids):
        cells = {c.id: c for c in expand_cells(loaded.study.model_copy(update={"design": grid}))}
        rows = summary[summary["cell"].isin(cells)]
        if rows.empty:
            continue
        dims = [d for d in (*DIMENSIONS, *grid.effects) if d in rows.columns
                and rows[d].nunique() > 1]
        x = next((d for d in (*X_ORDER, *grid.effects) if d in dims
                  and _numeric(rows[d]).notna().any()), None)
        if x is None:
            continue
        facet = "family" if "family" in dims else None
        other = [d for d in dims if d not in (x, facet)]
        svgs = []
        for fam in (sorted(rows[facet].unique()) if facet else [None]):
            fr = rows[rows[facet] == fam] if facet else rows
            for key in _plot_keys(fr):
                for metric, interval, ref, label in _panels(key, loaded.study.level):
                    svg = _panel(fr, key, metric, interval, x, other, ref, label, fam)
                    if svg:
                        svgs.append(svg)
        title = "Coverage and bias against " + DIM_TEXT.get(x, x)
        if len(loaded.study.grids) > 1:
            title += f" (design grid {i + 1})"
        groups.append({"title": title, "svgs": svgs,
                       "note": "One line per fit" + (f" and {', '.join(DIM_TEXT.get(o, o) for o in other)}"
                                                     if other else "")
                       + "; error bars ±2 Monte Carlo SE; fixed effects: Wald intervals; "
                         "random-effect sds: Wald intervals on the log scale; sds: relative "
                         "bias."})
    return groups


def _panels(key: str, level: float) -> list[tuple[str, str, float, str]]:
    if key.startswith("fixed/"):
        return [("coverage", "wald", level, f"{level:.0%}"), ("bias", "", 0.0, "no bias")]
    return [("coverage", "wald_log", level, f"{level:.0%}"),
            ("relative_bias", "", 0.0, "no bias")]


def _panel(rows: pd.DataFrame, key: str, metric: str, interval: str, x: str, other: list[str],
           ref: float, ref_label: str, family: str | None) -> str:
    sel = rows[(rows["key"] == key) & (rows["metric"] == metric) & (rows["interval"] == interval)]
    if sel.empty:
        return ""
    fits = sorted(sel["fit"].unique())
    combos = sorted(sel[other].drop_duplicates().itertuples(index=False)) if other else [()]
    series = []
    for fi, fit in enumerate(fits):
        for ci, combo in enumerate(combos):
            part = sel[sel["fit"] == fit]
            for d, v in zip(other, combo):
                part = part[part[d] == v]
            xs = _numeric(part[x])
            pts = tuple((float(xv), float(r.value), None if pd.isna(r.mcse) else float(r.mcse))
                        for xv, r in zip(xs, part.itertuples()) if pd.notna(xv))
            if pts:
                label = fit + "".join(f", {DIM_TEXT.get(d, d).split(' ')[0]}={value_label(v)}"
                                      for d, v in zip(other, combo))
                series.append(Series(label, fi, ci, pts))
    what = {"coverage": f"coverage ({interval.replace('_', ' ')})", "bias": "bias",
            "relative_bias": "relative bias"}[metric]
    title = f"{key}: {what}" + (f" — {family}" if family else "")
    return line_plot(series, title, DIM_TEXT.get(x, x), what, ref, ref_label)


def _rate(summary: pd.DataFrame, cell: str, fit: str, metric: str) -> str:
    r = summary[(summary["cell"] == cell) & (summary["fit"] == fit) & (summary["key"] == "")
                & (summary["metric"] == metric)]
    return f"{r['value'].iloc[0]:.3f} ± {r['mcse'].iloc[0]:.3f}" if len(r) else ""


def rate_rows(summary: pd.DataFrame, perf: pd.DataFrame) -> list[dict[str, str]]:
    out = []
    runs = summary[(summary["metric"] == "ok_rate")]
    for r in runs.itertuples():
        p = perf[(perf["cell"] == r.cell) & (perf["fit"] == r.fit)] if len(perf) else perf
        secs = f"{p['mean_seconds'].iloc[0]:.3f} ± {p['mcse'].iloc[0]:.3f}" if len(p) else ""
        out.append({"cell": r.cell, "fit": r.fit, "ok": _rate(summary, r.cell, r.fit, "ok_rate"),
                    "converged": _rate(summary, r.cell, r.fit, "convergence_rate"),
                    "singular": _rate(summary, r.cell, r.fit, "singular_rate"),
                    "seconds": secs, "n": int(r.n)})
    return out


def disagreement_rows(summary: pd.DataFrame) -> list[dict[str, Any]]:
    d = summary[summary["metric"] == "disagreement"]
    out = []
    for (cell, pair), r in d.groupby(["cell", "fit"], sort=True):
        overall = r[r["key"] == ""]
        if overall.empty:
            continue
        keys = r[(r["key"] != "") & (r["value"] > 0)].sort_values("value", ascending=False)
        out.append({"cell": cell, "pair": pair,
                    "rate": f"{overall['value'].iloc[0]:.3f} ± {overall['mcse'].iloc[0]:.3f}",
                    "keys": ", ".join(f"{k} ({v:.3f})" for k, v in zip(keys["key"],
                                                                     keys["value"])) or "none",
                    "n": int(overall["n"].iloc[0])})
    return out


def write_report(loaded: LoadedStudy, summary: pd.DataFrame, perf: pd.DataFrame, record: Any,
                 path: Path) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html"]))
    study = loaded.study
    fits = [{"label": f.label, "engine": f.engine,
             "estimator": f.estimator if isinstance(f.estimator, str) else
             "; ".join(f"{k}: {v}" for k, v in f.estimator.items()),
             "formula": f.formula or loaded.formula()} for f in study.fits]
    skipped = [f"fit {k} not run in this run: {v}" for k, v in record.skipped_fits.items()]
    problems = [f"batch failed (rerun to retry): {b}" for b in record.batches_failed]
    html = env.get_template("simulate.html").render(
        css=(TEMPLATES / "style.css").read_text(), study=study, cells=loaded.cells,
        record=record, formula=loaded.formula(), spec_id=loaded.spec.id if loaded.spec else "",
        fits=fits, truth=sorted(study.truth.items()), verdict=verdict(loaded, summary),
        problems=problems, skipped=skipped, plot_groups=plot_groups(loaded, summary) if len(summary) else [],
        rates=rate_rows(summary, perf) if len(summary) else [],
        disagreements=disagreement_rows(summary) if len(summary) else [])
    path.write_text(html)
