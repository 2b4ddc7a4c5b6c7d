"""Bridge fits: the native engine refits a spec with every (model, estimator) a side used.

When lme4 fits REML and the course printed Stata's ML, or lme4 can only use Laplace where Stata
used 7-point quadrature, the two numbers answer different questions. Saying so is not evidence;
showing it is: native fits both, and if each side agrees with native's fit of its own model and
estimator, native reproduces the gap (harness/known_differences.py, rule ``estimator``).

A bridge is a separate fit (identical fits are still run only once, and the copy handed back is
a new object), so a side is never its own evidence. Estimators native cannot fit (Stata's GLS
``xtreg, re``, gllamm's non-adaptive quadrature, survey-linearised SEs, sandwich SEs of a mixed
model) get no bridge, and a gap that needs one stays unexplained.
"""

from __future__ import annotations

from pathlib import Path

from harness.estimator import Estimator
from harness.known_differences import estimator_of, model_id
from harness.results import FitResult
from harness.options import NativeOptions
from harness.spec import Backends, Integration, Model, NativeSettings, Spec

BridgeJobs = dict[tuple[str, ...], tuple[Spec, str]]


def native_variant(spec: Spec, backend: str | None, est: Estimator) -> Spec | None:
    """``spec`` as native would fit ``backend``'s model with ``est``; None if native cannot."""
    if est.criterion == "GLS" or est.integration == "ghq" or est.se == "linearized":
        return None
    base = spec.model_for(backend) if backend else spec.model
    has_random = base.parsed.has_random
    if est.se == "CR1" and has_random:
        return None  # cluster-robust SEs of a mixed model are not implemented natively
    integration = None
    if est.integration == "laplace":
        integration = Integration(method="laplace")
    elif est.integration in ("aghq", "mvaghq"):
        integration = Integration(method="aghq", points=est.points)
    try:
        model = Model.model_validate({**base.model_dump(), "method": est.criterion,
                                      "integration": integration if has_random else None,
                                      "cluster_se": est.cluster if est.se == "CR1" else None})
    except ValueError:
        return None
    native = spec.backends.native
    options = (native.options if native else NativeOptions()).model_copy(update={
        "adaptation": "mean-variance" if est.integration == "mvaghq" else None})
    return spec.model_copy(update={
        "model": model, "backends": Backends(native=NativeSettings(options=options))})


def bridge_jobs(specs: list[tuple[Path | None, Spec]], results: dict[tuple[str, str], FitResult],
                backends: list[str]) -> BridgeJobs:
    """{(spec id, model id, estimator label): (native variant, "native")} for every side."""
    jobs: BridgeJobs = {}
    for _, spec in specs:
        wanted: dict[tuple[str, str], tuple[str | None, Estimator]] = {}
        for name in backends:
            r = results[(spec.id, name)]
            if r.status == "ok":
                est = estimator_of(r)
                wanted[(model_id(spec, name), est.label())] = (name, est)
        for ref in spec.references:
            if ref.values:
                est = Estimator.parse(ref.method) if ref.method else spec.model.estimator()
                wanted[(model_id(spec, None), est.label())] = (None, est)
        for (mid, label), (backend, est) in wanted.items():
            variant = native_variant(spec, backend, est)
            if variant is not None:
                jobs[(spec.id, mid, label)] = (variant, "native")
    return jobs
