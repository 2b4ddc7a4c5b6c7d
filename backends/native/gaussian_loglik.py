"""The full gaussian log-likelihood, ML and REML, at any (beta, theta, sigma): LMMs and
single-level linear models.

The fitting code optimises the *profiled* criterion (:mod:`backends.native.objective`), in
which beta and sigma are replaced by their optimal values for theta. Judging another engine's
estimates needs the likelihood at *its* beta and sigma too, or an error in a fixed effect is
invisible. From the same :class:`~backends.native.objective.Factorization` at theta
(``R = [[R_X, c], [0, r]]``, ``R_X beta_hat = c``), with
``q = r^2 + |R_X (beta - beta_hat)|^2`` (the penalised residual sum of squares at beta):

* ML:   ``l(beta, theta, sigma) = -1/2 [n log(2 pi sigma^2) + log|L|^2 + q / sigma^2]``;
* REML: ``l_R(beta, theta, sigma) = -1/2 [(n - p) log(2 pi sigma^2) + log|L|^2 + log|R_X|^2
  + q / sigma^2]``, the "full REML" function: at ``(beta_hat, sigma_hat)`` it is lme4's REML
  log-likelihood, and its maximum over all of (beta, theta, sigma) is the REML estimate.

Prior weights and an offset are those of the working design
(:meth:`~backends.native.design.Design.weighted`): both functions gain ``+ log|W| / 2``.

Both reduce to lme4's profiled values at ``(beta_hat(theta), sigma_hat(theta))``. A single-level
model is the case with no random effects (``log|L|^2 = 0``, ``R`` the Cholesky factor of
``[X y]'[X y]``), so there is one formula for every gaussian model.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from harness.estimator import Criterion, Estimator
from harness.keys import ParamKey

from .canonical import ParameterLayout, Point, psd_cholesky
from .design import Design
from .fit import make_system
from .likelihood import EvaluationError, Path, RandomEffects, Values
from .objective import Factorization, profiled_deviance, sigma_hat, upper_cholesky
from .ranef import by_level
from .theta import ThetaLayout

CACHE_SIZE = 64     # factorisations kept: a Hessian revisits each theta for every beta/sigma


class GaussianLikelihood:
    """ML and full-REML log-likelihoods of one gaussian design, at any parameter point.

    Factorisations are cached by theta, so points that differ only in beta or sigma (most of a
    finite-difference Hessian) cost a few vector operations.
    """

    def __init__(self, design: Design):
        design.outcome("gaussian")  # a categorical response is an error, not its level codes
        self.design = design.weighted()  # prior weights and offset: the working design
        self.layout = ParameterLayout.build(design.x_names, (), design.factors, residual=True)
        self.theta_layout = ThetaLayout.for_factors(design.factors)
        self._system = make_system(design, self.theta_layout) if design.factors else None
        self._cache: OrderedDict[bytes, Factorization] = OrderedDict()

    @property
    def n(self) -> int:
        return self.design.n

    @property
    def p(self) -> int:
        return self.design.p

    def theta(self, point: Point) -> np.ndarray:
        """lme4's theta: per factor ``T = chol(Sigma) / sigma`` (``Sigma = sigma^2 T T'``)."""
        theta = np.zeros(self.theta_layout.size)
        for ft, block, S in zip(self.layout.factors, self.theta_layout.blocks,
                                point.covariances):
            T = psd_cholesky(S, f"{ft.name} random-effects covariance") / point.sigma
            theta[block.offset:block.offset + block.size] = T[block.rows, block.cols]
        return theta

    def factorization(self, theta: np.ndarray) -> Factorization:
        key = theta.tobytes()
        fact = self._cache.get(key)
        if fact is None:
            if self._system is None:
                XY = np.column_stack([self.design.X, self.design.y])
                fact = Factorization(theta=theta, logdet_L=0.0, R=upper_cholesky(XY.T @ XY),
                                     logdet_W=self.design.logdet_W)
            else:
                fact = self._system.factorize(theta)
            self._cache[key] = fact
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return fact

    def loglik(self, point: Point, criterion: Criterion) -> float:
        """The log-likelihood of ``criterion`` at ``point``.

        ``ML`` and ``REML`` are the full functions of the module docstring. ``OLS`` (single-level
        only) is the ML log-likelihood with sigma at its optimum for the point's beta, as R's
        ``logLik.lm``: an OLS engine's sigma is ``sqrt(RSS / (n - p))``, not a likelihood
        estimate, and its reported logLik is this value.
        """
        fact = self._fact(point)
        q = self._pwrss(fact, point.beta)
        reml = criterion == "REML"
        n = self.n - self.p if reml else self.n
        s2 = q / n if criterion == "OLS" else float(point.sigma) ** 2
        value = n * math.log(2.0 * math.pi * s2) + fact.logdet_L - fact.logdet_W + q / s2
        if reml:
            value += fact.logdet_RX
        return -0.5 * value

    def profiled(self, point: Point, criterion: Criterion) -> tuple[dict[str, float], float]:
        """What a correct engine reports for the point's theta: beta_hat(theta) and
        sigma_hat(theta) keyed canonically, and the profiled log-likelihood (lme4's objective,
        the maximum over beta and sigma). sigma's divisor is ``n`` for ML and ``n - p`` for
        REML and OLS; OLS's log-likelihood is the ML one (``logLik.lm``)."""
        fact = self._fact(point)
        out = {str(ParamKey.fixed(name)): float(b) for name, b in
               zip(self.design.x_names, fact.beta)}
        out[str(ParamKey.residual("sd"))] = sigma_hat(fact, self.n, criterion != "ML")
        return out, -0.5 * profiled_deviance(fact, self.n, criterion == "REML")

    # ---- the evidence protocol (backends/native/likelihood.py) ------------------------------
    def unsupported(self, estimator: Estimator) -> str | None:
        c = estimator.criterion
        if estimator.integration != "none":
            return f"a gaussian model has no {estimator.label()} integration"
        if c == "GLS":
            return ("GLS (feasible GLS with Swamy-Arora variance components) is not a "
                    "likelihood estimator: there is no log-likelihood to evaluate")
        if c == "OLS" and self.design.factors:
            return "OLS ignores the random effects; it has no log-likelihood for this model"
        return None

    def needs_sigma(self, estimator: Estimator) -> bool:
        return estimator.criterion != "OLS"

    def values(self, point: Point, estimator: Estimator) -> Values:
        crit = estimator.criterion
        value = self.loglik(point, crit)
        if not math.isfinite(value):
            raise EvaluationError(f"the {crit} log-likelihood is not finite at this point")
        profiled, profiled_ll = self.profiled(point, crit)
        return Values(value, profiled=profiled, profiled_loglik=profiled_ll)

    def information_function(self, point: Point, estimator: Estimator, path: Path
                             ) -> Callable[[Point], float]:
        """ML for ML; the full REML function for REML and for OLS (for a single-level model
        OLS *is* REML: its maximum is ``sigma^2 = RSS / (n - p)`` and its information gives
        the classical ``s^2 (X'X)^{-1}``)."""
        crit: Criterion = "ML" if estimator.criterion == "ML" else "REML"
        return lambda pt: self.loglik(pt, crit)

    def conditional_modes(self, point: Point, estimator: Estimator, path: Path
                          ) -> RandomEffects:
        """BLUPs ``Lambda (L L')^{-1} Lambda' Z' (y - X beta)`` at the point's beta and theta,
        with conditional SDs from ``sigma^2 Lambda (L L')^{-1} Lambda'`` (lme4's
        ``ranef(condVar = TRUE)``; ML and REML alike: the conditional distribution of the
        random effects given the parameters does not depend on the criterion)."""
        if self._system is None:
            return {}
        fact = self._system.factorize(self.theta(point), keep=True)
        s2 = float(point.sigma) ** 2
        return by_level(self.design.factors, self._system.conditional_modes(fact, point.beta),
                        [s2 * v for v in self._system.conditional_variances(fact)])

    def beta_scale(self, point: Point) -> np.ndarray:
        """SEs of beta given theta and sigma (lme4's ``vcov``)."""
        fact = self._fact(point)
        RXinv = np.linalg.inv(fact.RX)
        return float(point.sigma) * np.sqrt(np.sum(RXinv ** 2, axis=1))

    def _fact(self, point: Point) -> Factorization:
        return self.factorization(self.theta(point) if self.design.factors else np.zeros(0))

    @staticmethod
    def _pwrss(fact: Factorization, beta: np.ndarray) -> float:
        d = fact.RX @ beta - fact.R[:-1, -1]
        return fact.pwrss + float(d @ d)
