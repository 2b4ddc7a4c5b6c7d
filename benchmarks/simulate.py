"""Benchmark: replications per second of a simulation study on 1 and 2 local Dask workers.

Run ``python -m benchmarks.simulate`` (``--help`` for options). It runs the same study twice
into fresh folders, with one local worker and then with two, and prints:

* replications per second (cell-replications, all fits of a replication together) from the
  first task sent to the last batch stored — the cluster's and R's start-up are excluded (the
  run warms each worker up before timing) — and the scaling ratio 2 workers / 1 worker;
* the time per replication per engine (mean wall time of one fit, from ``performance.csv``);
* the resident memory of each worker process with its R worker, at the end of the run;
* whether the two runs wrote byte-identical ``summary.csv`` files (they must);
* the load average before and after, because the machine is shared: with other jobs running,
  two workers do not get two cores and the ratio is a lower bound.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from harness.simulate.engine import run_study
from harness.simulate.study import parse_study

STUDY = {
    "id": "benchmark", "title": "benchmark", "source": "benchmarks/simulate.py",
    "claim": "none: a timing study", "seed": 11, "replications": 40, "batch_size": 5,
    "model": {"formula": "y ~ x + w + (1 | g)"},
    "truth": {"fixed/(Intercept)": 0.0, "fixed/x": 0.5, "fixed/w": 0.3,
              "ran_pars/Residual/sd__Observation": 1.0},
    "covariates": {"x": {"cluster_share": 0.2}, "w": {"level": "cluster"}},
    "design": {"clusters": [20], "cluster_size": [10, 25], "icc": [0.2]},
    "fits": [{"label": "native", "engine": "native", "estimator": "REML"},
             {"label": "lme4", "engine": "lme4", "estimator": "REML"}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=STUDY["replications"])
    parser.add_argument("--engines", default="native,lme4")
    args = parser.parse_args()
    engines = args.engines.split(",")
    data = {**STUDY, "replications": args.replications,
            "fits": [f for f in STUDY["fits"] if f["engine"] in engines]}
    loaded = parse_study(data, "benchmarks/simulate.py")
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            record = run_study(loaded, out, workers=workers, progress=False, log=lambda _: None)
            perf = pd.read_csv(out / "performance.csv")
            reps = len(loaded.cells) * args.replications
            results[workers] = {"record": record, "rate": reps / record.compute_seconds,
                                "perf": perf.groupby("engine")["mean_seconds"].mean(),
                                "summary": (out / "summary.csv").read_bytes()}
    load_after = os.getloadavg()
    one, two = results[1], results[2]
    print(f"study: {len(loaded.cells)} cells x {args.replications} replications, fits "
          f"{', '.join(f['label'] for f in data['fits'])}")
    print("| workers | replications/s | compute s | memory per worker (MB) |")
    print("|---|---|---|---|")
    for w, r in results.items():
        mem = ", ".join(f"{m:.0f}" for m in r["record"].worker_memory_mb.values())
        print(f"| {w} | {r['rate']:.2f} | {r['record'].compute_seconds:.1f} | {mem} |")
    print(f"scaling ratio (2 workers / 1): {two['rate'] / one['rate']:.2f}")
    for engine, s in one["perf"].items():
        print(f"time per replication, {engine}: {s:.3f} s (1 worker), "
              f"{two['perf'][engine]:.3f} s (2 workers)")
    print(f"identical summary.csv on 1 and 2 workers: {one['summary'] == two['summary']}")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
          f"{', '.join(f'{x:.2f}' for x in load_after)} (2 cores, shared)")


if __name__ == "__main__":
    main()
