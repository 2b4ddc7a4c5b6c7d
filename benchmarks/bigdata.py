"""Benchmark: a two-level data set of up to 10^8 rows in Parquet, fitted partition by partition.

Run ``python -m benchmarks.bigdata`` (``--help`` for options; needs the ``dask`` extra). It

1. writes the data once, file by file (never all in memory): ``y = 1 + 0.5 x + u0_g + u1_g x + e``
   with ``sd(u0) = 1``, ``sd(u1) = 0.5``, ``corr = 0.3``, ``sd(e) = 1``, ``--groups`` groups and
   every row in a random group, so every partition touches (nearly) every group;
2. fits ``y ~ x + (1 + x | g)`` by REML with :func:`backends.native.dask_source.lmm_dask` on the
   first 10^6, 10^7 and all rows, each in a fresh Python process whose peak resident memory
   (``getrusage``) is recorded, with the memory after importing the libraries (numpy, pandas,
   dask, pyarrow, the estimator) as the baseline: if the peak does not grow with the rows,
   memory is bounded by the partitions in flight;
3. fits the first 10^6 rows in memory too (``lmm`` on one DataFrame) and compares estimates.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.report import load_average, replace_section

FORMULA = "y ~ x + (1 + x | g)"
START, END = "<!-- benchmarks.bigdata:start -->", "<!-- benchmarks.bigdata:end -->"


def write_data(root: Path, rows: int, per_file: int, groups: int, seed: int = 20261201) -> list[Path]:
    """The Parquet files (reused when already complete); file ``i`` uses its own seed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    n_files = -(-rows // per_file)
    files = [root / f"part{i:05d}.parquet" for i in range(n_files)]
    meta = root / "meta.json"
    want = {"rows": rows, "per_file": per_file, "groups": groups, "seed": seed}
    if meta.exists() and json.loads(meta.read_text()) == want and all(f.exists() for f in files):
        return files
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.3 * 0.5], [0.3 * 0.5, 0.25]])
    u = rng.multivariate_normal([0.0, 0.0], cov, size=groups)
    for i, f in enumerate(files):
        r = np.random.default_rng([seed, i])
        n = min(per_file, rows - i * per_file)
        g = r.integers(0, groups, n)
        x = r.normal(size=n)
        y = 1.0 + 0.5 * x + u[g, 0] + u[g, 1] * x + r.normal(size=n)
        pq.write_table(pa.table({"y": y, "x": x, "g": g + 1}), f)
    meta.write_text(json.dumps(want))
    return files


def child_fit(files: list[str], in_flight: int, in_memory: bool) -> dict:
    """In a fresh process: one fit, its estimates, times and peak memory (MB)."""
    import dask.dataframe  # noqa: F401  (libraries loaded before the baseline is taken)
    import pandas as pd
    import pyarrow.parquet  # noqa: F401

    from backends.native import lmm
    from backends.native.dask_source import lmm_dask

    baseline = _rss_mb()
    w0, c0 = time.perf_counter(), time.process_time()
    if in_memory:
        data = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        res = lmm(FORMULA, data, reml=True)
    else:
        res = lmm_dask(FORMULA, files, reml=True, in_flight=in_flight)
    out = {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0,
           "peak_mb": _peak_mb(), "baseline_mb": baseline, "nobs": res.nobs,
           "fixef": res.fixef.to_dict(), "theta": res.theta.tolist(), "sigma": res.sigma,
           "loglik": res.loglik, "evaluations": res.diagnostics.evaluations,
           "warnings": res.diagnostics.warnings}
    return out


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # kB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def run_child(files: list[Path], in_flight: int, in_memory: bool = False) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bigdata", "--child",
           json.dumps({"files": [str(f) for f in files], "in_flight": in_flight,
                       "in_memory": in_memory})]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child fit failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--rows-per-file", type=int, default=500_000)
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/mlm_bigdata"))
    ap.add_argument("--in-flight", type=int, default=2, help="partitions processed at once")
    ap.add_argument("--write", type=Path, default=None, help="markdown file for the table")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child_fit(spec["files"], spec["in_flight"], spec["in_memory"])))
        return 0
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start = load_average()
    t0 = time.perf_counter()
    files = write_data(args.dir, args.rows, args.rows_per_file, args.groups)
    print(f"data: {len(files)} files in {args.dir} ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    sizes = sorted({min(args.rows, s) for s in (1_000_000, 10_000_000, args.rows)})
    runs = []
    for rows in sizes:
        subset = files[:-(-rows // args.rows_per_file)]
        r = run_child(subset, args.in_flight)
        r["rows"] = rows
        runs.append(r)
        print(f"  partitioned {rows:,} rows: {r['wall']:.1f} s, peak {r['peak_mb']:.0f} MB",
              flush=True)
    first = files[:-(-1_000_000 // args.rows_per_file)]
    mem = run_child(first, args.in_flight, in_memory=True)
    print(f"  in memory 1e6 rows: {mem['wall']:.1f} s, peak {mem['peak_mb']:.0f} MB", flush=True)
    info = {"started": started, "load_start": load_start, "load_end": load_average(),
            "partition_rows": args.rows_per_file, "in_flight": args.in_flight,
            "groups": args.groups, "file_mb": files[0].stat().st_size / 2 ** 20}
    lines = report(runs, mem, info)
    print("\n".join(lines))
    if args.write:
        replace_section(args.write, START, END, "\n".join([START, *lines, END]))
    return 0


def report(runs: list[dict], mem: dict, info: dict) -> list[str]:
    """The markdown section: memory and time per size, and the 1e6-row comparison."""
    part_mb = info["partition_rows"] * 3 * 8 / 2 ** 20
    lines = [
        "## Data larger than memory (written by `python -m benchmarks.bigdata --write`)",
        "",
        f"Measured {info['started']}; `{FORMULA}` by REML with `lmm_dask` on Parquet files of "
        f"{info['partition_rows']:,} rows ({info['file_mb']:.1f} MB on disk, {part_mb:.1f} MB "
        f"as three float64/int64 columns in memory), {info['groups']:,} groups, "
        f"{info['in_flight']} partitions in flight; each fit in a fresh process. Load average "
        f"(1, 5, 15 min) at start {info['load_start']}, at end {info['load_end']}.",
        "",
        "| rows | partitions | wall s | CPU s | peak memory MB | after imports MB | "
        "peak - after imports MB | data as float64 MB | logLik |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(f"| {r['rows']:,} | {-(-r['rows'] // info['partition_rows'])} | "
                     f"{r['wall']:.1f} | {r['cpu']:.1f} | {r['peak_mb']:.0f} | "
                     f"{r['baseline_mb']:.0f} | {r['peak_mb'] - r['baseline_mb']:.0f} | "
                     f"{r['rows'] * 24 / 2 ** 20:,.0f} | "
                     f"{r['loglik']:.4f} |")
    sub = next(r for r in runs if r["rows"] == mem["nobs"])
    diffs = {"fixef": max(abs(sub["fixef"][k] - v) for k, v in mem["fixef"].items()),
             "theta": float(np.max(np.abs(np.subtract(sub["theta"], mem["theta"])))),
             "sigma": abs(sub["sigma"] - mem["sigma"]), "logLik": abs(sub["loglik"] -
                                                                      mem["loglik"])}
    big = runs[-1]
    lines += [
        "",
        f"In memory, the same first {mem['nobs']:,} rows: {mem['wall']:.1f} s, peak "
        f"{mem['peak_mb']:.0f} MB. Largest absolute differences partitioned - in memory: "
        + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()) + ".",
        "",
        f"At {big['rows']:,} rows: fixed effects "
        + ", ".join(f"{k} {v:.5f}" for k, v in big["fixef"].items())
        + f"; theta {', '.join(f'{t:.5f}' for t in big['theta'])}; sigma {big['sigma']:.5f}"
        + (f"; warnings: {'; '.join(big['warnings'])}" if big["warnings"] else "; no warnings")
        + ".",
    ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
