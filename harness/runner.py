"""Run specs: prepare each dataset once, fit every requested backend, compare, collect.

Data problems (a missing dataset, a bad derived variable) are found for every spec before any
model is fitted, so a suite run fails in seconds, naming all of them, instead of after minutes.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from backends.base import Availability, FitJob, get_backend
from harness import memory
from harness.bridges import bridge_jobs
from harness.compare import Check, SpecComparison, compare_spec
from harness.crosschecks import lr_statistics, replication_checks
from harness.datacheck import (DataCheckError, check_attributes, check_complete_rows,
                               check_has_rows, check_numeric_columns, check_outcome, model_uses)
from harness.datasets import DatasetError, load_dataset
from harness.derive import DeriveError, apply_derivations, evaluate_expr
from harness.evidence import build_evidence
from harness.fitcache import FitCache, fit_key, relabel
from harness.keys import ParamKey
from harness.memory import MemoryBudgetError
from harness.model_keys import reference_key_problems
from harness.parallel import imap_unordered
from harness.results import FitResult
from harness.spec import Spec, SpecError


class DataPreparationError(ValueError):
    """The data for a spec could not be prepared; the message names the spec and the fix."""


@dataclass
class PreparedData:
    frame: pd.DataFrame
    path: Path | None
    sha256: str | None
    rows_in_file: int
    rows_after_subset: int
    derived: list[str]
    nesting: list[str] = field(default_factory=list)


@dataclass
class SpecRun:
    spec: Spec
    spec_path: Path | None
    data: PreparedData
    results: dict[str, FitResult]
    comparison: SpecComparison


@dataclass
class RunOptions:
    backends: list[str]
    required: set[str] = field(default_factory=set)
    data_dir: Path | None = None
    jobs: int = 1
    cache_dir: Path | None = None  # None: no on-disk fit cache (identical fits still run once)
    scheduler: str | None = None  # a Dask scheduler address: fit there (harness/simulate)


@dataclass
class SuiteRun:
    runs: list[SpecRun]
    options: RunOptions
    availability: dict[str, Availability]
    started: str
    seconds: float
    command_line: str
    platform: str

    def required_failures(self) -> list[str]:
        """Required backends that could not produce a result for a spec they support."""
        problems = []
        for run in self.runs:
            for name in self.options.required:
                r = run.results.get(name)
                if r is not None and r.status in ("error", "unavailable"):
                    problems.append(f"{run.spec.id}: required backend {name} {r.status}: "
                                    f"{r.message}")
        return problems

    def unfitted(self) -> dict[str, dict[str, str]]:
        """Specs that no backend could fit although at least one tried and failed:
        {spec id: {backend: its error}}. Such a spec has nothing to compare, so it is a data or
        spec error (exit 2), not a pass."""
        out = {}
        for run in self.runs:
            statuses = {r.status for r in run.results.values()}
            if "error" in statuses and "ok" not in statuses:
                out[run.spec.id] = {name: r.message for name, r in run.results.items()
                                    if r.status == "error"}
        return out


def prepare_data(spec: Spec, data_dir: Path | None = None) -> PreparedData:
    """Load the spec's dataset, add its derived variables and apply its subset.

    Before anything is fitted the data are checked against the spec (harness/datacheck.py) and
    every large allocation against the memory budget (harness/memory.py); either problem is a
    :class:`DataPreparationError` naming the spec, the key and the fix.
    """
    try:
        loaded = load_dataset(spec.dataset, data_dir=data_dir, base=spec.folder)
    except DatasetError as e:
        raise DataPreparationError(f"spec {spec.id}: {e}") from None
    try:
        frame, rows_in_file = _prepared_frame(spec, loaded.frame, loaded.file_format == "csv",
                                              loaded.name)
    except (DeriveError, DataCheckError, MemoryBudgetError) as e:
        raise DataPreparationError(f"spec {spec.id}: {e}") from None
    return PreparedData(frame=frame, path=loaded.path, sha256=loaded.sha256,
                        rows_in_file=rows_in_file, rows_after_subset=len(frame),
                        derived=[d.name for d in spec.derive],
                        nesting=infer_nesting(frame, spec.model.parsed.grouping_factors))


def _prepared_frame(spec: Spec, raw: pd.DataFrame, csv: bool, name: str
                    ) -> tuple[pd.DataFrame, int]:
    """The checked, replicated, derived and subset frame, and its row count before the subset."""
    check_has_rows(len(raw), f"dataset: {name} has no rows (only a header?); nothing can be "
                             "fitted")
    check_numeric_columns(raw, spec, csv=csv)
    base = replicate(raw, spec) if spec.replicate else raw
    memory.check(memory.frame_bytes(base) + len(spec.derive) * len(base) * 16,
                 f"adding {len(spec.derive)} derived column(s) to {len(base):,} rows", "derive")
    frame = apply_derivations(base, spec.derive)
    rows_in_file = len(frame)
    if spec.subset:
        keep = evaluate_expr(spec.subset, frame, "subset")
        frame = frame[np.asarray(keep.fillna(0) != 0)]
        check_has_rows(len(frame), f"subset: {spec.subset!r} keeps none of the "
                                   f"{rows_in_file:,} rows; check the condition")
    missing = sorted(v for v in spec.model.columns() if v not in frame.columns)
    if missing:
        raise DataCheckError(
            f"model.formula: the model uses {missing}, which dataset {spec.dataset!r} does not "
            f"have and 'derive' does not create")
    for use in model_uses(spec):
        check_complete_rows(frame, use)
        check_outcome(frame, use)
        check_attributes(frame, use)
    return frame.reset_index(drop=True), rows_in_file


def replicate(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """Stack copies of the data as the course's upscaled files do (see ``Replicate``).

    The copies are estimated against the memory budget first (``replicate.times``).
    """
    rep = spec.replicate
    assert rep is not None
    if rep.cluster not in frame.columns:
        raise DataCheckError(f"replicate.cluster: {rep.cluster!r} is not a column of the data")
    rows = len(frame) * rep.times
    extra = 3 if rep.new_id else 2  # rep1, its int64 copy numbers, and new_id
    memory.check(memory.frame_bytes(frame) * rep.times + rows * 8 * extra,
                 f"{rep.times} copies of {len(frame):,} rows ({rows:,} rows)", "replicate.times")
    copies = np.repeat(np.arange(1, rep.times + 1), len(frame))
    out = pd.concat([frame] * rep.times, ignore_index=True)
    out["rep1"] = copies.astype("float64")
    if rep.new_id:
        out[rep.new_id] = out[rep.cluster].astype("float64") * 100000 + out["rep1"]
    return out


def infer_nesting(frame: pd.DataFrame, factors: list[str]) -> list[str]:
    """Grouping factors ordered from the highest level down, if each nests in the one before.

    Used for Stata's level-k ICC; returns [] for crossed factors or a single factor.
    """
    if len(factors) < 2 or any(":" in f for f in factors):
        return []
    order = sorted(factors, key=lambda f: frame[f].nunique())
    for outer, inner in zip(order, order[1:]):
        if frame.groupby(inner)[outer].nunique().max() != 1:
            return []
    return order


def fit_one(spec: Spec, backend_name: str, data: PreparedData) -> FitResult:
    """One backend on one spec; every failure becomes a result that says why."""
    backend = get_backend(backend_name)
    reason = spec.skip_reason(backend_name)
    if reason:
        return FitResult.failed(spec.id, backend_name, "not_estimable", reason)
    available = backend.availability()
    if not available.ok:
        return FitResult.failed(spec.id, backend_name, "unavailable", available.message())
    model = spec.model_for(backend_name)
    reason = backend.unsupported_reason(model)
    if reason:
        return FitResult.failed(spec.id, backend_name, backend.unsupported_status_for(model),
                                reason)
    job = FitJob(spec=spec, model=model, data=data.frame, data_path=data.path,
                 data_sha256=data.sha256)
    start = time.perf_counter()
    try:
        result = backend.fit(job)
    except Exception as e:  # a backend bug must not take the suite down; it is shown as error
        result = FitResult.failed(spec.id, backend_name, "error",
                                  f"{type(e).__name__}: {e} (a bug in the {backend_name} backend)")
    result.timings.setdefault("total", time.perf_counter() - start)
    if result.provenance.data_sha256 is None and result.provenance.mode in ("live", "batch"):
        result.provenance.data_sha256 = data.sha256  # a stored result keeps the one it names
    return result


def cross_spec_checks(spec: Spec, by_id: dict[str, Spec],
                      results: dict[tuple[str, str], FitResult], backends: list[str],
                      ) -> tuple[dict[str, dict[ParamKey, float]], list[Check], list[str]]:
    """LR tests and replication identities for ``spec`` against other specs of the run."""
    values: dict[str, dict[ParamKey, float]] = {}
    checks: list[Check] = []
    notes: list[str] = []
    for cc in spec.cross_checks:
        other_id = cc.against if cc.type == "lr_test" else cc.base
        other = by_id.get(other_id or "")
        if other is None:
            notes.append(f"{cc.type} against {other_id}: that spec is not part of this run")
            continue
        for name in backends:
            mine, theirs = results[(spec.id, name)], results[(other.id, name)]
            if mine.status != "ok" or theirs.status != "ok":
                continue
            if cc.type == "lr_test":
                stats, note = lr_statistics(spec, other, mine, theirs)
                for k, v in stats.items():
                    values.setdefault(name, {})[ParamKey.stat(f"lr/{other.id}/{k}")] = v
                notes.append(f"{name}: LR test against {other.id}: {note}")
            else:
                rep = spec.replicate
                renamed = {rep.new_id: rep.cluster} if rep and rep.new_id else {}
                checks.extend(replication_checks(cc, mine, theirs, renamed))
    return values, checks, notes


Finished = dict[str, tuple[FitResult, str]]
"""The fits of one run so far: {fit key: (result, where it came from)} (see :func:`fit_jobs`)."""


def fit_jobs(jobs: dict[tuple[str, str], tuple[Spec, str]], options: RunOptions,
             prepared: dict[str, PreparedData],
             progress: Callable[[Iterable, int], Iterable] | None = None,
             finished: Finished | None = None) -> dict[tuple[str, str], FitResult]:
    """Fit every job {(label, backend): (spec, backend)} on its spec's prepared data, running
    each distinct fit once and reusing finished fits from disk (see harness/fitcache.py).

    A fit is identified by its cache key (:func:`~harness.fitcache.fit_key`), so two specs that
    fit the same model on the same data start one fit. ``finished`` carries the fits across the
    calls of one run (the run's own fits, then its bridge fits: :func:`run_specs`), so a fit is
    never started twice in a run even without the on-disk cache; it is updated in place.
    """
    disk = FitCache(options.cache_dir) if options.cache_dir else None
    done: Finished = finished if finished is not None else {}
    keys: dict[tuple[str, str], str] = {}
    todo: dict[str, tuple[Spec, str]] = {}
    for job, (spec, name) in jobs.items():
        key = fit_key(spec, name, prepared[spec.id].sha256)
        keys[job] = key
        if key in todo or key in done:
            continue
        cached = disk.get(key) if disk else None
        if cached is not None:
            done[key] = (cached, "fit cache")
        else:
            todo[key] = (spec, name)

    def work(item: tuple[str, tuple[Spec, str]]) -> tuple[str, FitResult]:
        key, (spec, name) = item
        return key, fit_one(spec, name, prepared[spec.id])

    def finish(iterator: Iterable[tuple[str, FitResult]]) -> None:
        for key, result in (progress(iterator, len(todo)) if progress else iterator):
            done[key] = (result, "same run")
            if disk:
                disk.put(key, result)

    if options.scheduler and todo:
        from harness.simulate.cluster import fits_on_cluster

        finish(fits_on_cluster(options.scheduler, [(key, spec, name, prepared[spec.id])
                                                   for key, (spec, name) in todo.items()]))
    else:
        finish(imap_unordered(work, list(todo.items()), options.jobs))
    return {job: relabel(done[key][0], jobs[job][0].id, done[key][1])
            for job, key in keys.items()}


def fit_all(specs: list[tuple[Path | None, Spec]], options: RunOptions,
            prepared: dict[str, PreparedData],
            progress: Callable[[Iterable, int], Iterable] | None = None,
            finished: Finished | None = None) -> dict[tuple[str, str], FitResult]:
    """Fit every spec x backend (see :func:`fit_jobs`)."""
    return fit_jobs({(spec.id, name): (spec, name) for _, spec in specs
                     for name in options.backends}, options, prepared, progress, finished)


def run_specs(specs: list[tuple[Path | None, Spec]], options: RunOptions,
              progress: Callable[[Iterable, int], Iterable] | None = None) -> SuiteRun:
    """Prepare every spec's data first (fail fast on data errors), then fit and compare."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    availability = {name: get_backend(name).availability() for name in options.backends}
    prepared: dict[str, PreparedData] = {}
    problems = []
    for path, spec in specs:
        try:
            prepared[spec.id] = prepare_data(spec, options.data_dir)
        except DataPreparationError as e:
            problems.append(f"{path}: {e}" if path else str(e))
    if problems:
        raise DataPreparationError("\n".join(problems))
    key_problems = [f"{path or spec.id}: {p}" for path, spec in specs
                    for p in reference_key_problems(spec, prepared[spec.id].frame)]
    if key_problems:
        raise SpecError.several(key_problems)

    finished: Finished = {}
    results = fit_all(specs, options, prepared, progress, finished)
    bridges = fit_jobs(bridge_jobs(specs, results, options.backends), options, prepared, progress,
                       finished)

    by_id = {spec.id: spec for _, spec in specs}
    runs = []
    for path, spec in specs:
        spec_results = {name: results[(spec.id, name)] for name in options.backends}
        data = prepared[spec.id]
        extra_values, extra_checks, notes = cross_spec_checks(spec, by_id, results,
                                                              options.backends)
        evidence = build_evidence(spec, data.frame, data.nesting, spec_results,
                                  {job[1:]: r for job, r in bridges.items() if job[0] == spec.id})
        runs.append(SpecRun(spec, path, data, spec_results,
                            compare_spec(spec, spec_results, data.nesting, extra_values,
                                         extra_checks, notes, evidence)))
    return SuiteRun(runs=runs, options=options, availability=availability, started=started,
                    seconds=time.perf_counter() - t0, command_line=" ".join(sys.argv),
                    platform=platform.platform())

