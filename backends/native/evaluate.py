"""Evaluate the native LMM likelihood at another engine's estimates.

Where two engines report different variance parameters for the same model, the question that
matters is which point is better, and whether either is misreported. Both are answered without
trusting any optimizer: rebuild theta from an engine's canonical variance parameters
(Sigma = sigma^2 T T', so T = chol(Sigma) / sigma per term) and evaluate the native profiled
deviance there. An engine whose reported log-likelihood disagrees with the native value at its
own estimates is misreporting something; two engines whose estimates give the same likelihood
are both at the optimum of a flat likelihood.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.results import FitResult
from harness.spec import Model

from .design import Design, build_design
from .fit import make_system, objective_function
from .theta import ThetaLayout


def theta_from_result(design: Design, layout: ThetaLayout, result: FitResult) -> np.ndarray | None:
    """theta in native order from a result's sd/cor parameters; None when they are incomplete."""
    params = result.parameter_map()
    sigma_p = params.get("ran_pars/Residual/sd__Observation")
    if sigma_p is None or sigma_p.estimate <= 0:
        return None
    sigma = sigma_p.estimate
    theta = np.zeros(layout.size)
    for factor, block in zip(design.factors, layout.blocks):
        names = factor.columns
        T = np.zeros((factor.k, factor.k))
        start = 0
        for size in factor.term_sizes:
            idx = list(range(start, start + size))
            cov = np.zeros((size, size))
            for i in idx:
                sd = params.get(f"ran_pars/{factor.name}/sd__{names[i]}")
                if sd is None:
                    return None
                cov[i - start, i - start] = sd.estimate ** 2
            for a in idx:
                for b in idx:
                    if a < b:
                        cor = params.get(f"ran_pars/{factor.name}/cor__{names[a]}.{names[b]}")
                        if cor is None:
                            return None
                        c = cor.estimate * np.sqrt(cov[a - start, a - start]
                                                   * cov[b - start, b - start])
                        cov[a - start, b - start] = cov[b - start, a - start] = c
            try:  # a variance at zero is a boundary optimum; the tiny ridge keeps it factorable
                chol = np.linalg.cholesky(cov + 1e-300 * np.eye(size))
            except np.linalg.LinAlgError:
                return None
            T[start:start + size, start:start + size] = chol / sigma
            start += size
        theta[block.offset:block.offset + block.size] = T[block.rows, block.cols]
    return theta


def loglik_at(model: Model, data: pd.DataFrame, factors: list[str], result: FitResult,
              ) -> float | None:
    """The native (profiled) log-likelihood, or REML log-likelihood, at ``result``'s estimates.

    Only for gaussian models with random effects; None when the result lacks the parameters.
    """
    if model.family != "gaussian" or not model.parsed.has_random or result.status != "ok":
        return None
    design = build_design(model.formula, data, factors, dict(model.reference_level) or None)
    layout = ThetaLayout.for_factors(design.factors)
    theta = theta_from_result(design, layout, result)
    if theta is None:
        return None
    value = objective_function(make_system(design, layout), design.n,
                               model.method == "REML")(theta)
    return -0.5 * value if np.isfinite(value) else None
