"""From a formula and data to a GLMM :class:`~.problem.Problem`, and from a deviance object to
the function of the full parameter vector that the optimiser and the evidence engine evaluate.

Shared by the fitting driver (:mod:`.fit`) and the evidence likelihood (:mod:`.evidence`), so
both see the same problem and the same parameter vector ``x = [theta, beta, thresholds]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import logit as qlogis
from scipy.special import ndtri

from ..design import AttributeInput, Design, DesignError, attribute_values, build_design
from ..levels import refusal, rule_for
from ..theta import ThetaLayout
from .crossed import MultiProblem, multi_data
from .data import grouped_data
from .families import Cumulative, make_family, ordinal_response, prior_weights
from .problem import Problem


def build_problem(formula: str, data: pd.DataFrame, family: str, link: str,
                  trials: AttributeInput = None, offset: AttributeInput = None,
                  factors: tuple[str, ...] | list[str] = (), compress: bool = True,
                  reference: dict[str, object] | None = None, weights: AttributeInput = None,
                  contrasts: dict[str, str] | None = None
                  ) -> tuple[Design, Problem | MultiProblem, list[str], list[str]]:
    """Design -> compressed grouped data -> family -> :class:`Problem` (one grouping factor)
    or :class:`~.crossed.MultiProblem` (several, crossed or nested; binomial and Poisson).

    Returns the problem plus fixed-effect and threshold names (clmm's ``"1|2"`` style).
    ``reference`` maps a categorical variable to its reference level (as ``build_design``);
    ``trials``, ``offset`` and prior ``weights`` are column names or per-row values (prior
    weights multiply each row's log-likelihood: the row frequencies of the compressed data).
    """
    design = build_design(formula, data, factors, reference, contrasts=contrasts,
                          attributes=attribute_values(data, trials=trials, offset=offset,
                                                      weights=weights))
    if not design.factors:
        raise ValueError("the formula has no random-effects term; this is the GLMM estimator")
    refused = refusal(design, rule_for(family))
    if refused:
        raise DesignError(refused)
    X, x_names, thr_names = design.X, list(design.x_names), []
    y = design.outcome(family)
    if family == "ordinal":
        X, x_names, y, thr_names, aliased = ordinal_response(X, x_names, y,
                                                             design.response_levels)
        design.aliased += aliased
    weights = (prior_weights(family, design.weights, design.n)
               if design.weights is not None else None)
    if len(design.factors) > 1:
        if family == "ordinal":
            raise DesignError("native ordinal GLMMs support one grouping factor; this model "
                              f"has {len(design.factors)}")
        md = multi_data(design, y, trials=design.trials, offset=design.offset,
                        weights=weights, compress=compress)
        fam = make_family(family, link, md.y, md.trials if design.trials is not None else None,
                          1)
        return (design, MultiProblem(md, fam, ThetaLayout.for_factors(design.factors)),
                x_names, thr_names)
    gd = grouped_data(design, y, X=X, trials=design.trials, offset=design.offset,
                      weights=weights, compress=compress)
    fam = make_family(family, link, gd.y, gd.trials if design.trials is not None else None,
                      len(thr_names) + 1)
    return design, Problem(gd, fam, ThetaLayout.for_factors([gd.factor])), x_names, thr_names


def deviance_function(dev: Callable[[np.ndarray, np.ndarray], float], prob: Problem, nt: int,
                      p: int) -> Callable[[np.ndarray], float]:
    """``x = [theta, beta, thresholds] -> deviance`` for one of the deviance objects (inf
    where the thresholds do not increase)."""
    ordinal = isinstance(prob.family, Cumulative)

    def f(x: np.ndarray) -> float:
        x = np.asarray(x, dtype=float)
        if ordinal:
            alpha = x[nt + p:]
            if np.any(np.diff(alpha) <= 0):
                return math.inf        # thresholds must increase
            prob.family.with_thresholds(alpha)
        return dev(x[:nt], x[nt:nt + p])
    return f


def set_thresholds(prob: Problem, x: np.ndarray, nt: int, p: int) -> None:
    """Put the thresholds of ``x`` into an ordinal family (its state), before a direct
    evaluation outside :func:`deviance_function`."""
    if isinstance(prob.family, Cumulative):
        prob.family.with_thresholds(x[nt + p:])


def threshold_start(prob: Problem, link: str) -> np.ndarray:
    """Thresholds reproducing the marginal cumulative proportions (no covariates)."""
    d = prob.data
    counts = np.bincount(d.y.astype(int), weights=d.freq, minlength=prob.family.ncat)
    cum = np.clip(np.cumsum(counts)[:-1] / counts.sum(), 1e-4, 1 - 1e-4)
    return qlogis(cum) if link == "logit" else ndtri(cum)
