"""``mlm-harness refs import``: pasted printouts become reference blocks of a spec.

Each printout (harness/printouts/) is read, each printed number is placed on a key of the spec's
model (harness/printouts/resolve.py), and the result is one reference per printout with the
printed text (so its precision counts), the software, the estimator the printout states and a
note listing what was printed but not imported. With ``--spec`` the references are appended to
the spec file as text — its comments and layout stay as they were — and the new file is loaded
and checked (every key against the model, harness/model_keys.py) before it replaces the old one;
without it they are printed as YAML. ``--check`` then fits the spec and compares, so two
commands (``new``, then ``refs import ... --check``; or ``new --refs``) take a teacher from the
printouts on a slide to a spec with every printed number checked.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.printouts import parse
from harness.printouts.base import Printout, PrintoutError
from harness.printouts.resolve import reference_values, resolve
from harness.spec import Spec, load_spec, parse_spec


class RefsImportError(ValueError):
    """The references cannot be added; the message names the file and the fix."""


_SLUG = {"r-lmer": "lme4", "r-glmer": "lme4", "r-clmm": "clmm", "stata-mixed": "stata",
         "stata-me": "stata", "spss-mixed": "spss"}


def read_printout(path: Path, fmt: str | None) -> Printout:
    text = sys.stdin.read() if str(path) == "-" else _read(path)
    try:
        return parse(text, fmt)
    except PrintoutError as e:
        raise PrintoutError(f"{path}: {e}") from None


def _read(path: Path) -> str:
    if not path.is_file():
        raise RefsImportError(f"{path}: no such file")
    if path.stat().st_size > 1 << 20:
        raise RefsImportError(f"{path}: larger than 1 MiB; paste only the model's output")
    return path.read_text(errors="replace")


def build_references(printouts: list[tuple[Path, Printout]], spec: Spec | None,
                     valid: set[str] | None, *, ref_id: str | None = None,
                     source: str | None = None, software: str | None = None,
                     renames: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One reference mapping per printout, keys placed on ``valid`` (the model's keys)."""
    if ref_id and len(printouts) > 1:
        raise RefsImportError("--id names one reference; import one printout at a time with it")
    taken = {r.id for r in spec.references} if spec else set()
    refs = []
    for path, printout in printouts:
        resolved = resolve(printout, valid, renames or {}, str(path))
        rid = ref_id or _new_id(_SLUG[printout.format], taken)
        if rid in taken:
            raise RefsImportError(f"--id {rid}: the spec already has a reference {rid}")
        taken.add(rid)
        ref: dict[str, Any] = {"id": rid, "software": software or printout.software}
        if printout.version:
            ref["version"] = printout.version
        ref["source"] = source or f"pasted printout {path.name}"
        if printout.method:
            ref["method"] = printout.method
        ref["kind"] = "printed"
        note = [f"imported by mlm-harness refs import ({printout.format})"]
        if printout.skipped:
            note.append("printed but not compared: " + "; ".join(printout.skipped))
        ref["note"] = ". ".join(note) + "."
        ref["values"] = reference_values(resolved)
        refs.append(ref)
        _warn_formula(printout, spec, path)
    return refs


def _new_id(slug: str, taken: set[str]) -> str:
    if slug not in taken:
        return slug
    n = 2
    while f"{slug}-{n}" in taken:
        n += 1
    return f"{slug}-{n}"


def _warn_formula(printout: Printout, spec: Spec | None, path: Path) -> None:
    """R prints its formula: say so when it is not the spec's model (a different model's
    numbers would be compared)."""
    if spec is None or not printout.formula:
        return
    from harness.formula import FormulaError, parse_formula

    try:
        printed = parse_formula(printout.formula).lme4()
    except FormulaError:
        return
    if printed != spec.model.parsed.lme4():
        print(f"mlm-harness: warning: {path}: the printout's formula {printed!r} is not the "
              f"spec's {spec.model.parsed.lme4()!r}", file=sys.stderr)


def model_keys(spec: Spec, data_dir: Path | None) -> set[str]:
    """Every key the spec's model has (needs the data: factor levels name the dummies)."""
    from harness.model_keys import expected_keys
    from harness.runner import prepare_data

    return expected_keys(spec, prepare_data(spec, data_dir).frame)


# ---- writing into a spec file -----------------------------------------------------------------

def references_yaml(refs: list[dict[str, Any]]) -> str:
    """YAML for a list of references; printed numbers stay quoted text."""
    return yaml.safe_dump(refs, sort_keys=False, allow_unicode=True, default_flow_style=None,
                          width=100)


_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


def append_to_spec(path: Path, refs: list[dict[str, Any]]) -> Spec:
    """Add ``refs`` to the spec file's ``references:`` as text (comments and layout kept),
    load the result and check it, then replace the file. Returns the new spec."""
    text = path.read_text()
    new_text = _inserted(text, references_yaml(refs))
    try:
        data = yaml.safe_load(new_text)
    except yaml.YAMLError as e:
        raise RefsImportError(f"{path}: the spec's references block could not be extended "
                              f"as text ({e}); add the printed YAML by hand") from None
    spec = parse_spec(data, path)
    old = load_spec(path)
    if [r.id for r in spec.references] != [r.id for r in old.references] + \
            [r["id"] for r in refs]:
        raise RefsImportError(f"{path}: the references block has a layout this command cannot "
                              "extend; add the printed YAML by hand (nothing was written)")
    from backends.stata.cli import write_atomically

    write_atomically(path, new_text)
    return spec


def _inserted(text: str, block: str) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines) if re.match(r"^references\s*:", line)), None)
    if start is None:
        return "".join(lines) + "references:\n" + block
    head = lines[start]
    if re.match(r"^references\s*:\s*\[\s*\]\s*(#.*)?$", head.rstrip("\n")):
        lines[start] = "references:\n"
        return "".join(lines[:start + 1]) + block + "".join(lines[start + 1:])
    if not re.match(r"^references\s*:\s*(#.*)?$", head.rstrip("\n")):
        raise RefsImportError("the spec writes references: inline; add the printed YAML by hand")
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1  # blank lines and comments before the next key belong to that key
    item = next((line for line in lines[start + 1:end] if line.lstrip().startswith("- ")), "")
    indent = item[:len(item) - len(item.lstrip())]
    block = "".join(indent + line if line.strip() else line
                    for line in block.splitlines(keepends=True))
    return "".join(lines[:end]) + block + "".join(lines[end:])


# ---- the command ------------------------------------------------------------------------------

def cmd_refs(args: argparse.Namespace) -> int:
    from harness.build import parse_assignment

    renames = dict(parse_assignment(r, "--rename") for r in args.rename)
    printouts = [(p, read_printout(p, args.format)) for p in args.files]
    if args.spec is None:
        if args.check:
            raise RefsImportError("--check needs --spec (the spec to fit and compare)")
        refs = build_references(printouts, None, None, ref_id=args.id, source=args.source,
                                software=args.software, renames=renames)
        print(references_yaml(refs), end="")
        print(f"{sum(len(r['values']) for r in refs)} value(s) from {len(refs)} printout(s); "
              "keys were not checked against a model (give --spec to add and check them)",
              file=sys.stderr)
        return 0
    spec = load_spec(args.spec)
    refs = build_references(printouts, spec, model_keys(spec, args.data_dir), ref_id=args.id,
                            source=args.source, software=args.software, renames=renames)
    spec = append_to_spec(args.spec, refs)
    for ref in refs:
        print(f"added reference {ref['id']} to {args.spec}: {len(ref['values'])} value(s)"
              + (f" ({ref['method']})" if ref.get("method") else ""), file=sys.stderr)
    if not args.check:
        return 0
    return check_spec(args.spec, spec, args)


def check_spec(path: Path, spec: Spec, args: argparse.Namespace) -> int:
    """Fit ``spec`` on the backends present (native, lme4) and compare, as ``fit --spec``."""
    from harness.cli_run import execute, run_options

    backends = present_backends(getattr(args, "backends", None))
    options = run_options(_CheckArgs(args.data_dir), backends)
    return execute([(path, spec)], options, _CheckArgs(args.data_dir), out=None,
                   default_report=False, table=True)


def present_backends(asked: list[str] | None) -> list[str]:
    """The backends asked for, or those of native and lme4 that can run here."""
    if asked:
        return asked
    from backends.base import get_backend

    return [b for b in ("native", "lme4") if get_backend(b).availability().ok] or ["native"]


class _CheckArgs(argparse.Namespace):
    """The options :func:`harness.cli_run.execute` reads, for a check run from another command."""

    def __init__(self, data_dir: Path | None):
        super().__init__(data_dir=data_dir, require=[], no_cache=False, json=False,
                         overwrite=False, no_progress=True, all_columns=False)
        from harness.paths import default_cache_dir

        self.cache_dir = default_cache_dir()


