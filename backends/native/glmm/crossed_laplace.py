"""Conditional modes and the Laplace deviance for several grouping factors (:mod:`.crossed`).

The same three computations as for one factor, on the coupled system:

* :func:`crossed_modes`: the exact conditional modes of ``u`` for (theta, beta), Newton with
  observed information (:mod:`.pirls`'s rule, here with one step-halving for the whole vector,
  since the factors share rows);
* :func:`crossed_joint_modes`: the mode over ``(u, beta)`` with Fisher weights, glmer's
  ``nAGQ = 0`` stage (:mod:`.stage1`'s job for one factor);
* :func:`crossed_glmer_modes`: glmer's own PIRLS path (:mod:`.glmer_pirls`: restarted from the
  stage-1 linear predictor, stopped by ``tolPwrss``, the determinant lagging one iteration),
  so ``laplace: glmer`` reproduces glmer's numbers here too.

:class:`CrossedLaplace` is the deviance ``-2 log p(y | u*) + |u*|^2 + log det(L L')`` (lme4's
``ldL2 + sqrL + aic``) with lme4's Fisher weights in the determinant, as
:class:`.laplace.LaplaceDeviance` for one factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..optimizer import minimize_bobyqa
from .crossed import BlockedFactor, MultiProblem
from .glmer_pirls import MAX_HALVINGS, MAXIT, TOL_PWRSS, saturated
from .pirls import PirlsError


@dataclass
class CrossedModes:
    u: np.ndarray            # (q,) spherical modes in u's order
    eta: np.ndarray
    loglik: float            # conditional log-likelihood at the modes
    factor: BlockedFactor    # of Lambda'Z'WZ Lambda + I with the determinant's weights
    iterations: int


def _penalised(prob: MultiProblem, eta: np.ndarray, u: np.ndarray) -> float:
    return -2.0 * prob.loglik(eta) + float(u @ u)


def crossed_modes(prob: MultiProblem, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray,
                  tol: float = 1e-10, maxit: int = 60) -> CrossedModes:
    """Exact conditional modes for given (theta, beta), starting from ``u0``."""
    zt, ef, d = prob.zt(theta), prob.eta_fixed(beta), prob.data
    u = u0.copy()
    eta = prob.eta(ef, zt, u)
    pen = _penalised(prob, eta, u)
    if not math.isfinite(pen):
        u = np.zeros_like(u)
        eta = ef.copy()
        pen = _penalised(prob, eta, u)
        if not math.isfinite(pen):
            raise PirlsError("the conditional log-likelihood is not finite at u = 0")
    for it in range(1, maxit + 1):
        d1, h = prob.family.derivs(eta)
        step = prob.factorize(zt, d.freq * h).solve(prob.crossprod(zt, d.freq * d1) - u)
        scale = 1.0
        for _ in range(30):
            u_new = u + scale * step
            eta_new = prob.eta(ef, zt, u_new)
            pen_new = _penalised(prob, eta_new, u_new)
            if pen_new <= pen + 1e-10 * (1.0 + abs(pen)):
                break
            scale *= 0.5
        else:
            raise PirlsError("step halving failed in the conditional-mode iterations")
        u, eta, pen = u_new, eta_new, pen_new
        if float(np.max(np.abs(scale * step))) < tol:
            break
    else:
        raise PirlsError(f"conditional modes did not converge in {maxit} iterations")
    fact = prob.factorize(zt, d.freq * _laplace_weights(prob, eta))
    return CrossedModes(u=u, eta=eta, loglik=prob.loglik(eta), factor=fact, iterations=it)


def _laplace_weights(prob: MultiProblem, eta: np.ndarray) -> np.ndarray:
    if prob.family.laplace_weights == "fisher":
        return prob.family.fisher(eta)
    return prob.family.derivs(eta)[1]


@dataclass
class CrossedJoint:
    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    deviance: float          # glmer's nAGQ = 0 criterion at (u, beta)
    beta_cov: np.ndarray     # inverse of beta's Schur complement


def crossed_joint_modes(prob: MultiProblem, theta: np.ndarray, beta0: np.ndarray,
                        u0: np.ndarray, tol: float = 1e-9, maxit: int = 60) -> CrossedJoint:
    """Mode over ``(u, beta)`` for one theta with Fisher weights (as glmer's nAGQ = 0 PIRLS);
    the criterion is ``-2 log p(y | u, beta) + |u|^2 + log det(L_u L_u')``."""
    zt, d = prob.zt(theta), prob.data
    u, beta = u0.copy(), beta0.copy()

    def total(u_: np.ndarray, b_: np.ndarray) -> tuple[float, np.ndarray]:
        e = prob.eta(prob.eta_fixed(b_), zt, u_)
        return _penalised(prob, e, u_), e

    obj, eta = total(u, beta)
    if not math.isfinite(obj):
        raise PirlsError("the log-likelihood is not finite at the starting values")
    q = prob.q
    for _ in range(maxit):
        d1, _ = prob.family.derivs(eta)
        w = d.freq * prob.family.fisher(eta)
        g = np.concatenate([prob.crossprod(zt, d.freq * d1) - u, d.X.T @ (d.freq * d1)])
        step = prob.factorize(zt, w, with_beta=True).solve(g)
        s = 1.0
        for _ in range(30):
            new_obj, new_eta = total(u + s * step[:q], beta + s * step[q:])
            if new_obj <= obj + 1e-10 * (1 + abs(obj)):
                break
            s *= 0.5
        else:
            raise PirlsError("step halving failed in the joint (u, beta) iterations")
        u, beta, obj, eta = u + s * step[:q], beta + s * step[q:], new_obj, new_eta
        if float(np.max(np.abs(s * step))) < tol:
            break
    fact = prob.factorize(zt, d.freq * prob.family.fisher(eta), with_beta=True)
    return CrossedJoint(u=u, beta=beta, eta=eta, deviance=obj + fact.logdet_u,
                        beta_cov=fact.beta_covariance(d.p))


def crossed_glmer_modes(prob: MultiProblem, theta: np.ndarray, beta: np.ndarray,
                        lp0: np.ndarray, iterations: int | None = None) -> CrossedModes:
    """lme4's uOnly ``pwrssUpdate`` from ``lp0`` (see :mod:`.glmer_pirls`): Fisher scoring on
    the working response, tolPwrss on the deviance-residual scale, the factor (and so the
    determinant) from the weights at the start of the last iteration. ``iterations`` fixes the
    step count instead of testing tolPwrss."""
    d, fam = prob.data, prob.family
    zt, ef = prob.zt(theta), prob.eta_fixed(beta)
    sat = saturated(prob)
    eta, u_prev, old = lp0, None, np.inf

    def pdev_at(u_: np.ndarray) -> tuple[float, np.ndarray]:
        e = prob.eta(ef, zt, u_)
        return float(-2.0 * np.sum(d.freq * (fam.loglik(e) - sat)) + u_ @ u_), e

    for it in range(1, MAXIT + 1):
        d1, _ = fam.derivs(eta)
        w = fam.fisher(eta)
        fact = prob.factorize(zt, d.freq * w)
        u = fact.solve(prob.crossprod(zt, d.freq * (w * (eta - ef) + d1)))
        pdev, eta = pdev_at(u)
        if not (pdev <= old) and u_prev is not None:
            for _ in range(MAX_HALVINGS):
                u = 0.5 * (u_prev + u)
                pdev, eta = pdev_at(u)
                if pdev <= old:
                    break
            if not pdev - old <= TOL_PWRSS:
                raise PirlsError("PIRLS step-halvings failed to reduce the deviance")
        if not np.isfinite(pdev):
            raise PirlsError("non-finite penalised deviance in PIRLS")
        done = it == iterations if iterations else abs((old - pdev) / pdev) < TOL_PWRSS
        if done:
            return CrossedModes(u=u, eta=eta, loglik=prob.loglik(eta), factor=fact,
                                iterations=it)
        old, u_prev = pdev, u
    raise PirlsError(f"PIRLS did not converge in {MAXIT} iterations")


class CrossedLaplace:
    """``(theta, beta) -> -2 log L`` by the Laplace approximation for several factors, with
    warm-started exact modes, or glmer's path when ``lp0`` is given (``iterations`` fixes its
    step count, as :class:`.laplace.LaplaceDeviance`)."""

    def __init__(self, prob: MultiProblem, lp0: np.ndarray | None = None,
                 iterations: int | None = None):
        self.prob = prob
        self.lp0 = lp0
        self.iterations = iterations
        self.u = np.zeros(prob.q)
        self.evaluations = 0

    def glmer_steps(self, theta: np.ndarray, beta: np.ndarray) -> int:
        """How many PIRLS steps glmer's own stopping rule takes here (glmer's path only)."""
        assert self.lp0 is not None
        return crossed_glmer_modes(self.prob, theta, beta, self.lp0).iterations

    def modes(self, theta: np.ndarray, beta: np.ndarray) -> CrossedModes:
        if self.lp0 is not None:
            return crossed_glmer_modes(self.prob, theta, beta, self.lp0, self.iterations)
        try:
            m = crossed_modes(self.prob, theta, beta, self.u)
        except PirlsError:
            m = crossed_modes(self.prob, theta, beta, np.zeros_like(self.u))
        self.u = m.u
        return m

    def __call__(self, theta: np.ndarray, beta: np.ndarray) -> float:
        self.evaluations += 1
        try:
            m = self.modes(theta, beta)
            val = -2.0 * m.loglik + float(m.u @ m.u) + m.factor.logdet_u
        except (PirlsError, np.linalg.LinAlgError, FloatingPointError, ValueError):
            return math.inf
        return val if math.isfinite(val) else math.inf

    def conditional(self, theta: np.ndarray, beta: np.ndarray
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per factor (formula order): modes ``b = T u`` (m, k) and covariances
        ``T (L L')^{-1}_jj T'`` (m, k, k), as glmer's ``ranef(condVar = TRUE)``."""
        m = self.modes(theta, beta)
        P = m.factor.diagonal_blocks(self.prob)
        bs, Vs = [], []
        for i, (f, T) in enumerate(zip(self.prob.factors, self.prob.Ts(theta))):
            bs.append(m.u[self.prob.slices[i]].reshape(f.m, f.k) @ T.T)
            Vs.append(np.matmul(np.matmul(T, P[i]), T.T))
        return bs, Vs


@dataclass
class CrossedStage1:
    x: np.ndarray
    scale: np.ndarray
    evaluations: int
    deviance: float
    eta: np.ndarray          # glmer's lp0
    messages: list[str]


def crossed_stage1(prob: MultiProblem) -> CrossedStage1:
    """glmer's nAGQ = 0 stage: theta by BOBYQA with (u, beta) at their joint mode."""
    layout, p = prob.layout, prob.data.p
    state = {"u": np.zeros(prob.q), "beta": np.zeros(p)}
    state["beta"] = crossed_joint_modes(prob, np.zeros(layout.size), state["beta"],
                                        state["u"]).beta

    def f(theta: np.ndarray) -> float:
        try:
            jm = crossed_joint_modes(prob, theta, state["beta"], state["u"])
        except (PirlsError, np.linalg.LinAlgError, ValueError):
            return math.inf
        state["u"], state["beta"] = jm.u, jm.beta
        return jm.deviance

    res = minimize_bobyqa(f, layout.initial(), layout.lower_bounds())
    jm = crossed_joint_modes(prob, res.theta, state["beta"], np.zeros(prob.q))
    se_beta = np.sqrt(np.clip(np.diag(jm.beta_cov), 1e-12, None))
    return CrossedStage1(x=np.concatenate([res.theta, jm.beta]),
                         scale=np.concatenate([np.maximum(0.1 * np.abs(res.theta), 0.01),
                                               se_beta]),
                         evaluations=res.evaluations, deviance=jm.deviance, eta=jm.eta,
                         messages=list(res.messages))
