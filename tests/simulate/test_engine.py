"""Studies on a local Dask cluster: the same table on 1 or 2 workers and any batching, resumed
studies equal fresh ones, a killed study resumes, R workers are closed, run --scheduler works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.simulate.engine import run_study
from harness.simulate.store import ResultStore, StoreError
from harness.simulate.study import load_study, parse_study
from tests.conftest import REPO_ROOT

from .studies import study, write

pytest.importorskip("distributed")


def _run(path: Path, out: Path, **kw):
    return run_study(load_study(path), out, progress=False, log=lambda _: None, **kw)


@pytest.fixture(scope="module")
def clusters():
    """One local cluster of 1 and one of 2 workers, shared by the tests (start-up is slow)."""
    from distributed import LocalCluster

    made = {n: LocalCluster(n_workers=n, threads_per_worker=1, host="127.0.0.1",
                            dashboard_address="127.0.0.1:0") for n in (1, 2)}
    yield {n: c.scheduler_address for n, c in made.items()}
    for c in made.values():
        c.close()


def _replications(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "replications.parquet").drop(columns=["seconds"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clusters) -> tuple[Path, Path]:
    """The tiny study run once: 1 worker, 4 replications per task."""
    folder = tmp_path_factory.mktemp("ref")
    path = write(folder)
    _run(path, folder / "out", scheduler=clusters[1], batch_size=4)
    return path, folder / "out"


def test_two_workers_and_other_batches_give_the_same_tables(reference, clusters, tmp_path):
    path, ref = reference
    record = _run(path, tmp_path / "two", scheduler=clusters[2], batch_size=1)
    assert record.workers == 2 and record.batches_run == 8
    assert (tmp_path / "two" / "summary.csv").read_bytes() == (ref / "summary.csv").read_bytes()
    pd.testing.assert_frame_equal(_replications(tmp_path / "two"), _replications(ref))
    summary = pd.read_csv(ref / "summary.csv")
    assert {"bias", "rmse", "coverage", "rejection", "convergence_rate"} <= set(summary.metric)
    assert (ref / "index.html").read_text().count("<svg") >= 4


def test_resumed_study_equals_a_fresh_one_and_redoes_nothing(reference, clusters, tmp_path):
    path, ref = reference
    first = _run(path, tmp_path / "r", scheduler=clusters[2], replications=2)
    assert first.replications_run == {"native": 4, "ols": 4}
    second = _run(path, tmp_path / "r", scheduler=clusters[2])
    assert second.replications_run == {"native": 4, "ols": 4}  # reps 2 and 3 of 2 cells
    assert (tmp_path / "r" / "summary.csv").read_bytes() == (ref / "summary.csv").read_bytes()
    third = _run(path, tmp_path / "r", scheduler=clusters[2])
    assert third.batches_run == 0


def test_store_refuses_another_study(reference, tmp_path):
    path, ref = reference
    other = write(tmp_path, truth={**study()["truth"], "fixed/w": 0.9})
    with pytest.raises(StoreError, match="another seed, truth"):
        ResultStore(ref).open(load_study(other))
    fits = [{"label": "ols", "engine": "native", "estimator": "OLS", "formula": "y ~ x"}]
    with pytest.raises(StoreError, match="fit\\(s\\) ols now name"):
        ResultStore(ref).open(load_study(write(tmp_path, "f.yaml", fits=fits)))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not written by mlm-harness simulate"):
        ResultStore(foreign).open(load_study(path))


@pytest.mark.slow
def test_killed_study_resumes_where_it_stopped(clusters, tmp_path):
    path = write(tmp_path, replications=12, design={"clusters": [8], "cluster_size": [4],
                                                   "icc": [0.2]})
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "harness.cli", "simulate", str(path), "--out", str(out),
           "--workers", "1", "--batch-size", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "parts").glob("*.parquet"))) < 3:
            assert proc.poll() is None, "the study finished or failed before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the study and its Dask workers, mid-run
    finally:
        proc.wait(timeout=60)
    stored = ResultStore(out).done()
    assert 3 <= len({rep for _, rep, _ in stored}) < 12
    resumed = _run(path, out, scheduler=clusters[2])
    assert resumed.replications_run["native"] == 12 - len({r for _, r, f in stored
                                                           if f == "native"})
    fresh = tmp_path / "fresh"
    _run(path, fresh, scheduler=clusters[1])
    assert (out / "summary.csv").read_bytes() == (fresh / "summary.csv").read_bytes()


def _lme4_workers() -> set[int]:
    import psutil

    found = set()
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "backends.lme4.worker" in " ".join(p.info["cmdline"] or []) and \
                    Path(p.cwd()) == REPO_ROOT:
                found.add(p.info["pid"])
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
@pytest.mark.needs_r
def test_native_and_lme4_agree_and_r_workers_close(lme4_backend, tmp_path):
    fits = [{"label": "native", "engine": "native", "estimator": "REML"},
            {"label": "lme4", "engine": "lme4", "estimator": "REML"}]
    path = write(tmp_path, fits=fits, replications=3,
                 design={"clusters": [10], "cluster_size": [5], "icc": [0.3]})
    before = _lme4_workers()
    _run(path, tmp_path / "out", workers=2)
    deadline = time.monotonic() + 20
    while _lme4_workers() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _lme4_workers() - before, "R workers outlived their Dask workers"
    s = pd.read_csv(tmp_path / "out" / "summary.csv")
    pair = s[(s.metric == "disagreement") & s.key.isna()]
    assert list(pair.fit) == ["lme4 vs native"] and pair.value.iloc[0] == 0.0
    reps = pd.read_parquet(tmp_path / "out" / "replications.parquet")
    sd = reps[(reps.fit == "lme4") & (reps.key == "ran_pars/g/sd__(Intercept)")]
    assert (sd.se_source == "evidence").all() and sd.wald_log_lower.notna().all()


def test_run_sends_fits_to_a_scheduler(clusters, tmp_path):
    from harness.runner import RunOptions, run_specs
    from harness.spec import load_spec

    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(1, 21), 6)
    data = pd.DataFrame({"g": g, "x": rng.normal(size=g.size)})
    data["y"] = 1 + 0.5 * data.x + rng.normal(size=20)[g - 1] + rng.normal(size=g.size)
    data.to_csv(tmp_path / "d.csv", index=False)
    spec_path = tmp_path / "s.yaml"
    spec_path.write_text(f"id: dask.test\ntitle: t\nsource: t\ndataset: {tmp_path / 'd.csv'}\n"
                         "model: {formula: 'y ~ x + (1 | g)', family: gaussian, method: REML}\n")
    specs = [(spec_path, load_spec(spec_path))]
    local = run_specs(specs, RunOptions(backends=["native"]))
    remote = run_specs(specs, RunOptions(backends=["native"], scheduler=clusters[2]))
    a, b = local.runs[0].results["native"], remote.runs[0].results["native"]
    assert b.status == "ok" and b.fixed_effects() == a.fixed_effects()


def test_cli_errors_are_exit_2(tmp_path):
    from harness.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n")
    assert main(["simulate", str(bad)]) == 2
    good = write(tmp_path)
    assert main(["simulate", str(good), "--only", "clusters=999", "--out",
                 str(tmp_path / "o")]) == 2
    assert main(["simulate", str(good), "--replications", "0"]) == 2
    assert parse_study(study())  # the fixture itself is valid


def test_report_only_needs_stored_replications(reference, tmp_path):
    from harness.cli import main

    path, ref = reference
    assert main(["simulate", str(path), "--report-only", "--out", str(tmp_path / "none")]) == 2
    before = (ref / "summary.csv").read_bytes()
    assert main(["simulate", str(path), "--report-only", "--out", str(ref)]) == 0
    assert (ref / "summary.csv").read_bytes() == before


def test_unreachable_scheduler_is_a_usage_error(tmp_path):
    from harness.cli import main

    path = write(tmp_path)
    assert main(["simulate", str(path), "--scheduler", "nonsense://127.0.0.1:9", "--out",
                 str(tmp_path / "o")]) == 2
