"""Baseline-category (multinomial) logit, single-level and with one shared random intercept.

The random-effects model is gllamm's ``mlogit`` link with one random intercept per group
(the course's ``cen_mlogit_ri``): for category ``k`` of ``K`` (``k = 0`` the base),

``eta_ik = x_i' beta_k + sd * u_j`` for ``k > 0``, ``eta_i0 = 0``, ``u_j ~ N(0, 1)``,

so the *same* ``b_j = sd * u_j`` enters every non-base logit. That structure collapses a row's
log-likelihood to a binary-logit shape: with ``A_i(B) = log sum_{k>0} exp(x_i' beta_k)``,

``log p(y_i | b) = eta_i,y_i(B) + [y_i > 0] b - log(1 + exp(A_i + b))``,

so the conditional mode of ``u_j`` (the integrand is log-concave) takes a few scalar Newton steps
per group and the group's likelihood is integrated by mode/curvature adaptive Gauss-Hermite
quadrature (the scheme of :mod:`.aghq`, nodes from :func:`.quadrature.gh_normal`):

``log L_j = -log L + logsumexp_q(log w_q + l_j(U_q) - U_q^2/2 + z_q^2/2)``, ``U_q = u* + z_q / L``

with ``L^2`` the negative second derivative of ``l_j(u) - u^2/2`` at the mode; it is exact when
the integrand is Gaussian and, at ``sd = 0``, returns the single-level log-likelihood exactly
(the integrand is constant). Estimation: BOBYQA + Newton polish on ``[B, log sd]``
(:func:`.optim.minimise`), standard errors from the observed information on the log-sd scale
(:func:`backends.native.information.observed_information`), as the GLMM code does.

Rows that agree on (group, response, X) are compressed to one row with a frequency (exact, as
in :mod:`.data`): the census file has a handful of covariate patterns per group.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, log_expit, logsumexp

from ..information import observed_information
from .optim import minimise
from .quadrature import gh_normal

GRADIENT_TOL = 1e-2      # max |d deviance / d parameter| per standard error for convergence
MODE_TOL = 1e-10
MODE_ITERATIONS = 100


@dataclass(frozen=True)
class MlogitData:
    """Compressed rows: ``X`` (n_c, p), category codes ``y`` (0 = base), group codes sorted,
    ``freq`` how many original rows each stands for, ``starts`` each group's first row."""

    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    freq: np.ndarray
    starts: np.ndarray
    n_categories: int
    nobs: int

    @classmethod
    def of(cls, X: np.ndarray, y: np.ndarray, group: np.ndarray | None = None) -> "MlogitData":
        """From a design: ``y`` holds codes ``0..K-1`` with 0 the base category; ``group`` codes
        ``0..m-1`` (None: a single-level model)."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=int)
        g = np.zeros(y.size, dtype=int) if group is None else np.asarray(group, dtype=int)
        K = int(y.max()) + 1 if y.size else 0
        if K < 2 or np.unique(y).size != K or y.min() != 0:
            raise ValueError("a multinomial response needs codes 0..K-1 (K >= 2), each observed")
        rows = np.column_stack([g, y, X])
        uniq, counts = np.unique(rows, axis=0, return_counts=True)   # sorted by group first
        gc = uniq[:, 0].astype(int)
        starts = np.flatnonzero(np.r_[True, gc[1:] != gc[:-1]])
        return cls(X=uniq[:, 2:], y=uniq[:, 1].astype(int), group=gc, freq=counts.astype(float),
                   starts=starts, n_categories=K, nobs=int(y.size))

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def m(self) -> int:
        return self.starts.size

    @property
    def n_beta(self) -> int:
        return (self.n_categories - 1) * self.p

    def fixed_parts(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``eta_i,y_i`` and ``A_i`` (see the module docstring) at ``beta`` ((K-1) * p)."""
        B = np.asarray(beta, dtype=float).reshape(self.n_categories - 1, self.p)
        eta = np.column_stack([np.zeros(self.y.size), self.X @ B.T])    # (n_c, K)
        return eta[np.arange(self.y.size), self.y], logsumexp(eta[:, 1:], axis=1)


def single_loglik(d: MlogitData, beta: np.ndarray) -> float:
    """The single-level multinomial log-likelihood."""
    ey, A = d.fixed_parts(beta)
    return float(d.freq @ (ey - np.logaddexp(0.0, A)))


def fit_single(d: MlogitData, tol: float = 1e-10, max_iter: int = 100
               ) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Newton-Raphson for the single-level model: ``beta``, its covariance (inverse observed =
    expected information), the log-likelihood and whether it converged."""
    K1, p = d.n_categories - 1, d.p
    Y = (d.y[:, None] == np.arange(1, K1 + 1)[None, :]).astype(float)          # (n_c, K-1)
    beta = np.zeros(K1 * p)
    ll = single_loglik(d, beta)
    for _ in range(max_iter):
        B = beta.reshape(K1, p)
        eta = np.column_stack([np.zeros(d.y.size), d.X @ B.T])
        P = np.exp(eta - logsumexp(eta, axis=1, keepdims=True))[:, 1:]
        grad = ((Y - P) * d.freq[:, None]).T @ d.X                           # (K-1, p)
        H = np.empty((K1 * p, K1 * p))
        for k in range(K1):
            for l in range(K1):
                w = d.freq * P[:, k] * ((k == l) - P[:, l])
                H[k * p:(k + 1) * p, l * p:(l + 1) * p] = (d.X * w[:, None]).T @ d.X
        step = np.linalg.solve(H, grad.ravel())
        t = 1.0
        while True:
            new = single_loglik(d, beta + t * step)
            if new >= ll - 1e-12 or t < 1e-8:
                break
            t /= 2
        beta, change, ll = beta + t * step, new - ll, new
        if abs(change) < tol * (1.0 + abs(ll)) and np.max(np.abs(t * step)) < 1e-8:
            return beta, np.linalg.inv(H), ll, True
    return beta, np.linalg.inv(H), ll, False


class MlogitAghq:
    """``(beta, sd) -> log L`` by mode/curvature AGHQ with ``points`` nodes per group."""

    def __init__(self, d: MlogitData, points: int):
        if points < 1:
            raise ValueError("quadrature needs at least one point")
        self.d = d
        self.points = points
        self.z, w = gh_normal(points)
        self.logw = np.log(w)
        self.nonbase = (d.y > 0).astype(float)

    def _group_sum(self, v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(v, self.d.starts, axis=0)

    def modes(self, A: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
        """Conditional modes ``u*_j`` of the standard-normal effects and the curvatures ``L_j``."""
        d = self.d
        u = np.zeros(d.m)
        for _ in range(MODE_ITERATIONS):
            pr = expit(A + sd * u[d.group])
            g = sd * self._group_sum(d.freq * (self.nonbase - pr)) - u
            h = sd * sd * self._group_sum(d.freq * pr * (1.0 - pr)) + 1.0
            u = u + g / h
            if np.max(np.abs(g / h)) < MODE_TOL:
                break
        pr = expit(A + sd * u[d.group])
        h = sd * sd * self._group_sum(d.freq * pr * (1.0 - pr)) + 1.0
        return u, np.sqrt(h)

    def _nodes(self, beta: np.ndarray, sd: float):
        d = self.d
        ey, A = d.fixed_parts(beta)
        u, L = self.modes(A, sd)
        U = u[:, None] + self.z[None, :] / L[:, None]                   # (m, Q)
        b = sd * U[d.group]                                             # (n_c, Q)
        ll = d.freq[:, None] * (ey[:, None] + self.nonbase[:, None] * b
                                + log_expit(-(A[:, None] + b)))
        lj = self._group_sum(ll) - 0.5 * U ** 2 + 0.5 * self.z ** 2 + self.logw
        return U, L, lj

    def loglik(self, beta: np.ndarray, sd: float) -> float:
        _, L, lj = self._nodes(beta, sd)
        val = float(np.sum(logsumexp(lj, axis=1) - np.log(L)))
        return val if math.isfinite(val) else -math.inf

    def posterior(self, beta: np.ndarray, sd: float) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and SDs of ``b_j = sd * u_j`` by the same nodes and weights."""
        U, _, lj = self._nodes(beta, sd)
        r = np.exp(lj - logsumexp(lj, axis=1, keepdims=True))
        mean = np.sum(r * U, axis=1)
        var = np.sum(r * (U - mean[:, None]) ** 2, axis=1)
        return sd * mean, sd * np.sqrt(var)


@dataclass
class MlogitFit:
    """``x = [beta (category-major: (K-1) x p), log sd]``; ``cov`` its inverse information."""

    beta: np.ndarray
    sd: float
    loglik: float
    cov: np.ndarray | None
    points: int
    converged: bool
    failures: list[str]
    max_abs_gradient: float
    evaluations: int
    ranef: np.ndarray            # posterior means of b_j
    ranef_sd: np.ndarray         # posterior SDs
    single_loglik: float         # the single-level fit's log-likelihood (the sd = 0 model)
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)

    @property
    def x(self) -> np.ndarray:
        return np.r_[self.beta, math.log(self.sd)]

    @property
    def std_errors(self) -> np.ndarray | None:
        """SEs of ``[beta, log sd]`` (None: the information is not positive definite)."""
        return None if self.cov is None else np.sqrt(np.diag(self.cov))

    @property
    def sd_se(self) -> float | None:
        """SE of the sd by the delta method from the log-sd scale."""
        se = self.std_errors
        return None if se is None else self.sd * float(se[-1])


def fit_mlogit_ri(d: MlogitData, points: int = 8, sd_start: float = 0.5) -> MlogitFit:
    """ML fit of the shared random-intercept multinomial logit by ``points``-point AGHQ."""
    t0 = time.perf_counter()
    beta0, cov0, ll0, ok0 = fit_single(d)
    messages = [] if ok0 else ["the single-level start did not converge"]
    lik = MlogitAghq(d, points)
    nb = d.n_beta

    def loglik(x: np.ndarray) -> float:
        return lik.loglik(x[:nb], math.exp(x[nb]))

    x0 = np.r_[beta0, math.log(sd_start)]
    scale = np.r_[np.sqrt(np.diag(cov0)) * 2.0, 0.2]
    opt = minimise(lambda x: -2.0 * loglik(x), x0, np.full(x0.size, -np.inf), scale)
    messages += opt.messages
    curv = observed_information(loglik, opt.x, np.ones(x0.size, bool), scale)
    failures: list[str] = []
    if not opt.converged:
        failures.append("the optimiser did not report convergence")
    try:
        np.linalg.cholesky(curv.information)
        cov = np.linalg.inv(curv.information)
    except np.linalg.LinAlgError:
        cov = None
        failures.append("the observed information is not positive definite; no standard errors")
    max_grad = 2.0 * float(np.max(np.abs(curv.score * curv.scales)))
    if max_grad > GRADIENT_TOL:
        failures.append(f"max |gradient| {max_grad:.3g} per standard error exceeds "
                        f"{GRADIENT_TOL} (not a stationary point)")
    sd = math.exp(opt.x[nb])
    b, bsd = lik.posterior(opt.x[:nb], sd)
    return MlogitFit(beta=opt.x[:nb].copy(), sd=sd, loglik=loglik(opt.x), cov=cov,
                     points=points, converged=not failures, failures=failures,
                     max_abs_gradient=max_grad, evaluations=opt.evaluations + curv.evaluations,
                     ranef=b, ranef_sd=bsd, single_loglik=ll0,
                     seconds=time.perf_counter() - t0, messages=messages)
