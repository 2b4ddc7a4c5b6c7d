"""The ``mlm-harness`` command line.

Exit codes (a contract): 0 when every required comparison agrees or is explained; 1 on an
unexplained disagreement or a required backend that could not run; 2 on usage, spec or data
errors.
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import datetime
from pathlib import Path

from backends.base import backend_names, get_backend
from harness import __version__
from harness.fitcache import default_cache_dir
from harness.datasets import DatasetError, fetch, format_verify, verify
from harness.results import FitResult
from harness.runner import DataPreparationError, RunOptions, fit_one, prepare_data, run_specs
from harness.spec import Spec, SpecError, load_specs, parse_spec

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
    run.add_argument("--scheduler", default=None,
                     help="send the fits to this Dask scheduler (tcp://host:8786) instead of "
                          "local threads (docs/simulate.md)")
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

    data = sub.add_parser("data", help="fetch or verify the course datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    f = data_sub.add_parser("fetch", help="download datasets into the cache, checking SHA-256")
    f.add_argument("names", nargs="*")
    f.add_argument("--force", action="store_true")
    v = data_sub.add_parser("verify", help="check which datasets are present and intact")
    v.add_argument("--data-dir", type=Path, default=None)

    sub.add_parser("doctor", help="what is installed: Python, R, lme4, rpy2, Stata")
    from backends.stata.cli import add_parser as add_stata_parser

    add_stata_parser(sub)
    from harness.simulate.cli import add_parser as add_simulate_parser

    add_simulate_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    try:
        return {"run": cmd_run, "fit": cmd_fit, "list": cmd_list, "show": cmd_show,
                "data": cmd_data, "doctor": cmd_doctor,
                "stata": lambda a: a.handler(a), "simulate": lambda a: a.handler(a)
                }[args.command](args)
    except (SpecError, DatasetError, DataPreparationError, UsageError) as e:
        print(f"mlm-harness: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ImportError, ConnectionError) as e:  # run --scheduler: no Dask, or no scheduler
        print(f"mlm-harness: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    from harness.report import ReportFolderError, prepare_folder, write_report

    specs = load_specs(args.paths or [DEFAULT_SPECS])
    if not specs:
        raise UsageError(f"no specs found in {', '.join(map(str, args.paths or [DEFAULT_SPECS]))}")
    optional = [s.id for _, s in specs if "optional" in s.tags]
    if optional and not args.include_optional:
        specs = [(p, s) for p, s in specs if "optional" not in s.tags]
        print(f"not running {len(optional)} optional spec(s) ({', '.join(optional)}); "
              "add --include-optional to run them", file=sys.stderr)
    backends = list(dict.fromkeys(args.backends + args.require))
    out = args.out or PROJECT_ROOT / "reports" / datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        prepare_folder(out, args.overwrite)
    except ReportFolderError as e:
        raise UsageError(str(e)) from None
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        def progress(it, total):  # type: ignore[no-untyped-def]
            return tqdm(it, total=total, desc="fitting", unit="fit", file=sys.stderr)

    options = RunOptions(backends=backends, required=set(args.require), data_dir=args.data_dir,
                         jobs=args.jobs, cache_dir=None if args.no_cache else args.cache_dir,
                         scheduler=args.scheduler)
    suite = run_specs([(p, s) for p, s in specs], options, progress)
    data = write_report(suite, out)
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
    return EXIT_DISAGREE if failures or t["unexplained"] else EXIT_OK


def _cli_spec(args: argparse.Namespace) -> Spec:
    from harness.formula import parse_formula

    formula = parse_formula(args.formula)
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
    if args.data_command == "fetch":
        for path in fetch(args.names or None, force=args.force):
            print(f"ok {path}")
        return EXIT_OK
    rows = verify(args.data_dir)
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
