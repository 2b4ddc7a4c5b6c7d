"""glmer's first stage (``nAGQ = 0``): theta alone, with (u, beta) at their joint mode.

Binomial and Poisson only. It is cheap (one theta-only BOBYQA), supplies starting values and
approximate standard errors for the full fit, and its final linear predictor is glmer's ``lp0``,
from which every PIRLS of glmer's path restarts (:mod:`.glmer_pirls`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..optimizer import minimize_bobyqa
from .pirls import PirlsError, joint_modes
from .problem import Problem


@dataclass
class Stage1:
    x: np.ndarray           # [theta, beta]: the start of the full fit
    scale: np.ndarray       # approximate SEs of x (the optimiser's units)
    evaluations: int
    deviance: float         # the nAGQ = 0 criterion at the optimum
    eta: np.ndarray         # the linear predictor there (glmer's lp0)
    messages: list[str]


def stage1(prob: Problem, p: int) -> Stage1:
    """theta by BOBYQA with (u, beta) at their joint mode for each theta."""
    layout = prob.layout
    state = {"u": np.zeros((prob.data.m, prob.k)), "beta": np.zeros(p)}
    glm = joint_modes(prob, np.zeros(layout.size), state["beta"], state["u"])
    state["beta"] = glm.beta

    def f(theta: np.ndarray) -> float:
        try:
            jm = joint_modes(prob, theta, state["beta"], state["u"])
        except (PirlsError, np.linalg.LinAlgError):
            return math.inf
        state["u"], state["beta"] = jm.u, jm.beta
        return jm.deviance

    res = minimize_bobyqa(f, layout.initial(), layout.lower_bounds())
    jm = joint_modes(prob, res.theta, state["beta"], np.zeros_like(state["u"]))
    se_beta = np.sqrt(np.clip(np.diag(jm.beta_cov), 1e-12, None))
    scale_theta = np.maximum(0.1 * np.abs(res.theta), 0.01)
    return Stage1(x=np.concatenate([res.theta, jm.beta]),
                  scale=np.concatenate([scale_theta, se_beta]), evaluations=res.evaluations,
                  deviance=jm.deviance, eta=jm.eta, messages=list(res.messages))
