"""The glmmTMB backend: fits a spec with glmmTMB (Laplace through TMB) in the lme4 backend's R
worker.

Everything but the call and the extraction is the lme4 backend's (:class:`Lme4Backend`): the
same worker processes (one kind of R process; glmmTMB is loaded in it on first use), the same
column transfer, the same converter (backends/glmmtmb/extract.R writes lme4's reply shape) and
the same self-contained R script. What is glmmTMB's own:

* the call (:mod:`backends.glmmtmb.translate`): ML unless the spec asks REML, Laplace for GLMMs;
  AGHQ, ordinal and multinomial models, OLS and cluster-robust SEs are not estimable;
* standard errors of the variance parameters on every scale, carried from glmmTMB's log-sd
  parameters by the delta method (lme4 reports none);
* convergence: converged is false when nlminb reports a nonzero code or TMB's Hessian is not
  positive definite (``fit$sdr$pdHess``), with the reason in the warnings;
* the fixed effects' standard errors come from the joint inverse Hessian of all parameters
  (``vcov(fit)$cond``), not the conditional ones lmer reports (harness/evidence.py).

Statistics as for lme4: ``loglik`` is ``logLik(fit)`` (glmmTMB's full log-likelihood, constants
included; the REML log-likelihood for REML fits, whose ``reml_criterion`` is ``-2 logLik``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from backends.base import Availability
from backends.glmmtmb import translate
from backends.lme4 import rscript
from backends.lme4.backend import DEFAULT_TIMEOUT_S, TIMEOUT_ENV, Lme4Backend, check_availability
from backends.lme4.translate import RPlan, TranslationError
from harness.spec import Model, Spec

FIX = "apt-get install r-cran-glmmtmb"


class GlmmtmbBackend(Lme4Backend):
    name: ClassVar[str] = "glmmtmb"
    software: ClassVar[tuple[str, ...]] = ("R", "glmmTMB", "TMB", "Matrix", "rpy2")

    def availability(self) -> Availability:
        """R and rpy2 as for lme4 (the worker needs lme4 too: it attaches it), and glmmTMB."""
        base = check_availability()
        if not base.ok:
            return base
        versions = dict(base.versions)
        if not versions.get("glmmTMB"):
            return Availability(False, f"the R package glmmTMB is not installed "
                                f"(R {versions.get('R')})", FIX, versions=base.versions)
        return base

    def versions(self) -> dict[str, str]:
        v = dict(self.availability().versions)
        return {k: v[k] for k in self.software if k in v}

    def unsupported_reason(self, model: Model) -> str | None:
        return translate.unsupported_reason(model)

    def plan(self, spec: Spec, model: Model, data: pd.DataFrame) -> RPlan:
        return translate.plan(spec, model, data)

    def script(self, spec: Spec, model: Model, plan: RPlan, data_path: Any) -> str:
        return rscript.render_script(spec, model, plan, data_path, backend=self.name)

    def timeout(self, spec: Spec) -> float:
        """The R workers' timeout (``MLM_HARNESS_R_TIMEOUT``); the spec's
        ``backends.lme4.options.timeout`` is lme4's own."""
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))

    def render(self, spec: Spec) -> str:
        model = spec.model_for(self.name)
        try:
            plan = translate.plan(spec, model)
        except TranslationError as e:
            return f"# glmmTMB cannot fit spec {spec.id}: {e}\n"
        path: str | Path = rscript.default_data_path(spec.dataset)
        return rscript.render_script(spec, model, plan, path, backend=self.name)
