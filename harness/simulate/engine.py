"""Run a study: plan the batches still to do, run them on Dask, store each as it finishes, then
write the tables and the report.

The order of work never matters: a replication's data come from its own random stream
(:meth:`harness.simulate.study.Cell.seed_sequence`), its fits are deterministic, and the tables
are computed from the stored replications sorted by (cell, rep, fit, key). So the same study
gives the same ``summary.csv`` on one worker or eight, in one run or resumed after a kill.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__

from .generate import build_population
from .replicate import Plan, timed_batch, warm_up
from .store import ResultStore
from .study import Cell, Fit, LoadedStudy

DEFAULT_BATCH = 10


@dataclass(frozen=True)
class Batch:
    """One Dask task: replications ``reps`` of ``cell`` for the fits ``fits``."""

    cell: Cell
    reps: tuple[int, ...]
    fits: tuple[str, ...]


@dataclass
class StudyRun:
    """What a run did (written to ``run.json`` and shown in the report)."""

    study: str
    started: str
    seconds: float = 0.0
    replications: int = 0
    batches_run: int = 0
    batches_failed: list[str] = field(default_factory=list)
    replications_run: dict[str, int] = field(default_factory=dict)
    skipped_fits: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    scheduler: str = "local"
    worker_memory_mb: dict[str, float] = field(default_factory=dict)
    load_average: tuple[float, float, float] | None = None
    batch_seconds: float = 0.0  # the tasks' own wall time, summed over workers
    compute_seconds: float = 0.0  # wall time from the first task sent to the last stored
    command_line: str = ""
    platform: str = ""
    mlm_harness: str = __version__


def available_fits(loaded: LoadedStudy) -> tuple[list[Fit], dict[str, str]]:
    """The fits whose engine can run here, and why the others cannot."""
    from backends.base import get_backend

    keep, skipped = [], {}
    for fit in loaded.study.fits:
        a = get_backend(fit.engine).availability()
        if a.ok:
            keep.append(fit)
        else:
            skipped[fit.label] = f"{fit.engine} unavailable: {a.message()}"
    return keep, skipped


def plan_batches(plan: Plan, replications: int, done: set[tuple[str, int, str]],
                 batch_size: int) -> list[Batch]:
    """Batches of at most ``batch_size`` consecutive replications that need the same fits."""
    batches = []
    for cell in plan.loaded.cells:
        labels = tuple(f.label for f, _ in plan.fits_for(cell))
        run: list[int] = []
        run_fits: tuple[str, ...] = ()
        for rep in range(replications):
            todo = tuple(x for x in labels if (cell.id, rep, x) not in done)
            if run and (todo != run_fits or len(run) >= batch_size):
                batches.append(Batch(cell, tuple(run), run_fits))
                run = []
            if todo:
                run_fits = todo
                run.append(rep)
        if run:
            batches.append(Batch(cell, tuple(run), run_fits))
    return batches


def run_study(loaded: LoadedStudy, out: Path, *, scheduler: str | None = None,
              workers: int | None = None, replications: int | None = None,
              batch_size: int | None = None, fresh: bool = False,
              data_dir: Path | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> StudyRun:
    """Run (or resume) ``loaded`` into folder ``out`` and write its tables and report."""
    from .cluster import connect, require_dask, worker_memory

    require_dask()
    study = loaded.study
    reps = replications or study.replications
    record = StudyRun(study=study.id, replications=reps, command_line=" ".join(sys.argv),
                      started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      platform=platform.platform(),
                      scheduler=scheduler or "local")
    t0 = time.perf_counter()
    store = ResultStore(out)
    store.open(loaded, fresh=fresh)
    fits, record.skipped_fits = available_fits(loaded)
    for label, why in record.skipped_fits.items():
        log(f"not running fit {label}: {why}")
    population = build_population(loaded, data_dir)
    plan = Plan(loaded, population, fits)
    size = batch_size or study.batch_size or DEFAULT_BATCH
    batches = plan_batches(plan, reps, store.done(), size)
    pending = sum(len(b.reps) for b in batches)
    log(f"study {study.id}: {len(loaded.cells)} cells x {reps} replications; "
        f"{pending} cell-replications to run in {len(batches)} batches")
    if batches:
        with connect(scheduler, workers) as client:
            record.workers = len(client.scheduler_info().get("workers", {}))
            _run_batches(client, plan, batches, store, record, progress, reps)
            record.worker_memory_mb = {a: round(b / 2 ** 20, 1)
                                       for a, b in worker_memory(client).items()}
    if hasattr(os, "getloadavg"):
        record.load_average = tuple(round(x, 2) for x in os.getloadavg())  # type: ignore
    record.seconds = round(time.perf_counter() - t0, 2)
    write_outputs(loaded, store, out, reps, record)
    return record


def _run_batches(client: Any, plan: Plan, batches: list[Batch], store: ResultStore,
                 record: StudyRun, progress: bool, reps: int) -> None:
    from distributed import as_completed

    engines = sorted({f.engine for f in plan.fits})
    client.gather([client.submit(warm_up, engines, workers=[address], pure=False)
                   for address in client.scheduler_info()["workers"]])
    bars = _progress_bars(plan, batches, reps) if progress else {}
    t0 = time.perf_counter()
    remote = client.scatter(plan, broadcast=True)
    futures = {client.submit(timed_batch, remote, b.cell, list(b.reps), list(b.fits),
                             pure=False): b for b in batches}
    try:
        for future in as_completed(futures):
            batch = futures.pop(future)
            try:
                frame, seconds = future.result()
            except Exception as e:  # a bug in generation or a worker that died: say which
                record.batches_failed.append(f"{batch.cell.id} reps {batch.reps[0]}-"
                                             f"{batch.reps[-1]}: {type(e).__name__}: {e}")
                continue
            store.write(frame, batch.cell.id, list(batch.reps), list(batch.fits))
            record.batches_run += 1
            record.batch_seconds += seconds
            for label in batch.fits:
                record.replications_run[label] = record.replications_run.get(label, 0) + \
                    len(batch.reps)
                if label in bars:
                    bars[label].update(len(batch.reps))
    finally:
        record.compute_seconds = round(time.perf_counter() - t0, 3)
        for future in futures:
            future.cancel()
        for bar in bars.values():
            bar.close()


def _progress_bars(plan: Plan, batches: list[Batch], reps: int) -> dict[str, Any]:
    """One bar per fit: replications done of all that fit runs in the study."""
    from tqdm import tqdm

    totals: dict[str, int] = {}
    for cell in plan.loaded.cells:
        for fit, _ in plan.fits_for(cell):
            totals[fit.label] = totals.get(fit.label, 0) + reps
    todo: dict[str, int] = {}
    for b in batches:
        for label in b.fits:
            todo[label] = todo.get(label, 0) + len(b.reps)
    width = max((len(x) for x in totals), default=4)
    return {label: tqdm(total=total, initial=total - todo.get(label, 0), position=i,
                        desc=label.ljust(width), unit="rep", file=sys.stderr, leave=True)
            for i, (label, total) in enumerate(totals.items())}


# ---- outputs -------------------------------------------------------------------------------


def study_rows(store: ResultStore, loaded: LoadedStudy, replications: int) -> pd.DataFrame:
    """The stored rows of this study as run: its cells and fits, replications below the count."""
    rows = store.load()
    if rows.empty:
        return rows
    cells = {c.id for c in loaded.cells}
    fits = {f.label for f in loaded.study.fits}
    keep = rows["cell"].isin(cells) & rows["fit"].isin(fits) & (rows["rep"] < replications)
    return rows[keep].reset_index(drop=True)


def write_outputs(loaded: LoadedStudy, store: ResultStore, out: Path, replications: int,
                  record: StudyRun) -> dict[str, Path]:
    """replications.parquet, summary.csv/.parquet, performance.csv, run.json, index.html."""
    from .report import write_report
    from .summarize import performance, summarize

    rows = study_rows(store, loaded, replications)
    summary = summarize(rows, loaded)
    perf = performance(rows, loaded) if not rows.empty else pd.DataFrame()
    files = {"replications": out / "replications.parquet", "summary_csv": out / "summary.csv",
             "summary": out / "summary.parquet", "performance": out / "performance.csv",
             "run": out / "run.json", "report": out / "index.html"}
    rows.to_parquet(files["replications"], index=False)
    summary.to_csv(files["summary_csv"], index=False, float_format="%.10g")
    summary.to_parquet(files["summary"], index=False)
    perf.to_csv(files["performance"], index=False, float_format="%.6g")
    files["run"].write_text(json.dumps(record.__dict__, indent=2, default=_json) + "\n")
    write_report(loaded, summary, perf, record, files["report"])
    return files


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
