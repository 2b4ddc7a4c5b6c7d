"""Benchmark: what a command costs as a whole process — ``mlm-harness`` against ``Rscript``.

Run ``python -m benchmarks.cli`` (``--help`` for options). Issue 14 asked for ``--version`` and
``--help`` under 0.3 s and for a single course fit from the command line to cost less than
``Rscript`` with lme4 for the same model. Unlike benchmarks/lmm.py (which times the fit alone,
data already in memory), this times what a user waits for: interpreter start-up, imports,
reading the file, the fit and the printout.

Timing rules:

* each command is a fresh process, started the way a user starts it; CPU seconds (user + system,
  of the process and everything it waited for) come from ``getrusage(RUSAGE_CHILDREN)``, wall
  seconds from a monotonic clock; medians of several repeats;
* the fit is the course's GCSE random-intercept model ``gcse ~ lrt + (1 | school)`` (REML) on
  the registry's ``gcse.dta``: ``mlm-harness fit gcse ... --backends native --no-cache`` (it
  verifies the file's SHA-256, fits, compares and prints the table) against an ``Rscript``
  that loads lme4 and haven, reads the same ``.dta``, fits ``lmer`` and prints ``summary()``;
* commands run one after another, never concurrently; a command that fails stops the run (a
  fast failure is not a result).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORMULA = "gcse ~ lrt + (1 | school)"
START, END = "<!-- benchmarks.cli:start -->", "<!-- benchmarks.cli:end -->"


@dataclass(frozen=True)
class Command:
    id: str
    argv: list[str]
    goal_s: float | None = None  # CPU seconds to stay under (None: compared with another row)


@dataclass(frozen=True)
class Timing:
    cpu_s: float
    wall_s: float


def run_once(argv: list[str], env: dict[str, str]) -> Timing:
    """One whole-process run: CPU of the child (and what it waited for) and wall-clock time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(cpu, wall)


def measure(argv: list[str], env: dict[str, str], repeats: int) -> Timing:
    """Medians of ``repeats`` runs."""
    runs = [run_once(argv, env) for _ in range(repeats)]
    return Timing(statistics.median(r.cpu_s for r in runs),
                  statistics.median(r.wall_s for r in runs))


def commands(data_file: Path) -> list[Command]:
    script = Path(sys.executable).with_name("mlm-harness")  # the console script users run
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli"]
    r_code = (f'suppressMessages(library(lme4)); d <- haven::read_dta("{data_file}"); '
              f"print(summary(lmer({FORMULA}, data = d, REML = TRUE)))")
    return [
        Command("mlm-harness --version", [*cli, "--version"], 0.3),
        Command("mlm-harness --help", [*cli, "--help"], 0.3),
        Command("mlm-harness fit --help", [*cli, "fit", "--help"], 0.3),
        Command("mlm-harness fit (native, one course model)",
                [*cli, "fit", "gcse", FORMULA, "--backends", "native", "--no-cache"]),
        Command("Rscript lme4 (same model)", ["Rscript", "-e", r_code]),
    ]


def markdown(rows: list[dict], meta: dict) -> str:
    fit = next(r for r in rows if r["id"].startswith("mlm-harness fit (native"))
    r = next(r for r in rows if r["id"].startswith("Rscript"))
    lines = [START, "## Measured table (written by `python -m benchmarks.cli --write`)", "",
             f"Measured {meta['measured']}; medians of {meta['repeats']} whole-process runs, one "
             f"after another. CPU = user + system seconds of the process and its children.", "",
             "| command | CPU s | wall s | goal (CPU) | met |", "|---|---|---|---|---|"]
    for row in rows:
        if row["goal_s"] is not None:
            goal, met = f"< {row['goal_s']}", "yes" if row["cpu_s"] < row["goal_s"] else "no"
        elif row is fit:
            goal, met = "< Rscript", "yes" if fit["cpu_s"] < r["cpu_s"] else "no"
        else:
            goal, met = "-", "-"
        lines.append(f"| {row['id']} | {row['cpu_s']:.3f} | {row['wall_s']:.3f} | {goal} | {met} |")
    lines += ["", f"Fit / Rscript, CPU: {fit['cpu_s'] / r['cpu_s']:.2f}.", "",
              f"Machine: {meta['platform']}; Python {meta['python']}; {meta['r']}.", END]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the measured section of ``path`` (between the markers), or append it."""
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        text = text[:text.index(START)] + section + text[text.index(END) + len(END) + 1:]
    else:
        text = text + ("\n" if text else "") + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs of each command (default: 5)")
    ap.add_argument("--write", type=Path, default=None,
                    help="write the table into this markdown file (e.g. docs/benchmarks-cli.md)")
    args = ap.parse_args(argv)
    from harness.datasets import DatasetError, locate

    try:
        data_file = locate("gcse")
    except DatasetError as e:
        print(e, file=sys.stderr)
        return 2
    if shutil.which("Rscript") is None:
        print("Rscript not found: the comparison needs R with lme4 and haven", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    rows = []
    for c in commands(data_file):
        t = measure(c.argv, env, args.repeats)
        rows.append({"id": c.id, "argv": c.argv, "cpu_s": t.cpu_s, "wall_s": t.wall_s,
                     "goal_s": c.goal_s})
        print(f"{c.id:45s} CPU {t.cpu_s:.3f} s  wall {t.wall_s:.3f} s", file=sys.stderr)
    r_version = subprocess.run(["Rscript", "-e", 'cat(R.version.string, "lme4",'
                                " format(packageVersion('lme4')))"],
                               capture_output=True, text=True).stdout.strip()
    meta = {"measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "repeats": args.repeats, "platform": platform.platform(),
            "python": platform.python_version(), "r": r_version}
    print(json.dumps({"meta": meta, "rows": rows}, indent=2))
    if args.write:
        write_section(args.write, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
