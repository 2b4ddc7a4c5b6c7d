"""Benchmark: native LMM against lme4 (through Rscript), model by model, side by side in one run.

Run ``python -m benchmarks.lmm`` (``--help`` for options). Models: the gaussian course models
(benchmarks/cases.py); InstEval with lme4's formula ``y ~ service + (1 | s) + (1 | d) +
(1 | dept:service)`` and MixedModels.jl's two published benchmark formulas
``y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)`` and ``y ~ 1 + service * dept + (1 | s) +
(1 | d)`` (all REML); simulated two-level data with a correlated random intercept and slope
(groups of 20) at 1e4, 1e5 and 1e6 rows.

Timing rules, chosen to favour neither side:

* lme4 is timed inside R with the data already in R (``system.time(lmer(...))``), so R's
  start-up and file reading are excluded; native is timed around ``lmm(...)`` with the data
  already in a DataFrame. Both include building the model matrices and every check they run.
* Side by side: for each model, lme4's repeats run, then native's, so both are measured within
  a minute or two under the same load (never concurrently); the load average is recorded before
  each model. A ratio is native / lme4 of the median CPU (user + system) seconds, which other
  jobs on the shared machine disturb less than wall-clock time (also recorded).
* Each model is also fitted once by lme4 with tight tolerances (``rscript.TIGHT``): "same
  optimum" means native's log-likelihood is at least that one's minus 1e-6.
"""

from __future__ import annotations

import argparse
import json
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
from benchmarks.report import load_average, machine, replace_section
from benchmarks.rscript import TIGHT, RModel, lme4_status, run_lme4

SIM_FORMULA = "y ~ x + (1 + x | g)"
INSTEVAL = {
    "InstEval": "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
    "InstEval_mm1": "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)",
    "InstEval_mm2": "y ~ 1 + service * dept + (1 | s) + (1 | d)",
}
SAME_OPTIMUM = 1e-6          # native logLik >= lme4 (tight) - this


@dataclass(frozen=True)
class Target:
    ratio: float
    text: str
    source: str


COURSE = Target(1.0, "<= 1", "issue 4")
CROSSED = Target(1 / 15, "<= 1/15", "issue 17")
SIM_GOALS = {100_000: Target(0.1, "<= 1/10", "issue 4"),
             1_000_000: Target(0.02, "<= 1/50", "issue 4")}


@dataclass
class Task:
    id: str
    formula: str
    reml: bool
    load: object                 # () -> DataFrame for native
    r_data: str                  # data argument for RModel
    target: Target | None
    repeats: int
    factors: tuple[str, ...] = ()
    derive: tuple[tuple[str, str], ...] = ()
    nrows: int = 0
    native: dict[str, list[float]] = field(default_factory=dict)
    native_loglik: float | None = None
    native_optimizer: str = ""
    r: dict = field(default_factory=dict)
    r_tight: dict = field(default_factory=dict)
    load_before: str = ""

    def r_models(self) -> list[RModel]:
        return [RModel(self.id, self.r_data, self.formula, self.reml, self.derive, self.factors,
                       repeats=self.repeats, ranef=False),
                RModel(self.id + "@tight", self.r_data, self.formula, self.reml, self.derive,
                       self.factors, control=TIGHT, ranef=False)]


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
    if not args.skip_course:
        for c in CASES:
            tasks.append(Task(c.id, c.formula, c.reml, (lambda c=c: load_case_data(c)),
                              str(dataset_path(c.dataset)), COURSE, args.repeats, c.factors,
                              c.derive))
    if not args.skip_insteval:
        inst = tmp / "insteval.csv"
        subprocess.run(["Rscript", "-e", f"write.csv(lme4::InstEval, '{inst}', row.names = FALSE)"],
                       check=True, capture_output=True)
        for name, formula in INSTEVAL.items():
            tasks.append(Task(name, formula, True, (lambda inst=inst: pd.read_csv(inst)),
                              "r:lme4::InstEval", CROSSED, args.insteval_repeats,
                              factors=("service", "dept")))
    for n in args.sizes:
        csv = tmp / f"sim{n}.csv"
        df = simulate(n)
        df.to_csv(csv, index=False)
        reps = args.repeats if n <= 100_000 else args.large_repeats
        tasks.append(Task(f"sim_{n:.0e}".replace("+0", ""), SIM_FORMULA, True,
                          (lambda df=df: df), str(csv), SIM_GOALS.get(n), reps))
    return tasks


def run_r(task: Task, cache: dict | None) -> None:
    """lme4's default (timed) and tight fits of one task, or the cached ones."""
    if cache is not None and task.id in cache:
        task.r, task.r_tight = cache[task.id]["default"], cache[task.id]["tight"]
        task.r["cached"] = True
        return
    results = run_lme4(task.r_models(), timeout=6 * 3600)
    task.r, task.r_tight = results[task.id], results[task.id + "@tight"]


def run_native(task: Task) -> None:
    from backends.native import lmm

    data = task.load()
    task.nrows = len(data)
    wall, cpu = [], []
    for _ in range(task.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        res = lmm(task.formula, data, reml=task.reml, factors=task.factors)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    task.native = {"elapsed": wall, "cpu": cpu}
    task.native_loglik = res.loglik
    task.native_optimizer = res.diagnostics.optimizer


def _median(xs) -> float:
    xs = xs if isinstance(xs, list) else [xs]
    return float(statistics.median(xs)) if xs else float("nan")


@dataclass
class Row:
    """One task's judged numbers (None where lme4 failed)."""

    task: Task
    ratio_cpu: float | None = None
    ratio_wall: float | None = None
    dll: float | None = None            # native - the higher of lme4's tight and default
    fast: bool | None = None
    same: bool | None = None

    @classmethod
    def judge(cls, t: Task) -> "Row":
        if "error" in t.r:
            return cls(t)
        rs = t.r["seconds"]
        rc, nc = _median(rs["cpu"]), _median(t.native["cpu"])
        reference = t.r_tight if "error" not in t.r_tight else t.r
        dll = t.native_loglik - max(reference["loglik"], t.r["loglik"])
        return cls(t, nc / rc, _median(t.native["elapsed"]) / _median(rs["elapsed"]), dll,
                   None if t.target is None else nc / rc <= t.target.ratio, dll >= -SAME_OPTIMUM)


def table(rows: list[Row]) -> list[str]:
    head = ("| model | rows | native CPU s | lme4 CPU s | ratio CPU | ratio wall | load before "
            "| target | met | logLik native - best lme4 | same optimum | native optimiser |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        t = r.task
        target = f"{t.target.text} ({t.target.source})" if t.target else "-"
        if r.ratio_cpu is None:
            lines.append(f"| {t.id} | {t.nrows:,} | {_median(t.native['cpu']):.3f} | "
                         f"error: {t.r['error'][:60]} | | | {t.load_before} | {target} | | | "
                         f"| {t.native_optimizer} |")
            continue
        met = "-" if r.fast is None else ("yes" if r.fast else "**no**")
        cached = " (cached)" if t.r.get("cached") else ""
        lines.append(
            f"| {t.id} | {t.nrows:,} | {_median(t.native['cpu']):.3f} | "
            f"{_median(t.r['seconds']['cpu']):.3f}{cached} | {r.ratio_cpu:.3f} | "
            f"{r.ratio_wall:.3f} | {t.load_before} | {target} | {met} | {r.dll:+.1e} | "
            f"{'yes' if r.same else '**no**'} | {t.native_optimizer} |")
    return lines


def targets(rows: list[Row]) -> list[str]:
    """Which targets hold in this run: a target holds when every model under it is fast
    enough and at lme4's optimum (or better)."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        if r.task.target is not None:
            key = f"{r.task.target.text} of lme4's CPU time ({r.task.target.source})"
            groups.setdefault(key, []).append(r)
    out = []
    for key, rs in groups.items():
        ok = all(r.fast and r.same for r in rs)
        worst = max((r.ratio_cpu for r in rs if r.ratio_cpu is not None), default=float("nan"))
        out.append(f"- {key}: {', '.join(r.task.id for r in rs)} -- "
                   f"{'**holds**' if ok else '**does not hold**'} (largest ratio {worst:.3f})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="repeats for course and small models")
    ap.add_argument("--insteval-repeats", type=int, default=3)
    ap.add_argument("--large-repeats", type=int, default=3, help="repeats at 1e6 rows")
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--skip-insteval", action="store_true")
    ap.add_argument("--skip-course", action="store_true")
    ap.add_argument("--only", nargs="*", default=None, help="run only these model ids")
    ap.add_argument("--r-cache", type=Path,
                    default=Path(tempfile.gettempdir()) / "mlm_bench_lme4.json",
                    help="where the lme4 results are saved")
    ap.add_argument("--reuse-r", action="store_true",
                    help="reuse saved lme4 results (development only: not side by side)")
    ap.add_argument("--write", type=Path, default=None,
                    help="write the table to this markdown file (e.g. docs/benchmarks.md)")
    args = ap.parse_args(argv)
    ok, version = lme4_status()
    if not ok:
        print(f"lme4 unavailable: {version}")
        return 2
    info = machine()
    info["load average (1, 5, 15 min) at start"] = load_average()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    cache = json.loads(args.r_cache.read_text()) if args.reuse_r and args.r_cache.exists() \
        else None
    saved: dict = {}
    with tempfile.TemporaryDirectory(prefix="mlm_bench_") as tmp:
        tasks = build_tasks(args, Path(tmp))
        if args.only:
            tasks = [t for t in tasks if t.id in args.only]
        for t in tasks:
            t.load_before = load_average().split()[0]
            run_r(t, cache)
            saved[t.id] = {"default": t.r, "tight": t.r_tight}
            run_native(t)
            r = Row.judge(t)
            print(f"  {t.id}: native {_median(t.native['cpu']):.3f} s CPU, ratio "
                  f"{r.ratio_cpu if r.ratio_cpu is None else round(r.ratio_cpu, 4)}, "
                  f"dlogLik {r.dll}", flush=True)
    if not args.reuse_r:
        args.r_cache.write_text(json.dumps(saved))
    info["load average (1, 5, 15 min) at end"] = load_average()
    info["lme4"] = version
    info["R BLAS"] = r_blas()
    info["BLAS threads (native)"] = "1 during fits (backends/native/blas.py)"
    rows = [Row.judge(t) for t in tasks]
    lines, goals = table(rows), targets(rows)
    print("\n".join(lines + [""] + goals))
    if args.write:
        write_markdown(args.write, lines, goals, info, started, args, cached=cache is not None)
    return 0


def r_blas() -> str:
    try:
        out = subprocess.run(["Rscript", "-e", "cat(extSoftVersion()[['BLAS']])"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


START, END = "<!-- benchmarks.lmm:start -->", "<!-- benchmarks.lmm:end -->"


def write_markdown(path: Path, lines: list[str], goals: list[str], info: dict[str, str],
                   started: str, args: argparse.Namespace, cached: bool) -> None:
    """The measured table and the targets between this script's markers (see
    :func:`benchmarks.report.replace_section`)."""
    section = "\n".join([
        START,
        "## Measured table (written by `python -m benchmarks.lmm --write`)",
        "",
        f"Measured {started}; medians of {args.repeats} repeats ({args.insteval_repeats} for "
        f"InstEval, {args.large_repeats} at 1e6 rows). Side by side: for each model lme4 ran "
        "(timed inside R, data already in R), then native (around `lmm(...)`, data already in "
        "a DataFrame), never concurrently; \"load before\" is the 1-minute load average when "
        "the model started. Ratios are native / lme4 of CPU seconds (and of wall-clock "
        "seconds). \"Same optimum\": native's logLik >= lme4's with tight tolerances - 1e-6."
        + (" **lme4 timings were reused from an earlier run (--reuse-r).**" if cached else ""),
        "",
        *lines,
        "",
        "Targets in this run:",
        "",
        *goals,
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        END,
    ])
    replace_section(path, START, END, section)


if __name__ == "__main__":
    raise SystemExit(main())
