"""``run --jobs`` defaults to the cores, and a run starts each distinct fit once (issue 17)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import runner
from harness.cli import build_parser
from harness.parallel import default_jobs
from harness.results import FitResult
from harness.spec import load_spec


def test_run_jobs_defaults_to_the_cores_this_process_may_use():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_jobs() == cores
    args = build_parser().parse_args(["run", "specs"])
    assert args.jobs == cores
    assert build_parser().parse_args(["run", "specs", "--jobs", "1"]).jobs == 1


def _specs(tmp_path: Path) -> list:
    """Two specs with the same model on the same file (one fit per backend), and a third that
    differs in its method (another fit)."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(1, 16), 5)
    data = pd.DataFrame({"g": g, "x": rng.normal(size=g.size)})
    data["y"] = 1 + 0.5 * data.x + rng.normal(size=15)[g - 1] + rng.normal(size=g.size)
    data.to_csv(tmp_path / "d.csv", index=False)
    out = []
    for sid, method in [("a", "REML"), ("b", "REML"), ("c", "ML")]:
        path = tmp_path / f"{sid}.yaml"
        path.write_text(f"id: dedupe.{sid}\ntitle: t\nsource: t\ndataset: {tmp_path / 'd.csv'}\n"
                        f"model: {{formula: 'y ~ x + (1 | g)', family: gaussian, "
                        f"method: {method}}}\n")
        out.append((path, load_spec(path)))
    return out


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_run_starts_each_distinct_fit_once(tmp_path, monkeypatch, jobs):
    """Counted at fit_one, where every backend's fit (an R fit included) is started. lme4 is
    stood in for by a failed result (no R needed): what is counted is how often a fit is
    started, whatever it returns. Native's fits are real, so the run also makes its bridge
    fits, which repeat native's own fits (same key) and must not start them again."""
    started: Counter = Counter()
    real_fit_one = runner.fit_one

    def counting(spec, backend, data):
        started[(spec.model.method, backend)] += 1
        if backend == "lme4":
            return FitResult.failed(spec.id, backend, "error", "stand-in for an R fit")
        return real_fit_one(spec, backend, data)

    monkeypatch.setattr(runner, "fit_one", counting)
    suite = runner.run_specs(_specs(tmp_path),
                             runner.RunOptions(backends=["native", "lme4"], jobs=jobs))
    assert started == {("REML", "native"): 1, ("REML", "lme4"): 1,
                       ("ML", "native"): 1, ("ML", "lme4"): 1}
    a, b = (run.results["native"] for run in suite.runs[:2])
    assert a.status == b.status == "ok" and a.fixed_effects() == b.fixed_effects()
    assert b.spec_id == "dedupe.b" and any("the same fit as spec dedupe.a" in m
                                           for m in b.diagnostics.messages)
    assert [run.results["lme4"].spec_id for run in suite.runs] == ["dedupe.a", "dedupe.b",
                                                                   "dedupe.c"]


def test_without_the_shared_record_a_second_call_would_refit(tmp_path, monkeypatch):
    """What ``finished`` prevents: two calls of fit_jobs (the run's fits, then its bridges)
    with no on-disk cache start the same fit again unless they share the record."""
    specs = _specs(tmp_path)[:1]
    prepared = {s.id: runner.prepare_data(s) for _, s in specs}
    calls = []
    monkeypatch.setattr(runner, "fit_one", lambda spec, backend, data: calls.append(1) or
                        FitResult.failed(spec.id, backend, "error", "stand-in"))
    options = runner.RunOptions(backends=["lme4"])
    jobs = {(specs[0][1].id, "lme4"): (specs[0][1], "lme4")}
    runner.fit_jobs(jobs, options, prepared)
    runner.fit_jobs(jobs, options, prepared)
    assert len(calls) == 2
    finished: runner.Finished = {}
    runner.fit_jobs(jobs, options, prepared, finished=finished)
    runner.fit_jobs(jobs, options, prepared, finished=finished)
    assert len(calls) == 3
