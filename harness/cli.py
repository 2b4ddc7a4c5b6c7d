"""The mlm-harness command line: parse the arguments, run one command, return its exit code.

Exit codes (a contract): 0 when every required comparison agrees or is explained; 1 on an
unexplained disagreement or a required backend that could not run; 2 on usage, spec or data
errors, including a spec that no backend could fit; 128 + the signal number when interrupted
(130 for SIGINT, 143 for SIGTERM).

This module imports nothing heavy (no numpy, pandas, scipy or pydantic) so that ``--help`` and
``--version`` answer at once; each command imports what it needs when it runs
(tests/test_cli_speed.py holds that line).
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from pathlib import Path
from typing import TextIO

from backends import backend_names
from harness import __version__
from harness.interrupt import Interrupted, signals_raise
from harness.parallel import default_jobs
from harness.paths import default_cache_dir

EXIT_OK, EXIT_DISAGREE, EXIT_USAGE = 0, 1, 2
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPECS = PROJECT_ROOT / "specs"
DESCRIPTION = ("Fit one multilevel-model spec in several packages (native Python, lme4, Stata), "
               "line up every estimate and say whether they agree.")
EPILOG = """examples:
  mlm-harness fit data.csv "y ~ x + (1 | g)" --backends native,lme4 --out r/
  mlm-harness run specs/gcse --out reports/gcse
  mlm-harness new data.csv "y ~ x + (1 | g)" --out my-model.yaml
  mlm-harness refs import lmer-summary.txt stata-log.txt --spec my-model.yaml --check

exit codes: 0 agree or explained, 1 unexplained difference or a required backend failed,
2 usage, spec or data error, 130/143 interrupted."""


class UsageError(ValueError):
    pass


#: error types that mean bad input (exit 2 with one line), by the module that defines them; an
#: error of a module that was never imported cannot have been raised, so nothing is imported
#: just to catch it
EXPECTED_ERRORS = {
    "harness.cli": "UsageError",  # as imported by the commands when this file runs as __main__
    "harness.spec": "SpecError", "harness.datasets": "DatasetError",
    "harness.runner": "DataPreparationError", "harness.report_folder": "ReportFolderError",
    "harness.printouts.base": "PrintoutError", "harness.refs_import": "RefsImportError",
}


def _expected(error: BaseException) -> bool:
    if isinstance(error, UsageError):
        return True
    for module, name in EXPECTED_ERRORS.items():
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(error, cls):
            return True
    return False


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Plain-text help that states each option's default (but not the empty ones)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, [], argparse.SUPPRESS) \
                or not action.option_strings:
            return text
        default = (",".join(action.default) if isinstance(action.default, list)
                   else action.default)
        return f"{text} (default: {default})"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _backend_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in backend_names()]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown backend(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(backend_names())}")
    return names


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is not a positive number")
    return n


def _cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                   help="keep finished fits here and reuse them while nothing that determines "
                        "them changes")
    p.add_argument("--no-cache", action="store_true", help="refit everything")


def _model_options(p: argparse.ArgumentParser) -> None:
    """The options that say what to fit, shared by ``fit`` and ``new`` (harness/build.py)."""
    g = p.add_argument_group("model")
    g.add_argument("--family", default="gaussian",
                   choices=["gaussian", "binomial", "poisson", "ordinal", "multinomial"])
    g.add_argument("--link", default=None, choices=["identity", "logit", "probit", "log"],
                   help="default: the family's canonical link")
    g.add_argument("--method", default=None, choices=["ML", "REML", "OLS"],
                   help="default: REML for gaussian mixed models, OLS single-level, ML otherwise")
    g.add_argument("--nagq", type=_positive, default=1,
                   help="GLMMs: 1 = Laplace, n > 1 = adaptive Gauss-Hermite with n points")
    g.add_argument("--factor", action="append", default=[], metavar="COLUMN",
                   help="treat this column as a factor (repeatable)")
    g.add_argument("--derive", action="append", default=[], metavar="NAME=EXPR",
                   help='add a derived column, e.g. --derive "sch_2=schgend == 2" (repeatable)')
    g.add_argument("--subset", default=None, metavar="EXPR",
                   help='fit only the rows where EXPR is true, e.g. "age >= 16"')
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                   help="any other spec key, dotted, e.g. --set backends.lme4.optimizer=bobyqa "
                        "(repeatable; docs/spec-format.md lists the keys)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mlm-harness", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"mlm-harness {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run specs on backends, compare, write the HTML report",
                         description="Fit every spec on every backend, compare, write a report.")
    run.add_argument("paths", nargs="*", type=Path,
                     help=f"spec files or folders (default: {DEFAULT_SPECS})")
    run.add_argument("--backends", type=_backend_list, default=["native", "lme4"],
                     help="comma-separated backends to run")
    run.add_argument("--require", type=_backend_list, default=[],
                     help="backends that must run: unavailable or erroring is exit 1")
    run.add_argument("--out", type=Path, default=None,
                     help="report folder (default: a new reports/<date-time>/)")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    run.add_argument("--jobs", type=_positive, default=default_jobs(),
                     help="fits to run in parallel; the default is the number of cores here")
    run.add_argument("--scheduler", default=None,
                     help="send the fits to this Dask scheduler (tcp://host:8786) instead of "
                          "local threads (docs/simulate.md)")
    run.add_argument("--data-dir", type=Path, default=None,
                     help="folder with the datasets (default: $MLM_HARNESS_DATA, then "
                          "~/.cache/mlm-harness/data)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    _cache_options(run)
    run.add_argument("--include-optional", action="store_true",
                     help="also run specs tagged 'optional' (e.g. the 4-million-row GCSE refits)")
    run.add_argument("--json", action="store_true",
                     help="print the summary and every result as JSON on stdout")
    run.add_argument("--all-columns", action="store_true",
                     help="show every backend's column in the report, also those with no "
                          "result for any spec")

    fit = sub.add_parser("fit", help="fit one model from the shell and compare the backends",
                         description="Fit one model (a formula on a data file, or a spec file) on "
                                     "one or more backends and compare them.")
    fit.add_argument("data", nargs="?", help="dataset name (see `mlm-harness data verify`) or a "
                                             "data file (.csv, .dta, .sav, .parquet)")
    fit.add_argument("formula", nargs="?",
                     help='lme4-style formula, e.g. "gcse ~ lrt + (1 | school)"')
    fit.add_argument("--spec", type=Path, default=None,
                     help="fit this spec file instead of DATA FORMULA (its references are checked)")
    _model_options(fit)
    fit.add_argument("--backends", type=_backend_list, default=None,
                     help="comma-separated backends (default: native)")
    fit.add_argument("--backend", type=_backend_list, default=None, help=argparse.SUPPRESS)
    fit.add_argument("--require", type=_backend_list, default=[],
                     help="backends that must run: unavailable or erroring is exit 1")
    fit.add_argument("--out", type=Path, default=None, help="write an HTML report to this folder")
    fit.add_argument("--overwrite", action="store_true", help="replace an earlier report in --out")
    fit.add_argument("--data-dir", type=Path, default=None, help="folder with the datasets")
    _cache_options(fit)
    fit.add_argument("--json", action="store_true",
                     help="print JSON: one backend's canonical result, or for several the same "
                          "document as `run --json`")

    new = sub.add_parser("new", help="scaffold a spec from a data file and a formula",
                         description="Write a spec for a formula on a data file, fit it on the "
                                     "backends present and leave its references block ready for "
                                     "pasted printouts (`mlm-harness refs import`).")
    new.add_argument("data", help="dataset name or data file")
    new.add_argument("formula", help='lme4-style formula, e.g. "y ~ x + (1 | g)"')
    new.add_argument("--out", type=Path, required=True, help="the spec file to write (.yaml)")
    new.add_argument("--id", default=None, help="spec id (default: the file name)")
    new.add_argument("--title", default=None, help="one line for the report (default: formula)")
    _model_options(new)
    new.add_argument("--refs", action="append", default=[], type=Path, metavar="PRINTOUT",
                     help="a pasted printout to import as a reference (repeatable; format "
                          "detected, see `refs import`)")
    new.add_argument("--backends", type=_backend_list, default=None,
                     help="backends to fit it on (default: those available of native,lme4)")
    new.add_argument("--no-fit", action="store_true", help="only write the spec")
    new.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    new.add_argument("--data-dir", type=Path, default=None, help="folder with the datasets")

    refs = sub.add_parser("refs", help="import printed output (R, Stata, SPSS) as references")
    refs_sub = refs.add_subparsers(dest="refs_command", required=True, metavar="SUBCOMMAND")
    imp = refs_sub.add_parser(
        "import", help="parse pasted printouts into a spec's references",
        description="Parse printouts of R summary() (lmer, glmer, clmm), Stata mixed/me* and "
                    "SPSS MIXED into reference values with canonical keys, their metric (sd or "
                    "variance, log-odds or odds ratio) and printed precision; append them to "
                    "--spec, or print them as YAML.")
    imp.add_argument("files", nargs="+", type=Path, metavar="PRINTOUT",
                     help="text file(s) with the pasted output ('-' reads stdin)")
    imp.add_argument("--format", default=None,
                     choices=["r-lmer", "r-glmer", "r-clmm", "stata-mixed", "stata-me",
                              "spss-mixed"],
                     help="what printed it (default: detected from the text)")
    imp.add_argument("--spec", type=Path, default=None,
                     help="append the references to this spec file (default: print YAML)")
    imp.add_argument("--id", default=None, help="reference id (default: software and a number)")
    imp.add_argument("--source", default=None,
                     help='where it was printed, e.g. "talk 4 slide 6" (default: the file name)')
    imp.add_argument("--software", default=None,
                     help='e.g. "Stata 17" (default: from the format and the printout)')
    imp.add_argument("--rename", action="append", default=[], metavar="PRINTED=KEY",
                     help="map a printed name to a key, e.g. --rename 2.schgend=fixed/sch_2")
    imp.add_argument("--check", action="store_true",
                     help="then fit the spec on the backends present and compare (exit codes "
                          "as `run`)")
    imp.add_argument("--backends", type=_backend_list, default=None,
                     help="with --check: the backends (default: those available of native,lme4)")
    imp.add_argument("--data-dir", type=Path, default=None, help="folder with the datasets")

    lst = sub.add_parser("list", help="list the specs")
    lst.add_argument("paths", nargs="*", type=Path, help="spec files or folders")

    show = sub.add_parser("show", help="a spec and the code each backend would run")
    show.add_argument("id")
    show.add_argument("--paths", nargs="*", type=Path, default=None)

    data = sub.add_parser("data", help="fetch or verify the course's (or the gallery's) datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
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
    from backends.spss.cli import add_parser as add_spss_parser

    add_spss_parser(sub)
    from harness.simulate.cli import add_parser as add_simulate_parser

    add_simulate_parser(sub)
    return p


#: command -> "module:function"; the module is imported only when its command runs
COMMANDS = {
    "run": "harness.cli_run:cmd_run", "fit": "harness.cli_run:cmd_fit",
    "new": "harness.scaffold:cmd_new", "refs": "harness.refs_import:cmd_refs",
    "list": "harness.cli:cmd_list", "show": "harness.cli:cmd_show",
    "data": "harness.cli:cmd_data", "doctor": "harness.cli:cmd_doctor",
}


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
            if args.command in ("stata", "spss", "simulate"):
                return args.handler(args)
            module, name = COMMANDS[args.command].split(":")
            return getattr(importlib.import_module(module), name)(args)
    except OSError as e:  # a folder that cannot be written, a full disk, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"mlm-harness: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as e:
        from backends.base import interrupt_all

        stopped = sum(interrupt_all().values())
        notes = [f"stopped {stopped} worker process(es)"] if stopped else []
        notes += getattr(e, "__notes__", [])
        print(f"mlm-harness: interrupted by {e.signal_name}"
              + (f"; {'; '.join(notes)}" if notes else ""), file=sys.stderr)
        return e.exit_code
    except Exception as e:
        if not _expected(e):
            raise
        print(f"mlm-harness: error: {e}", file=sys.stderr)
        return EXIT_USAGE


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


def cmd_list(args: argparse.Namespace) -> int:
    from harness.spec import load_specs

    specs = load_specs(args.paths or [DEFAULT_SPECS])
    for _, s in specs:
        print(f"{s.id:<44} {s.dataset:<10} {s.model.family:<9} {s.model.method_label():<8} "
              f"{s.title}")
    print(f"{len(specs)} specs", file=sys.stderr)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    import yaml

    from backends.base import get_backend
    from harness.spec import load_specs

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
    from harness.datasets import fetch, format_verify, verify

    suite = "gallery" if args.gallery else "course"
    if args.data_command == "fetch":
        for path in fetch(args.names or None, force=args.force, suite=suite):
            print(f"ok {path}")
        return EXIT_OK
    rows = verify(args.data_dir, suite=suite)
    print(format_verify(rows))
    return EXIT_OK if all(row.status == "ok" for row in rows) else EXIT_DISAGREE


def cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    from backends.base import get_backend

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
