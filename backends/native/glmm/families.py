"""Conditional distributions of a GLMM response given the linear predictor eta.

Each family object is bound to its (compressed) response rows and answers three questions for a
vector (or ``(n, Q)`` array) of linear predictors:

* ``loglik(eta)``: the log density of each row *with its full normalising constant*
  (``log choose(m, y)`` for binomial counts, ``-log y!`` for Poisson). Why: glmer's ``logLik``
  (and Stata's) includes these constants (lme4's ``aic()`` is ``-2 sum log dbinom/dpois``), so
  the deviance we optimise is ``-2 logLik`` on exactly lme4's and Stata's scale.
* ``derivs(eta)``: ``d1 = d log p / d eta`` and the *observed* information ``h = -d2 log p /
  d eta2``, used by the Newton iterations for the conditional modes (exact Newton converges
  quadratically; for logit and log links it equals Fisher scoring).
* ``fisher(eta)``: the IRLS weight ``(d mu / d eta)^2 / Var(y)``. lme4's PIRLS (and therefore its
  Laplace determinant and its AGHQ scaling) uses these expected weights, not the observed ones;
  they differ for the probit link, so matching glmer digit for digit needs them.
  ``laplace_weights`` says which of the two a family's Laplace determinant uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, gammaln, log_ndtr, ndtr

from ..design import DesignError
from ..names import level_label
from ..rank import threshold_columns

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _log1pexp(x: np.ndarray) -> np.ndarray:
    """``log(1 + exp(x))`` without overflow (2-3x faster than ``np.logaddexp(0, x)``)."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


@dataclass
class Binomial:
    """Successes ``y`` out of ``m`` trials (``m = 1`` for 0/1 outcomes), logit or probit link."""

    y: np.ndarray
    m: np.ndarray
    link: str = "logit"
    laplace_weights: str = "fisher"
    const: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.link not in ("logit", "probit"):
            raise ValueError(f"binomial link {self.link!r} is not supported (logit, probit)")
        if np.any((self.y < 0) | (self.y > self.m)):
            raise ValueError("binomial successes must lie in 0..trials")
        self.const = gammaln(self.m + 1) - gammaln(self.y + 1) - gammaln(self.m - self.y + 1)

    def _yy(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if eta.ndim == 2:
            return self.y[:, None], self.m[:, None]
        return self.y, self.m

    def loglik(self, eta: np.ndarray) -> np.ndarray:
        y, m = self._yy(eta)
        c = self.const[:, None] if eta.ndim == 2 else self.const
        if self.link == "logit":
            return y * eta - m * _log1pexp(eta) + c
        return y * log_ndtr(eta) + (m - y) * log_ndtr(-eta) + c

    def derivs(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, m = self._yy(eta)
        if self.link == "logit":
            mu = expit(eta)
            return y - m * mu, m * mu * (1.0 - mu)
        logphi = -0.5 * eta * eta - _LOG_SQRT_2PI
        r1 = np.exp(logphi - log_ndtr(eta))      # phi / Phi(eta)
        r2 = np.exp(logphi - log_ndtr(-eta))     # phi / Phi(-eta)
        return y * r1 - (m - y) * r2, y * r1 * (r1 + eta) + (m - y) * r2 * (r2 - eta)

    def fisher(self, eta: np.ndarray) -> np.ndarray:
        y, m = self._yy(eta)
        if self.link == "logit":
            mu = expit(eta)
            return m * mu * (1.0 - mu)
        logphi = -0.5 * eta * eta - _LOG_SQRT_2PI
        p = ndtr(eta)
        return m * np.exp(2 * logphi) / np.maximum(p * (1.0 - p), 1e-300)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        return expit(eta) if self.link == "logit" else ndtr(eta)


@dataclass
class Poisson:
    """Counts with a log link (an offset enters eta, so rates per exposure are covered)."""

    y: np.ndarray
    link: str = "log"
    laplace_weights: str = "fisher"
    const: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.link != "log":
            raise ValueError("poisson supports the log link only")
        if np.any(self.y < 0):
            raise ValueError("poisson counts must be non-negative")
        self.const = -gammaln(self.y + 1)

    def loglik(self, eta: np.ndarray) -> np.ndarray:
        if eta.ndim == 2:
            return self.y[:, None] * eta - np.exp(eta) + self.const[:, None]
        return self.y * eta - np.exp(eta) + self.const

    def derivs(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = np.exp(eta)
        y = self.y[:, None] if eta.ndim == 2 else self.y
        return y - mu, mu

    def fisher(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(eta)

    def mean(self, eta: np.ndarray) -> np.ndarray:
        return np.exp(eta)


@dataclass
class Cumulative:
    """Ordinal response in categories ``0..K-1`` with a cumulative logit or probit link.

    Sign convention (ordinal::clmm, and Stata's meologit with cut points /cut1.. = alpha_k):
    ``P(y <= k) = F(alpha_k - eta)``, ``eta = x'beta + z'b`` with no intercept in x, so a
    positive coefficient moves the distribution to *higher* categories. The thresholds are set
    with :meth:`with_thresholds` before use (they are optimised with the other parameters).
    The Laplace determinant uses the observed information, as clmm does.
    """

    y: np.ndarray
    ncat: int
    link: str = "logit"
    laplace_weights: str = "observed"
    alpha: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if self.link not in ("logit", "probit"):
            raise ValueError(f"ordinal link {self.link!r} is not supported (logit, probit)")
        self.y = self.y.astype(np.int64)

    def with_thresholds(self, alpha: np.ndarray) -> "Cumulative":
        self.alpha = np.asarray(alpha, dtype=float)
        return self

    def _bounds(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cuts = np.concatenate([[-np.inf], self.alpha, [np.inf]])
        up, lo = cuts[self.y + 1], cuts[self.y]
        if eta.ndim == 2:
            up, lo = up[:, None], lo[:, None]
        return up - eta, lo - eta

    def _cdf_pdf(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """F(x), 1 - F(x), f(x), f'(x) with the infinities handled (f = f' = 0 there)."""
        with np.errstate(invalid="ignore", over="ignore"):
            if self.link == "logit":
                F, S = expit(x), expit(-x)
                f = F * S
                fp = f * (S - F)
            else:
                F, S = ndtr(x), ndtr(-x)
                f = np.exp(-0.5 * x * x - _LOG_SQRT_2PI)
                fp = -x * f
        inf = ~np.isfinite(x)
        if inf.any():
            f = np.where(inf, 0.0, f)
            fp = np.where(inf, 0.0, fp)
        return F, S, f, fp

    def _prob(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
        Fa, Sa, fa, fpa = self._cdf_pdf(a)
        Fb, Sb, fb, fpb = self._cdf_pdf(b)
        # F(a) - F(b) loses digits when both are near 1: use S(b) - S(a) there.
        P = np.where(b > 0, Sb - Sa, Fa - Fb)
        return P, fa, fb, fpa, fpb

    def loglik(self, eta: np.ndarray) -> np.ndarray:
        a, b = self._bounds(eta)
        P = self._prob(a, b)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(P > 0, np.log(np.where(P > 0, P, 1.0)), -np.inf)

    def derivs(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self._bounds(eta)
        P, fa, fb, fpa, fpb = self._prob(a, b)
        P = np.maximum(P, 1e-300)
        d1 = -(fa - fb) / P
        d2 = (fpa - fpb) / P - d1 * d1
        return d1, -d2

    def fisher(self, eta: np.ndarray) -> np.ndarray:
        return self.derivs(eta)[1]


Family = Binomial | Poisson | Cumulative


def prior_weights(family: str, weights: np.ndarray | None, n: int) -> np.ndarray:
    """The multipliers of each row's log-likelihood (R's prior weights for non-gaussian
    families, harness/attributes.py): ones without weights. Binomial weights must be whole
    numbers, because R's binomial log-likelihood rounds ``w y`` (glm's ``binomial()$aic``), so
    other weights define no binomial likelihood to compare."""
    if weights is None:
        return np.ones(n)
    if family == "binomial" and not np.all(weights == np.round(weights)):
        raise DesignError("binomial prior weights must be whole numbers (R's binomial "
                          "log-likelihood rounds weight x successes); use whole weights")
    return np.asarray(weights, dtype=float)


def make_family(family: str, link: str, y: np.ndarray, trials: np.ndarray | None = None,
                ncat: int = 0) -> Family:
    """The family object for response rows ``y`` (ordinal: category codes, ``ncat`` of them).

    ``trials`` None means 0/1 binomial outcomes, which is checked: counts need their trials.
    """
    if family == "binomial":
        if trials is None and not np.all((y == 0) | (y == 1)):
            raise DesignError("a binomial response without trials must be 0/1; write counts as "
                              "cbind(successes, failures) or successes/trials")
        return Binomial(y, np.ones_like(y) if trials is None else trials, link)
    if family == "poisson":
        return Poisson(y, link)
    if family == "ordinal":
        return Cumulative(y, ncat, link)
    raise ValueError(f"family {family!r} is not a native binomial/Poisson/ordinal family")


def ordinal_response(X: np.ndarray, x_names: list[str], y: np.ndarray,
                     labels: list[str] | None = None
                     ) -> tuple[np.ndarray, list[str], np.ndarray, list[str], list[str]]:
    """A cumulative-link model's pieces from a design: ``X`` without its intercept (the
    thresholds take its place, as ``ordinal::clm``) nor the columns aliased with a constant
    (:func:`backends.native.rank.threshold_columns`), the response as category codes ``0..K-1``
    in sorted order, clm's threshold names ``"1|2"``, ``"2|3"``... and the dropped columns'
    names (for the rank-deficiency warning). ``labels`` are the levels of a categorical
    response, whose ``y`` are already the codes (:meth:`~backends.native.design.Design.outcome`);
    a numeric response's levels are its sorted values."""
    X, kept, dropped = threshold_columns(X, x_names)
    levels = np.unique(y)
    if levels.size < 2:
        raise DesignError("an ordinal response needs at least two observed categories")
    if labels is not None:
        labels = [labels[int(v)] for v in levels]
    else:
        labels = [level_label(v) for v in levels]
    return (X, kept, np.searchsorted(levels, y).astype(float),
            [f"{labels[i]}|{labels[i + 1]}" for i in range(levels.size - 1)], dropped)
