"""From stored replications to the tidy summary: every metric with its Monte Carlo SE.

One row per (cell, fit, key, metric, interval) with ``value``, ``mcse`` and ``n`` (the
replications the value is computed from), the cell's design values as columns. The metrics and
their Monte Carlo standard errors follow Morris, White & Crowther (2019, *Statistics in
Medicine* 38:2074), over the replications whose fit succeeded:

* ``bias`` = mean(estimate) - truth, MCSE empSE / sqrt(n); ``relative_bias`` = bias / truth;
* ``empirical_se`` = sd(estimate), MCSE empSE / sqrt(2 (n - 1));
* ``rmse`` = sqrt(mean((estimate - truth)^2)), MCSE of the MSE by its sample sd, carried to
  the root by the delta method;
* ``model_se`` = sqrt(mean(SE^2)) and ``se_ratio`` = model_se / empirical_se (1 when the
  reported SEs are right), MCSE by the delta method;
* ``coverage`` (one row per interval type, ``interval`` column) over the replications that have
  that interval, MCSE sqrt(p (1 - p) / n); ``interval_rate`` says how many had one (an sd
  estimated at 0 has no Wald interval);
* ``rejection`` of each stated Wald test (``key`` is the tested effect, ``interval`` the test);
* per fit (``key`` empty): ``ok_rate``, ``convergence_rate``, ``singular_rate``, over all
  replications run;
* per pair of engines fitting the same model with the same estimator (``fit`` =
  ``a vs b``): ``disagreement``, the share of replications in which any estimate, engine SE or
  the log-likelihood differs by more than the engine tolerance of harness/tolerances.py (the
  same tolerance the comparison of a spec uses), overall (``key`` empty) and per key.

Run times are not here (they differ between runs; see :func:`performance`), so the same study
gives the same summary on any number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from harness.keys import ParamKey
from harness.tolerances import family_class, key_class, tolerance_for

from .intervals import INTERVAL_TYPES
from .study import DIMENSIONS, Cell, LoadedStudy, fit_spec, value_label

SUMMARY_COLUMNS = ["fit", "engine", "estimator", "key", "metric", "interval", "value", "mcse",
                   "n"]


def _row(fit: str, engine: str, estimator: str, key: str, metric: str, value: float,
         mcse: float | None, n: int, interval: str = "") -> dict[str, Any]:
    return {"fit": fit, "engine": engine, "estimator": estimator, "key": key, "metric": metric,
            "interval": interval, "value": value, "mcse": mcse, "n": n}


def _rate(hits: np.ndarray) -> tuple[float, float]:
    n = hits.size
    p = float(hits.mean()) if n else math.nan
    return p, math.sqrt(p * (1 - p) / n) if n else math.nan


def estimate_metrics(est: np.ndarray, truth: float, se: np.ndarray) -> list[tuple[str, float,
                                                                                  float]]:
    """(metric, value, MCSE) for one parameter's estimates (Morris et al. 2019, Table 6)."""
    n = est.size
    out: list[tuple[str, float, float]] = []
    if n == 0:
        return out
    emp = float(est.std(ddof=1)) if n > 1 else math.nan
    bias = float(est.mean() - truth)
    out.append(("mean", float(est.mean()), emp / math.sqrt(n)))
    out.append(("bias", bias, emp / math.sqrt(n)))
    if truth != 0:
        out.append(("relative_bias", bias / truth, emp / math.sqrt(n) / abs(truth)))
    out.append(("empirical_se", emp, emp / math.sqrt(2 * (n - 1)) if n > 1 else math.nan))
    sq = (est - truth) ** 2
    mse = float(sq.mean())
    mse_mcse = float(sq.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    rmse = math.sqrt(mse)
    out.append(("rmse", rmse, mse_mcse / (2 * rmse) if rmse > 0 else math.nan))
    se = se[np.isfinite(se)]
    if se.size > 1 and emp > 0:
        se2 = se ** 2
        model = math.sqrt(float(se2.mean()))
        var_se2 = float(se2.var(ddof=1))
        out.append(("model_se", model, math.sqrt(var_se2 / (4 * se.size * model ** 2))))
        ratio = model / emp
        out.append(("se_ratio", ratio, ratio * math.sqrt(var_se2 / (4 * se.size * model ** 4)
                                                         + 1 / (2 * (n - 1)))))
    return out


def summarize(reps: pd.DataFrame, loaded: LoadedStudy) -> pd.DataFrame:
    """The tidy summary of every cell of the study that has stored replications."""
    study = loaded.study
    rows: list[dict[str, Any]] = []
    by_cell = {c.id: c for c in loaded.cells}
    if reps.empty:
        return pd.DataFrame(columns=["cell", *SUMMARY_COLUMNS])
    for cell_id, cell_rows in reps.groupby("cell", sort=True):
        cell = by_cell.get(str(cell_id))
        if cell is None:  # a cell the study no longer lists: kept on disk, not reported
            continue
        start = len(rows)
        for fit_label, fr in cell_rows.groupby("fit", sort=True):
            rows.extend(_fit_rows(str(fit_label), fr, study))
        rows.extend(_pair_rows(loaded, cell, cell_rows))
        for r in rows[start:]:
            r["cell"] = cell.id
    frame = pd.DataFrame(rows)
    design = design_columns(loaded.cells)
    frame = frame.merge(design, on="cell", how="left")
    order = ["cell", *[c for c in design.columns if c != "cell"], *SUMMARY_COLUMNS]
    frame = frame[order].sort_values(["cell", "fit", "key", "metric", "interval"],
                                     kind="stable").reset_index(drop=True)
    frame["n"] = frame["n"].astype(int)
    return frame


def _fit_rows(label: str, fr: pd.DataFrame, study) -> Iterable[dict[str, Any]]:  # noqa: ANN001
    runs = fr.drop_duplicates("rep")
    engine = str(runs["engine"].iloc[0])
    ok_runs = runs[runs["status"] == "ok"]
    estimator = str(ok_runs["estimator"].iloc[0]) if len(ok_runs) else ""
    ident = (label, engine, estimator)
    for metric, column in (("ok_rate", None), ("convergence_rate", "converged"),
                           ("singular_rate", "singular")):
        hits = (runs["status"] == "ok").to_numpy() if column is None else \
            runs[column].to_numpy(dtype=bool)
        p, mc = _rate(hits)
        yield _row(*ident, "", metric, p, mc, len(runs))
    ok = fr[(fr["status"] == "ok") & (fr["key"] != "") & fr["truth"].notna()]
    tests = {t.key: t for t in study.tests}
    for key, kr in ok.groupby("key", sort=True):
        est = kr["estimate"].to_numpy(dtype=float)
        se = kr["std_error"].to_numpy(dtype=float)
        truth = float(kr["truth"].iloc[0])
        yield _row(*ident, str(key), "truth", truth, None, len(kr))
        for metric, value, mc in estimate_metrics(est, truth, se):
            yield _row(*ident, str(key), metric, value, mc, len(kr))
        for itype in INTERVAL_TYPES:
            lo = kr[f"{itype}_lower"].to_numpy(dtype=float)
            hi = kr[f"{itype}_upper"].to_numpy(dtype=float)
            has = np.isfinite(lo) & np.isfinite(hi)
            if not has.any():
                continue
            p, mc = _rate((lo[has] <= truth) & (truth <= hi[has]))
            yield _row(*ident, str(key), "coverage", p, mc, int(has.sum()), itype)
            p, mc = _rate(has)
            yield _row(*ident, str(key), "interval_rate", p, mc, len(kr), itype)
        test = tests.get(str(key))
        if test is not None:
            has = np.isfinite(se) & (se > 0)
            if has.any():
                zstat = np.abs(est[has] - test.h0) / se[has]
                p, mc = _rate(zstat > norm.ppf(1 - test.alpha / 2))
                yield _row(*ident, str(key), "rejection", p, mc, int(has.sum()),
                           f"wald z: {key} = {test.h0:g} at {test.alpha:g}")


# ---- engine disagreement -------------------------------------------------------------------


def comparable_pairs(loaded: LoadedStudy, family: str) -> list[tuple[str, str]]:
    """Pairs of fits by different engines of the same model with the same estimator."""
    models = {}
    for fit in loaded.study.fits:
        spec = fit_spec(loaded, fit, family)
        if spec is not None:
            models[fit.label] = (fit.engine, spec.model.model_dump_json())
    labels = sorted(models)
    return [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]
            if models[a][0] != models[b][0] and models[a][1] == models[b][1]]


def _pair_rows(loaded: LoadedStudy, cell: Cell, cell_rows: pd.DataFrame
               ) -> Iterable[dict[str, Any]]:
    family = loaded.family_of(cell)
    for a, b in comparable_pairs(loaded, family):
        ra, rb = cell_rows[cell_rows["fit"] == a], cell_rows[cell_rows["fit"] == b]
        if ra.empty or rb.empty:
            continue
        spec = fit_spec(loaded, next(f for f in loaded.study.fits if f.label == a), family)
        assert spec is not None
        per_rep, per_key = pair_disagreements(spec, family, ra, rb)
        label = f"{a} vs {b}"
        if not per_rep:
            continue
        hits = np.array(list(per_rep.values()))
        p, mc = _rate(hits)
        yield _row(label, "", "", "", "disagreement", p, mc, hits.size)
        for key, flags in sorted(per_key.items()):
            p, mc = _rate(np.array(flags))
            yield _row(label, "", "", key, "disagreement", p, mc, len(flags))


def pair_disagreements(spec, family: str, ra: pd.DataFrame, rb: pd.DataFrame  # noqa: ANN001
                       ) -> tuple[dict[int, bool], dict[str, list[bool]]]:
    """Per replication (both fits ok): does any quantity differ beyond the engine tolerance?
    Per key: the same flag for that key alone (estimate and engine SE together)."""
    ok_a = ra[(ra["status"] == "ok") & (ra["key"] != "")]
    ok_b = rb[(rb["status"] == "ok") & (rb["key"] != "")]
    both = ok_a.merge(ok_b, on=["rep", "key"], suffixes=("_a", "_b"))
    per_rep: dict[int, bool] = {}
    per_key: dict[str, list[bool]] = {}
    singular: dict[int, set[str]] = {}
    for rep, a_ns, b_ns in both[["rep", "near_singular_a", "near_singular_b"]].drop_duplicates(
            "rep").itertuples(index=False):
        singular[int(rep)] = {g for g in f"{a_ns},{b_ns}".split(",") if g}
    for row in both.itertuples(index=False):
        rep = int(row.rep)
        if row.key == "stat/icc":
            continue
        key = ParamKey.parse(row.key)
        cls = key_class(key, family, singular[rep])
        flags = []
        se = np.nanmax([row.std_error_a, row.std_error_b, np.nan]) \
            if np.isfinite([row.std_error_a, row.std_error_b]).any() else None
        flags.append(_beyond(spec, key, "estimate", row.estimate_a, row.estimate_b, cls,
                             None if se is None else float(se)))
        if row.se_source_a == "engine" and row.se_source_b == "engine":
            flags.append(_beyond(spec, key, "std_error", row.std_error_a, row.std_error_b, cls,
                                 None))
        hit = any(flags)
        per_key.setdefault(row.key, []).append(hit)
        per_rep[rep] = per_rep.get(rep, False) or hit
    runs = both.drop_duplicates("rep")
    for row in runs.itertuples(index=False):
        if pd.notna(row.loglik_a) and pd.notna(row.loglik_b):
            hit = _beyond(spec, ParamKey.stat("loglik"), "estimate", row.loglik_a, row.loglik_b,
                          family_class(family), None)
            per_key.setdefault("stat/loglik", []).append(hit)
            per_rep[int(row.rep)] = per_rep.get(int(row.rep), False) or hit
    return per_rep, per_key


def _beyond(spec, key: ParamKey, quantity: str, a: float, b: float, cls: str,  # noqa: ANN001
            se: float | None) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    tol = tolerance_for(spec, key, quantity, "engines", model=cls, se=se)
    return abs(a - b) > tol.absolute(a, b)


# ---- design columns and performance ---------------------------------------------------------


def design_columns(cells: list[Cell]) -> pd.DataFrame:
    """One row per cell: its design values (numbers stay numbers where a column allows)."""
    names = [d for d in DIMENSIONS if any(d in dict(c.values) for c in cells)]
    names += sorted({k for c in cells for k, _ in c.values if k not in DIMENSIONS})
    records = []
    for c in cells:
        values = dict(c.values)
        records.append({"cell": c.id, **{n: values.get(n) for n in names}})
    frame = pd.DataFrame(records, columns=["cell", *names])
    for n in names:
        values = [v for v in frame[n] if v is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            frame[n] = frame[n].astype("Int64")
        elif values and all(isinstance(v, int | float) and not isinstance(v, bool)
                            for v in values):
            frame[n] = frame[n].astype(float)
        else:
            frame[n] = frame[n].map(lambda v: "" if v is None else value_label(v))
    return frame


def performance(reps: pd.DataFrame, loaded: LoadedStudy) -> pd.DataFrame:
    """Run time per fit and cell: mean seconds per replication with its MCSE (differs between
    runs, so kept out of the summary)."""
    runs = reps.drop_duplicates(["cell", "rep", "fit"])
    rows = []
    for (cell, fit), fr in runs.groupby(["cell", "fit"], sort=True):
        s = fr["seconds"].to_numpy(dtype=float)
        s = s[np.isfinite(s)]
        rows.append({"cell": cell, "fit": fit, "engine": fr["engine"].iloc[0],
                     "mean_seconds": float(s.mean()) if s.size else math.nan,
                     "mcse": float(s.std(ddof=1) / math.sqrt(s.size)) if s.size > 1 else
                     math.nan, "n": int(s.size)})
    return pd.DataFrame(rows)
