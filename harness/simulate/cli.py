"""``mlm-harness simulate STUDY.yaml``: run a Monte Carlo study on Dask (docs/simulate.md).

Wiring (in harness/cli.py), as the ``stata`` sub-command::

    from harness.simulate.cli import add_parser as add_simulate_parser
    add_simulate_parser(sub)                    # in build_parser()
    ... "simulate": lambda a: a.handler(a) ...  # in main()'s dispatch

Exit codes: 0 when every batch ran, 1 when a batch failed (its replications are not stored and
a rerun retries them), 2 for a bad study file, a folder that holds another study, or missing
Dask/pyarrow. Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "simulate", help="run a Monte Carlo study across engines on Dask (docs/simulate.md)")
    p.add_argument("study", type=Path, help="the study file (see studies/)")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default: simulations/<study id>/); an interrupted "
                        "study resumes from what the folder holds")
    p.add_argument("--scheduler", default=None,
                   help="address of an existing Dask scheduler (tcp://host:8786); default: a "
                        "local cluster on this machine")
    p.add_argument("--workers", type=int, default=None,
                   help="local cluster: worker processes (default: one per core)")
    p.add_argument("--replications", type=int, default=None,
                   help="replications per cell instead of the study's (raise it later to "
                        "extend the same study)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="replications per Dask task (default: the study's, else 10)")
    p.add_argument("--only", action="append", default=[], metavar="DIM=VALUE",
                   help="run (and report) only the cells with this design value, e.g. "
                        "--only family=gaussian (repeatable: all must match)")
    p.add_argument("--fresh", action="store_true",
                   help="delete the folder's stored replications and start again")
    p.add_argument("--report-only", action="store_true",
                   help="fit nothing: rewrite the tables and report from the stored replications")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with the datasets")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    from .store import ResultStore, StoreError
    from .study import StudyError, load_study

    root = Path(__file__).resolve().parents[2]
    for name in ("replications", "batch_size", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"mlm-harness simulate: error: --{name.replace('_', '-')} must be at least 1",
                  file=sys.stderr)
            return 2
    try:
        loaded = load_study(args.study)
        if args.only:
            loaded = loaded.select(args.only)
        out = args.out or root / "simulations" / loaded.study.id
        if args.report_only:
            from .engine import StudyRun, write_outputs
            from .store import MARKER

            if not (out / MARKER).exists():
                raise StoreError(f"{out} holds no stored replications of a study; run the "
                                 "study first (without --report-only)")
            store = ResultStore(out)
            store.open(loaded)
            reps = args.replications or loaded.study.replications
            record = StudyRun(study=loaded.study.id, started="", replications=reps)
            files = write_outputs(loaded, store, out, reps, record)
            print(f"report: {files['report']}")
            return 0
        from .engine import run_study

        record = run_study(loaded, out, scheduler=args.scheduler, workers=args.workers,
                           replications=args.replications, batch_size=args.batch_size,
                           fresh=args.fresh, data_dir=args.data_dir,
                           progress=not args.no_progress)
    except (StudyError, StoreError, ImportError, ConnectionError) as e:
        print(f"mlm-harness simulate: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished batches are stored; run the same command to resume",
              file=sys.stderr)
        return 1
    print(f"{record.batches_run} batches in {record.seconds:.1f} s on {record.workers} "
          f"worker(s); tables and report in {out}")
    print(f"report: {out / 'index.html'}")
    for failure in record.batches_failed:
        print(f"batch failed: {failure}", file=sys.stderr)
    return 1 if record.batches_failed else 0
