"""Average-information Newton iterations on the profiled criterion (scalar random-effect terms).

Why not BOBYQA here: on a big crossed model (InstEval) each evaluation is a dense Cholesky of
the second block (1,156 x 1,156), and BOBYQA needs ~120 of them for 3 parameters. Newton steps
with the average-information matrix (:mod:`backends.native.scalar_derivatives`) need 6-8
gradient evaluations, each about three Cholesky factorisations' worth of work, because AI is
close to the Hessian near the optimum (there the iteration converges linearly at a rate of a few
per cent on InstEval).

The steps are taken in ``eta = log phi`` (``phi = theta^2``, the relative variances), with
``g_eta = phi g_phi`` and the Gauss-Newton-like ``diag(phi) AI diag(phi)`` as the Hessian: far
from the optimum this takes fewer steps than Newton in ``phi`` (7 instead of 9 on InstEval from
lme4's start), it can never leave ``phi > 0``, and each step is shortened so no ``phi``
changes by more than a factor of ``e^3``.

Safeguards, so a step can never make the fit worse: AI's eigenvalues are floored (it is positive
semi-definite by construction, but may be near-singular) and every step is halved until it
satisfies Armijo's condition. The iteration gives up -- marked ``boundary`` -- when a parameter
heads to zero (a boundary optimum, which the derivative-free optimiser with its boundary logic
handles), or when no step along the Newton direction lowers the criterion.

Stopping rule: the Newton decrement ``g' H^{-1} g`` (twice the predicted decrease of the
criterion) below ``decrement_tol``, an absolute number because the accuracy target is absolute
(log-likelihood within 1e-6 of the best known value; the default stops ~1e-8 from the optimum),
and every component of the gradient in theta below ``gradient_tol`` (a tenth of the post-fit
check's threshold, so a converged fit never trips that warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .objective import Factorization, LmmSystem
from .optimizer import OptimResult, Polished, fd_steps
from .scalar_derivatives import Derivatives, ScalarTermDerivatives, supports

MIN_THETA = 1e-3      # a theta this small is treated as heading to the boundary
MAX_LOG_STEP = 3.0    # largest change of log phi in one step


@dataclass
class NewtonResult:
    theta: np.ndarray
    value: float
    derivatives: Derivatives | None     # at theta (None if the start was not usable)
    evaluations: int                    # factorisations, gradients' included
    gradient_evaluations: int
    converged: bool
    boundary: bool                      # gave up because a theta headed to zero
    messages: list[str] = field(default_factory=list)


def minimize_ai_newton(model: ScalarTermDerivatives, theta0: np.ndarray, max_iter: int = 100,
                       decrement_tol: float = 1e-8,
                       gradient_tol: float = 1e-4) -> NewtonResult:
    """Minimise the profiled criterion from ``theta0`` (all > 0) by AI-Newton steps."""
    theta = np.maximum(np.asarray(theta0, dtype=float), MIN_THETA)
    try:
        fact = model.factorize(theta)
    except np.linalg.LinAlgError:
        return NewtonResult(theta, math.inf, None, 1, 0, False, False,
                            ["the starting point could not be factorised"])
    gradients = 1
    der: Derivatives | None = model.derivatives(fact)
    value = der.value
    messages: list[str] = []
    converged = boundary = False
    for _ in range(max_iter):
        step, decrement = _newton_step(der, theta ** 2)
        close = decrement < decrement_tol
        if close and np.max(np.abs(der.gradient)) < gradient_tol:
            converged = True
            break
        # Within decrement_tol the only question is whether rounding still allows a full step.
        accepted = _line_search(model, theta, step, value, der, halvings=0 if close else 14)
        if accepted is None:
            converged = close
            messages.append("the criterion is flat to rounding at the optimum" if close else
                            "no step along the AI-Newton direction lowered the criterion")
            break
        theta, fact, value = accepted
        if np.any(theta < MIN_THETA):
            boundary, der = True, None
            messages.append("a variance parameter is heading to zero (boundary optimum)")
            break
        der = model.derivatives(fact)
        gradients += 1
    else:
        messages.append(f"AI-Newton reached its iteration limit ({max_iter})")
    return NewtonResult(theta, value, der, model.factorizations, gradients, converged,
                        boundary, messages)


def _line_search(model: ScalarTermDerivatives, theta: np.ndarray, step: np.ndarray,
                 value: float, der: Derivatives, halvings: int
                 ) -> tuple[np.ndarray, Factorization, float] | None:
    """Halve the step (in log phi) until Armijo's condition holds; None if it never does."""
    slope = float(-(theta ** 2 * der.gradient_phi) @ step)     # > 0: a descent direction
    trial = 1.0
    for _ in range(halvings + 1):
        theta_new = theta * np.exp(0.5 * trial * step)
        try:
            fact = model.factorize(theta_new)
            f_new = model.value(fact)
        except np.linalg.LinAlgError:
            f_new = math.inf
        if f_new <= value - 1e-4 * trial * slope:
            return theta_new, fact, f_new
        trial *= 0.5
    return None


def hessian_by_gradients(model: ScalarTermDerivatives, theta: np.ndarray,
                         gradient: np.ndarray) -> np.ndarray:
    """The observed Hessian in theta by forward differences of the analytic gradient
    (``n`` gradient evaluations; steps as :func:`~backends.native.optimizer.fd_steps`)."""
    h = fd_steps(theta)
    H = np.empty((theta.size, theta.size))
    for i in range(theta.size):
        x = theta.copy()
        x[i] += h[i]
        H[:, i] = (model.derivatives(model.factorize(x)).gradient - gradient) / h[i]
    return 0.5 * (H + H.T)


def newton_fit(system: LmmSystem, n: int, reml: bool, theta0: np.ndarray,
               check: bool) -> tuple[OptimResult, Polished | None] | None:
    """The optimum by AI-Newton, with the post-fit derivatives (analytic gradient, Hessian by
    differences of it) when ``check``.

    None when the analytic derivatives do not apply to ``system`` (vector-valued terms, the
    per-level path), the start has a zero, the optimum looks like a boundary one or the
    iteration failed: the caller then uses the derivative-free optimiser from its own start.
    """
    if not supports(system) or np.any(np.asarray(theta0) <= 0):
        return None
    model = ScalarTermDerivatives(system, n, reml)
    res = minimize_ai_newton(model, theta0)
    if res.derivatives is None or not res.converged:
        return None
    opt = OptimResult(theta=res.theta, value=res.value, evaluations=res.evaluations,
                      converged=True, messages=res.messages,
                      optimizer=f"AI-Newton with analytic gradients "
                                f"({res.gradient_evaluations} gradients)")
    if not check:
        return opt, None
    H = hessian_by_gradients(model, res.theta, res.derivatives.gradient)
    opt.evaluations = model.factorizations
    pol = Polished(x=res.theta, value=res.value, evaluations=res.theta.size,
                   gradient=res.derivatives.gradient,
                   at_bound=np.zeros(res.theta.size, dtype=bool), hessian=H, steps=0)
    return opt, pol


def _newton_step(der: Derivatives, phi: np.ndarray) -> tuple[np.ndarray, float]:
    """The Newton step in ``log phi`` with ``H = diag(phi) AI diag(phi)`` (eigenvalues
    floored), shortened as a whole so no component exceeds ``MAX_LOG_STEP``, and the decrement
    ``g' H^{-1} g`` of the full step."""
    g = phi * der.gradient_phi
    w, V = np.linalg.eigh(phi[:, None] * der.ai * phi[None, :])
    w = np.maximum(w, 1e-10 * max(float(np.max(np.abs(w))), 1e-300))
    step = -(V @ ((V.T @ g) / w))
    decrement = float(-g @ step)
    longest = float(np.max(np.abs(step))) if step.size else 0.0
    if longest > MAX_LOG_STEP:
        step *= MAX_LOG_STEP / longest
    return step, decrement
