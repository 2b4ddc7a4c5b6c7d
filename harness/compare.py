"""Line up every estimate of one spec across backends and reference values, and judge each pair.

Rows are aligned by canonical name (``fixed/lrt``, ``ran_pars/school/sd__(Intercept)``,
``stat/loglik``), never by position. Each check pairs two sources for one quantity and gets a
verdict: ``agree`` (within tolerance), ``explained`` (outside tolerance for a documented reason:
a different estimator, a known difference on the spec, an optimizer that stopped early) or
``unexplained``. Digits of agreement, -log10 of the relative difference, are kept for every check
so a reader sees how close two numbers are, not only whether they pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.postestimation import statistics as post_statistics
from harness.references import ReferenceValue, reference_values
from harness.results import FitResult
from harness.spec import Spec
from harness.tolerances import Tolerance, tolerance_for

Verdict = str  # agree | explained | unexplained


@dataclass(frozen=True)
class Check:
    key: str
    quantity: str  # estimate | std_error
    source_a: str
    source_b: str
    value_a: float
    value_b: float
    tolerance: float
    tolerance_rule: str
    verdict: Verdict
    explanation: str = ""

    @property
    def abs_diff(self) -> float:
        return abs(self.value_a - self.value_b)

    @property
    def rel_diff(self) -> float:
        scale = max(abs(self.value_a), abs(self.value_b))
        return self.abs_diff / scale if scale > 0 else 0.0

    @property
    def digits(self) -> float:
        """Digits of agreement: -log10 of the relative difference (capped at 16)."""
        return 16.0 if self.rel_diff <= 1e-16 else min(16.0, -math.log10(self.rel_diff))


@dataclass
class SourceStatus:
    source: str
    kind: str  # backend | reference
    status: str  # agree | explained | unexplained | error | unavailable | not_estimable | pending | ok
    message: str = ""


@dataclass
class SpecComparison:
    spec: Spec
    results: dict[str, FitResult]
    checks: list[Check] = field(default_factory=list)
    values: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    sources: list[SourceStatus] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        order = ["unexplained", "error", "explained", "agree"]
        statuses = {s.status for s in self.sources}
        for s in order:
            if s in statuses:
                return s
        return "pending" if "pending" in statuses else "agree"


def _result_values(result: FitResult, spec: Spec, nesting: list[str]) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, float]] = {}
    for p in result.parameters:
        entry = values.setdefault(p.key, {})
        entry["estimate"] = p.estimate
        if p.std_error is not None:
            entry["std_error"] = p.std_error
    model = spec.model_for(result.backend)
    for name, v in post_statistics(result, model.family, model.resolved_link, nesting).items():
        values.setdefault(f"stat/{name}", {})["estimate"] = v
    return values


def compare_spec(spec: Spec, results: dict[str, FitResult], nesting: list[str] | None = None,
                 extra_values: dict[str, dict[str, float]] | None = None,
                 extra_checks: list[Check] | None = None,
                 notes: list[str] | None = None) -> SpecComparison:
    """Compare every ok backend with every other ok backend and with every reference value.

    ``extra_values`` ({backend: {key: value}}) and ``extra_checks`` come from checks that span
    two specs (LR tests, replication identities; see harness/crosschecks.py).
    """
    comp = SpecComparison(spec=spec, results=results, notes=list(notes or []))
    ok = {name: r for name, r in results.items() if r.status == "ok"}
    for name, r in ok.items():
        for key, q in _result_values(r, spec, nesting or []).items():
            comp.values.setdefault(key, {})[name] = q
        for key, v in (extra_values or {}).get(name, {}).items():
            comp.values.setdefault(key, {})[name] = {"estimate": v}
    comp.checks.extend(extra_checks or [])
    names = list(ok)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            comp.checks.extend(_engine_pair(spec, ok[a], ok[b], comp.values))
    refs = [(ref, reference_values(ref, f"{spec.id}: ")) for ref in spec.references]
    for ref, rvals in refs:
        for rv in rvals:
            comp.values.setdefault(rv.key, {}).setdefault(f"ref:{ref.id}", {})[rv.quantity] = \
                rv.number.value
        for name in names:
            comp.checks.extend(_reference_checks(spec, ok[name], ref.id, ref.method, rvals,
                                                 comp.values, comp.unmatched))
    _source_statuses(comp, results, [ref.id for ref, _ in refs])
    return comp


def _engine_pair(spec: Spec, a: FitResult, b: FitResult,
                 values: dict[str, dict[str, dict[str, float]]]) -> list[Check]:
    same_method = a.provenance.method == b.provenance.method
    checks = []
    for key, by_source in sorted(values.items()):
        va, vb = by_source.get(a.backend), by_source.get(b.backend)
        if va is None or vb is None:
            continue
        for quantity in ("estimate", "std_error"):
            if quantity not in va or quantity not in vb:
                continue
            tol = tolerance_for(spec, key, quantity, "engines" if same_method else "estimators")
            checks.append(_judge(spec, key, quantity, a, b, va[quantity], vb[quantity], tol))
    return checks


def _reference_checks(spec: Spec, r: FitResult, ref_id: str, ref_method: str | None,
                      rvals: list[ReferenceValue], values: dict, unmatched: list[str]) -> list[Check]:
    checks = []
    different_method = ref_method is not None and r.provenance.method is not None \
        and ref_method != r.provenance.method
    for rv in rvals:
        mine = values.get(rv.key, {}).get(r.backend, {}).get(rv.quantity)
        if mine is None:
            msg = f"{rv.key} ({rv.quantity}) from reference {ref_id} has no counterpart in {r.backend}"
            if msg not in unmatched:
                unmatched.append(msg)
            continue
        tol = tolerance_for(spec, rv.key, rv.quantity, "printed", rv.number.half_unit)
        verdict = "agree" if abs(mine - rv.number.value) <= tol.absolute(mine, rv.number.value) \
            else "unexplained"
        explanation = ""
        if verdict == "unexplained":
            explanation = _known_difference(spec, rv.key, r.backend, f"ref:{ref_id}")
            if not explanation and different_method:
                explanation = (f"different estimators: {r.backend} fitted {r.provenance.method}, "
                               f"the reference is {ref_method}")
            if explanation:
                verdict = "explained"
        checks.append(Check(rv.key, rv.quantity, r.backend, f"ref:{ref_id}", mine,
                            rv.number.value, tol.absolute(mine, rv.number.value), tol.rule,
                            verdict, explanation))
    return checks


def _judge(spec: Spec, key: str, quantity: str, a: FitResult, b: FitResult, va: float, vb: float,
           tol: Tolerance) -> Check:
    limit = tol.absolute(va, vb)
    if abs(va - vb) <= limit:
        return Check(key, quantity, a.backend, b.backend, va, vb, limit, tol.rule, "agree")
    explanation = _known_difference(spec, key, a.backend, b.backend)
    if not explanation and a.provenance.method != b.provenance.method:
        explanation = (f"different estimators: {a.backend} fitted {a.provenance.method}, "
                       f"{b.backend} fitted {b.provenance.method}")
    if not explanation:
        explanation = _optimizer_explanation(a, b)
    verdict = "explained" if explanation else "unexplained"
    return Check(key, quantity, a.backend, b.backend, va, vb, limit, tol.rule, verdict, explanation)


def _optimizer_explanation(a: FitResult, b: FitResult) -> str:
    """One engine reached a strictly higher likelihood and the other warned: name the better one."""
    la, lb = a.statistics.loglik, b.statistics.loglik
    if la is None or lb is None or abs(la - lb) < 1e-7:
        return ""
    better, worse = (a, b) if la > lb else (b, a)
    if worse.diagnostics.converged is False or worse.diagnostics.warnings:
        gap = abs(la - lb)
        return (f"{worse.backend}'s optimizer stopped early (it warned about convergence); "
                f"{better.backend} reaches a log-likelihood higher by {gap:.2g}, the better optimum")
    return ""


def _known_difference(spec: Spec, key: str, *sources: str) -> str:
    for kd in spec.known_differences:
        targets = set(kd.applies_to)
        if not targets or key in targets or targets & set(sources) \
                or any(key.startswith(t.rstrip("*")) for t in targets if t.endswith("*")):
            return f"[{kd.id}] {kd.explanation}"
    return ""


def _source_statuses(comp: SpecComparison, results: dict[str, FitResult],
                     ref_ids: list[str]) -> None:
    def summarise(source: str) -> str:
        verdicts = {c.verdict for c in comp.checks if source in (c.source_a, c.source_b)}
        for v in ("unexplained", "explained", "agree"):
            if v in verdicts:
                return v
        return "ok"

    for name, r in results.items():
        if r.status != "ok":
            comp.sources.append(SourceStatus(name, "backend", r.status, r.message))
        else:
            comp.sources.append(SourceStatus(name, "backend", summarise(name)))
    for ref_id in ref_ids:
        source = f"ref:{ref_id}"
        status = summarise(source)
        comp.sources.append(SourceStatus(source, "reference",
                                         "pending" if status == "ok" else status,
                                         "no backend result to check against" if status == "ok"
                                         else ""))
