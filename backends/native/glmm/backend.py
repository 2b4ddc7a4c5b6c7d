"""The harness side of native GLMMs: spec -> :func:`.fit.fit_glmm` -> canonical FitResult.

Called by :class:`backends.native.backend.NativeBackend` for non-gaussian families. Spec knobs
(``backends: {native: {options: ...}}``, typed in :class:`harness.options.NativeOptions`):

* ``adaptation: mean-variance`` — Stata's MVAGHQ for a scalar random effect too (default for
  scalar effects is lme4's mode/curvature AGHQ, "AGHQ(n)"; vector effects always use MVAGHQ);
* ``laplace: glmer`` — glmer's approximate PIRLS path instead of the exact Laplace
  approximation (the default, ``laplace: exact``), to reproduce glmer's numbers digit for digit
  (binomial/Poisson Laplace and lme4-style AGHQ; ordinal and MVAGHQ fits are always exact).

Binomial trials, the offset and prior weights are model attributes (harness/attributes.py),
handed over by :class:`~backends.native.inputs.NativeInputs` like the factor columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.base import FitJob
from harness.results import FitResult, Provenance
from harness.spec import Model

from ..inputs import NativeInputs
from .crossed_evidence import AGHQ_REASON
from .fit import fit_glmm
from .result import to_fit_result

def glmm_unsupported_reason(model: Model) -> str | None:
    """None when the native GLMM code can fit ``model``; otherwise why not."""
    f = model.parsed
    if model.family not in ("binomial", "poisson", "ordinal"):
        return f"native {model.family} models are not implemented"
    if not f.has_random:
        return f"native single-level {model.family} models are not implemented"
    if len(f.grouping_factors) > 1:
        if model.family == "ordinal":
            return ("native ordinal GLMMs support one grouping factor; this model has "
                    f"{len(f.grouping_factors)}")
        integ = model.integration
        if integ is not None and integ.method != "laplace":
            return f"native GLMMs with {len(f.grouping_factors)} grouping factors: {AGHQ_REASON}"
    return None


def python_call(model: Model, inputs: NativeInputs, options: dict[str, Any]) -> str:
    integ = model.integration
    args = [repr(model.formula), "data", f"family={model.family!r}",
            f"link={model.resolved_link!r}"]
    if integ is not None and integ.method == "aghq":
        args += ["integration='aghq'", f"points={integ.points}"]
    args += inputs.call_arguments()
    args += [f"{k}={v!r}" for k, v in sorted(options.items())]
    return "fit_glmm(" + ", ".join(args) + ")"


def fit_glmm_job(job: FitJob, inputs: NativeInputs, options: dict[str, Any],
                 provenance: Provenance) -> FitResult:
    model = job.model
    try:
        res = _fit(job, inputs, options)
    except (RuntimeError, np.linalg.LinAlgError) as e:     # PirlsError is a RuntimeError
        return FitResult.failed(job.spec.id, "native", "error", f"{type(e).__name__}: {e}")
    provenance.call = python_call(model, inputs, options)
    return to_fit_result(res, job.spec.id, provenance)


def _fit(job: FitJob, inputs: NativeInputs, options: dict[str, Any]):
    model = job.model
    integ = model.integration
    return fit_glmm(model.formula, job.data, family=model.family,  # type: ignore[arg-type]
                    link=model.resolved_link,
                    integration=integ.method if integ else "laplace",
                    points=integ.points if integ else 1,
                    adaptation=options.get("adaptation"),
                    intercept_last=bool(options.get("intercept_last", True)),
                    laplace=options.get("laplace", "exact"),
                    **inputs.keywords())  # type: ignore[arg-type]
