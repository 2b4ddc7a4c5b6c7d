"""Inference of a native LMM fit: SEs of the variance parameters and Satterthwaite df.

Variance parameters: the inverse observed information of the full ML or REML log-likelihood at
the fit (:func:`backends.native.covariance.parameter_covariance`, the same computation the
evidence engine does for any engine's estimates), on the working scale (log sd, atanh cor) and
carried to sd, var, cor and cov by the delta method. These are what Stata ``mixed`` and SPSS
MIXED report (pitfall D5); lme4 reports none.

Satterthwaite denominator df (lmerTest's ``contest1D``): for a coefficient ``j`` with
``C(v) = sigma^2 (R_X' R_X)^{-1}`` as a function of the variance parameters ``v = (theta,
sigma)``, ``df_j = 2 C_jj^2 / (g' A g)`` with ``g = d C_jj / d v`` and ``A`` the inverse of
the observed information of the (ML or REML) log-likelihood *profiled over beta* in ``v``: the
REML likelihood does not contain beta, and lmerTest's ``devfun_vp`` is this function. The
formula is invariant under reparameterisation of ``v`` at the optimum, so lme4's theta is used as
lmerTest does. Derivatives are Richardson-extrapolated central differences with steps measured
in standard errors (:mod:`backends.native.information`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.estimator import Estimator
from harness.intervals import two_sided_p
from harness.results import FixedTest, Parameter

from .covariance import ParameterCovariance, parameter_covariance
from .design import Design
from .gaussian_loglik import GaussianLikelihood
from .information import STEP, observed_information


def variance_covariance(design: Design, parameters: list[Parameter], reml: bool
                        ) -> ParameterCovariance:
    """The observed-information covariance of every canonical key at a fit's estimates."""
    lik = GaussianLikelihood(design)
    reading = lik.layout.read({p.key: p.estimate for p in parameters})
    reason = (f"parameter(s) missing: {', '.join(reading.missing)}" if reading.missing
              else None)
    return parameter_covariance(lik, reading.point, Estimator("REML" if reml else "ML"),
                                "exact", missing=reading.missing, reason=reason)


@dataclass(frozen=True)
class DfTests:
    """Per fixed effect (design order) of one df method (``FixedTest.df_method``): df, the t
    statistic and its two-sided p-value."""

    method: str
    names: tuple[str, ...]
    df: np.ndarray
    t: np.ndarray
    p: np.ndarray

    def tests(self) -> list[FixedTest]:
        return [FixedTest(n, self.method, float(d), float(t), float(p))
                for n, d, t, p in zip(self.names, self.df, self.t, self.p)]


def satterthwaite(design: Design, theta: np.ndarray, sigma: float, reml: bool,
                  free: np.ndarray) -> DfTests:
    """lmerTest's Satterthwaite df at ``(theta, sigma)`` for every fixed effect.

    ``free`` marks the theta not at a boundary (lower-bounded diagonals at 0 are held fixed:
    the likelihood has no quadratic approximation there). Raises ``ValueError`` when the
    information over the free variance parameters is not positive definite.
    """
    lik = GaussianLikelihood(design)
    n = lik.n - lik.p if reml else lik.n

    def loglik(v: np.ndarray) -> float:
        if not v[-1] > 0:
            return -math.inf
        fact = lik.factorization(v[:-1])
        value = (n * math.log(2.0 * math.pi * v[-1] ** 2) + fact.logdet_L - fact.logdet_W
                 + fact.pwrss / v[-1] ** 2)
        return -0.5 * (value + fact.logdet_RX if reml else value)

    def vcov_beta(v: np.ndarray) -> np.ndarray:
        RXinv = np.linalg.inv(lik.factorization(v[:-1]).RX)
        return v[-1] ** 2 * np.sum(RXinv ** 2, axis=1)     # the diagonal of C(v)

    v0 = np.append(np.asarray(theta, dtype=float), float(sigma))
    mask = np.append(np.asarray(free, dtype=bool), True)
    guess = np.append(0.1 * np.maximum(np.abs(theta), 0.1), 0.05 * sigma)
    curv = observed_information(loglik, v0, mask, guess)
    H = curv.information
    if not (H.size and np.linalg.eigvalsh(H).min() > 0):
        raise ValueError("the information of the variance parameters is not positive definite "
                         "(a boundary fit): no Satterthwaite df")
    A = np.linalg.inv(H)
    G = _jacobian(vcov_beta, v0, np.flatnonzero(mask), curv.scales)  # (p, free)
    C = vcov_beta(v0)
    df = 2.0 * C ** 2 / np.einsum("pi,ij,pj->p", G, A, G)
    beta = lik.factorization(v0[:-1]).beta
    t = beta / np.sqrt(C)
    p = np.array([two_sided_p(ti, di) for ti, di in zip(t, df)])
    return DfTests("satterthwaite", tuple(design.x_names), df, t, p)


def _jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, idx: np.ndarray,
              scale: np.ndarray) -> np.ndarray:
    """``d fun / d x_i`` for ``i`` in ``idx``: central differences at ``h`` and ``h/2``
    standard errors, Richardson-extrapolated (error ``O(h^4)``)."""
    cols = []
    for i in idx:
        def diff(h: float) -> np.ndarray:
            up, dn = x.copy(), x.copy()
            up[i] += h * scale[i]
            dn[i] -= h * scale[i]
            return (fun(up) - fun(dn)) / (2.0 * h * scale[i])
        cols.append((4.0 * diff(STEP / 2) - diff(STEP)) / 3.0)
    return np.column_stack(cols)
