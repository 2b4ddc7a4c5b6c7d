"""``mlm-harness spss export``: one SPSS syntax file (.sps) that fits the specs in SPSS.

Wired in harness/cli.py as ``stata`` is (``add_parser`` in build_parser, ``handle`` returns an
exit code: 0 written, 2 bad input or a spec SPSS cannot express)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backends.stata.cli import DEFAULT_SPECS, write_atomically


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("spss", help="export SPSS syntax (MIXED, GENLINMIXED)")
    sub = p.add_subparsers(dest="spss_command", required=True)
    e = sub.add_parser("export", help="one .sps file that fits the specs in SPSS")
    e.add_argument("paths", nargs="*", type=Path, help="spec files or folders (default: specs/)")
    e.add_argument("--out", type=Path, required=True, help="the syntax file to write")
    e.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    e.add_argument("--data-dir", type=Path, default=None, help="datasets here (to find them)")
    e.add_argument("--spss-data-dir", default=None,
                   help="datasets folder on the SPSS machine (default: the path found here)")
    e.add_argument("--include-optional", action="store_true",
                   help="also export specs tagged 'optional'")
    e.add_argument("--skip-unsupported", action="store_true",
                   help="leave out specs SPSS cannot express (each listed, with its reason, on "
                        "stderr and as a comment in the file) instead of stopping")
    p.set_defaults(handler=handle)
    return p


def handle(args: argparse.Namespace) -> int:
    from backends.spss.errors import SpssRenderError
    from backends.spss.export import export_syntax
    from harness.spec import SpecError, load_specs

    if args.out.exists() and not args.overwrite:
        print(f"mlm-harness spss: error: {args.out} exists; pass --overwrite to replace it, or "
              "choose another --out (nothing was written)", file=sys.stderr)
        return 2
    try:
        specs = [s for _, s in load_specs(args.paths or [DEFAULT_SPECS])
                 if args.include_optional or "optional" not in s.tags]
        text, skipped = export_syntax(specs, data_dir=args.data_dir,
                                      spss_data_dir=args.spss_data_dir,
                                      skip_unsupported=args.skip_unsupported)
    except (SpecError, SpssRenderError, OSError) as e:
        print(f"mlm-harness spss: error: {e}", file=sys.stderr)
        return 2
    for reason in skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    write_atomically(args.out, text)
    print(f"wrote {args.out}: {len(specs) - len(skipped)} model(s), {len(skipped)} not "
          f"expressible in SPSS; run it in SPSS (INSERT FILE='{args.out.name}').")
    return 0
