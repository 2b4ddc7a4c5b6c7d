"""Native generalized linear mixed models (issue 7): binomial, Poisson and ordinal responses.

Module map: ``families`` (conditional log densities with full constants), ``data`` (group-sorted,
exactly compressed rows), ``problem`` (eta and batched per-group algebra), ``build`` (formula and
data -> problem; deviance -> function of the parameter vector), ``pirls`` (conditional modes;
glmer's nAGQ = 0 joint mode), ``stage1`` (glmer's nAGQ = 0 stage), ``glmer_pirls`` (glmer's
approximate PIRLS path), ``laplace``, ``aghq`` (lme4's mode/curvature quadrature, scalar
effects), ``mvaghq`` (Stata's mean-variance adaptive quadrature, any number of effects),
``optim`` (scaled BOBYQA + Newton), ``evidence`` (the likelihood at any point, SEs and random
effects for the evidence engine and the fit), ``fit`` (the driver), ``result`` (canonical
FitResult) and ``backend`` (the harness hook). Several grouping factors (crossed or nested;
binomial and Poisson, Laplace): ``crossed`` (data, ``Z Lambda`` and the blocked factor of
``Lambda'Z'WZ Lambda + I``), ``crossed_laplace`` (modes, glmer's path, the deviance, stage 1),
``crossed_evidence`` (the likelihood for the evidence engine and the SEs) and ``crossed_fit``
(the driver, sharing ``fit.finish``).

The design matrices, theta layout, batched Cholesky kernels and optimiser are the LMM code's
(:mod:`backends.native.design`, ``theta``, ``kernels``, ``optimizer``), reused unchanged.
"""

from __future__ import annotations

from .fit import GlmmFit, fit_glmm

__all__ = ["fit_glmm", "GlmmFit"]
