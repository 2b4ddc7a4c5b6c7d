"""Why two numbers may rightly differ: rules that explain a difference only with evidence.

The comparison engine asks :func:`explain` only about cells *outside* tolerance. Each rule
declares which quantities it may explain and what evidence it needs (:class:`Rule`), and returns
an :class:`Explanation` whose text and ``numbers`` show that evidence — or None, and the cell
stays ``unexplained``. No rule explains by label or by trust:

* **spec** — a spec-level known difference, scoped to sources and keys and bounded (the value
  the reference should have printed, or a measured maximum difference);
* **estimator** (catalogue D1, D2, D2-mv, D3, D10, D14) — the two sides fitted different
  estimators or models; explained only when the native engine, fitting each side's model and
  estimator, reproduces each side's number (harness/evidence.py bridge fits);
* **flat** / **D18** — the same estimator stopped at two different points: explained only when
  each side's reported log-likelihood matches the full log-likelihood at its complete estimates
  (so neither misreports), both lie within reach of the best known optimum (FLAT_LOGLIK: equally
  good; EARLY_STOP_LOGLIK: one stopped short), and the difference is no larger than the
  likelihood's curvature allows at that depth, |delta| <= c SE (sqrt(2 gap_a) + sqrt(2 gap_b));
  for a standard error, when native's SE at each side's estimates reproduces that side's SE.

An engine's convergence warning is a reason to look, never an explanation; it is quoted when a
rule with evidence applies.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from harness.estimator import Estimator
from harness.evidence import Evidence, Point, bridge_source, joint_standard_errors
from harness.keys import ParamKey, Source
from harness.references import ReferenceValue, parse_printed
from harness.results import FitResult
from harness.spec import Reference, Spec
from harness.tolerances import engine_rows, quantity_class, tolerance_for

#: log-likelihood units: two points this close to the best are equally good optima
FLAT_LOGLIK = 1e-6
#: beyond FLAT_LOGLIK and up to this, a side "stopped early"; further below is a failed fit,
#: which no rule explains
EARLY_STOP_LOGLIK = 1e-2
#: slack on the quadratic curvature bound (the likelihood is only locally quadratic, and the
#: SE itself comes from a numerical Hessian)
CURVATURE_SLACK = 2.0
#: the evaluation's own rounding, added to every gap so that exactly equal optima have a bound
GAP_FLOOR = 1e-9
#: lme4's GLMM standard errors come from a finite-difference Hessian (glmer: lme4:::deriv12,
#: step 1e-4, of its PIRLS-path deviance; clmm: ordinal's own numerical Hessian): at lme4's own
#: estimates they differ from the Richardson-extrapolated observed information by up to
#: 6.3e-3 relative for clmm (census ordinal Laplace thresholds) and 1.6e-3 for glmer (probit
#: AGHQ(7); 1.5e-3 census logit random slope, at most 1.1e-4 elsewhere), measured with
#: native's evidence at lme4's estimates (issue 11 note). A side computed that way must
#: reproduce native's SE at its point to this: about 1.6x the largest measured error, so that
#: an error of ten SE tolerances (1e-2) in a glmer SE is still caught.
LME4_HESSIAN_RELATIVE = {"glmer": 3e-3, "clmm": 1e-2}
#: statsmodels' MixedLM takes fixed-effect SEs from the inverse of its joint observed Hessian
#: over (fixed effects, covariance parameters), whose cross block (MixedLM.hessian's
#: ``hess_fere``; the ML formula, for REML fits too) is not zero at the optimum; native and lme4
#: invert X'V^-1X given the covariance parameters. Measured on the 46 course LMMs statsmodels
#: fits to the optimum: its SEs differ from native's by up to 3.15e-2 relative (ML, l3_c:
#: hospsize, a hospital-level covariate with 25 hospitals) and 7.1e-3 (REML, fm6), while the
#: fixed effects agree to 3.5e-5 SE; inverting only the fixed-effect block of statsmodels' own
#: Hessian reproduces native's SEs to ~1e-6 (tests/sm_backend). A statsmodels SE must lie within
#: this of native's SE at statsmodels' estimates: 1.4x the largest measured gap, so an error
#: of 5 % in a statsmodels SE is still caught, but one below this bound is not.
STATSMODELS_SE_RELATIVE = 0.045
HESSIAN_OF = {"glmer": "lme4:::deriv12", "clmm": "ordinal's numerical Hessian"}


def model_id(spec: Spec, backend: str | None) -> str:
    """Which model a side fitted: the backend's version of the spec (references: the spec's)."""
    m = spec.model_for(backend) if backend else spec.model
    return f"{m.parsed.lme4()} | {m.family}({m.resolved_link})"


def estimator_of(result: FitResult) -> Estimator:
    """The typed estimator of an ok result; every backend must set it (harness/estimator.py)."""
    if result.estimator is None:
        raise ValueError(f"{result.backend} returned an ok result for {result.spec_id} without "
                         "its estimator (a backend bug: set it with FitResult.set_estimator)")
    return result.estimator


@dataclass(frozen=True)
class Side:
    """One side of a check: a live backend result or a printed reference."""

    source: Source
    software: str
    estimator: Estimator
    model_id: str
    result: FitResult | None = None
    reference: Reference | None = None
    keys: frozenset[ParamKey] = field(default_factory=frozenset)
    printed: dict[tuple[ParamKey, str], ReferenceValue] = field(default_factory=dict)

    @classmethod
    def of_result(cls, r: FitResult, spec: Spec) -> "Side":
        return cls(Source.backend(r.backend), r.backend, estimator_of(r),
                   model_id(spec, r.backend), result=r,
                   keys=frozenset(p.param_key for p in r.parameters))

    @classmethod
    def of_reference(cls, ref: Reference, rvals: list[ReferenceValue], spec: Spec) -> "Side":
        est = Estimator.parse(ref.method) if ref.method else spec.model.estimator()
        return cls(Source.reference(ref.id), ref.software, est, model_id(spec, None),
                   reference=ref, keys=frozenset(rv.key for rv in rvals),
                   printed={(rv.key, rv.quantity): rv for rv in rvals})

    def warned(self) -> str:
        """The side's convergence warning, if it gave one (quoted, never an explanation)."""
        if self.result is None:
            return ""
        d = self.result.diagnostics
        if d.converged is False:
            return f"{self.source} reported no convergence"
        return f"{self.source} warned: {d.warnings[0]}" if d.warnings else ""


@dataclass(frozen=True)
class Context:
    spec: Spec
    key: ParamKey
    quantity: str  # estimate | std_error
    a: Side
    b: Side
    value_a: float
    value_b: float
    limit: float  # this cell's tolerance (absolute)
    evidence: Evidence
    class_of: Callable[[ParamKey], str]  # the model class whose tolerance rows govern a key
    #: BLUPs: every common level with both sides' values (the check shows the worst)
    levels: tuple[tuple[str, float, float], ...] = ()

    @property
    def qclass(self) -> str:
        return quantity_class(self.key, self.quantity)

    def same_estimator(self) -> bool:
        ea, eb = self.a.estimator, self.b.estimator
        return ea.same_estimates(eb) if self.quantity == "estimate" \
            else ea.same_standard_errors(eb)


@dataclass(frozen=True)
class Explanation:
    rule: str
    text: str
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    explanation: str  # what the rule means, for the report's registry
    explains: tuple[str, ...]  # quantity classes it may explain
    evidence: str  # what it needs
    judge: Callable[[Context], Explanation | None]
    catalogue: str | None = None  # models.md §6 id


# ---- spec-level known differences -----------------------------------------------------------


def _matches(selector: str, key: ParamKey, quantity: str) -> bool:
    text = str(key) if quantity == "estimate" else f"{key}:{quantity}"
    return selector in (text, str(key), quantity_class(key, quantity)) or \
        (any(c in selector for c in "*?[") and fnmatch.fnmatchcase(text, selector))


def _spec_level(c: Context) -> Explanation | None:
    for kd in c.spec.known_differences:
        sources = set(kd.applies_to.sources)
        if not ({str(c.a.source), str(c.b.source)} & sources):
            continue
        if not any(_matches(s, c.key, c.quantity) for s in kd.applies_to.keys):
            continue
        # the engine side of the cell (a reference is judged against the engine)
        engine = c.value_a if c.a.result is not None else c.value_b
        other = c.value_b if engine is c.value_a else c.value_a
        if kd.expected is not None:
            want = parse_printed(kd.expected, f"known_differences[{kd.id}].expected")
            if abs(engine - want.value) <= want.half_unit + 1e-12:
                return Explanation(kd.id, f"{kd.explanation} (expected {want.text}; the engine "
                                   f"gives {engine:.6g})", {"expected": want.value})
        elif kd.max_difference is not None and kd.max_difference.allows(engine, other):
            return Explanation(kd.id, f"{kd.explanation} Measured: {kd.measured} (bound "
                               f"{kd.max_difference.model_dump(exclude_none=True)}; difference "
                               f"{abs(engine - other):.3g})",
                               {"difference": abs(engine - other)})
    return None


# ---- estimator and model differences: native reproduces the gap -------------------------------


def _difference_kind(a: Side, b: Side, quantity: str) -> tuple[str, str]:
    """(catalogue id, words) for what differs between two sides' models and estimators."""
    ea, eb = a.estimator, b.estimator
    if a.model_id != b.model_id:
        kind = "D3" if _random_part(a.model_id) != _random_part(b.model_id) else "D14"
        return kind, (f"{a.source} and {b.source} fit different models ({a.model_id} vs "
                      f"{b.model_id})")
    if {ea.criterion, eb.criterion} == {"REML", "ML"}:
        return "D1", f"{a.source} is {ea.criterion}, {b.source} {eb.criterion}"
    if ea.integration != eb.integration or ea.points != eb.points:
        kind = "D2-mv" if {ea.integration, eb.integration} == {"aghq", "mvaghq"} \
            and ea.points == eb.points else "D2"
        return kind, (f"{a.source} integrates with {ea.estimates_label()}, {b.source} with "
                      f"{eb.estimates_label()}")
    if quantity == "std_error" and (ea.se, ea.cluster) != (eb.se, eb.cluster):
        return "D10", f"standard errors: {a.source} {ea.label()}, {b.source} {eb.label()}"
    return "estimators", f"{a.source} fitted {ea.label()}, {b.source} {eb.label()}"


def _random_part(mid: str) -> str:
    formula = mid.split(" | ")[0]
    return " + ".join(sorted(t for t in formula.split(" + ") if "|" in t))


def _bridge_value(c: Context, side: Side, value: float) -> tuple[float, str] | None:
    """Native's value under this side's model and estimator, when the side agrees with it —
    within the same-estimator tolerance, or by the evidence that explains two optima of one
    estimator (the side stopped early; its SE is the SE at its own estimates) — with how."""
    bridge = c.evidence.bridge(side.model_id, side.estimator, c.quantity)
    if bridge is None:
        return None
    from harness.compare import result_values

    mine = result_values(bridge, c.spec, c.evidence.nesting).get(c.key, {}).get(c.quantity)
    if mine is None:
        return None
    printed = side.printed.get((c.key, c.quantity))
    if printed is not None:
        tol = tolerance_for(c.spec, c.key, c.quantity, "printed", printed.number.half_unit,
                            model=c.class_of(c.key), engines=engine_rows(side.result))
    else:
        tol = tolerance_for(c.spec, c.key, c.quantity, "engines", model=c.class_of(c.key),
                            engines=engine_rows(side.result))
    if abs(mine - value) <= tol.absolute(mine, value):
        return mine, ""
    native = Side(bridge_source(bridge.estimator), "native", bridge.estimator, side.model_id,
                  result=bridge, keys=frozenset(p.param_key for p in bridge.parameters))
    sub = replace(c, a=side, b=native, value_a=value, value_b=mine,
                  limit=tol.absolute(mine, value))
    found = _optimum(sub) or _standard_error_at_point(sub)
    return (mine, f" ({found.text})") if found else None


def _blup_gap(c: Context, native: dict[str, float], values: list[float]) -> float | None:
    """The largest gap between a side's BLUPs and native's (level -> value), if every level is
    within the BLUP tolerance (None: a level is missing or off)."""
    tol = tolerance_for(c.spec, c.key, "estimate", "engines", model=c.class_of(c.key),
                        engines=engine_rows(c.a.result, c.b.result))
    worst = 0.0
    for (level, _, _), mine in zip(c.levels, values):
        there = native.get(level)
        if there is None or abs(there - mine) > tol.absolute(there, mine):
            return None
        worst = max(worst, abs(there - mine))
    return worst


def _bridge_blups(c: Context, side: Side, values: list[float]) -> float | None:
    """A side's BLUPs against native's fit of its model and estimator (None: no bridge, or a
    level is off)."""
    bridge = c.evidence.bridge(side.model_id, side.estimator, "estimate")
    if bridge is None:
        return None
    from harness.postestimation import blups

    native = blups(bridge).get((c.key.group, c.key.name), {})
    return _blup_gap(c, {level: b.estimate for level, b in native.items()}, values)


def _blups_at_side(c: Context, side: Side, values: list[float]) -> float | None:
    """A side's BLUPs against native's random effects at that side's own estimates, as its
    software computes them (its path; modes or posterior means): BLUPs are functions of the
    estimates, which are judged in their own cells."""
    at = c.evidence.random_effects_at(side.source)
    prefix = f"{c.key.group}/{c.key.name}/"
    return _blup_gap(c, {k[len(prefix):]: v for k, v in at.items()
                         if k.startswith(prefix) and v is not None}, values)


def _estimator_difference(c: Context) -> Explanation | None:
    if c.same_estimator() and c.a.model_id == c.b.model_id:
        return None
    if c.key.kind == "ranef":
        found = []
        for side, values in ((c.a, [va for _, va, _ in c.levels]),
                             (c.b, [vb for _, _, vb in c.levels])):
            gap = _bridge_blups(c, side, values)
            how = "native's fit of its model and estimator"
            if gap is None:
                gap = _blups_at_side(c, side, values)
                how = "native's random effects at its own estimates"
            if gap is None:
                return None
            found.append((gap, how))
        (wa, how_a), (wb, how_b) = found
        kind, words = _difference_kind(c.a, c.b, c.quantity)
        return Explanation(kind, (
            f"different estimators or models: {words}. Native reproduces the gap at all "
            f"{len(c.levels)} levels: {c.a.source}'s BLUPs agree with {how_a} (largest gap "
            f"{wa:.2g}), {c.b.source}'s with {how_b} ({wb:.2g})"),
            {"max_gap_a": wa, "max_gap_b": wb})
    ba = _bridge_value(c, c.a, c.value_a)
    bb = _bridge_value(c, c.b, c.value_b)
    if ba is None or bb is None:
        return None
    (na, how_a), (nb, how_b) = ba, bb
    kind, words = _difference_kind(c.a, c.b, c.quantity)
    return Explanation(kind, (
        f"different estimators or models: {words}. Native reproduces the gap: fitting "
        f"{c.a.source}'s gives {na:.7g} ({c.a.source} {c.value_a:.7g}{how_a}), fitting "
        f"{c.b.source}'s gives {nb:.7g} ({c.b.source} {c.value_b:.7g}{how_b})"),
        {f"native as {c.a.source}": na, f"native as {c.b.source}": nb})


# ---- the same estimator at two points of a flat likelihood -----------------------------------


def _point(c: Context, side: Side) -> Point | None:
    p = c.evidence.points.get(side.source)
    return p if p is not None and not p.inconsistency() else None


@dataclass(frozen=True)
class _Depth:
    """Two consistent points of one estimator, their log-likelihoods on a common path and
    their gaps to the best known optimum there."""

    a: Point
    b: Point
    la: float
    lb: float
    ga: float
    gb: float


def _gaps(c: Context) -> _Depth | None:
    if not c.same_estimator() or c.a.model_id != c.b.model_id:
        return None
    pa, pb = _point(c, c.a), _point(c, c.b)
    if pa is None or pb is None:
        return None
    path = c.evidence.common_path(pa, pb)
    la, lb = pa.logliks.get(path), pb.logliks.get(path)
    ga, gb = c.evidence.gap(pa, path), c.evidence.gap(pb, path)
    if la is None or lb is None or ga is None or gb is None or max(ga, gb) > EARLY_STOP_LOGLIK:
        return None
    return _Depth(pa, pb, la, lb, ga, gb)


def _depth_words(c: Context, d: _Depth) -> tuple[str, str]:
    if max(d.ga, d.gb) <= FLAT_LOGLIK:
        return "flat", (f"equally good optima: native evaluates the log-likelihood at "
                        f"{c.a.source}'s estimates as {d.la:.10g} and at {c.b.source}'s as "
                        f"{d.lb:.10g} (gaps to the best {d.ga:.2g} and {d.gb:.2g})")
    worse = c.a if d.ga > d.gb else c.b
    warned = worse.warned()
    return "D18", (f"{worse.source} stopped short of the optimum by {max(d.ga, d.gb):.3g} in "
                   f"log-likelihood (native evaluates {d.la:.10g} at {c.a.source}'s "
                   f"estimates, {d.lb:.10g} at {c.b.source}'s)"
                   + (f"; {warned}" if warned else ""))


def _curvature_bound(c: Context, key: ParamKey, ga: float, gb: float) -> float | None:
    se = c.evidence.curvature(c.a.model_id, c.a.estimator.estimates_label()).get(str(key))
    if se is None or not math.isfinite(se):
        return None
    return CURVATURE_SLACK * se * (math.sqrt(2 * (ga + GAP_FLOOR)) + math.sqrt(2 * (gb + GAP_FLOOR)))


def _optimum(c: Context) -> Explanation | None:
    if c.quantity != "estimate":
        return None
    d = _gaps(c)
    if d is None:
        return None
    ga, gb = d.ga, d.gb
    rule, words = _depth_words(c, d)
    numbers = {"loglik_a": d.la, "loglik_b": d.lb, "gap_a": ga, "gap_b": gb}
    qc = c.qclass
    if qc == "loglik":
        # the log-likelihood and what is linear in it (deviance, REML criterion, AIC, BIC: -2x);
        # each side reports it on its own path (glmer: its approximation of the Laplace value),
        # so the reported values move with the own-path log-likelihoods at the two points
        own_a, own_b = d.a.logliks.get(d.a.path, d.la), d.b.logliks.get(d.b.path, d.lb)
        moved = 2.0 * (abs(own_a - own_b) + d.a.allowance + d.b.allowance)
        if abs(c.value_a - c.value_b) > moved:
            return None
        paths = "" if d.a.path == d.b.path else (
            f" on its own path (native evaluates glmer's approximation at "
            f"{c.a.source if d.a.path == 'glmer' else c.b.source}'s estimates as "
            f"{own_a if d.a.path == 'glmer' else own_b:.10g})")
        return Explanation(rule, words + "; each side reports the log-likelihood of its own "
                           f"estimates{paths}, and this statistic moves with it",
                           {**numbers, "own_path_loglik_a": own_a, "own_path_loglik_b": own_b})
    if qc in ("fixed", "threshold", "variance", "correlation"):
        bound = _curvature_bound(c, c.key, ga, gb)
        if bound is None or abs(c.value_a - c.value_b) > bound:
            return None
        numbers["bound"] = bound
        return Explanation(rule, f"{words}; a likelihood that flat moves this parameter by up "
                           f"to {bound:.3g} (c·SE·(√2δa+√2δb)), the sides differ by "
                           f"{abs(c.value_a - c.value_b):.3g}", numbers)
    if qc == "blup" and c.levels:
        return _blups_at_points(c, rule, words, numbers)
    if qc == "derived" and c.key.kind == "stat":
        bad = _parameters_beyond_bound(c, ga, gb)
        if bad:
            return None
        return Explanation(rule, f"{words}; this statistic is computed by the harness from "
                           "the variance parameters, and each of them differs by no more than "
                           "the curvature allows", numbers)
    return None


def _blups_at_points(c: Context, rule: str, words: str, numbers: dict[str, float]
                     ) -> Explanation | None:
    """BLUPs are functions of the estimates: explained when native's random effects at each
    side's estimates reproduce that side's BLUPs at every level."""
    wa = _blups_at_side(c, c.a, [va for _, va, _ in c.levels])
    wb = _blups_at_side(c, c.b, [vb for _, _, vb in c.levels])
    if wa is None or wb is None:
        return None
    worst = max(wa, wb)
    return Explanation(rule, f"{words}; BLUPs are functions of the estimates, and native's "
                       f"random effects at each side's estimates reproduce that side's at all "
                       f"{len(c.levels)} levels (largest gap {worst:.2g})",
                       {**numbers, "max_blup_gap": worst})


def _parameters_beyond_bound(c: Context, ga: float, gb: float) -> list[str]:
    """Parameters of the two sides that differ beyond both tolerance and curvature bound."""
    ra, rb = c.a.result, c.b.result
    if ra is None or rb is None:
        return ["(a printed side)"]
    ma, mb = ra.parameter_map(), rb.parameter_map()
    bad = []
    for name, p in ma.items():
        q = mb.get(name)
        if q is None:
            continue
        key = p.param_key
        tol = tolerance_for(c.spec, key, "estimate", "engines", model=c.class_of(key),
                            engines=engine_rows(c.a.result, c.b.result))
        if abs(p.estimate - q.estimate) <= tol.absolute(p.estimate, q.estimate):
            continue
        bound = _curvature_bound(c, key, ga, gb)
        if bound is None or abs(p.estimate - q.estimate) > bound:
            bad.append(name)
    return bad


def _standard_error_at_point(c: Context) -> Explanation | None:
    """Two engines' SEs differ because their estimates do: native, computing the SE the way
    each engine does at each engine's estimates, reproduces both."""
    if c.quantity != "std_error":
        return None
    d = _gaps(c)
    if d is None:
        return None
    key = str(c.key)
    na = c.evidence.standard_errors_at(c.a.source).get(key)
    nb = c.evidence.standard_errors_at(c.b.source).get(key)
    if na is None or nb is None:
        return None
    tol = tolerance_for(c.spec, c.key, "std_error", "engines", model=c.class_of(c.key),
                        engines=engine_rows(c.a.result, c.b.result))

    hessian = "clmm" if c.spec.model.family == "ordinal" else "glmer"

    def reproduced(side: Side, native: float, reported: float) -> bool:
        allowed = tol.absolute(native, reported)
        if _finite_difference_hessian(side):
            allowed = max(allowed, LME4_HESSIAN_RELATIVE[hessian] * abs(native))
        return abs(native - reported) <= allowed

    if not (reproduced(c.a, na, c.value_a) and reproduced(c.b, nb, c.value_b)):
        return None
    rule, words = _depth_words(c, d)
    crude = [str(s.source) for s in (c.a, c.b) if _finite_difference_hessian(s)]
    kinds = _fixed_se_kinds(c)
    why = ("the SEs differ because the estimates do" if kinds is None else
           f"the SEs differ because {c.a.source}'s are {kinds[0]} and {c.b.source}'s "
           f"{kinds[1]}, a standard-error type (catalogue D10)"
           + ("" if rule == "flat" else ", and because the estimates do"))
    return Explanation(rule, f"{words}; native's standard error at {c.a.source}'s estimates is "
                       f"{na:.7g} ({c.a.source} reports {c.value_a:.7g}), at {c.b.source}'s "
                       f"{nb:.7g} ({c.b.source} reports {c.value_b:.7g}): {why}" + (
                           f", and {' and '.join(crude)} computes GLMM SEs from a "
                           f"finite-difference Hessian ({HESSIAN_OF[hessian]}), measured within "
                           f"{LME4_HESSIAN_RELATIVE[hessian]:g} of the accurate one" if crude else ""),
                       {"native_se_a": na, "native_se_b": nb})


def _inference_at_point(c: Context) -> Explanation | None:
    """Two engines' intervals, df or p-values differ because their estimates do: native,
    recomputing each side's number from that side's own estimates (its Wald interval from its
    estimate and native's SE there, its Satterthwaite df at its theta), reproduces both. The
    estimates' own difference is judged in its own cells."""
    d = _gaps(c)
    if d is None:
        return None
    name = f"{c.key}:{c.quantity}"
    na = c.evidence.inference_at(c.a.source).get(name)
    nb = c.evidence.inference_at(c.b.source).get(name)
    if na is None or nb is None:
        return None
    tol = tolerance_for(c.spec, c.key, c.quantity, "engines", model=c.class_of(c.key))
    if not (abs(na - c.value_a) <= tol.absolute(na, c.value_a)
            and abs(nb - c.value_b) <= tol.absolute(nb, c.value_b)):
        return None
    rule, words = _depth_words(c, d)
    return Explanation(rule, f"{words}; native's {c.quantity} recomputed at {c.a.source}'s "
                       f"estimates is {na:.7g} ({c.a.source} reports {c.value_a:.7g}), at "
                       f"{c.b.source}'s {nb:.7g} ({c.b.source} reports {c.value_b:.7g}): they "
                       "differ because the estimates do", {"native_a": na, "native_b": nb})


def _statsmodels_se(c: Context) -> Explanation | None:
    """A statsmodels fixed-effect SE against another side's, same estimator: native,
    computing the SE the other side's way (inverse X'V^-1X) at statsmodels' estimates,
    reproduces the other side's SE, and statsmodels' own is within STATSMODELS_SE_RELATIVE of
    that."""
    if c.quantity != "std_error" or c.key.kind != "fixed":
        return None
    pairs = [(c.a, c.value_a, c.b, c.value_b), (c.b, c.value_b, c.a, c.value_a)]
    found = [(s, v, o, ov) for s, v, o, ov in pairs if s.result is not None
             and s.result.backend == "statsmodels"
             and s.estimator.same_standard_errors(o.estimator)
             and not (o.result is not None and o.result.backend == "statsmodels")]
    if len(found) != 1:
        return None
    sm, value, other, other_value = found[0]
    native = c.evidence.standard_errors_at(sm.source).get(str(c.key))
    if native is None:
        return None
    if other.result is None:  # a printed SE: native at statsmodels' estimates reproduces it
        if abs(native - other_value) > c.limit:
            return None
    else:  # a live engine: native reproduces its SE at its own estimates, and both sides'
        # estimates are optima of one likelihood (within D18's reach of the best)
        at_other = c.evidence.standard_errors_at(other.source).get(str(c.key))
        if at_other is None or _gaps(c) is None or \
                abs(at_other - other_value) > max(c.limit, _se_tolerance(c, at_other)):
            return None
    gap = abs(value / native - 1)
    if gap > STATSMODELS_SE_RELATIVE:
        return None
    return Explanation(
        "SM1", f"statsmodels' standard errors come from its joint Hessian over fixed "
        f"effects and covariance parameters: native's SE at statsmodels' estimates, computed "
        f"as {other.source} computes it (inverse X'V^-1X), is {native:.7g} ({other.source} "
        f"reports {other_value:.7g}); statsmodels reports {value:.7g}, {gap:.2g} relative "
        f"from it (measured bound {STATSMODELS_SE_RELATIVE:g})",
        {"native_se_at_statsmodels": native, "relative_gap": gap})


def _se_tolerance(c: Context, value: float) -> float:
    """The same-estimator SE tolerance of an engine that is not statsmodels, at ``value``."""
    tol = tolerance_for(c.spec, c.key, "std_error", "engines", model=c.class_of(c.key))
    return tol.absolute(value, value)


#: how an LMM engine computes its fixed effects' SEs (harness/evidence.py, JOINT_ENGINES)
SE_KINDS = {True: "from the joint inverse Hessian of all parameters (glmmTMB's sdreport)",
            False: "conditional on the variance parameters (as lmer's vcov and Stata mixed's "
                   "e(V))"}


def _fixed_se_kinds(c: Context) -> tuple[str, str] | None:
    """The two sides' kinds of LMM fixed-effect SEs when they differ (None when they do not)."""
    if c.key.kind != "fixed" or c.a.estimator.integration != "none" or \
            not c.spec.model.parsed.has_random:
        return None
    ja, jb = (joint_standard_errors(s.software) for s in (c.a, c.b))
    return None if ja == jb else (SE_KINDS[ja], SE_KINDS[jb])


def _finite_difference_hessian(side: Side) -> bool:
    """GLMM SEs from glmer's or clmm's numerical Hessian (the lme4 backend runs both; a refit
    reference names its software, e.g. "R 4.2.2 ordinal clmm")."""
    software = side.software.lower()
    return side.estimator.integration != "none" and any(
        name in software for name in ("lme4", "glmer", "clmm"))


REGISTRY: tuple[Rule, ...] = (
    Rule("spec", "a known difference of this spec",
         "The spec names the sources and keys a difference applies to and bounds it: the value "
         "the reference should have printed (a slip in the course), or a measured maximum.",
         ("*",), "the spec's expected value or measured bound", _spec_level),
    Rule("estimator", "different estimators or models, reproduced by native",
         "REML vs ML (D1), Laplace vs quadrature or different numbers of points (D2), lme4-style "
         "vs Stata's mean-variance quadrature (D2-mv), covariance structures (D3), factor coding "
         "(D14), standard-error types (D10): the two sides answer different questions. "
         "Explained only when native, fitting each side's model and estimator, reproduces each "
         "side's number within the same-estimator tolerance.",
         ("*",), "native bridge fits of both sides' model and estimator", _estimator_difference),
    Rule("flat", "equally good optima (or one stopped early: D18)",
         "Both sides fitted the same estimator; native evaluates the full log-likelihood at each "
         "side's complete estimates, finds each consistent with what the side reported, both "
         f"within {FLAT_LOGLIK:g} (flat) or {EARLY_STOP_LOGLIK:g} (D18: one stopped early) of "
         "the best optimum, and the difference no larger than the curvature allows at that depth.",
         ("fixed", "threshold", "variance", "correlation", "loglik", "derived", "blup"),
         "full log-likelihood at each side's estimates; SEs from the likelihood's curvature",
         _optimum, "D18"),
    Rule("flat-se", "standard errors at different optima",
         "The same estimator stopped at two points; native computes the standard error the way "
         "each side does, at each side's estimates, and reproduces both.",
         ("fixed_se", "threshold_se", "variance_se", "correlation_se"),
         "native standard errors at each side's estimates", _standard_error_at_point, "D18"),
    Rule("flat-inference", "intervals, df and p-values at different optima",
         "The same estimator stopped at two points; native recomputes each side's interval "
         "(from its estimate and the SE at its estimates, on the interval's scale), "
         "Satterthwaite (and, for REML, Kenward-Roger) df and p-value at each side's "
         "estimates, and reproduces both.",
         ("interval", "df", "p_value"),
         "native intervals, df and p-values at each side's estimates", _inference_at_point,
         "D18"),
    Rule("statsmodels-se", "statsmodels' fixed-effect SEs (joint Hessian)",
         "statsmodels' MixedLM inverts its joint observed Hessian over fixed effects and "
         "covariance parameters (the ML cross block also for REML); native and lme4 invert "
         "X'V^-1X. Explained only when native's SE at statsmodels' estimates, computed the "
         "other side's way, reproduces the other side's SE, and statsmodels' is within the "
         "measured bound of it.",
         ("fixed_se",), "native standard errors at statsmodels' estimates; measured bound",
         _statsmodels_se, "SM1"),
)

BY_ID = {r.id: r for r in REGISTRY}

#: the specific ids the rules return, with the catalogue entry (models.md §6) each stands for
DIFFERENCE_TITLES = {
    "D1": "REML vs ML", "D2": "Laplace vs adaptive quadrature, or different numbers of points",
    "D2-mv": "lme4-style AGHQ vs Stata's mean-variance AGHQ",
    "D3": "covariance structure of the random part", "D10": "standard-error types",
    "D14": "coding of the fixed part", "estimators": "other estimator differences",
    "flat": "equally good optima of a flat likelihood", "D18": "an optimizer stopped early",
    "SM1": "statsmodels' fixed-effect SEs from its joint Hessian",
}
RULE_OF = {**{k: "estimator" for k in ("D1", "D2", "D2-mv", "D3", "D10", "D14", "estimators")},
           "flat": "flat", "D18": "flat", "SM1": "statsmodels-se"}


def explain(ctx: Context) -> Explanation | None:
    """The first rule whose evidence covers this cell, or None (the cell is unexplained)."""
    for rule in REGISTRY:
        if "*" not in rule.explains and ctx.qclass not in rule.explains:
            continue
        found = rule.judge(ctx)
        if found:
            return found
    return None
