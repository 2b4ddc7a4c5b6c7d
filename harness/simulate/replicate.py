"""One batch of replications of one cell: draw each data set, fit every engine, keep the facts.

This is the function a Dask worker runs. It returns one long table (a :class:`pandas.DataFrame`)
with a row per (replication, fit, parameter): the estimate, its standard error and where that SE
came from, and the interval columns of :mod:`.intervals`; fit-level columns (status,
convergence, singularity, run time, log-likelihood, the data's size) repeat on each of a fit's
rows, and a fit with no parameters (an error) has one row with an empty ``key``. Everything the
summary reports is derived from this table alone, so results stored by an interrupted run are as
good as fresh ones.

Standard errors: the engine's own where it reports one (fixed effects; native GLMMs' variance
parameters); otherwise, for variance parameters, the inverse observed information of the native
likelihood at that engine's own estimates under its own estimator
(:meth:`backends.native.evidence.EvidenceModel.covariance`; docs/evidence.md), so every engine's
variance components get a Wald interval computed the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.keys import ParamKey
from harness.results import FitResult
from harness.runner import PreparedData, fit_one
from harness.spec import Spec
from harness.tolerances import singular_groups

from .generate import ICC_KEY, Population, Truth, cell_truth, icc_of
from .intervals import interval_columns, z_value
from .study import Cell, Fit, LoadedStudy, fit_spec

MESSAGE_LIMIT = 300


@dataclass
class Plan:
    """Everything a worker needs, sent once per worker (``Client.scatter``)."""

    loaded: LoadedStudy
    population: Population
    fits: list[Fit]  # the fits this run executes (engines that are available)
    _specs: dict[tuple[str, str], Spec | None] = field(default_factory=dict, repr=False)

    def spec(self, fit: Fit, family: str) -> Spec | None:
        key = (fit.label, family)
        if key not in self._specs:
            self._specs[key] = fit_spec(self.loaded, fit, family)
        return self._specs[key]

    def fits_for(self, cell: Cell) -> list[tuple[Fit, Spec]]:
        family = self.loaded.family_of(cell)
        return [(f, s) for f in self.fits if (s := self.spec(f, family)) is not None]


def same_random_part(spec: Spec, formula: str) -> bool:
    """Whether a fit estimates the generating model's variance parameters (same random terms)."""
    from harness.formula import parse_formula

    return spec.model.parsed.random == parse_formula(formula).random


def run_batch(plan: Plan, cell: Cell, reps: list[int], fits: list[str] | None = None
              ) -> pd.DataFrame:
    """Replications ``reps`` of ``cell`` for the fits labelled ``fits`` (default: all)."""
    study = plan.loaded.study
    truth = cell_truth(plan.population, cell)
    chosen = [(f, s) for f, s in plan.fits_for(cell) if fits is None or f.label in fits]
    z = z_value(study.level)
    rows: list[dict[str, Any]] = []
    for rep in reps:
        rng = np.random.default_rng(cell.seed_sequence(study.seed, rep))
        data = plan.population.draw(cell, truth, rng)
        prepared = PreparedData(frame=data, path=None, sha256=None, rows_in_file=len(data),
                                rows_after_subset=len(data), derived=[])
        size = {"nobs": len(data), "clusters": int(data[plan.population.group].nunique())}
        evidence = _EvidenceCache(data)
        for fit, spec in chosen:
            result = fit_one(spec, fit.engine, prepared)
            base = {"cell": cell.id, "rep": rep, "fit": fit.label, **size,
                    **fit_columns(fit, result)}
            params = parameter_rows(result, spec, truth, plan.loaded.formula(), evidence, z)
            if params:
                rows.extend({**base, **p} for p in params)
            else:
                rows.append({**base, "key": ""})
    return pd.DataFrame(rows)


def fit_columns(fit: Fit, result: FitResult) -> dict[str, Any]:
    ok = result.status == "ok"
    return {"engine": fit.engine,
            "estimator": result.provenance.method or "",
            "status": result.status,
            # a fit without iterations (OLS) reports None: not a failure to converge
            "converged": bool(ok and result.diagnostics.converged is not False),
            "singular": bool(ok and result.diagnostics.singular is True),
            "near_singular": ",".join(sorted(singular_groups([result]))) if ok else "",
            "seconds": float(result.timings.get("total", float("nan"))),
            "loglik": result.statistics.loglik if ok else None,
            "warnings": len(result.diagnostics.warnings),
            "message": (result.message or "; ".join(result.diagnostics.warnings))[:MESSAGE_LIMIT]}


class _EvidenceCache:
    """The native evidence model of one data set, built once per model it is asked for."""

    def __init__(self, data: pd.DataFrame):
        self.data = data
        self.models: dict[str, Any] = {}

    def std_errors(self, spec: Spec, result: FitResult
                   ) -> tuple[dict[str, float | None], dict[str, str]]:
        """SEs of every key at the result's estimates, and why a key has none."""
        from backends.native.evidence import EvidenceModel, EvidenceUnavailable, estimates_of
        from backends.native.design import DesignError

        model = spec.model
        name = f"{model.formula}|{model.family}|{model.resolved_link}"
        try:
            if name not in self.models:
                self.models[name] = EvidenceModel.build(model, self.data, spec.factor_columns(),
                                                        contrasts=spec.contrasts())
            path = "glmer" if model.family != "gaussian" and model.parsed.has_random else "exact"
            cov = self.models[name].covariance(estimates_of(result), result.estimator, path)
        except (EvidenceUnavailable, DesignError) as e:
            return {}, {p.key: f"evidence unavailable: {e}" for p in result.parameters}
        except Exception as e:  # noqa: BLE001 - e.g. an overflow at an extreme estimate: the
            # fit stands, only this SE is missing, and the row says why
            return {}, {p.key: f"evidence failed: {type(e).__name__}: {e}"
                        for p in result.parameters}
        return cov.std_errors, {k: cov.reason or why for k, why in cov.reasons.items()}


def parameter_rows(result: FitResult, spec: Spec, truth: Truth, formula: str,
                   evidence: _EvidenceCache, z: float) -> list[dict[str, Any]]:
    """One row per reported parameter (and the ICC), with truth where the fit estimates it."""
    if result.status != "ok":
        return []
    truths = truth.all_values()
    comparable = same_random_part(spec, formula)
    params = result.parameters
    need_evidence = any(p.effect == "ran_pars" and p.std_error is None for p in params)
    evidence_se, reasons = (evidence.std_errors(spec, result) if need_evidence and comparable
                            else ({}, {}))
    rows = []
    for p in params:
        key = p.param_key
        se, source = p.std_error, "engine"
        if se is None and p.effect == "ran_pars" and evidence_se.get(p.key) is not None:
            se, source = evidence_se[p.key], "evidence"
        elif se is None:
            source = f"none: {reasons.get(p.key, 'not reported')}"[:MESSAGE_LIMIT]
        estimand = p.effect != "ran_pars" or comparable
        rows.append({"key": p.key, "truth": truths.get(p.key) if estimand else None,
                     "estimate": p.estimate, "std_error": se, "se_source": source,
                     **interval_columns(key, p.estimate, se, z)})
    if comparable:
        icc = icc_of({p.key: p.estimate for p in params}, truth.layout.groups(), truth.family,
                     truth.link)
        if icc is not None and ICC_KEY in truths:
            rows.append({"key": ICC_KEY, "truth": truths[ICC_KEY], "estimate": icc,
                         "std_error": None, "se_source": "none: no SE for the ICC",
                         **interval_columns(ParamKey.parse(ICC_KEY), icc, None, z)})
    return rows


def warm_up(engines: list[str]) -> dict[str, str]:
    """Check each engine once and start this thread's R worker before any timed fit, so the
    run-time columns measure fits, not R's start-up (a Dask task on each worker)."""
    from backends.base import get_backend

    out = {}
    for name in engines:
        availability = get_backend(name).availability()
        out[name] = availability.message()
        if name == "lme4" and availability.ok:
            from backends.lme4.client import POOL

            worker = POOL.get()
            if not worker.alive:
                worker.start()
    return out


def timed_batch(plan: Plan, cell: Cell, reps: list[int], fits: list[str] | None = None
                ) -> tuple[pd.DataFrame, float]:
    """:func:`run_batch` and its wall time (the task's own, measured where it ran)."""
    t0 = time.perf_counter()
    frame = run_batch(plan, cell, reps, fits)
    return frame, time.perf_counter() - t0
