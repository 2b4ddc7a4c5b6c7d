"""The registry of known cross-software differences: why two numbers may rightly differ.

Each entry has an id (the course catalogue's D-id where one corresponds, models.md §6), a
plain-language explanation for the report, and a rule that recognises it from the two sides of a
check (their estimators, software, parameter sets, convergence). The comparison engine asks the
registry only about cells that are *outside* tolerance: a recognised difference turns
``unexplained`` into ``explained`` and the report names the entry. A spec's own
``known_differences`` are consulted first and still apply.

Adding an entry: write a rule ``(Context) -> str | None`` returning the specific sentence for this
cell (or None) and append a :class:`KnownDifference` to :data:`REGISTRY`. Rules must be narrow:
an entry that explains everything hides real bugs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.results import FitResult
from harness.spec import Spec


@dataclass(frozen=True)
class Side:
    """One side of a check: a live backend result or a printed reference."""

    name: str  # backend name, or "ref:<id>"
    kind: str  # backend | reference
    software: str  # native, lme4, stata, or the reference's software text
    method: str | None  # ML, REML, Laplace, AGHQ(7), MVAGHQ(7) ...
    result: FitResult | None = None
    keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_stata(self) -> bool:
        return "stata" in self.software.lower()

    @classmethod
    def of_result(cls, r: FitResult) -> "Side":
        return cls(r.backend, "backend", r.backend, r.provenance.method, r,
                   frozenset(p.key for p in r.parameters))


@dataclass(frozen=True)
class Context:
    spec: Spec
    key: str
    quantity: str  # estimate | std_error
    a: Side
    b: Side
    value_a: float
    value_b: float
    peers: tuple[FitResult, ...] = ()  # every ok live result of the spec
    limit: float = float("inf")  # this cell's tolerance (absolute)
    # the native log-likelihood evaluated at each live engine's estimates (LMMs; see
    # backends/native/evaluate.py): an optimizer-free view of which point is better
    likelihood_at: dict[str, float] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.spec.model.family

    def methods(self) -> tuple[str, str]:
        return (_norm_method(self.a.method), _norm_method(self.b.method))


@dataclass(frozen=True)
class KnownDifference:
    id: str
    title: str
    explanation: str
    rule: Callable[[Context], str | None]
    catalogue: str | None = None  # models.md §6 id


def _norm_method(m: str | None) -> str:
    if not m:
        return ""
    return m.split(",")[0].strip()  # "OLS, cluster-robust SE by school (CR1)" -> "OLS"


def _quad(m: str) -> tuple[str, int] | None:
    """("laplace", 1) / ("aghq", n) / ("mvaghq", n) from a method label."""
    if m.lower() == "laplace":
        return ("laplace", 1)
    hit = re.fullmatch(r"(MV)?AGHQ\((\d+)\)", m, flags=re.I)
    if hit:
        return ("mvaghq" if hit.group(1) else "aghq", int(hit.group(2)))
    return None


# ---- rules ---------------------------------------------------------------------------------


def _reml_vs_ml(c: Context) -> str | None:
    ma, mb = c.methods()
    if {ma, mb} == {"REML", "ML"}:
        return (f"different estimators: {c.a.name} is {ma}, {c.b.name} is {mb}; REML variances are larger (they allow "
                "for the fixed effects' degrees of freedom) and REML log-likelihoods are on a "
                "different scale")
    return None


def _laplace_vs_quadrature(c: Context) -> str | None:
    qa, qb = (_quad(m) for m in c.methods())
    if not qa or not qb or qa == qb:
        return None
    if {qa[0], qb[0]} == {"aghq", "mvaghq"} and qa[1] == qb[1]:
        return None  # same points, different adaptation: the next rule
    return (f"different estimators: {c.a.name} integrates with {c.a.method}, {c.b.name} with {c.b.method}: the "
            "approximations to the GLMM likelihood differ, most in variance components")


def _aghq_vs_mvaghq(c: Context) -> str | None:
    qa, qb = (_quad(m) for m in c.methods())
    if qa and qb and {qa[0], qb[0]} == {"aghq", "mvaghq"} and qa[1] == qb[1]:
        return (f"{qa[1]}-point quadrature centred differently: lme4-style AGHQ centres the "
                "nodes at the conditional mode, Stata's mean-variance AGHQ at the posterior "
                "mean and sd; differences are in the 4th significant digit")
    return None


def _cov_groups(side: Side) -> dict[str, bool]:
    """group -> has a correlation row (unstructured) for sides with random slopes."""
    groups: dict[str, bool] = {}
    for k in side.keys:
        parts = k.split("/")
        if parts[0] != "ran_pars" or parts[1] == "Residual":
            continue
        g = parts[1]
        groups.setdefault(g, False)
        if parts[2].startswith("cor__"):
            groups[g] = True
    return groups


def _n_terms(side: Side, group: str) -> int:
    return sum(1 for k in side.keys if k.startswith(f"ran_pars/{group}/sd__"))


def _covariance_structure(c: Context) -> str | None:
    if not c.a.keys or not c.b.keys:
        return None
    ga, gb = _cov_groups(c.a), _cov_groups(c.b)
    for g in set(ga) & set(gb):
        if ga[g] != gb[g] and _n_terms(c.a, g) > 1 and _n_terms(c.b, g) > 1:
            un, ind = (c.a, c.b) if ga[g] else (c.b, c.a)
            return (f"{un.name} estimated an unstructured covariance for {g}, {ind.name} an "
                    "independent one (Stata's default for random slopes without cov(un); lme4 "
                    "needs (1|g) + (0+x|g) for it): different models")
    return None


_VAR_SE_SCALES = ("Stata keeps variance parameters as log-sds and atanh-correlations and "
                  "reports delta-method SEs of variances; other software works on other scales")


def _variance_se_scales(c: Context) -> str | None:
    if c.quantity != "std_error" or not c.key.startswith("ran_pars/"):
        return None
    if c.a.is_stata != c.b.is_stata or "spss" in (c.a.software + c.b.software).lower():
        return (f"variance-parameter SEs on different scales: {_VAR_SE_SCALES}; SEs of a "
                "variance and of an sd are related only to first order (SE(var) = 2 sd SE(sd))")
    return None


def _eb_mean_vs_mode(c: Context) -> str | None:
    if not c.key.startswith("ranef/") or c.family == "gaussian":
        return None
    if c.a.is_stata != c.b.is_stata:
        return ("in a GLMM Stata predicts random effects as posterior means (and posterior sds), "
                "lme4 and the native engine as conditional modes: they differ most in small "
                "clusters")
    return None


_FACTOR = re.compile(r"^(?:factor|C|as\.factor)\((?P<v>[^)]+)\)")


def _fixed_terms(side: Side) -> set[str]:
    return {k.split("/", 1)[1] for k in side.keys if k.startswith("fixed/")}


def _factor_coding(c: Context) -> str | None:
    ta, tb = _fixed_terms(c.a), _fixed_terms(c.b)
    if not ta or not tb or ta == tb:
        return None
    only_a, only_b = ta - tb, tb - ta
    for linear, coded, lin_side, fac_side in ((only_a, only_b, c.a, c.b),
                                               (only_b, only_a, c.b, c.a)):
        for v in linear:
            dummies = [t for t in coded if (m := _FACTOR.match(t)) and m.group("v") == v
                       or (t.startswith(v) and t != v and t[len(v):].isalnum())]
            if dummies:
                return (f"{v} enters {lin_side.name} as one numeric term but {fac_side.name} as "
                        f"factor dummies ({', '.join(sorted(dummies))}), as R's read.dta makes of "
                        "a labelled variable: a different fixed part, so every estimate moves")
    return None


def _warned(r: FitResult) -> bool:
    return r.diagnostics.converged is False or bool(r.diagnostics.warnings)


def _better_peer(r: FitResult, peers: tuple[FitResult, ...]) -> FitResult | None:
    """A live result with the same estimator, no warning and a strictly higher log-likelihood."""
    if r.statistics.loglik is None:
        return None
    best = None
    for p in peers:
        if p.backend == r.backend or _warned(p) or p.statistics.loglik is None or \
                _norm_method(p.provenance.method) != _norm_method(r.provenance.method):
            continue
        if p.statistics.loglik > r.statistics.loglik and (
                best is None or p.statistics.loglik > best.statistics.loglik):
            best = p
    return best


def _value(c: Context, r: FitResult) -> float | None:
    """``r``'s value for the context's key and quantity (parameters and harness statistics)."""
    p = r.parameter_map().get(c.key)
    if p is not None:
        return p.estimate if c.quantity == "estimate" else p.std_error
    if c.key.startswith("stat/") and c.quantity == "estimate":
        from harness.postestimation import statistics

        m = c.spec.model_for(r.backend)
        return statistics(r, m.family, m.resolved_link).get(c.key[5:])
    return None


def _optimizer_stopped(c: Context) -> str | None:
    """An optimizer that warned and stopped short of the optimum another engine reaches.

    Three forms: two live engines (the warned one has the lower log-likelihood); a live engine
    that warned, against a printed value, while a peer engine reaches a higher log-likelihood;
    a printed value that came from software whose live engine here warned and stops short of the
    other side's optimum (e.g. the catalogue's lme4 refits).
    """
    ra, rb = c.a.result, c.b.result
    if ra is not None and rb is not None:
        if _norm_method(ra.provenance.method) != _norm_method(rb.provenance.method):
            return None
        # prefer the native evaluation at each engine's estimates: a transcribed log-likelihood
        # is rounded as printed (Stata's -13986.738), which would fake a gap of 5e-5
        la = c.likelihood_at.get(ra.backend, ra.statistics.loglik)
        lb = c.likelihood_at.get(rb.backend, rb.statistics.loglik)
        if la is None or lb is None or la == lb:
            return None
        better, worse = (ra, rb) if la > lb else (rb, ra)
        if _warned(worse):
            return (f"{worse.backend}'s optimizer stopped early (it warned about convergence); "
                    f"{better.backend} reaches a log-likelihood higher by {abs(la - lb):.2g}, "
                    "the better optimum")
        return None
    live, ref = (c.a, c.b) if ra is not None else (c.b, c.a)
    r = live.result
    if r is None or ref.kind != "reference":
        return None
    printed = ref.result is None and (c.value_b if ref is c.b else c.value_a)
    if _warned(r):
        peer = _better_peer(r, c.peers)
        pv = _value(c, peer) if peer is not None else None
        if peer is not None and pv is not None and abs(pv - printed) <= c.limit:
            gap = peer.statistics.loglik - r.statistics.loglik  # type: ignore[operator]
            return (f"{r.backend}'s optimizer stopped early (it warned about convergence); "
                    f"{peer.backend} reaches a log-likelihood higher by {gap:.2g} on the same "
                    f"estimator and agrees with the printed value, so {r.backend}'s last digits "
                    "are not the optimum's")
    software = ref.software.lower()
    for p in c.peers:
        pv = _value(c, p) if p.backend != r.backend else None
        if pv is not None and p.backend.lower() in software and _warned(p) \
                and _better_peer(p, (r,)) is r and abs(pv - printed) <= c.limit:
            gap = r.statistics.loglik - p.statistics.loglik  # type: ignore[operator]
            return (f"the reference {ref.name[4:]} was computed by {p.backend}, whose optimizer "
                    f"stops early here (it warns, and still reproduces the printed value); "
                    f"{r.backend} reaches a log-likelihood higher "
                    f"by {gap:.2g}, the better optimum")
    return None


FLAT_LOGLIK = 1e-6  # log-likelihood units: well inside lme4's and native's optimizer tolerance


def _flat_likelihood(c: Context) -> str | None:
    """Two engines report different estimates that are equally good optima.

    Evaluated by one engine (native), both parameter sets give the same log-likelihood to
    within FLAT_LOGLIK, and each matches the log-likelihood its own engine reported, so neither
    misreports its estimates: the likelihood is flat along this parameter, and the data do not
    determine it more precisely than the two engines' difference.
    """
    ra, rb = c.a.result, c.b.result
    via = ""
    if (ra is None) != (rb is None):
        # a printed refit: stand in the live engine of the software that printed it, if that
        # engine reproduces the printed value here
        live, ref = (c.a, c.b) if ra is not None else (c.b, c.a)
        printed = c.value_b if ref is c.b else c.value_a
        for p in c.peers:
            pv = _value(c, p) if p.backend != live.name else None
            if pv is not None and p.backend.lower() in ref.software.lower() \
                    and abs(pv - printed) <= c.limit:
                ra, rb, via = live.result, p, f" (the reference {ref.name[4:]} is {p.backend}'s)"
                break
    if ra is None or rb is None or _norm_method(ra.provenance.method) != \
            _norm_method(rb.provenance.method):
        return None
    la, lb = c.likelihood_at.get(ra.backend), c.likelihood_at.get(rb.backend)
    if la is None or lb is None:
        return None
    for r, at in ((ra, la), (rb, lb)):
        # a transcribed log-likelihood is rounded as printed (Stata: -13986.738), so the
        # consistency check allows 8 significant digits; misreported estimates (a variance given
        # as an sd, a swapped term) move the likelihood by far more
        reported = r.statistics.loglik
        if reported is None or abs(reported - at) > max(FLAT_LOGLIK, 1e-8 * abs(at)):
            return None
    if abs(la - lb) > FLAT_LOGLIK:
        return None
    return (f"flat likelihood: at {ra.backend}'s estimates the log-likelihood is {la:.10g}, at "
            f"{rb.backend}'s {lb:.10g} (evaluated by the native engine; difference "
            f"{abs(la - lb):.1g}){via}; both are the optimum to within optimizer tolerance, so "
            "this parameter is not determined more precisely than their difference")


def _other_estimators(c: Context) -> str | None:
    ma, mb = c.methods()
    if ma and mb and ma != mb:
        return f"different estimators: {c.a.name} fitted {c.a.method}, {c.b.name} {c.b.method}"
    return None


REGISTRY: tuple[KnownDifference, ...] = (
    KnownDifference(
        "D1", "REML vs ML",
        "REML and ML are different estimators: REML variance components are larger by roughly "
        "p/J, fixed-effect SEs slightly larger, and the REML log-likelihood is comparable only "
        "between models with the same fixed part. Stata mixed defaults to ML, lmer to REML.",
        _reml_vs_ml, "D1"),
    KnownDifference(
        "D2", "Laplace vs adaptive quadrature",
        "GLMM likelihoods are integrals approximated differently: Laplace (1 point, lme4's "
        "default) underestimates binary-outcome variances by 1-2 %; 7-point adaptive quadrature "
        "is close to exact. Compare like with like; a gap between them is expected.",
        _laplace_vs_quadrature, "D2"),
    KnownDifference(
        "D2-mv", "lme4-style AGHQ vs Stata's mean-variance AGHQ",
        "With the same number of points, lme4-style adaptive quadrature centres the nodes at the "
        "conditional mode and scales by the curvature there; Stata's default (mvaghermite) "
        "centres at the posterior mean and scales by the posterior sd. Both converge to the "
        "same likelihood as points grow; at 7 points they agree to about 4 digits.",
        _aghq_vs_mvaghq, "D2"),
    KnownDifference(
        "D3", "independent vs unstructured random-slope covariance",
        "Stata's mixed and me* commands make random slopes independent of the intercept unless "
        "cov(unstructured) is given; lme4's (1 + x | g) is unstructured. Two fits that differ "
        "in this are different models.",
        _covariance_structure, "D3"),
    KnownDifference(
        "D4-D5", "variance-parameter SEs on different scales",
        "Stata estimates log-sds and atanh-correlations and reports delta-method SEs for "
        "variances; lme4 reports no SEs for variance parameters; SPSS gives Wald SEs of "
        "variances. SEs of the same parameter computed on different scales differ beyond first "
        "order.",
        _variance_se_scales, "D4"),
    KnownDifference(
        "D6", "EB posterior means vs conditional modes",
        "After Stata's me* commands, predicted random effects are posterior means with posterior "
        "sds; lme4 (and the native engine) give conditional modes with conditional sds. In "
        "linear models they coincide; in GLMMs they differ, most in small clusters.",
        _eb_mean_vs_mode, "D6"),
    KnownDifference(
        "D14", "R's read.dta turns labelled variables into factors",
        "foreign::read.dta converts fully labelled Stata variables to factors, so R fits dummies "
        "where Stata fits one linear term (nurses hospsize): a different model, not a numerical "
        "difference.",
        _factor_coding, "D14"),
    KnownDifference(
        "D18", "an optimizer stopped early",
        "One engine warned about convergence and reached a lower log-likelihood than the other: "
        "the other's estimates are the better optimum. (lme4 1.1-31 warns on several course "
        "models that Stata fits cleanly.)",
        _optimizer_stopped, "D18"),
    KnownDifference(
        "flat", "a flat likelihood",
        "Two engines stop at different points that the native engine, evaluating both, finds "
        "equally likely (to 1e-6 in log-likelihood), and each engine's reported likelihood "
        "matches its estimates: both are optima, and the parameter is only determined to the "
        "precision of their difference.",
        _flat_likelihood, None),
    KnownDifference(
        "estimators", "other estimator differences",
        "The two sides state different estimation methods (e.g. OLS vs ML): they are not "
        "expected to agree.",
        _other_estimators, None),
)

BY_ID = {kd.id: kd for kd in REGISTRY}


def spec_difference(spec: Spec, key: str, sources: tuple[str, ...]) -> tuple[str, str] | None:
    """A spec-level known difference that applies to ``key`` or to one of ``sources``."""
    for kd in spec.known_differences:
        targets = set(kd.applies_to)
        if (not targets or key in targets or targets & set(sources)
                or targets & {s.removeprefix("ref:") for s in sources}
                or any(key.startswith(t.rstrip("*")) for t in targets if t.endswith("*"))):
            return kd.id, kd.explanation
    return None


def explain(ctx: Context) -> tuple[str, str] | None:
    """(id, explanation) for a cell outside tolerance, or None when nothing known explains it."""
    found = spec_difference(ctx.spec, ctx.key, (ctx.a.name, ctx.b.name))
    if found:
        return found
    for kd in REGISTRY:
        text = kd.rule(ctx)
        if text:
            return kd.id, text
    return None
