"""Single-level GLMs: binomial (logit/probit), Poisson (log) and cumulative-link ordinal models.

The course fits these as the "ignore the clustering" baseline next to its GLMMs. The family code
(log-likelihoods with their full normalising constants, link derivatives) is the GLMM's
(:mod:`backends.native.glmm.families`); only the estimator is new. Conventions, chosen to match R:

* binomial / Poisson: Fisher scoring (IRLS) from glm's starting values, iterated to machine
  precision (not glm's ``epsilon = 1e-8`` deviance criterion), with step halving if the
  log-likelihood ever falls. ``vcov = (X' W X)^{-1}`` with the *expected* (Fisher) weights at
  the optimum, as ``summary.glm`` (for the probit link this differs slightly from the observed
  information; for logit and log links they coincide).
* ordinal: ``P(y <= k) = F(alpha_k - x'beta)`` with no intercept (``ordinal::clm``,
  ``MASS::polr``), thresholds named ``"1|2"``, ``"2|3"``...; full Newton-Raphson on
  (alpha, beta) with the analytic Hessian, and ``vcov`` the inverse *observed* information, as
  ``clm``.
* logLik with the full constants (R's ``logLik.glm``: ``-log y!`` for Poisson); deviance is
  ``-2 logLik``; AIC/BIC with df = number of coefficients (+ thresholds).
* prior weights multiply each row's log-likelihood, its score and its information (R's
  ``weights =`` of glm and clm; harness/attributes.py); trials and an offset are the model
  attributes of the same names.
* ``cluster`` (binomial/Poisson only): Stata's CR1 sandwich for ML commands,
  ``V (sum_g s_g s_g') V * G / (G - 1)`` with ``s_g`` the summed score ``x_i d log p_i / d eta``
  (no ``(N-1)/(N-K)`` factor; that one is ``regress``'s), exactly as the lme4 backend's
  ``harness_cluster_vcov`` does for ``glm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logit as qlogis
from scipy.special import ndtri

from harness.estimator import Estimator
from harness.results import Diagnostics, FitResult, Parameter, Provenance, Statistics

from .design import AttributeInput, Design, attribute_values, build_design, group_codes
from .glmm.families import Cumulative, make_family, ordinal_response, prior_weights
from .inputs import NativeInputs

FAMILIES = ("binomial", "poisson", "ordinal")
LINKS = {"binomial": ("logit", "probit"), "poisson": ("log",), "ordinal": ("logit", "probit")}


@dataclass
class GlmResult:
    design: Design
    family: str
    link: str
    x_names: list[str]
    threshold_names: list[str]
    coef: np.ndarray               # [beta, alpha]
    vcov: np.ndarray
    loglik: float
    iterations: int
    converged: bool
    max_abs_gradient: float
    nobs: int
    cluster: str | None = None
    n_clusters: int | None = None
    messages: list[str] = field(default_factory=list)
    scores: np.ndarray | None = field(default=None, repr=False)  # per-row d loglik / d coef

    @property
    def df(self) -> int:
        return int(self.coef.size)

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.coef[:len(self.x_names)], index=self.x_names)

    @property
    def thresholds(self) -> pd.Series:
        return pd.Series(self.coef[len(self.x_names):], index=self.threshold_names)

    @property
    def std_errors(self) -> pd.Series:
        d = np.diag(self.vcov)
        return pd.Series(np.sqrt(np.where(d >= 0, d, np.nan)),
                         index=self.x_names + self.threshold_names)

    def to_fit_result(self, spec_id: str, provenance: Provenance | None = None) -> FitResult:
        se = self.std_errors.to_numpy()
        p = len(self.x_names)
        params = [Parameter("fixed", None, nm, float(b), _num(se[i]))
                  for i, (nm, b) in enumerate(zip(self.x_names, self.coef[:p]))]
        params += [Parameter("threshold", None, nm, float(a), _num(se[p + i]))
                   for i, (nm, a) in enumerate(zip(self.threshold_names, self.coef[p:]))]
        n, ll, df = self.nobs, self.loglik, self.df
        stats = Statistics(nobs=n, ngroups={self.cluster: self.n_clusters} if self.cluster else {},
                           loglik=ll, deviance=-2 * ll, aic=-2 * ll + 2 * df,
                           bic=-2 * ll + math.log(n) * df, df=df,
                           nobs_dropped=self.design.nobs_dropped)
        se_kind = ("observed information (clm)" if self.family == "ordinal"
                   else "expected (Fisher) information (glm)")
        if self.cluster:
            se_kind = f"CR1 cluster-robust sandwich by {self.cluster} (G/(G-1))"
        diag = Diagnostics(
            converged=self.converged, singular=False, max_abs_gradient=self.max_abs_gradient,
            warnings=self.design.warnings(),
            optimizer="Newton-Raphson (ordinal) / Fisher scoring (IRLS)",
            evaluations=self.iterations,
            messages=list(self.messages) + [
                f"family {self.family}({self.link}), single-level ML, {self.iterations} "
                "iterations", f"standard errors from the {se_kind}",
                "logLik includes the full normalising constants; statistics.deviance is "
                "-2 logLik"])
        result = FitResult(spec_id=spec_id, backend="native", status="ok", parameters=params,
                           statistics=stats, diagnostics=diag,
                           provenance=provenance or Provenance(backend="native"))
        return result.set_estimator(Estimator("ML", se="CR1" if self.cluster else "model",
                                              cluster=self.cluster))


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def glm(formula: str, data: pd.DataFrame, family: str = "binomial", link: str | None = None,
        cluster: str | None = None, factors: list[str] | tuple[str, ...] = (),
        reference: dict[str, object] | None = None, trials: AttributeInput = None,
        offset: AttributeInput = None, weights: AttributeInput = None,
        contrasts: dict[str, str] | None = None, tol: float = 1e-10,
        max_iter: int = 100) -> GlmResult:
    """Fit a single-level binomial, Poisson or cumulative-link ordinal model by ML.

    ``trials``, ``offset`` and ``weights`` are column names or per-row values; the formula's own
    ``cbind()``/``offset()`` (harness/attributes.py) are the caller's to turn into them."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    link = link or {"binomial": "logit", "poisson": "log", "ordinal": "logit"}[family]
    if link not in LINKS[family]:
        raise ValueError(f"link {link!r} is not supported for {family} (use {LINKS[family]})")
    if cluster is not None and family == "ordinal":
        raise ValueError("cluster-robust SEs are implemented for binomial/Poisson GLMs only")
    design = build_design(formula, data, factors, reference,
                          complete_in=(cluster,) if cluster else (), contrasts=contrasts,
                          attributes=attribute_values(data, trials=trials, offset=offset,
                                                      weights=weights))
    if design.factors:
        raise ValueError("glm() fits single-level models; this formula has random effects")
    off = design.offset if design.offset is not None else np.zeros(design.n)
    w = prior_weights(family, design.weights, design.n)
    if family == "ordinal":
        res = _fit_ordinal(design, link, off, w, tol, max_iter)
    else:
        res = _fit_glm(design, family, link, design.trials, off, w, tol, max_iter)
    if cluster is not None:
        codes, levels = group_codes(data.loc[design.row_index], cluster)
        G = len(levels)
        scores = np.zeros((G, design.p))
        np.add.at(scores, codes, res.scores)
        V = res.vcov
        res.vcov = V @ (scores.T @ scores) @ V * (G / (G - 1))
        res.cluster, res.n_clusters = cluster, G
    return res


# ---- binomial / Poisson: Fisher scoring ---------------------------------------------------------

def _fit_glm(design: Design, family: str, link: str, trials: np.ndarray | None,
             off: np.ndarray, pw: np.ndarray, tol: float, max_iter: int) -> GlmResult:
    X, y, n, p = design.X, design.outcome(family), design.n, design.p
    fam = make_family(family, link, y, trials)
    if family == "binomial":
        mu0 = (y + 0.5) / (fam.m + 1.0)                  # glm's mustart for binomial
        eta = qlogis(mu0) if link == "logit" else ndtri(mu0)
    else:
        eta = np.log(y + 0.1)                            # glm's mustart = y + 0.1

    def total(eta: np.ndarray) -> float:
        return float(np.sum(pw * fam.loglik(eta)))

    beta = None
    ll_old = -np.inf
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        d1, _ = fam.derivs(eta)
        w = fam.fisher(eta)
        z = eta - off + d1 / w                           # working response
        w = pw * w
        sw = np.sqrt(w)
        new = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        eta_new = X @ new + off
        ll = total(eta_new)
        if beta is not None and (not np.isfinite(ll) or ll < ll_old - 1e-9 * abs(ll_old)):
            for _ in range(30):                          # step halving
                new = 0.5 * (new + beta)
                eta_new = X @ new + off
                ll = total(eta_new)
                if np.isfinite(ll) and ll >= ll_old:
                    break
        step = np.inf if beta is None else float(np.max(np.abs(new - beta)))
        beta, eta = new, eta_new
        small = abs(ll - ll_old) <= tol * (abs(ll) + 0.1) * 1e-4
        ll_old = ll
        if step < tol * (1 + float(np.max(np.abs(beta)))) or (small and step < 1e-6):
            converged = True
            break
    d1, _ = fam.derivs(eta)
    d1, w = pw * d1, pw * fam.fisher(eta)
    info = X.T @ (X * w[:, None])
    V = np.linalg.inv(info)
    grad = X.T @ d1
    res = GlmResult(design=design, family=family, link=link, x_names=list(design.x_names),
               threshold_names=[], coef=beta, vcov=V, loglik=total(eta), iterations=it,
               converged=converged, max_abs_gradient=float(np.max(np.abs(grad))), nobs=n)
    res.scores = X * d1[:, None]
    if not converged:
        res.messages.append(f"Fisher scoring did not converge in {max_iter} iterations")
    return res


# ---- ordinal: Newton-Raphson on (beta, alpha) ---------------------------------------------------

def _ordinal_parts(fam: Cumulative, X: np.ndarray, yk: np.ndarray, K: int, beta: np.ndarray,
                   alpha: np.ndarray, off: np.ndarray, pw: np.ndarray, hessian: bool = True):
    """Log-likelihood, gradient and Hessian in ``[beta, alpha]`` (rows weighted by ``pw``)."""
    fam.with_thresholds(alpha)
    eta = X @ beta + off
    a, b = fam._bounds(eta)                              # upper, lower: alpha_y - eta ...
    P, fa, fb, fpa, fpb = fam._prob(a, b)
    if np.any(P <= 0):
        return -np.inf, None, None
    ll = float(np.sum(pw * np.log(P)))
    n, p = X.shape
    # d a / d theta = [-x, e_y], d b / d theta = [-x, e_{y-1}] (no e-term for infinite cuts).
    Ea = np.zeros((n, K - 1))
    Eb = np.zeros((n, K - 1))
    rows = np.arange(n)
    up = yk < K - 1
    lo = yk > 0
    Ea[rows[up], yk[up]] = 1.0
    Eb[rows[lo], yk[lo] - 1] = 1.0
    Da = np.hstack([-X, Ea])
    Db = np.hstack([-X, Eb])
    gi = (fa[:, None] * Da - fb[:, None] * Db) / P[:, None]
    g = pw @ gi
    if not hessian:
        return ll, g, None
    H = (Da.T @ (Da * (pw * fpa / P)[:, None]) - Db.T @ (Db * (pw * fpb / P)[:, None])) \
        - gi.T @ (gi * pw[:, None])
    return ll, g, H


def _fit_ordinal(design: Design, link: str, off: np.ndarray, pw: np.ndarray, tol: float,
                 max_iter: int) -> GlmResult:
    X, x_names, codes, thr_names, aliased = ordinal_response(design.X, list(design.x_names),
                                                             design.y, design.response_levels)
    design.aliased += aliased
    yk = codes.astype(np.int64)
    K = len(thr_names) + 1
    fam = make_family("ordinal", link, codes, ncat=K)
    p = X.shape[1]
    cum = np.cumsum(np.bincount(yk, weights=pw, minlength=K))[:-1] / pw.sum()
    alpha = qlogis(cum) if link == "logit" else ndtri(cum)   # clm's start: marginal cut points
    theta = np.concatenate([np.zeros(p), alpha])
    ll, g, H = _ordinal_parts(fam, X, yk, K, theta[:p], theta[p:], off, pw)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(H, -g)
        except np.linalg.LinAlgError:
            step = g * 1e-3
        if step @ g <= 0:                                # not an ascent direction: gradient step
            step = g / max(1.0, float(np.max(np.abs(g))))
        t = 1.0
        for _ in range(40):
            cand = theta + t * step
            ok = np.all(np.diff(cand[p:]) > 0)
            ll_new = _ordinal_parts(fam, X, yk, K, cand[:p], cand[p:], off, pw, False)[0] \
                if ok else -np.inf
            if np.isfinite(ll_new) and ll_new >= ll - 1e-12 * abs(ll):
                break
            t *= 0.5
        theta = cand
        ll, g, H = _ordinal_parts(fam, X, yk, K, theta[:p], theta[p:], off, pw)
        if float(np.max(np.abs(t * step))) < tol * (1 + float(np.max(np.abs(theta)))) \
                or float(np.max(np.abs(g))) < 1e-10:
            converged = True
            break
    V = np.linalg.inv(-H)
    res = GlmResult(design=design, family="ordinal", link=link, x_names=x_names,
               threshold_names=thr_names, coef=theta, vcov=V, loglik=ll, iterations=it,
               converged=converged, max_abs_gradient=float(np.max(np.abs(g))), nobs=design.n)
    if not converged:
        res.messages.append(f"Newton-Raphson did not converge in {max_iter} iterations")
    return res


# ---- harness side ------------------------------------------------------------------------------

def glm_unsupported_reason(model) -> str | None:
    """None when :func:`glm` can fit the single-level ``model``; otherwise why not."""
    if model.family not in FAMILIES:
        return f"native single-level {model.family} models are not implemented"
    if model.resolved_link not in LINKS[model.family]:
        return f"native {model.family} models support links {LINKS[model.family]}"
    if model.cluster_se and model.family == "ordinal":
        return "native cluster-robust SEs are implemented for binomial/Poisson GLMs only"
    return None


def python_call(model, inputs: NativeInputs, options: dict) -> str:
    args = [repr(model.formula), "data", f"family={model.family!r}",
            f"link={model.resolved_link!r}"]
    if model.cluster_se:
        args.append(f"cluster={model.cluster_se!r}")
    args += inputs.call_arguments()
    args += [f"{k}={v!r}" for k, v in sorted(options.items())]
    return "glm(" + ", ".join(args) + ")"


def fit_glm_job(job, inputs: NativeInputs, options: dict, provenance: Provenance) -> FitResult:
    model = job.model
    res = glm(model.formula, job.data, family=model.family, link=model.resolved_link,
              cluster=model.cluster_se, **inputs.keywords())  # type: ignore[arg-type]
    provenance.call = python_call(model, inputs, options)
    provenance.script = ("from backends.native.glm import glm\n# data: dataset "
                         f"{job.spec.dataset!r} with the spec's derived columns\n"
                         f"result = {provenance.call}\nprint(result.fixef, result.std_errors)")
    return res.to_fit_result(job.spec.id, provenance)
