"""The likely cause of each unexplained cell, for the top of a spec's report page.

An unexplained difference is a bug until shown otherwise, but the reader wants to know where to
look first. The evidence the comparison already holds (harness/evidence.py) says most of it:
a side whose reported log-likelihood does not match its own estimates (or whose fixed effects
are not the ones its variance parameters imply) did not report one point of the likelihood; a
side that lies below the best optimum known stopped short of it; an engine that warned or did
not converge is quoted; two sides that fitted different estimators with no native bridge fit
to connect them cannot be judged by evidence. These are leads, stated as such: nothing here
changes a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.compare import Check, SpecComparison
from harness.keys import Source

#: a side this far below the best known log-likelihood has stopped short of the optimum
GAP_WORTH_SAYING = 1e-6


@dataclass(frozen=True)
class Cause:
    """One likely cause and the unexplained cells it may account for."""

    text: str
    cells: tuple[str, ...]


def side_causes(comp: SpecComparison, source: Source) -> list[str]:
    """What the evidence and the engine's own diagnostics say about one side."""
    out = []
    r = comp.results.get(source.name) if source.kind == "backend" else None
    if r is not None:
        d = r.diagnostics
        if d.converged is False:
            out.append(f"{source} did not report convergence"
                       + (f" ({d.optimizer})" if d.optimizer else ""))
        out.extend(f"{source} warned: “{w}”" for w in d.warnings[:2])
        if d.singular:
            out.append(f"{source} reports a singular fit (a variance at zero or a correlation "
                       "at ±1): variance parameters are ill-determined")
    point = comp.evidence.points.get(source)
    if point is not None:
        why = point.inconsistency()
        if why:
            out.append(f"{source}'s numbers are not one point of the likelihood: {why}")
        else:
            gap = comp.evidence.gap(point, point.path)
            best = comp.evidence.best.get((point.model_id, point.estimator, point.path))
            if gap is not None and gap > GAP_WORTH_SAYING and best is not None:
                out.append(f"native evaluates {source}'s estimates {gap:.2g} below the best "
                           f"log-likelihood known ({best[1]}, {best[0]:.10g}): {source} "
                           "stopped short of the optimum")
    return out


def check_causes(comp: SpecComparison, check: Check) -> list[str]:
    causes: list[str] = []
    for source in (check.source_a, check.source_b):
        causes.extend(side_causes(comp, source))
    labels = {_estimator(comp, s) for s in (check.source_a, check.source_b)} - {""}
    if len(labels) > 1 and check.key.kind != "stat":
        causes.append(f"{check.source_a} and {check.source_b} fitted different estimators "
                      f"({' vs '.join(sorted(labels))}) and no native bridge fit reproduced "
                      "both numbers")
    if check.source_b.kind == "reference" and check.abs_diff <= 10 * check.tolerance:
        causes.append(f"the difference is within a few units of {check.source_b}'s last printed "
                      "digit: a typing or rounding slip in the printout is as likely as a "
                      "difference in the fit")
    if check.key.kind == "ranef":
        causes.append("BLUPs follow the variance parameters and fixed effects: look at those "
                      "rows first")
    return causes


def _estimator(comp: SpecComparison, source: Source) -> str:
    if source.kind == "backend":
        r = comp.results.get(source.name)
        return r.estimator.estimates_label() if r is not None and r.estimator else ""
    ref = next((r for r in comp.spec.references if r.id == source.name), None)
    if ref is None:
        return ""
    from harness.estimator import Estimator

    return (Estimator.parse(ref.method) if ref.method else
            comp.spec.model.estimator()).estimates_label()


def unexplained_causes(comp: SpecComparison) -> list[Cause]:
    """Each distinct likely cause once, with the unexplained cells it may account for, most
    cells first; cells with no lead get a closing entry that says so."""
    cells: dict[str, list[str]] = {}
    bare = []
    for c in comp.checks:
        if c.verdict != "unexplained":
            continue
        label = {"estimate": "", "std_error": " (SE)"}.get(c.quantity, f" ({c.quantity})")
        name = f"{c.key}{label}: {c.source_a} vs {c.source_b}"
        found = check_causes(comp, c)
        if not found:
            bare.append(name)
        for text in found:
            cells.setdefault(text, []).append(name)
    out = [Cause(text, tuple(names)) for text, names in
           sorted(cells.items(), key=lambda kv: -len(kv[1]))]
    if bare:
        out.append(Cause("no engine warning, no inconsistency and no estimator difference: "
                         "the evidence found nothing that separates these numbers (a bug until "
                         "shown otherwise)", tuple(bare)))
    if comp.evidence.problems and out:
        out.append(Cause("evidence could not be computed for every side: "
                         + "; ".join(comp.evidence.problems[:3]), ()))
    return out
