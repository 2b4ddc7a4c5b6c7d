"""Standard errors of every canonical parameter from the observed information at a point.

Used by the evidence engine for any engine's estimates (:meth:`EvidenceModel.covariance
<backends.native.evidence.EvidenceModel.covariance>`) and by the native GLMM fit for its own
standard errors, so native's reported SEs and the evidence SEs at native's estimates are one
computation. The Hessian is taken on the working scale (log sd, atanh cor; see
:mod:`backends.native.canonical`) over the parameters not at a boundary, by
:func:`backends.native.information.observed_information`, inverted, and carried to every
scale by the delta method. At a maximum this equals the information on any other smooth scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.estimator import Estimator

from .canonical import ParameterError, Point, Working
from .information import observed_information
from .likelihood import EvaluationError, Path, PointLikelihood

#: first guess of the standard error of a log-sd or atanh-correlation (refined by probing)
WORKING_SCALE = 0.1


@dataclass(frozen=True)
class ParameterCovariance:
    """Inverse observed information at one point, on every canonical scale.

    ``keys`` are the sd/cor-scale keys (one per working coordinate: fixed effects, thresholds,
    random-effect sds and correlations, residual sd) and ``matrix`` their covariance (NaN rows
    and columns for boundary parameters). ``std_errors`` covers every key on every scale (var
    and cov too); a None has its reason in ``reasons``. ``conditional_std_errors`` are those of
    the fixed effects and thresholds with the variance parameters held at their values (the
    inverse of that block of the information): for LMMs exactly lme4's ``vcov`` and Stata
    ``mixed``'s (block-diagonal) fixed-effect SEs, smaller than the full-information ones,
    which also carry the variance parameters' uncertainty. ``loglik`` is the log-likelihood whose
    information this is (for LMM REML and OLS: the full REML function). When nothing could be
    computed, ``matrix`` is None and ``reason`` says why.

    ``gradient`` (free working coordinates, sd/cor keys) is ``d loglik / d phi_i`` times the
    coordinate's conditional standard error: the first-order change in log-likelihood for a
    one-SE step, about 0 at a maximum. It is filled whenever the derivatives could be taken,
    also when the information is not positive definite (then ``matrix`` is None);
    ``smallest_eigenvalue`` is the information's (over the free coordinates; None when it could
    not be computed).
    """

    estimator: Estimator
    path: Path
    keys: tuple[str, ...]
    matrix: np.ndarray | None
    std_errors: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    conditional_std_errors: dict[str, float] = field(default_factory=dict)
    loglik: float | None = None
    missing: tuple[str, ...] = ()
    unused: tuple[str, ...] = ()
    reason: str | None = None
    evaluations: int = 0
    seconds: float = 0.0
    all_keys: tuple[str, ...] = ()
    all_matrix: np.ndarray | None = field(default=None, repr=False)
    gradient: dict[str, float] = field(default_factory=dict)
    smallest_eigenvalue: float | None = None

    def submatrix(self, keys: Sequence[str]) -> np.ndarray:
        """The covariance of any canonical keys, on any scales (delta method)."""
        if self.all_matrix is None:
            raise ValueError(f"no covariance: {self.reason}")
        idx = [self.all_keys.index(k) for k in keys]
        return self.all_matrix[np.ix_(idx, idx)]


def parameter_covariance(likelihood: PointLikelihood, point: Point | None,
                         estimator: Estimator, path: Path, *, missing: Sequence[str] = (),
                         unused: Sequence[str] = (), reason: str | None = None
                         ) -> ParameterCovariance:
    """The covariance at ``point`` under ``estimator``; never raises for a bad point.

    ``reason`` (with ``point`` None) says why there is no point to evaluate (keys missing, an
    estimator the model class has no likelihood for); ``missing`` and ``unused`` are recorded
    as given.
    """
    t0 = time.perf_counter()
    layout = likelihood.layout
    all_keys = tuple(layout.all_keys())
    out: dict = dict(estimator=estimator, path=path, keys=tuple(layout.keys()),
                     all_keys=all_keys, missing=tuple(missing), unused=tuple(unused))
    if reason is None and point is not None:
        try:
            out.update(_information_fields(likelihood, point, estimator, path))
            reason = out.pop("reason", None)
        except (EvaluationError, ParameterError) as e:
            reason = str(e)
    if "std_errors" not in out:
        out.update(matrix=None, std_errors={k: None for k in all_keys},
                   reasons={k: str(reason) for k in all_keys})
    return ParameterCovariance(reason=reason, seconds=time.perf_counter() - t0, **out)


def _information_fields(likelihood: PointLikelihood, point: Point, estimator: Estimator,
                        path: Path) -> dict:
    """The fields of :class:`ParameterCovariance` computed at ``point``.

    Raises :class:`EvaluationError` where the log-likelihood cannot be evaluated at the point.
    Where the information is not positive definite, ``reason`` says so, ``matrix`` is None and
    every SE is None with that reason; the gradient is still returned.
    """
    layout = likelihood.layout
    base = layout.encode(point)
    f = likelihood.information_function(point, estimator, path)

    def loglik(phi: np.ndarray) -> float:
        try:
            return f(layout.decode(phi, base))
        except (EvaluationError, ParameterError, np.linalg.LinAlgError):
            return -math.inf

    value = loglik(base.phi)
    if not math.isfinite(value):
        raise EvaluationError("the log-likelihood is not finite at this point")
    curv = observed_information(loglik, base.phi, base.free, _scale_guess(likelihood, point,
                                                                          base))
    H = curv.information
    free_keys = [str(c.key) for c, free in zip(layout.coordinates, base.free) if free]
    out = dict(loglik=value, evaluations=curv.evaluations,
               gradient={k: float(g * curv.scales[i]) for k, g, i in
                         zip(free_keys, curv.score, np.flatnonzero(base.free))})
    if not np.all(np.isfinite(H)):
        # a step of the finite differences left the parameter space (a variance at its
        # boundary): no quadratic approximation to invert
        why = ("the observed information could not be computed here: the log-likelihood is "
               "not finite within a few standard errors of this point (a boundary?)")
        all_keys = layout.all_keys()
        return dict(out, reason=why, matrix=None, std_errors={k: None for k in all_keys},
                    reasons={k: why for k in all_keys})
    smallest = float(np.linalg.eigvalsh(H).min()) if H.size else math.inf
    out["smallest_eigenvalue"] = smallest if H.size else None
    if not smallest > 0:
        why = (f"the observed information is not positive definite here (smallest eigenvalue "
               f"{smallest:.3g}): not a maximum, or a flat direction")
        all_keys = layout.all_keys()
        return dict(out, reason=why, matrix=None, std_errors={k: None for k in all_keys},
                    reasons={k: why for k in all_keys})
    keys, _, J, deps = layout.canonical(base.phi, base)
    Jf = J[:, base.free]
    full = Jf @ np.linalg.inv(H) @ Jf.T
    ses: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for r, key in enumerate(keys):
        at_bound = [i for i in deps[r] if not base.free[i]]
        if at_bound:
            ses[key] = None
            reasons[key] = base.reasons[at_bound[0]]
            full[r, :] = full[:, r] = np.nan
        else:
            ses[key] = math.sqrt(full[r, r])
    working = [keys.index(k) for k in layout.keys()]
    nb = layout.n_location        # fixed effects and thresholds: the leading, free ones
    cond = np.sqrt(np.diag(np.linalg.inv(H[:nb, :nb]))) if nb else np.zeros(0)
    return dict(out, matrix=full[np.ix_(working, working)], all_matrix=full, std_errors=ses,
                reasons=reasons,
                conditional_std_errors={str(c.key): float(v) for c, v in
                                        zip(layout.coordinates[:nb], cond)})


def _scale_guess(likelihood: PointLikelihood, point: Point, base: Working) -> np.ndarray:
    """Approximate SEs on the working scale: the model's own for beta and thresholds where
    it has a cheap one, otherwise a size-relative guess (refined by probing)."""
    nb = likelihood.layout.n_location
    s = np.full(base.phi.size, WORKING_SCALE)
    guess = likelihood.beta_scale(point)
    s[:nb] = guess if guess is not None else 0.01 * np.maximum(np.abs(base.phi[:nb]), 1.0)
    return s
