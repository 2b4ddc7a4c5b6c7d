"""The harness backend for the native estimator: spec + prepared data -> canonical FitResult.

Gaussian LMMs by ML/REML (:func:`backends.native.lmm`), single-level gaussian models by OLS/ML
with optional cluster-robust SEs (:func:`backends.native.ols.ols`), single-level binomial,
Poisson and ordinal GLMs (:func:`backends.native.glm.glm`), GLMMs (backends/native/glmm) and
baseline-category logits, single-level or with one shared random intercept
(:mod:`backends.native.glmm.mlogit_result`). What is not implemented has status "pending" rather
than "not_estimable"; a multinomial structure native cannot express exactly (random slopes,
several random terms) is "not_estimable", with the reason.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from backends.base import Availability, Backend, FitJob
from harness.attributes import ModelAttributes
from harness.results import FitResult, Provenance, Status
from harness.spec import Model, Spec

from .design import DesignError
from .inputs import NativeInputs
from .ols import ols


@cache
def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "nlopt", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - nlopt's wheel names itself "nlopt"
            out[pkg] = "unknown"
    return out


def python_call(model: Model, inputs: NativeInputs) -> str:
    """The equivalent user-level Python call for ``model``."""
    f = model.parsed
    extra = "".join(f", {a}" for a in inputs.call_arguments())
    if f.has_random:
        return f"lmm({model.formula!r}, data, reml={model.method == 'REML'}{extra})"
    cl = f", cluster={model.cluster_se!r}" if model.cluster_se else ""
    return f"ols({model.formula!r}, data, method={model.method!r}{cl}{extra})"


class NativeBackend(Backend):
    name = "native"
    unsupported_status = "pending"

    def availability(self) -> Availability:
        v = software_versions()
        return Availability(True, versions=tuple((k, v[k]) for k in ("numpy", "scipy", "nlopt")))

    def unsupported_reason(self, model: Model) -> str | None:
        if model.family == "multinomial":
            from .glmm.mlogit_result import mlogit_unsupported_reason
            return mlogit_unsupported_reason(model)
        if model.family != "gaussian" and not model.parsed.has_random:
            from .glm import glm_unsupported_reason  # single-level GLMs (backends/native/glm.py)
            return glm_unsupported_reason(model)
        if model.family != "gaussian":
            from .glmm.backend import glmm_unsupported_reason  # issue 7: native GLMMs
            return glmm_unsupported_reason(model)
        return None

    def unsupported_status_for(self, model: Model) -> Status:
        """A multinomial structure native does not fit is not the shared-intercept model it
        implements: not estimable (mlogit_result.py says why); the rest is pending."""
        return "not_estimable" if model.family == "multinomial" else self.unsupported_status

    def fit(self, job: FitJob) -> FitResult:
        model = job.model
        start = time.perf_counter()
        try:
            reason = self.unsupported_reason(model)
            if reason:
                return FitResult.failed(job.spec.id, self.name,
                                        self.unsupported_status_for(model), reason)
            inputs = NativeInputs.of(job.spec, model, job.data)
            call = python_call(model, inputs)
            if model.family == "multinomial":
                from .glmm.mlogit_result import fit_mlogit_job
                result = fit_mlogit_job(job, inputs, self._provenance(job))
                result.timings["fit"] = time.perf_counter() - start
                return result
            if model.family != "gaussian":  # issue 7: native GLMMs (backends/native/glmm)
                from .glm import fit_glm_job
                from .glmm.backend import fit_glmm_job
                settings = job.spec.backends.native
                prov = self._provenance(job)
                fit_job = fit_glmm_job if model.parsed.has_random else fit_glm_job
                result = fit_job(job, inputs, settings.options.given() if settings else {}, prov)
                result.timings["fit"] = time.perf_counter() - start
                return result
            if model.parsed.has_random:
                from . import lmm
                res = lmm(model.formula, job.data, reml=model.method == "REML",
                          **inputs.keywords())
            else:
                res = ols(model.formula, job.data, method=model.method,
                          cluster=model.cluster_se, **inputs.keywords())
        except (DesignError, ValueError, KeyError) as e:
            return FitResult.failed(job.spec.id, self.name, "error", f"{type(e).__name__}: {e}")
        seconds = time.perf_counter() - start
        prov = Provenance(backend=self.name, mode="live", software=software_versions(),
                          platform=f"{platform.platform()} ({sys.implementation.name})",
                          data_sha256=job.data_sha256, call=call,
                          script=self.render(job.spec),
                          date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        result = res.to_fit_result(job.spec.id, prov)
        result.timings["fit"] = seconds
        if model.optimizer and model.optimizer.lower() not in ("bobyqa", "nloptwrap"):
            result.diagnostics.messages.append(
                f"optimizer {model.optimizer!r} was requested; native chooses its own "
                f"({result.diagnostics.optimizer})")
        return result

    def _provenance(self, job: FitJob) -> Provenance:
        """Provenance of a live fit whose call the fitting code fills in."""
        return Provenance(backend=self.name, mode="live", software=software_versions(),
                          platform=f"{platform.platform()} ({sys.implementation.name})",
                          data_sha256=job.data_sha256,
                          date=datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def render(self, spec: Spec) -> str:
        model = spec.model_for(self.name)
        if model.family == "multinomial":
            from .glmm.mlogit_result import script
            return script(model, spec.dataset)
        inputs = NativeInputs(spec.factor_columns(), spec.contrasts(),
                              dict(model.reference_level) or None, ModelAttributes.of(model))
        imp = ("from backends.native import lmm" if model.parsed.has_random
               else "from backends.native.ols import ols")
        show = "result.summary()" if model.parsed.has_random else "result.fixef, result.std_errors"
        return (f"{imp}\n# data: dataset {spec.dataset!r} with the spec's derived columns\n"
                f"result = {python_call(model, inputs)}\nprint({show})")
