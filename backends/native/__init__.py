"""Native Python linear mixed models (lme4's profiled-deviance formulation on numpy/scipy).

Entry point for users::

    from backends.native import lmm
    res = lmm("gcse ~ lrt + girl + factor(schgend) + (1 + lrt | school)", df, reml=False)
    print(res.summary()); res.fixef; res.ranef; res.icc()

Module map (kept small so GLMMs can reuse the pieces): ``design`` (formula -> X, y, grouping
factors), ``names`` (R's column names), ``theta`` (covariance parameters), ``crossprod`` (the
sufficient statistics Z'Z, Z'[X y], [X y]'[X y]), ``kernels`` (batched small Cholesky),
``single`` / ``blocked`` (the two factorisation paths; ``gram`` is blocked's Schur-complement
pattern), ``objective`` (lme4's criterion), ``optimizer`` (BOBYQA + checks),
``scalar_derivatives`` / ``newton`` (analytic gradient, AI matrix and AI-Newton for scalar
terms), ``fit`` (the driver), ``result`` (the result object), ``partitioned`` / ``dask_source``
(data larger than memory, partition by partition), ``ols`` (single-level models), ``backend``
(the harness backend).
"""

from __future__ import annotations

import pandas as pd

from .design import AttributeInput, attribute_values, build_design
from .fit import Path, fit_design
from .ols import OlsResult, ols
from .result import LmmResult

__all__ = ["lmm", "LmmResult", "ols", "OlsResult"]


def lmm(formula: str, data: pd.DataFrame, reml: bool = True,
        factors: list[str] | tuple[str, ...] = (), path: Path = "auto",
        reference: dict[str, object] | None = None, contrasts: dict[str, str] | None = None,
        weights: AttributeInput = None, offset: AttributeInput = None) -> LmmResult:
    """Fit a linear mixed model written in lme4 syntax by REML (default, as lmer) or ML.

    ``factors`` names columns to treat as categorical in the fixed part; ``reference`` maps a
    categorical variable to its reference level (default: the first, as R); ``contrasts`` a
    factor column to its coding (``sum``, ``helmert``, ``sdif``; default treatment).
    ``weights`` (precision weights, lmer's ``weights=``) and ``offset`` are column names or
    per-row values (harness/attributes.py says what they mean). ``path`` chooses the
    factorisation ("auto" picks the per-level path for one grouping factor, the blocked
    Cholesky otherwise); it exists for testing and benchmarking.
    """
    design = build_design(formula, data, factors, reference, contrasts=contrasts,
                          attributes=attribute_values(data, weights=weights, offset=offset))
    if not design.factors:
        raise ValueError("the formula has no random-effects term; use backends.native.ols "
                         "for single-level models")
    return LmmResult(fit_design(design, reml=reml, path=path))
