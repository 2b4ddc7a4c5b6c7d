"""The user-facing result of a native LMM fit, and its conversion to the canonical FitResult.

Everything is derived from the factorisation at the optimum, as lme4 does it:
``vcov(beta) = sigma^2 (R_X' R_X)^{-1}`` with sigma the ML or REML estimate of the fit, random
effects ``b = Lambda u`` with conditional variances ``sigma^2 Lambda (L L')^{-1} Lambda'``
(``ranef(condVar = TRUE)``), and ``logLik`` equal to minus half the optimised criterion (the
REML criterion for REML fits).
"""

from __future__ import annotations

import math
import time
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular

from harness.estimator import Estimator
from harness.intervals import two_sided_p, wald_intervals
from harness.results import (Diagnostics, FitResult, FixedTest, Parameter, Provenance,
                             RandomEffect, Statistics, residual_parameters, variance_parameters)

from .covariance import ParameterCovariance
from .design import nested_in
from .fit import LmmFit
from .inference import satterthwaite, variance_covariance
from .kenward_roger import kenward_roger
from .objective import profiled_deviance, sigma_hat
from .ranef import by_level
from .ranef import rows as ranef_rows
from .theta import sd_and_correlation


class LmmResult:
    """A fitted linear mixed model (``lmm(...)``); attributes mirror lme4's accessors."""

    def __init__(self, fit: LmmFit):
        self._fit = fit
        self.design = fit.design
        self.reml = fit.reml

    # ---- core estimates ---------------------------------------------------------------------
    @property
    def method(self) -> str:
        return "REML" if self.reml else "ML"

    @property
    def theta(self) -> np.ndarray:
        return self._fit.opt.theta.copy()

    @property
    def theta_names(self) -> list[str]:
        """lme4-style names: ``school.(Intercept)``, ``school.lrt.(Intercept)``, ``school.lrt``."""
        names = []
        for b, f in zip(self._fit.layout.blocks, self.design.factors):
            for r, c in zip(b.rows, b.cols):
                names.append(f"{f.name}.{f.columns[r]}" if r == c
                             else f"{f.name}.{f.columns[r]}.{f.columns[c]}")
        return names

    @property
    def nobs(self) -> int:
        return self.design.n

    @property
    def sigma(self) -> float:
        return sigma_hat(self._fit.fact, self.design.n, self.reml)

    @cached_property
    def fixef(self) -> pd.Series:
        return pd.Series(self._fit.fact.beta, index=self.design.x_names, name="estimate")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        RX = self._fit.fact.RX
        RXinv = solve_triangular(RX, np.eye(RX.shape[0]), lower=False)
        V = self.sigma ** 2 * (RXinv @ RXinv.T)
        return pd.DataFrame(V, index=self.design.x_names, columns=self.design.x_names)

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.design.x_names)

    @property
    def objective(self) -> float:
        """The optimised criterion: ML deviance (-2 logLik) or the REML criterion."""
        return profiled_deviance(self._fit.fact, self.design.n, self.reml)

    @property
    def loglik(self) -> float:
        return -0.5 * self.objective

    @property
    def df(self) -> int:
        """Number of estimated parameters: fixed effects, theta and sigma (lme4's ``df``)."""
        return self.design.p + self._fit.layout.size + 1

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.df

    @property
    def bic(self) -> float:
        return -2 * self.loglik + math.log(self.nobs) * self.df

    def covariances(self) -> dict[str, pd.DataFrame]:
        """Per grouping factor, the random-effects covariance matrix (``VarCorr``)."""
        covs = self._fit.layout.covariances(self.theta, self.sigma)
        return {f.name: pd.DataFrame(c, index=f.columns, columns=f.columns)
                for f, c in zip(self.design.factors, covs)}

    # ---- random effects, fitted values --------------------------------------------------------
    @cached_property
    def _modes(self) -> list[np.ndarray]:
        return self._fit.system.conditional_modes(self._fit.fact, self._fit.fact.beta)

    @cached_property
    def _condvars(self) -> list[np.ndarray]:
        s2 = self.sigma ** 2
        return [s2 * v for v in self._fit.system.conditional_variances(self._fit.fact)]

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes per grouping factor: rows are level labels, columns the terms."""
        return {f.name: pd.DataFrame(b, index=pd.Index(f.levels, name=f.name), columns=f.columns)
                for f, b in zip(self.design.factors, self._modes)}

    @property
    def ranef_se(self) -> dict[str, pd.DataFrame]:
        """Conditional standard deviations, as ``sqrt`` of lme4's ``condVar`` diagonals."""
        out = {}
        for f, v in zip(self.design.factors, self._condvars):
            sd = np.sqrt(np.clip(np.diagonal(v, axis1=1, axis2=2), 0.0, None))
            out[f.name] = pd.DataFrame(sd, index=pd.Index(f.levels, name=f.name),
                                       columns=f.columns)
        return out

    @cached_property
    def _fitted(self) -> np.ndarray:
        if not self.design.has_rows:
            raise ValueError("fitted values and residuals need the rows, and this fit "
                             "summarised them partition by partition; compute them per "
                             "partition from fixef and ranef")
        eta = self.design.X @ self._fit.fact.beta
        if self.design.offset is not None:
            eta = eta + self.design.offset
        for f, b in zip(self.design.factors, self._modes):
            eta = eta + np.einsum("nk,nk->n", f.Z, b[f.codes])
        return eta

    @property
    def fitted(self) -> pd.Series:
        return pd.Series(self._fitted, index=self.design.row_index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        return pd.Series(self.design.y - self._fitted, index=self.design.row_index,
                         name="residual")

    # ---- variance partitioning ---------------------------------------------------------------
    def _intercept_only(self) -> bool:
        return all(f.columns == ["(Intercept)"] for f in self.design.factors)

    def vpc(self) -> dict[str, float]:
        """Variance partition coefficients of a random-intercept model: each level's share.

        Keys are the grouping factors and ``Residual``; the values sum to 1. Models with random
        slopes have no single VPC (it depends on the covariate), so they raise.
        """
        if not self._intercept_only():
            raise ValueError("vpc() is defined for random-intercept models only; with random "
                             "slopes the partition depends on the covariate values")
        var = {f.name: float(c.iloc[0, 0]) for f, c in
               zip(self.design.factors, self.covariances().values())}
        var["Residual"] = self.sigma ** 2
        total = sum(var.values())
        return {k: v / total for k, v in var.items()}

    def icc(self) -> float | dict[str, float]:
        """Intra-class correlation of a random-intercept model.

        One grouping factor: ``var(u) / (var(u) + sigma^2)``. Several: per factor, the
        correlation between two observations in the same level of it, which adds the variances
        of the factors it is nested in (nurses in one ward share the ward and the hospital).
        """
        vpc = self.vpc()
        factors = self.design.factors
        if len(factors) == 1:
            return vpc[factors[0].name]
        summary = self.design.summary
        out = {}
        for i, f in enumerate(factors):
            share = vpc[f.name]
            for j, g in enumerate(factors):
                if j != i and (summary.nested_in(i, j) if summary is not None
                               else nested_in(f.codes, g.codes)):
                    share += vpc[g.name]
            out[f.name] = share
        return out

    # ---- reporting ------------------------------------------------------------------------------
    @property
    def diagnostics(self) -> Diagnostics:
        fit = self._fit
        return Diagnostics(
            converged=fit.checks.converged,
            singular=fit.checks.singular,
            max_abs_gradient=fit.checks.max_abs_gradient,
            warnings=list(fit.checks.warnings),
            optimizer=fit.opt.optimizer,
            evaluations=fit.opt.evaluations,
            messages=list(fit.opt.messages) + [
                f"path: {type(fit.system).__name__}",
                f"Hessian over free theta positive definite: {fit.checks.hessian_pd} "
                f"(smallest eigenvalue {fit.checks.hessian_min_eigenvalue})",
                f"theta: {dict(zip(self.theta_names, np.round(self.theta, 10).tolist()))}"])

    def _point_parameters(self) -> list[Parameter]:
        se = self.std_errors
        rows = [Parameter("fixed", None, name, float(v), float(se[name]))
                for name, v in self.fixef.items()]
        for f, cov in zip(self.design.factors, self.covariances().values()):
            sd, corr = sd_and_correlation(cov.to_numpy())
            rows.extend(_factor_variance_rows(f.name, f.columns, f.term_sizes, sd, corr))
        rows.extend(residual_parameters(self.sigma))
        return rows

    @cached_property
    def variance_covariance(self) -> ParameterCovariance:
        """The observed-information covariance of every canonical key at the fit (ML or the
        full REML function): the SEs of the variance parameters (backends/native/inference.py)."""
        return variance_covariance(self.design, self._point_parameters(), self.reml)

    def parameters(self) -> list[Parameter]:
        """Fixed effects with lme4's SEs (``vcov``: theta held fixed), variance parameters with
        their observed-information SEs on their own scale (None at a boundary)."""
        ses = self.variance_covariance.std_errors
        return [p if p.effect != "ran_pars" else
                Parameter(p.effect, p.group, p.term, p.estimate, ses.get(p.key))
                for p in self._point_parameters()]

    @cached_property
    def _satterthwaite(self) -> tuple[list[FixedTest], str | None]:
        try:
            return satterthwaite(self.design, self.theta, self.sigma, self.reml,
                                 self._free_theta()).tests(), None
        except (ValueError, np.linalg.LinAlgError) as e:
            return [], f"no Satterthwaite df: {e}"

    @cached_property
    def _kenward_roger(self) -> tuple[list[FixedTest], str | None]:
        """pbkrtest's KR tests for a REML fit (KR is a REML method: none for ML, no message)."""
        if not self.reml:
            return [], None
        try:
            return kenward_roger(self.design, self.theta, self.sigma).tests(), None
        except (ValueError, np.linalg.LinAlgError) as e:
            return [], f"no Kenward-Roger df: {e}"

    @property
    def fixed_tests(self) -> list[FixedTest]:
        """Satterthwaite t tests of the fixed effects (lmerTest's ``summary``; none where the
        df cannot be computed, a boundary fit: the result's diagnostics say why), for REML fits
        Kenward-Roger t tests (pbkrtest: KR df, t on the adjusted SE), and z tests (Stata
        ``mixed``'s ``P>|z|``) with lme4's SEs."""
        se = self.std_errors
        z = [FixedTest(n, "z", None, float(b / se[n]), two_sided_p(float(b / se[n])))
             for n, b in self.fixef.items()]
        return self._satterthwaite[0] + self._kenward_roger[0] + z

    def _free_theta(self) -> np.ndarray:
        """theta not at its lower bound (a diagonal at 0 is a boundary estimate)."""
        return ~(self._fit.layout.diagonal_mask() & (self.theta <= 0.0))

    def random_effects(self) -> list[RandomEffect]:
        return ranef_rows(by_level(self.design.factors, self._modes, self._condvars))

    def statistics(self) -> Statistics:
        return Statistics(
            nobs=self.nobs, ngroups={f.name: f.m for f in self.design.factors},
            loglik=self.loglik, reml_criterion=self.objective if self.reml else None,
            deviance=None if self.reml else self.objective, aic=self.aic, bic=self.bic,
            df=self.df, nobs_dropped=self.design.nobs_dropped)

    def to_fit_result(self, spec_id: str, provenance: Provenance | None = None) -> FitResult:
        t0 = time.perf_counter()
        parameters = self.parameters()
        tests = self.fixed_tests
        inference_seconds = time.perf_counter() - t0
        diagnostics = self.diagnostics
        cov = self.variance_covariance
        if cov.reason:
            diagnostics.messages.append(f"no SEs of the variance parameters: {cov.reason}")
        result = FitResult(spec_id=spec_id, backend="native", status="ok",
                           parameters=parameters, statistics=self.statistics(),
                           random_effects=self.random_effects(), diagnostics=diagnostics,
                           provenance=provenance or Provenance(backend="native"),
                           timings={"fit_seconds": self._fit.seconds,
                                    "inference_seconds": inference_seconds},
                           intervals=wald_intervals(parameters), tests=tests)
        for note in (self._satterthwaite[1], self._kenward_roger[1]):
            if note:
                diagnostics.messages.append(note)
        return result.set_estimator(Estimator(self.method))

    def summary(self) -> str:
        lines = [f"Linear mixed model fit by {self.method} (native)",
                 f"Formula: {self.design.formula.lme4()}"]
        crit = "REML criterion" if self.reml else "deviance"
        lines.append(f"{crit} at convergence: {self.objective:.4f}   logLik: {self.loglik:.4f}   "
                     f"AIC: {self.aic:.2f}   BIC: {self.bic:.2f}   df: {self.df}")
        lines.append("\nRandom effects:")
        gw = max([len(f.name) for f in self.design.factors] + [8]) + 2
        nw = max([len(c) for f in self.design.factors for c in f.columns] + [4]) + 2
        lines.append(f" {'Groups':<{gw}}{'Name':<{nw}}{'Variance':>12}{'Std.Dev.':>12}  Corr")
        for f, cov in zip(self.design.factors, self.covariances().values()):
            sd, corr = sd_and_correlation(cov.to_numpy())
            for a, name in enumerate(f.columns):
                cors = " ".join(f"{corr[a, b]:6.3f}" for b in range(a)
                                if _same_term(f.term_sizes, a, b))
                lines.append(f" {f.name if a == 0 else '':<{gw}}{name:<{nw}}{sd[a] ** 2:>12.5g}"
                             f"{sd[a]:>12.5g}  {cors}")
        lines.append(f" {'Residual':<{gw}}{'':<{nw}}{self.sigma ** 2:>12.5g}{self.sigma:>12.5g}")
        groups = ", ".join(f"{f.name}, {f.m}" for f in self.design.factors)
        lines.append(f"Number of obs: {self.nobs}; groups: {groups}")
        if self.design.nobs_dropped:
            lines.append(f"({self.design.nobs_dropped} rows with missing values dropped)")
        lines.append("\nFixed effects:")
        xw = max([len(n) for n in self.design.x_names] + [10]) + 2
        lines.append(f" {'':<{xw}}{'Estimate':>12}{'Std. Error':>12}{'t value':>10}")
        se = self.std_errors
        for name, v in self.fixef.items():
            lines.append(f" {name:<{xw}}{v:>12.5g}{se[name]:>12.5g}{v / se[name]:>10.3f}")
        d = self.diagnostics
        lines.append(f"\nOptimizer: {d.optimizer}, {d.evaluations} evaluations, "
                     f"max |gradient| {d.max_abs_gradient:.2g}, converged: {d.converged}")
        lines.extend(f"Warning: {w}" for w in d.warnings)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _same_term(sizes: list[int], a: int, b: int) -> bool:
    start = 0
    for s in sizes:
        if start <= a < start + s:
            return start <= b < start + s
        start += s
    return False


def _factor_variance_rows(group: str, names: list[str], sizes: list[int], sd: np.ndarray,
                          corr: np.ndarray) -> list[Parameter]:
    """sd/var for every term of a factor; cor/cov only within a correlated term."""
    if len(sizes) == 1:
        return variance_parameters(group, names, sd.tolist(),
                                   corr.tolist() if len(names) > 1 else None)
    rows: list[Parameter] = []
    start = 0
    sd_rows, other = [], []
    for s in sizes:
        sub = slice(start, start + s)
        part = variance_parameters(group, names[sub], sd[sub].tolist(),
                                   corr[sub, sub].tolist() if s > 1 else None)
        sd_rows += [p for p in part if p.term.startswith(("sd__", "var__"))]
        other += [p for p in part if not p.term.startswith(("sd__", "var__"))]
        start += s
    # Keep variance_parameters' order: all sd, then all var, then cor/cov.
    rows += [p for p in sd_rows if p.term.startswith("sd__")]
    rows += [p for p in sd_rows if p.term.startswith("var__")]
    return rows + other
