"""Single-level gaussian models: OLS (classical SEs) or ML, optionally cluster-robust SEs.

The course fits these as the "ignore the clustering" baseline. Conventions:

* OLS: residual sd ``sqrt(RSS / (n - p))`` and ``vcov = s^2 (X'X)^{-1}`` (R's ``lm``, Stata's
  ``regress``); logLik is the gaussian log-likelihood at the ML variance (R's ``logLik.lm``).
* ML: sd ``sqrt(RSS / n)`` and ``vcov = sigma_ML^2 (X'X)^{-1}`` (Stata ``mixed``/``glm, ml``).
* ``cluster``: Stata's CR1 sandwich, ``(X'X)^{-1} (sum_g X_g' e_g e_g' X_g) (X'X)^{-1}`` times
  ``G / (G - 1) * (N - 1) / (N - K)`` (``regress, vce(cluster g)``).
* prior weights (precision weights) and an offset: weighted least squares on the working design
  (:meth:`~backends.native.design.Design.weighted`), as R's ``lm(weights =, offset =)``:
  RSS is ``sum(w e^2)``, logLik gains ``sum(log w) / 2`` (R's ``logLik.lm``), the cluster
  scores are ``w x e``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular

from harness.estimator import Estimator
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, Statistics,
                             residual_parameters)

from .design import AttributeInput, Design, attribute_values, build_design, group_codes


@dataclass
class OlsResult:
    design: Design
    method: str
    fixef: pd.Series
    vcov: pd.DataFrame
    sigma: float
    rss: float
    cluster: str | None = None
    n_clusters: int | None = None

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.fixef.index)

    @property
    def loglik(self) -> float:
        n = self.design.n
        return -0.5 * n * (math.log(2 * math.pi * self.rss / n) + 1) \
            + 0.5 * self.design.weighted().logdet_W

    @property
    def df(self) -> int:
        return self.design.p + 1

    @property
    def fitted(self) -> pd.Series:
        eta = self.design.X @ self.fixef.to_numpy()
        if self.design.offset is not None:
            eta = eta + self.design.offset
        return pd.Series(eta, index=self.design.row_index)

    @property
    def residuals(self) -> pd.Series:
        return pd.Series(self.design.y, index=self.design.row_index) - self.fitted

    def to_fit_result(self, spec_id: str, provenance: Provenance | None = None) -> FitResult:
        se = self.std_errors
        params = [Parameter("fixed", None, k, float(v), float(se[k])) for k, v in self.fixef.items()]
        params.extend(residual_parameters(self.sigma))
        n = self.design.n
        ll = self.loglik
        stats = Statistics(nobs=n, ngroups={self.cluster: self.n_clusters} if self.cluster else {},
                           loglik=ll, deviance=-2 * ll,
                           aic=-2 * ll + 2 * self.df, bic=-2 * ll + math.log(n) * self.df,
                           df=self.df, nobs_dropped=self.design.nobs_dropped)
        result = FitResult(spec_id=spec_id, backend="native", parameters=params,
                           statistics=stats,
                           diagnostics=Diagnostics(warnings=self.design.warnings()),
                           provenance=provenance or Provenance(backend="native"))
        return result.set_estimator(Estimator(self.method, se="CR1" if self.cluster else "model",
                                              cluster=self.cluster))


def ols(formula: str, data: pd.DataFrame, method: str = "OLS", cluster: str | None = None,
        factors: list[str] | tuple[str, ...] = (),
        reference: dict[str, object] | None = None,
        contrasts: dict[str, str] | None = None, weights: AttributeInput = None,
        offset: AttributeInput = None) -> OlsResult:
    """Fit ``y ~ x`` by least squares; ``method`` "OLS" or "ML" sets the variance divisor.

    ``weights`` (precision weights) and ``offset`` are column names or per-row values."""
    if method not in ("OLS", "ML"):
        raise ValueError(f"method must be OLS or ML, not {method!r}")
    # Rows without a cluster id cannot enter a cluster-robust fit (Stata drops them too).
    design = build_design(formula, data, factors, reference,
                          complete_in=(cluster,) if cluster else (), contrasts=contrasts,
                          attributes=attribute_values(data, weights=weights, offset=offset))
    if design.factors:
        raise ValueError("ols() fits single-level models; this formula has random effects")
    design.outcome("gaussian")
    working = design.weighted()
    X, y, n, p = working.X, working.y, design.n, design.p
    Q, R = np.linalg.qr(X)
    beta = solve_triangular(R, Q.T @ y)
    e = y - X @ beta
    rss = float(e @ e)
    Rinv = solve_triangular(R, np.eye(p))
    XtXinv = Rinv @ Rinv.T
    s2 = rss / (n - p) if method == "OLS" else rss / n
    n_clusters = None
    if cluster is None:
        V = s2 * XtXinv
    else:
        codes, levels = group_codes(data.loc[design.row_index], cluster)
        G = len(levels)
        scores = np.zeros((G, p))
        np.add.at(scores, codes, X * e[:, None])
        meat = scores.T @ scores
        V = XtXinv @ meat @ XtXinv * (G / (G - 1)) * ((n - 1) / (n - p))
        n_clusters = G
    names = design.x_names
    return OlsResult(design=design, method=method, fixef=pd.Series(beta, index=names),
                     vcov=pd.DataFrame(V, index=names, columns=names), sigma=math.sqrt(s2),
                     rss=rss, cluster=cluster, n_clusters=n_clusters)
