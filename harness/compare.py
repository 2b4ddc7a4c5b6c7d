"""Line up every estimate of one spec across backends and reference values, and judge each pair.

Rows are aligned by canonical key (:class:`harness.keys.ParamKey`: ``fixed/lrt``,
``ran_pars/school/sd__(Intercept)``, ``stat/loglik``, ``ranef/school/(Intercept)``), never by
position. Each check pairs two sources (:class:`harness.keys.Source`) for one quantity and gets
a verdict:

* ``agree``: within the tolerance of harness/tolerances.py, which is always the tight
  same-estimator tolerance between engines (two estimators "agree" only when their numbers do)
  and half a printed unit plus that allowance against a printed value;
* ``explained``: outside tolerance, and a rule of harness/known_differences.py whose evidence, as
  numbers, covers *this* difference (a likelihood gap and curvature bound, native fits of both
  estimators that reproduce the gap, or a bounded spec-level known difference);
* ``unexplained``: outside tolerance and nothing covers it — a bug until shown otherwise.

Digits of agreement, -log10 of the relative difference, are kept for every check so a reader sees
how close two numbers are, not only whether they pass. BLUPs are compared per (group, term): one
check carries the worst level, and :attr:`SpecComparison.blups` keeps the rank correlation and
the top/bottom clusters of each pair of backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.evidence import Evidence
from harness.keys import ParamKey, Source
from harness.known_differences import Context, Side, explain
from harness.postestimation import BlupAgreement, blup_agreement, blups
from harness.postestimation import statistics as post_statistics
from harness.references import ReferenceValue, reference_values
from harness.results import CI_PREFIX, FitResult, inference_quantities
from harness.spec import Spec
from harness.tolerances import (Tolerance, digits_of_agreement, family_class, key_class,
                                engine_rows, singular_groups, tolerance_for)

Verdict = str  # agree | explained | unexplained
VERDICTS = ("agree", "explained", "unexplained")
Values = dict[ParamKey, dict[Source, dict[str, float]]]


@dataclass(frozen=True)
class Check:
    key: ParamKey
    quantity: str  # estimate | std_error
    source_a: Source
    source_b: Source
    value_a: float
    value_b: float
    tolerance: float
    tolerance_rule: str
    verdict: Verdict
    explanation: str = ""
    known_id: str = ""  # the rule (registry id or spec-level id) that explains it
    note: str = ""  # e.g. "worst of 65 levels: school 48"
    #: the numbers the explanation rests on, by name (shown in the report and summary.json)
    evidence: tuple[tuple[str, float], ...] = ()

    @property
    def abs_diff(self) -> float:
        return abs(self.value_a - self.value_b)

    @property
    def digits(self) -> float:
        """Digits of agreement: -log10 of the relative difference (capped at 16)."""
        return digits_of_agreement(self.value_a, self.value_b)

    def involves(self, source: Source) -> bool:
        return source in (self.source_a, self.source_b) or (
            source.kind == "backend" and self.source_b.kind == "crosscheck"
            and self.source_b.backend_name == source.name)


@dataclass
class SourceStatus:
    source: Source
    kind: str  # backend | reference
    status: str  # agree | explained | unexplained | error | unavailable | not_estimable | pending | ok
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)  # verdict -> number of checks


@dataclass
class SpecComparison:
    spec: Spec
    results: dict[str, FitResult]
    checks: list[Check] = field(default_factory=list)
    values: Values = field(default_factory=dict)
    sources: list[SourceStatus] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model_class: str = "LMM"  # LMM | GLMM, or near-singular when some group is
    singular: set[str] = field(default_factory=set)  # near-singular grouping factors
    blups: list[BlupAgreement] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)

    def class_of(self, key: ParamKey) -> str:
        """The model class whose tolerance rows govern ``key`` (harness/tolerances.py)."""
        return key_class(key, self.spec.model.family, self.singular)

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


def result_values(result: FitResult, spec: Spec, nesting: list[str]
                  ) -> dict[ParamKey, dict[str, float]]:
    """A result's comparable numbers: its parameters and the harness's statistics of it."""
    values: dict[ParamKey, dict[str, float]] = {}
    for p in result.parameters:
        entry = values.setdefault(p.param_key, {})
        entry["estimate"] = p.estimate
        if p.std_error is not None:
            entry["std_error"] = p.std_error
    for key, quantities in inference_quantities(result.intervals, result.tests).items():
        values.setdefault(key, {}).update(quantities)
    model = spec.model_for(result.backend)
    for name, v in post_statistics(result, model.family, model.resolved_link, nesting).items():
        values.setdefault(ParamKey.stat(name), {})["estimate"] = v
    return values


def compare_spec(spec: Spec, results: dict[str, FitResult], nesting: list[str] | None = None,
                 extra_values: dict[str, dict[ParamKey, float]] | None = None,
                 extra_checks: list[Check] | None = None,
                 notes: list[str] | None = None,
                 evidence: Evidence | None = None) -> SpecComparison:
    """Compare every ok backend with every other ok backend and with every reference value.

    ``extra_values`` ({backend: {key: value}}) and ``extra_checks`` come from checks that span
    two specs (LR tests, replication identities; see harness/crosschecks.py). ``evidence``
    (harness/evidence.py) is what the explanation rules may rest on: the likelihood at each
    side's estimates and native fits of each side's estimator.
    """
    comp = SpecComparison(spec=spec, results=results, notes=list(notes or []),
                          evidence=evidence or Evidence())
    ok = {name: r for name, r in results.items() if r.status == "ok"}
    comp.singular = singular_groups(list(ok.values()))
    comp.model_class = "near-singular" if comp.singular else family_class(spec.model.family)
    for name, r in ok.items():
        src = Source.backend(name)
        for key, q in result_values(r, spec, nesting or []).items():
            comp.values.setdefault(key, {})[src] = q
        for key, v in (extra_values or {}).get(name, {}).items():
            comp.values.setdefault(key, {})[src] = {"estimate": v}
    comp.checks.extend(extra_checks or [])
    sides = {name: Side.of_result(r, spec) for name, r in ok.items()}
    names = list(ok)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            comp.checks.extend(_engine_pair(comp, sides[a], sides[b]))
            comp.checks.extend(_blup_checks(comp, sides[a], sides[b]))
    refs = [(ref, reference_values(ref, f"{spec.id}: ")) for ref in spec.references]
    for ref, rvals in refs:
        ref_side = Side.of_reference(ref, rvals, spec)
        for rv in rvals:
            comp.values.setdefault(rv.key, {}).setdefault(ref_side.source, {})[rv.quantity] = \
                rv.number.value
        for name in names:
            comp.checks.extend(_reference_checks(comp, sides[name], ref_side, rvals))
    _source_statuses(comp, results, [ref.id for ref, _ in refs],
                     {ref.id for ref in spec.references if not ref.values})
    return comp


def _judge(comp: SpecComparison, key: ParamKey, quantity: str, a: Side, b: Side, va: float,
           vb: float, tol: Tolerance, note: str = "",
           levels: tuple[tuple[str, float, float], ...] = ()) -> Check:
    limit = tol.absolute(va, vb)
    common = dict(key=key, quantity=quantity, source_a=a.source, source_b=b.source, value_a=va,
                  value_b=vb, tolerance=limit, tolerance_rule=tol.rule, note=note)
    if abs(va - vb) <= limit:
        return Check(verdict="agree", **common)
    found = explain(Context(comp.spec, key, quantity, a, b, va, vb, limit, comp.evidence,
                            comp.class_of, levels))
    if found:
        return Check(verdict="explained", explanation=f"[{found.rule}] {found.text}",
                     known_id=found.rule, evidence=tuple(found.numbers.items()), **common)
    return Check(verdict="unexplained", **common)


def _engine_pair(comp: SpecComparison, a: Side, b: Side) -> list[Check]:
    checks = []
    for key, by_source in sorted(comp.values.items(), key=lambda kv: kv[0].sort_key()):
        if key.kind == "ranef":
            # judged level by level in _blup_checks; comp.values holds only the worst level of
            # the last pair that showed it, which with three engines is another pair's level
            continue
        va, vb = by_source.get(a.source), by_source.get(b.source)
        if va is None or vb is None:
            continue
        for quantity in _quantities(va, vb):
            tol = tolerance_for(comp.spec, key, quantity, "engines", model=comp.class_of(key),
                                se=_se_scale(quantity, va, vb),
                                engines=engine_rows(a.result, b.result))
            checks.append(_judge(comp, key, quantity, a, b, va[quantity], vb[quantity], tol))
    return checks


def _quantities(va: dict[str, float], vb: dict[str, float]) -> list[str]:
    """The quantities both sides have: estimate and SE first, then intervals, df, p-values."""
    first = [q for q in ("estimate", "std_error") if q in va and q in vb]
    return first + sorted(q for q in va if q in vb and q not in first)


def _se_scale(quantity: str, *entries: dict[str, float]) -> float | None:
    """The larger SE of an estimate (for the SE-relative floor of the tolerance policy); an
    interval's bounds are judged on the same scale."""
    if quantity != "estimate" and not quantity.startswith(CI_PREFIX):
        return None
    ses = [e["std_error"] for e in entries if e.get("std_error") is not None]
    return max(ses) if ses else None


def _blup_checks(comp: SpecComparison, a: Side, b: Side) -> list[Check]:
    """One check per (group, term) on the worst level; details kept in ``comp.blups``."""
    assert a.result is not None and b.result is not None
    checks = []
    ba, bb = blups(a.result), blups(b.result)
    for ag in blup_agreement(a.result, b.result):
        comp.blups.append(ag)
        key = ParamKey.ranef(ag.group, ag.term)
        tol = tolerance_for(comp.spec, key, "estimate", "engines", model=comp.class_of(key),
                            engines=engine_rows(a.result, b.result))
        note = f"worst of {ag.n_common} levels: {ag.group} {ag.worst_level}"
        if ag.spearman is not None:
            note += f"; rank correlation {ag.spearman:.6f}"
        comp.values.setdefault(key, {})[a.source] = {"estimate": ag.value_a}
        comp.values[key][b.source] = {"estimate": ag.value_b}
        la, lb = ba[(ag.group, ag.term)], bb[(ag.group, ag.term)]
        levels = tuple((lv, la[lv].estimate, lb[lv].estimate) for lv in la if lv in lb)
        checks.append(_judge(comp, key, "estimate", a, b, ag.value_a, ag.value_b, tol, note,
                             levels))
    return checks


def _reference_checks(comp: SpecComparison, me: Side, ref: Side,
                      rvals: list[ReferenceValue]) -> list[Check]:
    checks = []
    for rv in rvals:
        mine = comp.values.get(rv.key, {}).get(me.source, {}).get(rv.quantity)
        if mine is None:
            msg = (f"{rv.key} ({rv.quantity}) from reference {ref.source.name} has no "
                   f"counterpart in {me.source}")
            if msg not in comp.unmatched:
                comp.unmatched.append(msg)
            continue
        se = _se_scale(rv.quantity, comp.values.get(rv.key, {}).get(me.source, {}))
        tol = tolerance_for(comp.spec, rv.key, rv.quantity, "printed", rv.number.half_unit,
                            model=comp.class_of(rv.key), se=se, engines=engine_rows(me.result))
        checks.append(_judge(comp, rv.key, rv.quantity, me, ref, mine, rv.number.value, tol,
                             f"printed as {rv.number.text}"))
    return checks


def _source_statuses(comp: SpecComparison, results: dict[str, FitResult],
                     ref_ids: list[str], words_only: set[str]) -> None:
    """Status per source. A reference with no numbers (the course states a conclusion in words)
    is ``info``: there is nothing to check, and it is not waiting for anything either."""
    def counts(source: Source) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for c in comp.checks:
            if c.involves(source):
                out[c.verdict] += 1
        return out

    def summarise(n: dict[str, int]) -> str:
        return next((v for v in ("unexplained", "explained", "agree") if n[v]), "ok")

    for name, r in results.items():
        src = Source.backend(name)
        if r.status != "ok":
            comp.sources.append(SourceStatus(src, "backend", r.status, r.message))
        else:
            n = counts(src)
            comp.sources.append(SourceStatus(src, "backend", summarise(n), counts=n))
    for ref_id in ref_ids:
        source = Source.reference(ref_id)
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
