"""Native generalized linear mixed models (issue 7): binomial, Poisson and ordinal responses.

Module map: ``families`` (conditional log densities with full constants), ``data`` (group-sorted,
exactly compressed rows), ``problem`` (eta and batched per-group algebra), ``pirls``
(conditional modes; glmer's nAGQ = 0 joint mode), ``laplace``, ``aghq`` (lme4's
mode/curvature quadrature, scalar effects), ``mvaghq`` (Stata's mean-variance adaptive
quadrature, any number of effects), ``optim`` (scaled BOBYQA + Newton), ``fit`` (the driver),
``result`` (canonical FitResult) and ``backend`` (the harness hook).

The design matrices, theta layout, batched Cholesky kernels and optimiser are the LMM code's
(:mod:`backends.native.design`, ``theta``, ``kernels``, ``optimizer``), reused unchanged.
"""

from __future__ import annotations

from .fit import GlmmFit, fit_glmm

__all__ = ["fit_glmm", "GlmmFit"]
