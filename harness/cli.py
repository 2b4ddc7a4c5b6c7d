"""The ``mlm-harness`` command line.

Exit codes (a contract): 0 when every required comparison agrees or is explained; 1 on an
unexplained disagreement or a required backend that could not run; 2 on usage, spec or data
errors, including a spec that no backend could fit; 128 + the signal number when interrupted
(130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from backends.base import backend_names, get_backend, interrupt_all
from harness import __version__
from harness.datasets import DatasetError, fetch, format_verify, verify
from harness.fitcache import default_cache_dir
from harness.interrupt import Interrupted, signals_raise
from harness.results import FitResult
from harness.runner import DataPreparationError, RunOptions, fit_one, prepare_data, run_specs
from harness.spec import Spec, SpecError, load_specs, parse_spec

if TYPE_CHECKING:
    from harness.report_folder import ReportFolder

EXIT_OK, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPECS = PROJECT_ROOT / "specs"


class UsageError(ValueError):
    pass


def _backend_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in backend_names()]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(backend_names())}")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlm-harness", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"mlm-harness {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run specs on backends, compare, write the HTML report")
    run.add_argument("paths", nargs="*", type=Path, help="spec files or folders (default: specs/)")
    run.add_argument("--backends", type=_backend_list, default=["native", "lme4"],
                     help="comma-separated backends to run (default: native,lme4)")
    run.add_argument("--require", type=_backend_list, default=[],
                     help="backends that must run: unavailable or erroring is exit 1")
    run.add_argument("--out", type=Path, default=None,
                     help="report folder (default: a new reports/<date-time>/)")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    run.add_argument("--jobs", type=int, default=1, help="fits to run in parallel")
    run.add_argument("--data-dir", type=Path, default=None, help="folder with the datasets")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                     help="keep finished fits here and reuse them when nothing that determines "
                          "them changed (default: %(default)s)")
    run.add_argument("--no-cache", action="store_true", help="refit everything")
    run.add_argument("--include-optional", action="store_true",
                     help="also run specs tagged 'optional' (e.g. the 4-million-row GCSE refits)")

    fit = sub.add_parser("fit", help="fit one model from the shell")
    fit.add_argument("data", help="dataset name (see `mlm-harness data verify`) or a file path")
    fit.add_argument("formula", help='lme4-style formula, e.g. "gcse ~ lrt + (1 | school)"')
    fit.add_argument("--family", default="gaussian",
                     choices=["gaussian", "binomial", "poisson", "ordinal"])
    fit.add_argument("--link", default=None, choices=["identity", "logit", "probit", "log"])
    fit.add_argument("--method", default=None, choices=["ML", "REML", "OLS"],
                     help="default: REML for gaussian mixed models, ML otherwise, OLS single-level")
    fit.add_argument("--nagq", type=int, default=1,
                     help="GLMMs: 1 = Laplace, n > 1 = adaptive Gauss-Hermite with n points")
    fit.add_argument("--factor", action="append", default=[], help="treat this column as a factor")
    fit.add_argument("--backend", default="native", choices=backend_names())
    fit.add_argument("--data-dir", type=Path, default=None)
    fit.add_argument("--json", action="store_true", help="print the canonical JSON result")

    lst = sub.add_parser("list", help="list the specs")
    lst.add_argument("paths", nargs="*", type=Path)

    show = sub.add_parser("show", help="a spec and the code each backend would run")
    show.add_argument("id")
    show.add_argument("--paths", nargs="*", type=Path, default=None)

    data = sub.add_parser("data", help="fetch or verify the course's (or the gallery's) datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    f = data_sub.add_parser("fetch", help="download datasets into the cache, checking SHA-256")
    f.add_argument("names", nargs="*")
    f.add_argument("--force", action="store_true")
    v = data_sub.add_parser("verify", help="check which datasets are present and intact")
    v.add_argument("--data-dir", type=Path, default=None)
    for sp in (f, v):
        sp.add_argument("--gallery", action="store_true",
                        help="the gallery's datasets (data/gallery.yaml, exported by R) instead "
                             "of the course's")

    sub.add_parser("doctor", help="what is installed: Python, R, lme4, rpy2, Stata")
    from backends.stata.cli import add_parser as add_stata_parser

    add_stata_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; every expected failure is a line on stderr and an exit code, never a
    traceback: 2 for bad input, 130/143 when interrupted by SIGINT/SIGTERM."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    guard_stdout()
    try:
        with signals_raise():
            return {"run": cmd_run, "fit": cmd_fit, "list": cmd_list, "show": cmd_show,
                    "data": cmd_data, "doctor": cmd_doctor,
                    "stata": lambda a: a.handler(a)}[args.command](args)
    except (SpecError, DatasetError, DataPreparationError, UsageError) as e:
        print(f"mlm-harness: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # a folder that cannot be written, a full disk, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"mlm-harness: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as e:
        stopped = sum(interrupt_all().values())
        notes = [f"stopped {stopped} worker process(es)"] if stopped else []
        notes += getattr(e, "__notes__", [])
        print(f"mlm-harness: interrupted by {e.signal_name}"
              + (f"; {'; '.join(notes)}" if notes else ""), file=sys.stderr)
        return e.exit_code


class _PipeSafeStdout(io.TextIOBase):
    """stdout that stops writing, without a traceback, once its reader has gone
    (``mlm-harness list | head``); the command carries on and returns its own exit code."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def _closed_pipe(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())  # what is still buffered goes nowhere
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._closed_pipe()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._closed_pipe()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding


def guard_stdout() -> None:
    """Make a closed stdout pipe harmless for the rest of the process."""
    if not isinstance(sys.stdout, _PipeSafeStdout):
        try:
            sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # captured (pytest): nothing to guard
            return
        sys.stdout = _PipeSafeStdout(sys.stdout)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.report_folder import ReportFolderError, open_report_folder

    specs = load_specs(args.paths or [DEFAULT_SPECS])
    if not specs:
        raise UsageError(f"no specs found in {', '.join(map(str, args.paths or [DEFAULT_SPECS]))}")
    optional = [s.id for _, s in specs if "optional" in s.tags]
    if optional and not args.include_optional:
        specs = [(p, s) for p, s in specs if "optional" not in s.tags]
        print(f"not running {len(optional)} optional spec(s) ({', '.join(optional)}); "
              "add --include-optional to run them", file=sys.stderr)
    backends = list(dict.fromkeys(args.backends + args.require))
    try:
        folder = open_report_folder(args.out, args.overwrite, PROJECT_ROOT / "reports")
    except ReportFolderError as e:
        raise UsageError(str(e)) from None
    try:
        return _run_into(folder, args, specs, backends)
    except Interrupted as e:
        e.add_note(f"no report was written to {folder.path}")
        raise
    finally:
        folder.close()


def _run_into(folder: ReportFolder, args: argparse.Namespace, specs: list[tuple[Path, Spec]],
              backends: list[str]) -> int:
    """Fit, compare, write the report into the folder's staging area and swap it in."""
    from harness.report import write_report

    out = folder.path
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        def progress(it, total):  # type: ignore[no-untyped-def]
            return tqdm(it, total=total, desc="fitting", unit="fit", file=sys.stderr)

    options = RunOptions(backends=backends, required=set(args.require), data_dir=args.data_dir,
                         jobs=args.jobs, cache_dir=None if args.no_cache else args.cache_dir)
    suite = run_specs([(p, s) for p, s in specs], options, progress)
    data = write_report(suite, folder.staging)
    folder.commit()
    t = data["totals"]
    print(f"{t['specs']} specs, {t['checks']} checks: {t['agree']} agree, {t['explained']} "
          f"explained, {t['unexplained']} unexplained, {t['pending']} pending, {t['errors']} "
          f"errors, {t['unavailable']} unavailable, {t['not_estimable']} not estimable, "
          f"{t['info']} stated in words only")
    print(f"report: {out / 'index.html'}")
    failures = suite.required_failures()
    for msg in failures:
        print(f"required backend failed: {msg}", file=sys.stderr)
    for spec in data["specs"]:
        for row in spec["unexplained"]:
            print(f"unexplained: {spec['id']} {row['key']} ({row['quantity']}): {row['a']} "
                  f"{row['value_a']:.8g} vs {row['b']} {row['value_b']:.8g}", file=sys.stderr)
    unfitted = suite.unfitted()
    for spec_id, messages in unfitted.items():
        print(f"mlm-harness: error: spec {spec_id}: no backend could fit it", file=sys.stderr)
        for name, message in messages.items():
            print(f"  {name}: {message}", file=sys.stderr)
    if unfitted:
        return EXIT_USAGE
    return EXIT_DISAGREE if failures or t["unexplained"] else EXIT_OK


def _cli_spec(args: argparse.Namespace) -> Spec:
    from harness.formula import FormulaError, parse_formula

    try:
        formula = parse_formula(args.formula)
    except FormulaError as e:
        raise UsageError(f"formula: {e}") from None
    method = args.method
    if method is None:
        method = ("REML" if formula.has_random else "OLS") if args.family == "gaussian" else "ML"
    model: dict = {"formula": args.formula, "family": args.family, "method": method}
    if args.link:
        model["link"] = args.link
    if args.family != "gaussian" and formula.has_random:
        model["integration"] = ({"method": "laplace"} if args.nagq == 1
                                else {"method": "aghq", "points": args.nagq})
    return parse_spec({"id": "cli", "title": "mlm-harness fit", "source": "command line",
                       "dataset": args.data, "model": model,
                       "columns": {c: "factor" for c in args.factor}}, "command line")


def cmd_fit(args: argparse.Namespace) -> int:
    spec = _cli_spec(args)
    data = prepare_data(spec, args.data_dir)
    result = fit_one(spec, args.backend, data)
    if args.json:
        print(result.to_json())
    else:
        print(format_result(result))
    return EXIT_OK if result.status == "ok" else EXIT_DISAGREE


def format_result(r: FitResult) -> str:
    """A readable summary of a canonical result, in the order a mixed-model user expects."""
    lines = [f"{r.backend}: {r.provenance.method or ''} fit of spec {r.spec_id} — status {r.status}"]
    if r.status != "ok":
        lines.append(r.message)
        return "\n".join(lines)
    s = r.statistics
    groups = ", ".join(f"{g}: {n}" for g, n in s.ngroups.items())
    lines.append(f"observations {s.nobs}" + (f"; groups {groups}" if groups else "")
                 + (f"; dropped {s.nobs_dropped} rows with missing values" if s.nobs_dropped else ""))
    stats = [(n, v) for n, v in (("logLik", s.loglik), ("REML criterion", s.reml_criterion),
                                 ("deviance", s.deviance), ("AIC", s.aic), ("BIC", s.bic))
             if v is not None]
    lines.append("  ".join(f"{n} {v:.4f}" for n, v in stats))
    lines.append("\nFixed effects:")
    lines.append(f"  {'term':<28}{'estimate':>14}{'std.error':>14}")
    for p in r.parameters:
        if p.effect in ("fixed", "threshold"):
            se = f"{p.std_error:14.6g}" if p.std_error is not None else " " * 14
            label = p.term if p.effect == "fixed" else f"threshold {p.term}"
            lines.append(f"  {label:<28}{p.estimate:14.7g}{se}")
    lines.append("\nRandom effects (sd and cor):")
    for p in r.parameters:
        if p.effect == "ran_pars" and p.term.startswith(("sd__", "cor__")):
            lines.append(f"  {str(p.group):<14}{p.term:<28}{p.estimate:14.7g}")
    d = r.diagnostics
    lines.append(f"\nconverged: {d.converged}; singular: {d.singular}; optimizer: {d.optimizer}")
    lines.extend(f"warning: {w}" for w in d.warnings)
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    specs = load_specs(args.paths or [DEFAULT_SPECS])
    for _, s in specs:
        print(f"{s.id:<44} {s.dataset:<10} {s.model.family:<9} {s.model.method_label():<8} "
              f"{s.title}")
    print(f"{len(specs)} specs", file=sys.stderr)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    import yaml

    specs = {s.id: (p, s) for p, s in load_specs(args.paths or [DEFAULT_SPECS])}
    if args.id not in specs:
        close = [i for i in specs if args.id in i][:10]
        raise UsageError(f"no spec with id {args.id!r}"
                         + (f"; did you mean: {', '.join(close)}" if close else ""))
    path, spec = specs[args.id]
    print(f"# {path}")
    print(yaml.safe_dump(spec.model_dump(exclude_defaults=True), sort_keys=False).rstrip())
    for name in backend_names():
        backend = get_backend(name)
        print(f"\n## {name}")
        reason = spec.skip_reason(name) or backend.unsupported_reason(spec.model_for(name))
        if reason:
            print(f"(not run: {reason})")
        code = backend.render(spec)
        print(code if code else "(no code: this backend does not render code)")
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    suite = "gallery" if args.gallery else "course"
    if args.data_command == "fetch":
        for path in fetch(args.names or None, force=args.force, suite=suite):
            print(f"ok {path}")
        return EXIT_OK
    rows = verify(args.data_dir, suite=suite)
    print(format_verify(rows))
    return EXIT_OK if all(row.status == "ok" for row in rows) else EXIT_DISAGREE


def cmd_doctor(args: argparse.Namespace) -> int:
    print(f"Python {platform.python_version()} on {platform.platform()}")
    for mod in ("numpy", "scipy", "pandas", "nlopt", "pyreadstat", "jinja2"):
        try:
            m = __import__(mod)
            print(f"  {mod:<11} {getattr(m, '__version__', '?')}")
        except ImportError:
            print(f"  {mod:<11} MISSING (fix: pip install -e .)")
    for name in backend_names():
        a = get_backend(name).availability()
        versions = ", ".join(f"{k} {v}" for k, v in a.versions)
        print(f"backend {name}: {'available' if a.ok else 'UNAVAILABLE'}"
              + (f" ({versions})" if versions else ""))
        if a.ok and a.reason:
            print(f"  note:   {a.reason}")
        if not a.ok:
            print(f"  reason: {a.reason}")
            if a.fix:
                print(f"  fix:    {a.fix}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
