"""``mlm-harness run`` and ``mlm-harness fit``: fit, compare, print, and write a report.

Both end in :func:`execute`, so a one-line ``fit data.csv "y ~ x + (1|g)" --backends
native,lme4 --out r/`` and a suite ``run`` print, write and exit alike (exit codes in
harness/cli.py). ``--json`` prints one document on stdout — ``{"summary": <summary.json>,
"results": {spec id: {backend: canonical result}}}`` — and moves every human line to stderr.
``fit`` with a single backend and nothing to compare keeps its original, cheaper path: it
prints that backend's canonical result (``--json``: the ``FitResult`` JSON, a contract) without
loading the comparison machinery.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from harness.build import build_spec, parse_assignment
from harness.cli import DEFAULT_SPECS, EXIT_DISAGREE, EXIT_OK, EXIT_USAGE, PROJECT_ROOT, UsageError
from harness.interrupt import Interrupted
from harness.spec import Spec, load_spec, load_specs

if TYPE_CHECKING:
    from harness.report_folder import ReportFolder
    from harness.results import FitResult
    from harness.runner import RunOptions, SuiteRun


def cmd_run(args: argparse.Namespace) -> int:
    specs = load_specs(args.paths or [DEFAULT_SPECS])
    if not specs:
        raise UsageError(f"no specs found in {', '.join(map(str, args.paths or [DEFAULT_SPECS]))}")
    optional = [s.id for _, s in specs if "optional" in s.tags]
    if optional and not args.include_optional:
        specs = [(p, s) for p, s in specs if "optional" not in s.tags]
        print(f"not running {len(optional)} optional spec(s) ({', '.join(optional)}); "
              "add --include-optional to run them", file=sys.stderr)
    options = run_options(args, list(dict.fromkeys(args.backends + args.require)), args.jobs)
    try:
        return execute(list(specs), options, args, out=args.out, default_report=True)
    except (ImportError, ConnectionError) as e:
        if not options.scheduler:
            raise
        raise UsageError(str(e)) from None  # --scheduler: no Dask here, or no scheduler there


def run_options(args: argparse.Namespace, backends: list[str], jobs: int = 1) -> RunOptions:
    from harness.runner import RunOptions

    return RunOptions(backends=backends, required=set(args.require), data_dir=args.data_dir,
                      jobs=jobs, cache_dir=None if args.no_cache else args.cache_dir,
                      scheduler=getattr(args, "scheduler", None))


def execute(specs: list[tuple[Path | None, Spec]], options: RunOptions, args: argparse.Namespace,
            out: Path | None, default_report: bool, table: bool = False) -> int:
    """Fit and compare ``specs``; write a report into ``out`` (or a new reports/<date-time>/
    when ``default_report``); print totals, the side-by-side table (``table``) or JSON."""
    from harness.report_folder import ReportFolderError, open_report_folder

    folder = None
    if out is not None or default_report:
        try:  # reserved before fitting, so a second run into the same folder stops at once
            folder = open_report_folder(out, args.overwrite, PROJECT_ROOT / "reports")
        except ReportFolderError as e:
            raise UsageError(str(e)) from None
    try:
        suite = _fit(specs, options, args)
        return _finish(suite, folder, args, table)
    except Interrupted as e:
        if folder is not None:
            e.add_note(f"no report was written to {folder.path}")
        raise
    finally:
        if folder is not None:
            folder.close()


def _fit(specs: list[tuple[Path | None, Spec]], options: RunOptions,
         args: argparse.Namespace) -> SuiteRun:
    from harness.runner import run_specs

    progress = None
    if not getattr(args, "no_progress", False) and sys.stderr.isatty():
        from tqdm import tqdm

        def progress(it, total):  # type: ignore[no-untyped-def]
            return tqdm(it, total=total, desc="fitting", unit="fit", file=sys.stderr)

    return run_specs(specs, options, progress)


def _finish(suite: SuiteRun, folder: ReportFolder | None, args: argparse.Namespace,
            table: bool) -> int:
    from harness.report import summary, write_report

    if folder is not None:
        data = write_report(suite, folder.staging, all_columns=getattr(args, "all_columns", False))
        folder.commit()
    else:
        data = summary(suite)
    text: TextIO = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json.dumps(json_document(suite, data), indent=2))
    elif table:
        from harness.sidebyside import side_by_side

        for run in suite.runs:
            print(side_by_side(run.comparison).to_markdown(), file=text)
    print(totals_line(data["totals"]), file=text)
    if folder is not None:
        print(f"report: {folder.path / 'index.html'}", file=text)
    return _exit_code(suite, data)


def totals_line(t: dict[str, Any]) -> str:
    """The checks by verdict, then the matrix cells (spec x backend or reference) by status."""
    v = t["check_verdicts"]
    return (f"{t['specs']} specs, {t['checks']} checks ({v['agree']} agree, {v['explained']} "
            f"explained, {v['unexplained']} unexplained); cells: {t['agree']} agree, "
            f"{t['explained']} explained, {t['unexplained']} unexplained, {t['pending']} "
            f"pending, {t['errors']} errors, {t['unavailable']} unavailable, "
            f"{t['not_estimable']} not estimable, {t['info']} stated in words only")


def json_document(suite: SuiteRun, data: dict[str, Any]) -> dict[str, Any]:
    """``run --json``: the summary (summary.json's contract) and every canonical result."""
    return {"summary": data,
            "results": {run.spec.id: {name: r.to_dict() for name, r in run.results.items()}
                        for run in suite.runs}}


def _exit_code(suite: SuiteRun, data: dict[str, Any]) -> int:
    failures = suite.required_failures()
    for msg in failures:
        print(f"required backend failed: {msg}", file=sys.stderr)
    for spec in data["specs"]:
        for row in spec["unexplained"]:
            print(f"unexplained: {spec['id']} {row['key']} ({row['quantity']}): {row['a']} "
                  f"{row['value_a']:.8g} vs {row['b']} {row['value_b']:.8g}", file=sys.stderr)
    unfitted = suite.unfitted()
    if not any(r.status == "ok" for run in suite.runs for r in run.results.values()):
        # nothing fitted at all (every backend unavailable, say) is no pass; a spec that only
        # some engine absent here could fit (pending, not estimable, unavailable, no error) is
        # reported as such while the rest of the suite is compared
        for run in suite.runs:
            unfitted.setdefault(run.spec.id, {n: f"{r.status}: {r.message}"
                                              for n, r in run.results.items()})
    for spec_id, messages in unfitted.items():
        print(f"mlm-harness: error: spec {spec_id}: no backend could fit it", file=sys.stderr)
        for name, message in messages.items():
            print(f"  {name}: {message}", file=sys.stderr)
    if unfitted:
        return EXIT_USAGE
    return EXIT_DISAGREE if failures or data["totals"]["unexplained"] else EXIT_OK


# ---- fit -------------------------------------------------------------------------------------

def cmd_fit(args: argparse.Namespace) -> int:
    spec, path = fit_spec(args)
    backends = list(dict.fromkeys((args.backends or args.backend or ["native"]) + args.require))
    if len(backends) == 1 and args.out is None and not args.require and not spec.references \
            and not spec.cross_checks:
        return _fit_one(spec, backends[0], args)
    return execute([(path, spec)], run_options(args, backends), args, out=args.out,
                   default_report=False, table=True)


def fit_spec(args: argparse.Namespace) -> tuple[Spec, Path | None]:
    """The spec ``fit`` fits: ``--spec FILE``, or DATA FORMULA with the model options."""
    if args.spec is not None:
        if args.data or args.formula:
            raise UsageError("give either --spec FILE or DATA FORMULA, not both")
        given = [o for o, v in (("--family", args.family != "gaussian"), ("--link", args.link),
                                ("--method", args.method), ("--nagq", args.nagq != 1),
                                ("--factor", args.factor), ("--derive", args.derive),
                                ("--subset", args.subset), ("--set", args.settings)) if v]
        if given:
            raise UsageError(f"{', '.join(given)}: the spec file states the model; edit it "
                             "instead (nothing was fitted)")
        return load_spec(args.spec), args.spec
    if not args.data or not args.formula:
        raise UsageError("fit needs DATA and FORMULA (or --spec FILE), e.g. "
                         'mlm-harness fit data.csv "y ~ x + (1 | g)"')
    return spec_from_args(args, "cli", None), None


def spec_from_args(args: argparse.Namespace, spec_id: str, title: str | None) -> Spec:
    """A spec from DATA FORMULA and the model options of harness/cli.py (``fit``, ``new``)."""
    derive = dict(parse_assignment(d, "--derive") for d in args.derive)
    overrides = {}
    for text in args.settings:
        key, value = parse_assignment(text, "--set")
        overrides[key] = yaml.safe_load(value) if value else ""
    return build_spec(args.data, args.formula, family=args.family, link=args.link,
                      method=args.method, nagq=args.nagq, factors=args.factor, derive=derive,
                      subset=args.subset, spec_id=spec_id, title=title,
                      overrides=overrides)


def _fit_one(spec: Spec, backend: str, args: argparse.Namespace) -> int:
    from harness.runner import fit_one, prepare_data

    data = prepare_data(spec, args.data_dir)
    result = fit_one(spec, backend, data)
    print(result.to_json() if args.json else format_result(result))
    if result.status != "ok":
        print(f"mlm-harness: error: {backend} could not fit the model ({result.status}): "
              f"{result.message}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def format_result(r: FitResult) -> str:
    """A readable summary of a canonical result, in the order a mixed-model user expects; the
    column names are the JSON result's (``estimate``, ``std_error``)."""
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
    lines.append(f"  {'term':<28}{'estimate':>14}{'std_error':>14}")
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
