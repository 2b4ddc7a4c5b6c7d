"""Line up every estimate of one spec across backends and reference values, and judge each pair.

Rows are aligned by canonical name (``fixed/lrt``, ``ran_pars/school/sd__(Intercept)``,
``stat/loglik``, ``ranef/school/(Intercept)``), never by position. Each check pairs two sources
for one quantity and gets a verdict:

* ``agree``: within the tolerance of harness/tolerances.py (the rule is kept on the check);
* ``explained``: outside tolerance for a documented reason — a spec-level known difference or an
  entry of the registry in harness/known_differences.py (REML vs ML, Laplace vs quadrature, an
  optimizer that stopped early...), whose id is kept on the check;
* ``unexplained``: outside tolerance and nothing known explains it — a bug until shown otherwise.

Digits of agreement, -log10 of the relative difference, are kept for every check so a reader sees
how close two numbers are, not only whether they pass. BLUPs are compared per (group, term): one
check carries the worst level, and :attr:`SpecComparison.blups` keeps the rank correlation and
the top/bottom clusters of each pair of backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.known_differences import Context, Side, explain
from harness.postestimation import BlupAgreement, blup_agreement
from harness.postestimation import statistics as post_statistics
from harness.references import ReferenceValue, reference_values
from harness.results import FitResult
from harness.spec import Spec
from harness.tolerances import Tolerance, digits_of_agreement, model_class, tolerance_for

Verdict = str  # agree | explained | unexplained
VERDICTS = ("agree", "explained", "unexplained")


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
    known_id: str = ""  # the known difference (registry or spec) that explains it
    note: str = ""  # e.g. "worst of 65 levels: school 48"

    @property
    def abs_diff(self) -> float:
        return abs(self.value_a - self.value_b)

    @property
    def digits(self) -> float:
        """Digits of agreement: -log10 of the relative difference (capped at 16)."""
        return digits_of_agreement(self.value_a, self.value_b)

    def involves(self, source: str) -> bool:
        return source in (self.source_a, self.source_b) or \
            self.source_b.startswith(f"{source}@")


@dataclass
class SourceStatus:
    source: str
    kind: str  # backend | reference
    status: str  # agree | explained | unexplained | error | unavailable | not_estimable | pending | ok
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # verdict -> number of checks


@dataclass
class SpecComparison:
    spec: Spec
    results: dict[str, FitResult]
    checks: list[Check] = field(default_factory=list)
    values: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    sources: list[SourceStatus] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model_class: str = "LMM"
    blups: list[BlupAgreement] = field(default_factory=list)
    likelihood_at: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        order = ["unexplained", "error", "explained", "agree"]
        statuses = {s.status for s in self.sources}
        for s in order:
            if s in statuses:
                return s
        return "pending" if "pending" in statuses else "agree"

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for c in self.checks:
            out[c.verdict] = out.get(c.verdict, 0) + 1
        return out


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
                 notes: list[str] | None = None,
                 likelihood_at: dict[str, float] | None = None) -> SpecComparison:
    """Compare every ok backend with every other ok backend and with every reference value.

    ``extra_values`` ({backend: {key: value}}) and ``extra_checks`` come from checks that span
    two specs (LR tests, replication identities; see harness/crosschecks.py).
    ``likelihood_at`` ({backend: loglik}) is the native log-likelihood at each engine's
    estimates (gaussian mixed models), which lets the registry recognise a flat likelihood.
    """
    comp = SpecComparison(spec=spec, results=results, notes=list(notes or []),
                          likelihood_at=dict(likelihood_at or {}))
    ok = {name: r for name, r in results.items() if r.status == "ok"}
    comp.model_class = model_class(spec.model.family, list(ok.values()))
    for name, r in ok.items():
        for key, q in _result_values(r, spec, nesting or []).items():
            comp.values.setdefault(key, {})[name] = q
        for key, v in (extra_values or {}).get(name, {}).items():
            comp.values.setdefault(key, {})[name] = {"estimate": v}
    comp.checks.extend(extra_checks or [])
    names = list(ok)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            comp.checks.extend(_engine_pair(comp, ok[a], ok[b]))
            comp.checks.extend(_blup_checks(comp, ok[a], ok[b]))
    refs = [(ref, reference_values(ref, f"{spec.id}: ")) for ref in spec.references]
    for ref, rvals in refs:
        for rv in rvals:
            comp.values.setdefault(rv.key, {}).setdefault(f"ref:{ref.id}", {})[rv.quantity] = \
                rv.number.value
        ref_side = Side(f"ref:{ref.id}", "reference", ref.software, ref.method,
                        None, frozenset(rv.key for rv in rvals))
        for name in names:
            comp.checks.extend(_reference_checks(comp, ok[name], ref_side, rvals))
    _source_statuses(comp, results, [ref.id for ref, _ in refs],
                     {ref.id for ref in spec.references if not ref.values})
    return comp


def _judge(comp: SpecComparison, key: str, quantity: str, a: Side, b: Side, va: float,
           vb: float, tol: Tolerance, note: str = "") -> Check:
    limit = tol.absolute(va, vb)
    if abs(va - vb) <= limit:
        return Check(key, quantity, a.name, b.name, va, vb, limit, tol.rule, "agree", note=note)
    peers = tuple(r for r in comp.results.values() if r.status == "ok")
    found = explain(Context(comp.spec, key, quantity, a, b, va, vb, peers, limit,
                            comp.likelihood_at))
    if found:
        kid, text = found
        return Check(key, quantity, a.name, b.name, va, vb, limit, tol.rule, "explained",
                     f"[{kid}] {text}", kid, note)
    return Check(key, quantity, a.name, b.name, va, vb, limit, tol.rule, "unexplained", note=note)


def _same_method(a: FitResult, b: FitResult) -> bool:
    return a.provenance.method == b.provenance.method


def _engine_pair(comp: SpecComparison, a: FitResult, b: FitResult) -> list[Check]:
    pair = "engines" if _same_method(a, b) else "estimators"
    sa, sb = Side.of_result(a), Side.of_result(b)
    checks = []
    for key, by_source in sorted(comp.values.items()):
        va, vb = by_source.get(a.backend), by_source.get(b.backend)
        if va is None or vb is None:
            continue
        for quantity in ("estimate", "std_error"):
            if quantity not in va or quantity not in vb:
                continue
            se = _se_scale(quantity, va, vb)
            tol = tolerance_for(comp.spec, key, quantity, pair, model=comp.model_class, se=se)
            checks.append(_judge(comp, key, quantity, sa, sb, va[quantity], vb[quantity], tol))
    return checks


def _se_scale(quantity: str, *entries: dict[str, float]) -> float | None:
    """The larger SE of an estimate (for the SE-relative floor of the tolerance policy)."""
    if quantity != "estimate":
        return None
    ses = [e["std_error"] for e in entries if e.get("std_error") is not None]
    return max(ses) if ses else None


def _blup_checks(comp: SpecComparison, a: FitResult, b: FitResult) -> list[Check]:
    """One check per (group, term) on the worst level; details kept in ``comp.blups``."""
    pair = "engines" if _same_method(a, b) else "estimators"
    sa, sb = Side.of_result(a), Side.of_result(b)
    checks = []
    for ag in blup_agreement(a, b):
        comp.blups.append(ag)
        key = f"ranef/{ag.group}/{ag.term}"
        tol = tolerance_for(comp.spec, key, "estimate", pair, model=comp.model_class)
        note = f"worst of {ag.n_common} levels: {ag.group} {ag.worst_level}"
        if ag.spearman is not None:
            note += f"; rank correlation {ag.spearman:.6f}"
        comp.values.setdefault(key, {})[a.backend] = {"estimate": ag.value_a}
        comp.values[key][b.backend] = {"estimate": ag.value_b}
        checks.append(_judge(comp, key, "estimate", sa, sb, ag.value_a, ag.value_b, tol, note))
    return checks


def _reference_checks(comp: SpecComparison, r: FitResult, ref: Side,
                      rvals: list[ReferenceValue]) -> list[Check]:
    checks = []
    me = Side.of_result(r)
    for rv in rvals:
        mine = comp.values.get(rv.key, {}).get(r.backend, {}).get(rv.quantity)
        if mine is None:
            msg = (f"{rv.key} ({rv.quantity}) from reference {ref.name[4:]} has no counterpart "
                   f"in {r.backend}")
            if msg not in comp.unmatched:
                comp.unmatched.append(msg)
            continue
        se = _se_scale(rv.quantity, comp.values.get(rv.key, {}).get(r.backend, {}))
        tol = tolerance_for(comp.spec, rv.key, rv.quantity, "printed", rv.number.half_unit,
                            model=comp.model_class, se=se)
        checks.append(_judge(comp, rv.key, rv.quantity, me, ref, mine, rv.number.value, tol,
                             f"printed as {rv.number.text}"))
    return checks


def _source_statuses(comp: SpecComparison, results: dict[str, FitResult],
                     ref_ids: list[str], words_only: set[str]) -> None:
    """Status per source. A reference with no numbers (the course states a conclusion in words)
    is ``info``: there is nothing to check, and it is not waiting for anything either."""
    def counts(source: str) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for c in comp.checks:
            if c.involves(source):
                out[c.verdict] += 1
        return out

    def summarise(n: dict[str, int]) -> str:
        return next((v for v in ("unexplained", "explained", "agree") if n[v]), "ok")

    for name, r in results.items():
        if r.status != "ok":
            comp.sources.append(SourceStatus(name, "backend", r.status, r.message))
        else:
            n = counts(name)
            comp.sources.append(SourceStatus(name, "backend", summarise(n), counts=n))
    for ref_id in ref_ids:
        source = f"ref:{ref_id}"
        n = counts(source)
        status = summarise(n)
        if ref_id in words_only:
            comp.sources.append(SourceStatus(source, "reference", "info",
                                             "stated in words only; see the reference's note",
                                             counts=n))
            continue
        comp.sources.append(SourceStatus(source, "reference",
                                         "pending" if status == "ok" else status,
                                         "no backend result to check against" if status == "ok"
                                         else "", counts=n))
