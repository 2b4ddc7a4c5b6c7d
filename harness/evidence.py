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
from dataclasses import dataclass, field

from harness.estimator import Estimator
from harness.keys import Source
from harness.results import FitResult

#: a side's reported log-likelihood must match the native evaluation at its estimates this
#: closely (absolute + relative): the evaluation's own rounding, far below any real misreport
CONSISTENCY_ABSOLUTE = 1e-7
CONSISTENCY_RELATIVE = 1e-10


@dataclass(frozen=True)
class Point:
    """The native evaluation of one side's complete estimates."""

    source: Source
    model_id: str  # which model the side fitted (formula, family, link)
    estimator: str  # the estimator label whose likelihood was evaluated
    loglik: float | None  # full log-likelihood at the side's estimates (None: could not)
    reported_loglik: float | None  # what the side itself reported
    reported_precision: float = 0.0  # half a printed unit for a printed log-likelihood
    #: LMMs: the fixed effects and sigma that the side's own theta implies (GLS / profiled)
    profiled: dict[str, float] = field(default_factory=dict)
    #: the side's reported values of the profiled quantities, for the consistency check
    reported_profiled: dict[str, float] = field(default_factory=dict)
    #: native standard errors at this point, computed the way this side's software does
    standard_errors: dict[str, float] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # estimates the evaluation needed and the side lacks
    problem: str = ""  # why the evaluation failed, when it did

    def inconsistency(self) -> str:
        """Why this side's numbers do not describe one point of the likelihood ("" if they do)."""
        if self.loglik is None:
            return self.problem or (f"its estimates are incomplete (no {', '.join(self.missing)})"
                                    if self.missing else "its likelihood was not evaluated")
        if self.reported_loglik is not None:
            allowed = (self.reported_precision + CONSISTENCY_ABSOLUTE
                       + CONSISTENCY_RELATIVE * abs(self.loglik))
            if abs(self.reported_loglik - self.loglik) > allowed:
                return (f"it reports log-likelihood {self.reported_loglik:.10g} but its estimates "
                        f"give {self.loglik:.10g}")
        for key, value in self.profiled.items():
            mine = self.reported_profiled.get(key)
            if mine is not None and not _close(mine, value):
                return (f"its {key} = {mine:.10g} is not the value its own variance parameters "
                        f"imply ({value:.10g})")
        return ""


def _close(a: float, b: float) -> bool:
    """Profiled quantities are exact functions of theta: equal to rounding."""
    return abs(a - b) <= 1e-7 * max(1.0, abs(a), abs(b))


@dataclass
class Evidence:
    """Everything the rules may use for one spec (empty when nothing could be computed)."""

    points: dict[Source, Point] = field(default_factory=dict)
    #: native fits keyed by (model id, estimator label incl. SE type)
    bridges: dict[tuple[str, str], FitResult] = field(default_factory=dict)
    #: SE of every key at the best point of (model id, estimates label): the likelihood's curvature
    curvature: dict[tuple[str, str], dict[str, float | None]] = field(default_factory=dict)
    #: the highest log-likelihood known for (model id, estimates label), and at whose estimates
    best: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    nesting: list[str] = field(default_factory=list)  # for the level-k ICCs of bridge fits

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

    def gap(self, point: Point) -> float | None:
        """How far below the best known optimum this point's log-likelihood lies (>= 0)."""
        best = self.best.get((point.model_id, point.estimator))
        if best is None or point.loglik is None or not math.isfinite(point.loglik):
            return None
        return max(best[0] - point.loglik, 0.0)
