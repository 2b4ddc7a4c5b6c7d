"""The evidence an explanation may rest on, computed once per spec by one engine for all.

A rule of harness/known_differences.py may call a difference explained only when numbers cover
it. Two kinds of numbers exist, both computed by the native engine for every side of a
comparison (so no side is trusted for its own defence):

* :class:`Point` — the *full* log-likelihood at one side's complete estimates (fixed effects,
  variance parameters and sigma together; for GLMMs the Laplace or quadrature likelihood at
  theta and beta), whether that matches the log-likelihood the side reported, and, for linear
  mixed models, whether its fixed effects and sigma are the profiled values of its own theta
  (an exact identity for any correct engine). With the curvature of the likelihood (the standard
  error of every parameter on its own scale) this bounds how far two equally good optima may
  lie apart: |delta_k| <= c SE_k (sqrt(2 delta_a) + sqrt(2 delta_b)).
* bridge fits — native fits of every (model, estimator) that a side of the spec used
  (REML and ML, Laplace and 7-point quadrature, ...). A gap between two estimators is explained
  only when each side agrees with the native fit of its own estimator, i.e. when native
  reproduces the gap. Bridges are separate result objects: a side is never its own evidence.

Nothing here decides a verdict; :mod:`harness.known_differences` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from harness.estimator import Estimator
from harness.keys import Source
from harness.results import FitResult
from harness.spec import Spec

#: a side's reported log-likelihood must match the native evaluation at its estimates within
#: this absolute amount plus the side's relative allowance (:func:`consistency_allowance`)
CONSISTENCY_ABSOLUTE = 1e-9

Path = Literal["exact", "glmer"]


@dataclass(frozen=True)
class Point:
    """The native evaluation of one side's complete estimates."""

    source: Source
    model_id: str  # which model the side fitted (formula, family, link)
    estimator: str  # the estimates label whose likelihood was evaluated
    #: full log-likelihood at the side's estimates, per evaluation path (``exact``; ``glmer``
    #: for binomial/Poisson GLMMs: glmer's PIRLS path, which glmer and native's default report)
    logliks: dict[str, float] = field(default_factory=dict)
    path: Path = "exact"  # the path the side itself optimised and reports
    reported_loglik: float | None = None  # what the side itself reported
    allowance: float = 0.0  # how far the reported value may be from the evaluation
    #: LMMs: the fixed effects and sigma that the side's own theta implies (GLS / profiled)
    profiled: dict[str, float] = field(default_factory=dict)
    #: the side's reported values of the profiled quantities, for the consistency check
    reported_profiled: dict[str, float] = field(default_factory=dict)
    problem: str = ""  # why the evaluation failed (missing estimates, no native likelihood)

    @property
    def loglik(self) -> float | None:
        """The log-likelihood on the side's own path."""
        return self.logliks.get(self.path)

    def inconsistency(self) -> str:
        """Why this side's numbers do not describe one point of the likelihood ("" if they do)."""
        mine = self.loglik
        if self.problem or mine is None:
            return self.problem or "its likelihood was not evaluated"
        if self.reported_loglik is not None and \
                abs(self.reported_loglik - mine) > self.allowance:
            return (f"it reports log-likelihood {self.reported_loglik:.10g} but its estimates "
                    f"give {mine:.10g}")
        for key, value in self.profiled.items():
            reported = self.reported_profiled.get(key)
            if reported is not None and \
                    abs(reported - value) > PROFILED_RELATIVE * max(1.0, abs(value)):
                return (f"its {key} = {reported:.10g} is not the value its own variance "
                        f"parameters imply ({value:.10g})")
        return ""


#: profiled quantities (beta_hat(theta), sigma_hat(theta)) are exact functions of theta: a
#: correct engine reports them to rounding (lme4: 4e-13 measured)
PROFILED_RELATIVE = 1e-8


Provider = Callable[[str, str], dict[str, float | None]]


@dataclass
class Evidence:
    """Everything the rules may use for one spec (empty when nothing could be computed)."""

    points: dict[Source, Point] = field(default_factory=dict)
    #: native fits keyed by (model id, estimator label incl. SE type)
    bridges: dict[tuple[str, str], FitResult] = field(default_factory=dict)
    #: the highest log-likelihood known for (model id, estimates label, path), and whose it is
    best: dict[tuple[str, str, str], tuple[float, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    nesting: list[str] = field(default_factory=list)  # for the level-k ICCs of bridge fits
    #: (model id, estimates label) -> SE of every key at the best point (the curvature);
    #: computed on first use, as it costs tens of likelihood evaluations
    curvature_provider: Provider | None = None
    #: (source, "") -> native SEs at that side's estimates, computed as its software does
    point_se_provider: Provider | None = None
    #: (source, "") -> native's random effects at that side's estimates, keyed
    #: "group/term/level", as that side's software reports them (modes or posterior means)
    ranef_provider: Provider | None = None
    #: (source, "") -> native's inference at that side's estimates, keyed "<key>:<quantity>"
    #: (intervals from native's SEs there, z tests, LMM Satterthwaite df and p-values)
    inference_provider: Provider | None = None
    _cache: dict[tuple[str, str, str], dict[str, float | None]] = field(default_factory=dict)

    def bridge(self, model_id: str, estimator: Estimator, quantity: str) -> FitResult | None:
        """The native fit of ``model_id`` with ``estimator`` (for a standard error, with its
        standard-error type too), if one succeeded. The fit's own record decides, not the
        label it was asked for: native may fit a variant (vector effects: MVAGHQ only)."""
        for (mid, _), r in self.bridges.items():
            if mid != model_id or r.status != "ok" or r.estimator is None:
                continue
            if (r.estimator.same_estimates(estimator) if quantity == "estimate"
                    else r.estimator.same_standard_errors(estimator)):
                return r
        return None

    def common_path(self, a: Point, b: Point) -> Path:
        """Compare two points on glmer's path only when both sides optimised it."""
        return "glmer" if a.path == b.path == "glmer" else "exact"

    def gap(self, point: Point, path: Path) -> float | None:
        """How far below the best known optimum this point's log-likelihood lies (>= 0)."""
        best = self.best.get((point.model_id, point.estimator, path))
        value = point.logliks.get(path)
        if best is None or value is None or not math.isfinite(value):
            return None
        return max(best[0] - value, 0.0)

    def curvature(self, model_id: str, estimator: str) -> dict[str, float | None]:
        return self._provided("curvature", model_id, estimator, self.curvature_provider)

    def standard_errors_at(self, source: Source) -> dict[str, float | None]:
        return self._provided("point", str(source), "", self.point_se_provider)

    def random_effects_at(self, source: Source) -> dict[str, float | None]:
        return self._provided("ranef", str(source), "", self.ranef_provider)

    def inference_at(self, source: Source) -> dict[str, float | None]:
        return self._provided("inference", str(source), "", self.inference_provider)

    def _provided(self, kind: str, a: str, b: str, provider: Provider | None
                  ) -> dict[str, float | None]:
        if provider is None:
            return {}
        if (kind, a, b) not in self._cache:
            try:
                self._cache[(kind, a, b)] = provider(a, b)
            except Exception as e:  # noqa: BLE001 - missing evidence only means no explanation
                self.problems.append(f"{kind} evidence for {a} {b} failed: {e}")
                self._cache[(kind, a, b)] = {}
        return self._cache[(kind, a, b)]


# ---- measuring it ----------------------------------------------------------------------------

#: glmmTMB's logLik against native's exact evaluation at glmmTMB's estimates: the same full
#: likelihood, constants included (Laplace is exact for LMMs; glmmTMB's GLMM value is the exact
#: Laplace value at its conditional modes, which TMB's inner Newton solves to ~1e-12). Measured
#: over the 34 gcse and popular2 specs glmmTMB fits (benchmarks/glmmtmb_accuracy.py): LMMs
#: <= 1.8e-14, GLMMs <= 1.44e-12 (popular2 b1b; 6.8e-13 p1b, 3.4e-13 b1c). 1e-11, as lme4's:
#: a result whose estimates were changed without its logLik is still inconsistent (a GLMM
#: fixed effect moved by ten tolerances, 1e-3 relative, moves the logLik by ~1e-6, not 1e-8)
GLMMTMB_LOGLIK_RELATIVE = 1e-11

#: how closely a side's reported log-likelihood must match native's evaluation of its estimates,
#: relative to |loglik|, by who computed it (measured: docs/evidence.md): native evaluating its
#: own fits <= 5e-15; lmer, lm, glm <= 1.8e-13; glmer's Laplace path <= 1.8e-8 (popular2
#: b1b; 5.9e-9 p1c, 3.9e-9 independent slopes: its value depends on glmer's PIRLS history;
#: every course GLMM measured with native's glmer-path evaluation at lme4's estimates), its
#: AGHQ path <= 9.6e-11; clmm's Laplace is 3.3e-8 below the exact Laplace approximation at its
#: own estimates (AGHQ 1.6e-15)
RELATIVE_ALLOWANCE = {"native": 1e-12, "lme4": 1e-11, "glmer-laplace": 3e-8,
                      "glmer-aghq": 2e-10, "clmm-laplace": 1e-7, "stata": 1e-9,
                      "glmmtmb": GLMMTMB_LOGLIK_RELATIVE}

#: engines that optimise the fixed effects jointly with the variance parameters and take every
#: standard error from the joint inverse Hessian (glmmTMB: TMB's sdreport). Their fixed effects
#: equal beta_hat(theta) only at the exact optimum, so the profiled identity is not a check of
#: their numbers (an early stop would fail it), and their LMM fixed-effect SEs are the joint
#: ones, not lmer's conditional ones.
JOINT_ENGINES = frozenset({"glmmtmb"})


def joint_standard_errors(software: str) -> bool:
    """Whether this engine's LMM fixed-effect SEs are the joint ones (JOINT_ENGINES)."""
    return _engine_of(software) in JOINT_ENGINES


def _engine_of(software: str) -> str:
    """Which engine computed a side's numbers: a backend's name, or a reference's software."""
    text = software.lower()
    return next((e for e in ("native", "glmmtmb", "lme4", "stata") if e in text), "stata")


def _own_path(family: str, est: Estimator, engine: str, native_options: dict) -> Path:
    """The path of the Laplace/AGHQ likelihood a side optimised (glmer's only for glmer and
    native's binomial/Poisson fits with the ``laplace: glmer`` option; native's default is the
    exact Laplace/AGHQ optimum, and so is glmmTMB's: TMB solves the inner problem for the
    conditional modes to convergence at every evaluation, without glmer's PIRLS history)."""
    if family not in ("binomial", "poisson") or est.integration not in ("laplace", "aghq"):
        return "exact"
    if engine == "native":
        return "glmer" if native_options.get("laplace") == "glmer" else "exact"
    return "glmer" if engine == "lme4" else "exact"


def _allowance(engine: str, family: str, path: Path, est: Estimator) -> float:
    if engine == "lme4" and path == "glmer":
        return RELATIVE_ALLOWANCE[f"glmer-{est.integration}"]
    if engine == "lme4" and family == "ordinal" and est.integration == "laplace":
        return RELATIVE_ALLOWANCE["clmm-laplace"]
    return RELATIVE_ALLOWANCE[engine]


def build_evidence(spec: Spec, frame: pd.DataFrame, nesting: list[str],
                   results: dict[str, FitResult],
                   bridges: dict[tuple[str, str], FitResult]) -> Evidence:
    """Evaluate every side of ``spec`` with the native likelihood (see the module doc).

    Sides are the ok backend results and the references that print values; bridges add their
    (native) optimum to the best known log-likelihood of their estimator. Nothing here raises:
    what cannot be evaluated is recorded in ``problems`` and simply gives no evidence.
    """
    from backends.native.evidence import EvidenceModel, estimates_of
    from harness.known_differences import model_id
    from harness.references import reference_values

    ev = Evidence(bridges=bridges, nesting=nesting)
    factors = spec.factor_columns()
    native = spec.backends.native
    options = native.options.given() if native else {}
    engines: dict[str, EvidenceModel | None] = {}

    def engine(backend: str | None) -> EvidenceModel | None:
        mid = model_id(spec, backend)
        if mid not in engines:
            model = spec.model_for(backend) if backend else spec.model
            try:
                # the model carries its attributes (weights, offset, trials)
                engines[mid] = EvidenceModel.build(
                    model, frame, factors, contrasts=spec.contrasts(),
                    intercept_last=options.get("intercept_last", True))
            except Exception as e:  # noqa: BLE001 - no native likelihood: no evidence
                ev.problems.append(f"no native likelihood for {mid}: {e}")
                engines[mid] = None
        return engines[mid]

    #: where every evaluated point came from: (backend or None, estimator, estimates)
    located: dict[Source, tuple[str | None, Estimator, dict[str, float]]] = {}
    #: which engine computed each side's numbers (_engine_of its software)
    engine_of: dict[Source, str] = {}

    def add(source: Source, backend: str | None, est: Estimator, estimates: dict[str, float],
            reported: float | None, precision: float, software: str, side: bool) -> None:
        model = engine(backend)
        if model is None:
            return
        family = (spec.model_for(backend) if backend else spec.model).family
        at = model.loglik(estimates, est)
        logliks = {k: v for k, v in (("exact", at.loglik), ("glmer", at.loglik_glmer))
                   if v is not None and math.isfinite(v)}
        who = _engine_of(software)
        path = _own_path(family, est, who, options)
        problem = at.reason or ("" if reported is not None else
                                "it reports no log-likelihood to check its estimates against")
        # the profiled identity is exact for an engine's own numbers; a printed reference's
        # rounded variance parameters move beta_hat by more than its printed digits
        profiled = {} if source.kind == "reference" or who in JOINT_ENGINES else \
            dict(at.profiled)
        point = Point(source, model_id(spec, backend), est.estimates_label(), logliks, path,
                      reported, CONSISTENCY_ABSOLUTE + precision
                      + _allowance(who, family, path, est) * abs(logliks.get(path, 0.0)),
                      profiled, {k: estimates[k] for k in profiled if k in estimates}, problem)
        located[source] = (backend, est, estimates)
        engine_of[source] = who
        if side:
            ev.points[source] = point
        _offer_best(ev, point)

    for name, r in results.items():
        if r.status == "ok" and r.estimator is not None:
            add(Source.backend(name), name, r.estimator, estimates_of(r), r.statistics.loglik,
                0.0, name, side=True)
    for ref in spec.references:
        values = reference_values(ref)
        if not values:
            continue
        est = Estimator.parse(ref.method) if ref.method else spec.model.estimator()
        estimates = {str(v.key): v.number.value for v in values
                     if v.quantity == "estimate" and v.key.kind != "stat"}
        printed = next((v.number for v in values if str(v.key) == "stat/loglik"), None)
        add(Source.reference(ref.id), None, est, estimates, printed.value if printed else None,
            printed.half_unit if printed else 0.0, ref.software, side=True)
    for (mid, _), r in bridges.items():  # native's optimum of each estimator: the best known
        if r.status == "ok" and r.estimator is not None:
            backend = next((b for b in (None, *spec.backends) if model_id(spec, b) == mid), None)
            add(bridge_source(r.estimator), backend, r.estimator, estimates_of(r),
                r.statistics.loglik, 0.0, "native", side=True)

    def curvature(mid: str, label: str) -> dict[str, float | None]:
        best = ev.best.get((mid, label, "exact"))
        if best is None:
            return {}
        backend, est, estimates = located[Source.parse(best[1])]
        model = engine(backend)
        return dict(model.covariance(estimates, est).std_errors) if model else {}

    def at_point(source: str) -> tuple[Source, str | None, Estimator, dict[str, float],
                                       EvidenceModel] | None:
        """A side's estimates and the native likelihood of its model (None: no likelihood)."""
        src = Source.parse(source)
        backend, est, estimates = located[src]
        model = engine(backend)
        return None if model is None else (src, backend, est, estimates, model)

    def point_ses(source: str, _: str) -> dict[str, float | None]:
        found = at_point(source)
        if found is None:
            return {}
        src, backend, est, estimates, model = found
        cov = model.covariance(estimates, est, path=ev.points[src].path)
        out = dict(cov.std_errors)
        if (spec.model_for(backend) if backend else spec.model).parsed.has_random and \
                est.integration == "none" and engine_of[src] not in JOINT_ENGINES:
            out.update(cov.conditional_std_errors)  # lme4's and Stata mixed's fixed-effect SEs
        return out

    def random_effects(source: str, _: str) -> dict[str, float | None]:
        found = at_point(source)
        if found is None:
            return {}
        src, _, est, estimates, model = found
        modes = model.conditional_modes(estimates, est, path=ev.points[src].path)
        return {f"{group}/{term}/{level}": value
                for (group, term, level), (value, _) in modes.items()}

    def inference(source: str, _: str) -> dict[str, float | None]:
        found = at_point(source)
        if found is None:
            return {}
        src, _, est, estimates, model = found
        return dict(model.inference(estimates, est, ev.standard_errors_at(src)))

    ev.curvature_provider = curvature
    ev.point_se_provider = point_ses
    ev.ranef_provider = random_effects
    ev.inference_provider = inference
    return ev


def bridge_source(estimator: Estimator) -> Source:
    """How a bridge fit is named among the evidence points: ``native[REML]``."""
    return Source.backend(f"native[{estimator.label()}]")


def _offer_best(ev: Evidence, p: Point) -> None:
    """A consistent point's log-likelihoods compete for the best known optimum of its
    estimator on every path it was evaluated on."""
    if p.inconsistency():
        return
    for path, value in p.logliks.items():
        key = (p.model_id, p.estimator, path)
        if key not in ev.best or value > ev.best[key][0]:
            ev.best[key] = (value, str(p.source))
