"""Benchmark: native LMM against lme4 (through Rscript) on the same models, in the same run.

Run ``python -m benchmarks.lmm`` (``--help`` for options). Models: the gaussian course models
(benchmarks/cases.py), lme4's InstEval ``y ~ service + (1 | s) + (1 | d) + (1 | dept:service)``
(REML), and simulated two-level data with a correlated random intercept and slope (groups of 20)
at 1e4, 1e5 and 1e6 rows.

Timing rules, chosen to favour neither side:

* lme4 is timed inside R with the data already in R (``system.time(lmer(...))``), so R's
  start-up and file reading are excluded; native is timed around ``lmm(...)`` with the data
  already in a DataFrame. Both include building the model matrices and every check they run.
* R runs first, alone; native runs afterwards, alone (they never compete for the CPU).
* Medians of several repeats; both wall-clock (elapsed) and CPU (user + system) seconds are
  recorded, because on a shared machine wall-clock times also measure the other users.
* The native fit's log-likelihood is compared with lme4's so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.cases import CASES, dataset_path, load_case_data
from benchmarks.rscript import RModel, lme4_status, run_lme4

SIM_FORMULA = "y ~ x + (1 + x | g)"
INSTEVAL_FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)"


@dataclass
class Task:
    id: str
    formula: str
    reml: bool
    load: object                 # () -> DataFrame for native
    r_data: str                  # data argument for RModel
    goal: float | None           # native/lme4 ratio to reach (None: no goal)
    goal_text: str
    repeats: int
    r_repeats: int
    factors: tuple[str, ...] = ()
    derive: tuple[tuple[str, str], ...] = ()
    nrows: int = 0
    native: dict[str, list[float]] = field(default_factory=dict)
    native_loglik: float | None = None
    r: dict = field(default_factory=dict)


def simulate(n: int, seed: int = 20240601, group_size: int = 20) -> pd.DataFrame:
    """Two-level data: y = 1 + 0.5 x + u0_g + u1_g x + e, sd(u0) = 1, sd(u1) = 0.5, corr 0.3."""
    rng = np.random.default_rng(seed)
    groups = n // group_size
    g = np.repeat(np.arange(1, groups + 1), group_size)
    x = rng.normal(size=n)
    cov = np.array([[1.0, 0.3 * 0.5], [0.3 * 0.5, 0.25]])
    u = rng.multivariate_normal([0.0, 0.0], cov, size=groups)
    y = 1.0 + 0.5 * x + u[g - 1, 0] + u[g - 1, 1] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def build_tasks(args: argparse.Namespace, tmp: Path) -> list[Task]:
    tasks: list[Task] = []
    for c in CASES:
        tasks.append(Task(c.id, c.formula, c.reml, (lambda c=c: load_case_data(c)),
                          str(dataset_path(c.dataset)), 1.0, "<= 1", args.repeats,
                          args.repeats, c.factors, c.derive))
    if not args.skip_insteval:
        inst = tmp / "insteval.csv"
        subprocess.run(["Rscript", "-e", f"write.csv(lme4::InstEval, '{inst}', row.names = FALSE)"],
                       check=True, capture_output=True)
        tasks.append(Task("InstEval", INSTEVAL_FORMULA, True,
                          (lambda inst=inst: pd.read_csv(inst)), "r:lme4::InstEval", 0.2, "<= 1/5",
                          args.insteval_repeats, args.insteval_repeats, factors=("service",)))
    goals = {10_000: (None, "-"), 100_000: (0.1, "<= 1/10"), 1_000_000: (0.02, "<= 1/50")}
    for n in args.sizes:
        csv = tmp / f"sim{n}.csv"
        df = simulate(n)
        df.to_csv(csv, index=False)
        goal, text = goals.get(n, (None, "-"))
        reps = args.repeats if n <= 100_000 else args.large_repeats
        tasks.append(Task(f"sim_{n:.0e}".replace("+0", ""), SIM_FORMULA, True,
                          (lambda df=df: df), str(csv), goal, text, reps, reps))
    return tasks


def run_r(tasks: list[Task], cache: Path | None, reuse: bool) -> None:
    """lme4 timings; saved to ``cache`` so a later failure does not cost the (long) R run."""
    if reuse and cache and cache.exists():
        results = json.loads(cache.read_text())
        print(f"  reusing lme4 results from {cache}", flush=True)
    else:
        models = [RModel(t.id, t.r_data, t.formula, t.reml, t.derive, t.factors,
                         repeats=t.r_repeats, ranef=False) for t in tasks]
        results = run_lme4(models, timeout=6 * 3600)
        if cache:
            cache.write_text(json.dumps(results))
    for t in tasks:
        t.r = results.get(t.id, {"error": "not in the cached lme4 results"})


def run_native(tasks: list[Task]) -> None:
    from backends.native import lmm

    for t in tasks:
        data = t.load()
        t.nrows = len(data)
        wall, cpu = [], []
        for _ in range(t.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            res = lmm(t.formula, data, reml=t.reml, factors=t.factors)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        t.native = {"elapsed": wall, "cpu": cpu}
        t.native_loglik = res.loglik
        print(f"  native {t.id}: median {statistics.median(wall):.3f} s", flush=True)


def _median(xs) -> float:
    xs = xs if isinstance(xs, list) else [xs]
    return float(statistics.median(xs)) if xs else float("nan")


def table(tasks: list[Task]) -> list[str]:
    head = ("| model | rows | native s (wall) | lme4 s (wall) | ratio wall | native s (CPU) | "
            "lme4 s (CPU) | ratio CPU | goal | met (CPU) | logLik native - lme4 |")
    lines = [head, "|" + "---|" * 11]
    for t in tasks:
        if "error" in t.r:
            lines.append(f"| {t.id} | {t.nrows} | {_median(t.native['elapsed']):.3f} | "
                         f"error: {t.r['error'][:60]} | | | | | {t.goal_text} | | |")
            continue
        rs = t.r["seconds"]
        nw, nc = _median(t.native["elapsed"]), _median(t.native["cpu"])
        rw, rc = _median(rs["elapsed"]), _median(rs["cpu"])
        met = "-" if t.goal is None else ("yes" if nc / rc <= t.goal else "no")
        dll = t.native_loglik - t.r["loglik"]
        lines.append(f"| {t.id} | {t.nrows:,} | {nw:.3f} | {rw:.3f} | {nw / rw:.3f} | {nc:.3f} | "
                     f"{rc:.3f} | {nc / rc:.3f} | {t.goal_text} | {met} | {dll:+.1e} |")
    return lines


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import nlopt
    import scipy

    return {"cpu": cpu, "cores": str(os.cpu_count()), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "nlopt": nlopt.__version__,
            "load average (1, 5, 15 min) at start": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="repeats for course and small models")
    ap.add_argument("--insteval-repeats", type=int, default=3)
    ap.add_argument("--large-repeats", type=int, default=3, help="repeats at 1e6 rows")
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--skip-insteval", action="store_true")
    ap.add_argument("--r-cache", type=Path, default=Path(tempfile.gettempdir()) / "mlm_bench_lme4.json",
                    help="where the lme4 results are saved")
    ap.add_argument("--reuse-r", action="store_true",
                    help="reuse the saved lme4 results instead of running R again")
    ap.add_argument("--write", type=Path, default=None,
                    help="write the table to this markdown file (e.g. docs/benchmarks.md)")
    args = ap.parse_args(argv)
    ok, version = lme4_status()
    if not ok:
        print(f"lme4 unavailable: {version}")
        return 2
    info = machine()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="mlm_bench_") as tmp:
        tasks = build_tasks(args, Path(tmp))
        print(f"running lme4 {version} on {len(tasks)} models (R first, alone)...", flush=True)
        t0 = time.perf_counter()
        run_r(tasks, args.r_cache, args.reuse_r)
        print(f"  lme4 done in {time.perf_counter() - t0:.0f} s", flush=True)
        print("running native...", flush=True)
        run_native(tasks)
    info["load average (1, 5, 15 min) at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["lme4"] = version
    info["R BLAS"] = r_blas()
    info["BLAS threads (native)"] = ("1 during fits (backends/native/blas.py); "
                                     f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    lines = table(tasks)
    print("\n".join(lines))
    if args.write:
        write_markdown(args.write, lines, info, started, args)
    return 0


def r_blas() -> str:
    try:
        out = subprocess.run(["Rscript", "-e", "cat(extSoftVersion()[['BLAS']])"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


START, END = "<!-- benchmarks.lmm:start -->", "<!-- benchmarks.lmm:end -->"


def write_markdown(path: Path, lines: list[str], info: dict[str, str], started: str,
                   args: argparse.Namespace) -> None:
    """Write the measured table between this script's markers, keeping everything else.

    Other people's text in the same file (notes, other benchmarks) survives a re-run; a file
    without the markers gets the section appended.
    """
    section = "\n".join([
        START,
        "## Measured table (written by `python -m benchmarks.lmm --write`)",
        "",
        f"Measured {started}; medians of {args.repeats} repeats ({args.insteval_repeats} for "
        f"InstEval, {args.large_repeats} at 1e6 rows). lme4 is timed inside R with the data "
        "already in R; native around `lmm(...)` with the data already in a DataFrame; R ran "
        "first, then native, never concurrently. Ratios are native / lme4; goals are from "
        "issue 4, judged on CPU time.",
        "",
        *lines,
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        END,
    ])
    text = path.read_text() if path.exists() else "# Native LMM vs lme4: timings\n\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
