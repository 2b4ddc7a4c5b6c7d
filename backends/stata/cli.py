"""``mlm-harness stata export|import``: move Stata fits between machines as one results file.

Wiring (in harness/cli.py)::

    from backends.stata.cli import add_parser as add_stata_parser
    add_stata_parser(sub)                       # in build_parser()
    ... "stata": cmd_stata ...                  # in main()'s dispatch, where
    cmd_stata = backends.stata.cli.handle       # returns an exit code (0 ok, 1 failures, 2 usage)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_SPECS = Path(__file__).resolve().parents[2] / "specs"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``stata`` with its ``export`` and ``import`` sub-commands to a CLI's sub-parsers."""
    p = subparsers.add_parser("stata", help="export a do-file for Stata / import its results")
    sub = p.add_subparsers(dest="stata_command", required=True)
    e = sub.add_parser("export", help="one do-file that fits the specs in Stata 15+ and writes "
                                      "ONE results file")
    e.add_argument("paths", nargs="*", type=Path, help="spec files or folders (default: specs/)")
    e.add_argument("--out", type=Path, required=True, help="the do-file to write")
    e.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    e.add_argument("--results", default="mlmh_stata_results.txt",
                   help="results file the do-file writes (relative to Stata's working folder)")
    e.add_argument("--data-dir", type=Path, default=None, help="datasets here (to hash them)")
    e.add_argument("--stata-data-dir", default=None,
                   help="datasets folder on the Stata machine (default: the folder found here)")
    e.add_argument("--include-optional", action="store_true",
                   help="also export specs tagged 'optional'")
    i = sub.add_parser("import", help="turn a results file into stored Stata results")
    i.add_argument("file", type=Path, help="the results file the exported do-file wrote")
    i.add_argument("--into", type=Path, default=None,
                   help="folder for the stored results (default: $MLMH_STATA_STORED, else "
                        "~/.local/share/mlm-harness/stata-results)")
    p.set_defaults(handler=handle)
    return p


def write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def handle(args: argparse.Namespace) -> int:
    from backends.stata.render import StataRenderError
    from backends.stata.results_file import ResultsFileError
    from backends.stata.stored import export_do, import_results
    from harness.spec import SpecError, load_specs

    try:
        if args.stata_command == "export":
            if args.out.exists() and not args.overwrite:
                print(f"mlm-harness stata: error: {args.out} exists; pass --overwrite to replace "
                      "it, or choose another --out (nothing was written)", file=sys.stderr)
                return 2
            specs = [s for _, s in load_specs(args.paths or [DEFAULT_SPECS])
                     if args.include_optional or "optional" not in s.tags]
            text = export_do(specs, results_file=args.results, data_dir=args.data_dir,
                             stata_data_dir=args.stata_data_dir)
            write_atomically(args.out, text)
            n = text.count('file write mlmh_fh "model"')
            print(f"wrote {args.out}: {n} model(s); run it in Stata 15+ (do {args.out.name}), "
                  f"then: mlm-harness stata import {args.results}")
            return 0
        results = import_results(args.file, out_dir=args.into)
        failed = 0
        for spec_id, r in results.items():
            print(f"{r.status:<6} {spec_id}" + (f": {r.message}" if r.status != "ok" else ""))
            failed += r.status != "ok"
        print(f"{len(results) - failed} stored, {failed} failed")
        return 1 if failed else 0
    except (SpecError, StataRenderError, ResultsFileError, OSError) as e:
        print(f"mlm-harness stata: error: {e}", file=sys.stderr)
        return 2
