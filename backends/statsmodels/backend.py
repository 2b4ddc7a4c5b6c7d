"""The statsmodels backend: gaussian linear mixed models by statsmodels' ``MixedLM``, ML or REML.

Python users most often ask whether statsmodels gives lme4's answer, so this backend fits the
spec's LMM exactly as a statsmodels user would, and reports what statsmodels says:

* the data go through the harness's own design (:func:`backends.native.design.build_design`:
  the parsed formula tree, R's factor coding and column names, incomplete rows dropped as R
  drops them), so statsmodels receives numbers (``endog``, ``exog``, ``groups``, ``exog_re``,
  variance components), never the user's formula text; :mod:`backends.statsmodels.layout` maps
  the random part and says when statsmodels cannot express it;
* ``MixedLM.fit(reml=...)`` with statsmodels' default optimizer sequence (BFGS, L-BFGS, CG);
  its warnings are kept, ``converged`` is statsmodels' own flag, and a fit that did not converge
  says so in the result (the comparison never calls such a fit ``agree``, harness/compare.py);
* estimates map to canonical keys: fixed effects with statsmodels' ``bse_fe``, the random-effect
  covariance (``cov_re``, ``vcomp``, both on the data scale) on all four scales, the residual sd
  ``sqrt(scale)``, and ``llf`` (the REML log-likelihood for REML fits, as lme4's ``logLik``).
  statsmodels' SEs of variance parameters (``bse_re``) are on its own unscaled parameterisation,
  so they are not reported rather than reported on a scale no other engine uses.

Not estimable, with the reason: GLMMs (statsmodels' ``BinomialBayesMixedGLM`` and
``PoissonBayesMixedGLM`` are variational Bayes / posterior-mode fits with priors, not maximum
likelihood), prior weights and offsets (MixedLM takes neither), single-level models (statsmodels'
OLS/GLM comparators are not part of this backend), and random parts MixedLM cannot express.
"""

from __future__ import annotations

import platform
import time
import warnings
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

import numpy as np

from backends.base import Availability, Backend, FitJob
from backends.native.design import Design, DesignError, build_design
from backends.native.result import _factor_variance_rows
from backends.native.theta import sd_and_correlation
from harness.attributes import ModelAttributes
from harness.estimator import Estimator
from harness.results import (Diagnostics, FitResult, Parameter, Provenance, Statistics,
                             residual_parameters)
from harness.spec import Model, Spec

from .layout import Layout, NotExpressible, layout

FIX = 'pip install "mlm-harness[statsmodels]" (or: pip install statsmodels)'
#: statsmodels' default sequence, written out so the provenance states what ran
METHODS = ("bfgs", "lbfgs", "cg")


@cache
def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("statsmodels", "numpy", "scipy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def unsupported_reason(model: Model) -> str | None:
    """Why statsmodels' MixedLM cannot fit ``model`` as specified (None: it can try)."""
    if model.family != "gaussian":
        if model.parsed.has_random:
            return (f"statsmodels has no maximum-likelihood {model.family} GLMM: its "
                    "BinomialBayesMixedGLM / PoissonBayesMixedGLM are variational-Bayes and "
                    "posterior-mode fits with priors on the variance parameters, a different "
                    "estimator that is never compared as if it were an MLE")
        return ("the statsmodels backend fits mixed models (MixedLM) only; single-level "
                f"{model.family} models are fitted by the native and lme4 backends")
    if not model.parsed.has_random:
        return ("the statsmodels backend fits mixed models (MixedLM) only; single-level "
                "gaussian models are fitted by the native and lme4 backends")
    attributes = ModelAttributes.of(model)
    if attributes.weights:
        return (f"statsmodels' MixedLM takes no prior weights (weights: {attributes.weights}); "
                "fitting without them would be a different model")
    if attributes.offsets:
        return ("statsmodels' MixedLM takes no offset; fitting without it would be a "
                "different model")
    return None


class StatsmodelsBackend(Backend):
    name: ClassVar[str] = "statsmodels"

    def availability(self) -> Availability:
        v = software_versions()
        if "statsmodels" not in v:
            return Availability(False, "statsmodels is not installed in this Python", FIX)
        return Availability(True, versions=tuple((k, v[k]) for k in ("statsmodels", "numpy",
                                                                      "scipy") if k in v))

    def versions(self) -> dict[str, str]:
        return dict(self.availability().versions)

    def unsupported_reason(self, model: Model) -> str | None:
        return unsupported_reason(model)

    def render(self, spec: Spec) -> str:
        model = spec.model_for(self.name)
        reason = unsupported_reason(model)
        if reason:
            return f"# statsmodels cannot fit spec {spec.id}: {reason}\n"
        return "\n".join([
            "# the harness builds the numbers from the parsed formula (R's coding and names),",
            "# then calls statsmodels' MixedLM with them",
            "from backends.native.design import build_design",
            "from backends.statsmodels.backend import mixedlm_model",
            "from backends.statsmodels.layout import layout",
            f"design = build_design({model.formula!r}, data, factors={spec.factor_columns()!r}, "
            f"reference={dict(model.reference_level) or None!r}, "
            f"contrasts={spec.contrasts() or None!r})",
            "mixed = mixedlm_model(design, layout(design))",
            f"result = mixed.fit(reml={model.method == 'REML'}, method={list(METHODS)!r})",
            "print(result.summary())", ""])

    def fit(self, job: FitJob) -> FitResult:
        spec, model = job.spec, job.model
        refused = self.refusal(job)
        if refused:
            return refused
        try:
            design = build_design(model.parsed, job.data, factors=spec.factor_columns(),
                                  reference=dict(model.reference_level) or None,
                                  contrasts=spec.contrasts() or None)
            plan = layout(design)
        except NotExpressible as e:
            return FitResult.failed(spec.id, self.name, "not_estimable", str(e))
        except (DesignError, ValueError, KeyError) as e:
            return FitResult.failed(spec.id, self.name, "error", f"{type(e).__name__}: {e}")
        reml = model.method == "REML"
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fitted = mixedlm_model(design, plan).fit(reml=reml, method=list(METHODS))
            except (np.linalg.LinAlgError, ValueError) as e:
                return FitResult.failed(spec.id, self.name, "error",
                                        f"statsmodels MixedLM failed: {type(e).__name__}: {e}")
        seconds = time.perf_counter() - start
        said = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
        result = to_result(spec.id, design, plan, fitted, said)
        result.timings["fit"] = seconds
        if model.optimizer:
            result.diagnostics.messages.append(
                f"optimizer {model.optimizer!r} was requested; statsmodels' MixedLM was run "
                f"with its own sequence {', '.join(METHODS)}")
        result.provenance = Provenance(
            backend=self.name, mode="live", software=software_versions(),
            platform=platform.platform(), data_sha256=job.data_sha256,
            call=f"MixedLM(endog, exog, groups, exog_re, exog_vc).fit(reml={reml}, "
                 f"method={list(METHODS)!r})",
            script=self.render(spec),
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        return result.set_estimator(Estimator(model.method))


def mixedlm_model(design: Design, plan: Layout) -> Any:
    """The statsmodels ``MixedLM`` for a design and its layout (statsmodels imported here)."""
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec
    exog_vc = (VCSpec(plan.vc_names, plan.vc_colnames, plan.vc_mats) if plan.vc_terms
               else None)
    return MixedLM(design.y, design.X, groups=plan.groups, exog_re=plan.exog_re,
                   exog_vc=exog_vc)


def to_result(spec_id: str, design: Design, plan: Layout, fitted: Any,
              said: list[str]) -> FitResult:
    """Canonical keys for a fitted MixedLM (see the module docstring for what maps where)."""
    p = design.p
    fe = np.asarray(fitted.fe_params, dtype=float)
    se = np.asarray(fitted.bse_fe, dtype=float)
    rows = [Parameter("fixed", None, name, float(fe[i]),
                      float(se[i]) if np.isfinite(se[i]) else None)
            for i, name in enumerate(design.x_names)]
    covs = factor_covariances(design, plan, np.asarray(fitted.cov_re, dtype=float),
                              np.asarray(fitted.vcomp, dtype=float))
    for f in design.factors:
        sd, corr = sd_and_correlation(covs[f.name])
        rows.extend(_factor_variance_rows(f.name, f.columns, f.term_sizes, sd, corr))
    sigma = float(np.sqrt(fitted.scale))
    rows.extend(residual_parameters(sigma))
    n_cov = (0 if plan.re_term is None else plan.re_term.size * (plan.re_term.size + 1) // 2) \
        + len(plan.vc_terms)
    df = p + n_cov + 1
    ll = float(fitted.llf)
    reml = bool(fitted.reml)
    stats = Statistics(nobs=design.n, ngroups={f.name: f.m for f in design.factors}, loglik=ll,
                       reml_criterion=-2 * ll if reml else None,
                       deviance=None if reml else -2 * ll, aic=-2 * ll + 2 * df,
                       bic=-2 * ll + np.log(design.n) * df, df=df,
                       nobs_dropped=design.nobs_dropped)
    converged = bool(fitted.converged)
    diagnostics = Diagnostics(
        converged=converged, warnings=design.warnings() + said,
        optimizer="statsmodels MixedLM (" + ", ".join(METHODS) + ")",
        messages=[plan.describe()] + ([] if converged else [
            "statsmodels reports that MixedLM did not converge: its estimates are not an "
            "optimum and are never judged as agreeing with another engine"]))
    return FitResult(spec_id=spec_id, backend="statsmodels", parameters=rows, statistics=stats,
                     diagnostics=diagnostics)


def factor_covariances(design: Design, plan: Layout, cov_re: np.ndarray,
                       vcomp: np.ndarray) -> dict[str, np.ndarray]:
    """Each grouping factor's random-effect covariance matrix over its ``columns``: the
    ``exog_re`` block from ``cov_re``, each variance component on the diagonal, 0 between
    independent terms (statsmodels fits no covariance there)."""
    out = {f.name: np.zeros((f.k, f.k)) for f in design.factors}
    if plan.re_term is not None:
        t = plan.re_term
        out[t.factor.name][t.start:t.start + t.size, t.start:t.start + t.size] = cov_re
    for t, v in zip(plan.vc_terms, vcomp):
        out[t.factor.name][t.start, t.start] = v
    return out
