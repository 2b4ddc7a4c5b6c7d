"""``mlm-harness new``: a spec from a data file and a formula, fitted where the backends are.

The spec states everything a spec must (the method, a GLMM's integration; harness/build.py
fills in the documented defaults and says which), is checked against the data before it is
written (every formula variable a column, the outcome fit for the family), and ends with a
``references:`` block: empty and ready for ``mlm-harness refs import``, or already holding the
printouts given with ``--refs``. Then the model is fitted on the backends present and compared
(``--no-fit`` skips that), so the file written is one that runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from harness.build import parse_assignment, spec_dict
from harness.cli import UsageError
from harness.refs_import import (build_references, check_spec, model_keys, read_printout,
                                 references_yaml)
from harness.spec import parse_spec

HEADER = """\
# Written by `mlm-harness new` ({command}).
# Data paths are read relative to the folder mlm-harness runs in. The format: docs/spec-format.md.
# Add printed output of other software as references:
#   mlm-harness refs import summary.txt stata.log --spec {path} --check
"""


def spec_id_from(stem: str) -> str:
    """A valid spec id from a file name (letters, digits, ``_ . -``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem).strip("_.-")
    return cleaned or "model"


def cmd_new(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.suffix not in (".yaml", ".yml"):
        raise UsageError(f"--out {out}: a spec file ends in .yaml")
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out} exists; pass --overwrite to replace it (nothing was written)")
    derive = dict(parse_assignment(d, "--derive") for d in args.derive)
    overrides = {}
    for text in args.settings:
        key, value = parse_assignment(text, "--set")
        overrides[key] = yaml.safe_load(value) if value else ""
    data = spec_dict(args.data, args.formula, family=args.family, link=args.link,
                     method=args.method, nagq=args.nagq, factors=args.factor, derive=derive,
                     subset=args.subset, spec_id=args.id or spec_id_from(out.stem),
                     title=args.title, source="mlm-harness new", overrides=overrides)
    spec = parse_spec(data, out)
    valid = model_keys(spec, args.data_dir)  # also checks the data against the model, now
    refs = build_references([(p, read_printout(p, None)) for p in args.refs], spec, valid)
    text = HEADER.format(command=f"{args.data} {args.formula!r}", path=out)
    text += yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    text += "references:" + ("\n" + references_yaml(refs) if refs else " []\n")
    spec = parse_spec(yaml.safe_load(text), out)  # what is written is what loads
    out.parent.mkdir(parents=True, exist_ok=True)
    from backends.stata.cli import write_atomically

    write_atomically(out, text)
    print(f"wrote {out}: {spec.model.method_label()} fit of {spec.model.formula}"
          + (f", {len(refs)} reference(s) with {sum(len(r['values']) for r in refs)} value(s)"
             if refs else ""), file=sys.stderr)
    if args.no_fit:
        return 0
    return check_spec(out, spec, args)
