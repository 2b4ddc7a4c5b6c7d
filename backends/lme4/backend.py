"""The lme4 backend: fits a spec with lme4 (lmer/glmer), ordinal (clmm/clm) or base R (lm/glm).

R runs in a worker process (:mod:`backends.lme4.worker`, driven by :mod:`backends.lme4.client`),
so nothing here imports rpy2: a crash, a hang or a broken R installation becomes a result with
status ``error`` (or ``unavailable``) and the caller carries on.

Flow of one fit: :func:`backends.lme4.translate.plan` writes the R call; the model's columns are
sent column by column (float64 bytes; never a whole-frame pandas2ri conversion, which costs
~100 ms per dataset against ~1-2 ms); the worker binds them to ``d``, declares factors, evaluates
the call with every warning captured and extracts the numbers (``extract.R``);
:mod:`backends.lme4.convert` builds the canonical result, which carries the exact call and a
self-contained R script (:mod:`backends.lme4.rscript`).

Statistics, stated once for every kind of fit: ``loglik`` is ``logLik(fit)`` (the REML
log-likelihood for REML fits); ``deviance`` is ``-2 * loglik`` for ML-type fits, as
``summary.merMod`` prints it (lme4's ``deviance()`` of a GLMM and ``glm``'s residual deviance mean
other things), and None for REML fits, whose ``reml_criterion`` is ``REMLcrit(fit)``;
``df`` is the number of estimated parameters (``attr(logLik(fit), "df")``). Gaussian ``method:
ML`` without random effects is fitted by ``glm`` and reports the ML sigma ``sqrt(RSS/n)``; its
standard errors keep glm's ``RSS/(n-p)`` dispersion (said in ``diagnostics.messages``).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from backends.base import Availability, Backend, FitJob
from backends.lme4 import client, convert, rscript, translate
from harness.results import Diagnostics, FitResult, Provenance
from harness.spec import Model, Spec

DEFAULT_TIMEOUT_S = 1800.0
TIMEOUT_ENV = "MLM_HARNESS_R_TIMEOUT"
FIX_R = "apt-get install r-base-core r-cran-lme4 r-cran-ordinal"
FIX_RPY2 = "bash scripts/install_rpy2.sh"

_availability: Availability | None = None
_availability_lock = threading.Lock()


def check_availability(refresh: bool = False) -> Availability:
    """Whether R, rpy2, lme4 and ordinal work here; computed once per process (about 1.5 s).

    rpy2 is tried in a subprocess, so an rpy2 release that cannot load this R (see
    docs/rpy2.md) is reported instead of crashing the caller.
    """
    global _availability
    with _availability_lock:
        if _availability is None or refresh:
            _availability = _probe_availability()
        return _availability


def reset_availability() -> None:
    global _availability
    with _availability_lock:
        _availability = None


def _probe_availability() -> Availability:
    if shutil.which("Rscript") is None:
        return Availability(False, "R is not installed (Rscript is not on PATH)", FIX_R)
    probe = client.probe()
    if probe.get("status") != "ok":
        message = str(probe.get("message", "unknown error"))
        if "No module named 'rpy2'" in message:
            return Availability(False, f"rpy2 is not installed for {sys.executable}", FIX_RPY2)
        return Availability(False, f"rpy2 cannot start R: {message.strip()[-600:]}",
                            f"{FIX_RPY2} (it installs the rpy2 release that loads with this R; "
                            "see docs/rpy2.md)")
    v = probe.get("versions", {})
    for package, fix in (("lme4", "apt-get install r-cran-lme4"),
                         ("Matrix", "apt-get install r-cran-matrix"),
                         ("ordinal", "apt-get install r-cran-ordinal")):
        if not v.get(package):
            return Availability(False, f"the R package {package} is not installed "
                                f"(R {v.get('R')})", fix, versions=_version_pairs(v))
    return Availability(True, versions=_version_pairs(v))


def _version_pairs(v: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    pairs = [(k, str(v.get(k))) for k in ("R", "lme4", "Matrix", "ordinal", "glmmTMB", "TMB")
             if v.get(k)]
    if v.get("rpy2"):
        pairs.append(("rpy2", f"{v['rpy2']} ({v.get('rpy2_cffi_mode', '?')} mode)"))
    return tuple(pairs)


def column_payload(data: pd.DataFrame, columns: tuple[str, ...]
                   ) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The model's columns, ready for the pipe: numbers as float64 bytes, logicals as R
    logicals, text (and categorical columns) as strings.

    A 0/1 column stays numeric and value labels never make a factor; factors are declared by the
    plan's ``factor(...)`` statements alone. Logicals stay logical, because R's model matrix
    codes a logical predictor ``x`` as the dummy ``xTRUE`` (as native does), not as a number.
    """
    header: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise translate.TranslationError(
            f"the data have no column(s) {missing} that the model uses "
            f"(columns: {', '.join(map(str, data.columns))})")
    for name in columns:
        s = data[name]
        if _logical(s):
            values = [None if pd.isna(v) else bool(v) for v in s.tolist()]
            header.append({"name": name, "type": "bool", "values": values})
        elif pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            arr = np.ascontiguousarray(pd.to_numeric(s).to_numpy(dtype="float64",
                                                                  na_value=np.nan))
            header.append({"name": name, "type": "float64"})
            buffers.append(arr.astype("<f8", copy=False).tobytes())
        else:
            values = [None if pd.isna(v) else str(v) for v in s.tolist()]
            header.append({"name": name, "type": "str", "values": values})
    return header, buffers


def _logical(s: pd.Series) -> bool:
    """True/False values (a bool column, or an object column of bools with missing values, as
    pandas reads TRUE/FALSE/NA from a CSV file)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return False
    if pd.api.types.is_bool_dtype(s):
        return True
    if s.dtype == object:
        values = s.dropna()
        return len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)
    return False


def timeout_for(spec: Spec) -> float:
    settings = spec.backends.lme4
    if settings is not None and settings.options.timeout is not None:
        return float(settings.options.timeout)
    return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


class Lme4Backend(Backend):
    name: ClassVar[str] = "lme4"
    #: the versions a result's provenance records (the worker reports them all)
    software: ClassVar[tuple[str, ...]] = ("R", "lme4", "Matrix", "ordinal", "rpy2")

    def availability(self) -> Availability:
        return check_availability()

    def versions(self) -> dict[str, str]:
        """R, lme4, Matrix, ordinal and rpy2 versions (for ``mlm-harness doctor``)."""
        return dict(self.availability().versions)

    def unsupported_reason(self, model: Model) -> str | None:
        return translate.unsupported_reason(model)

    def render(self, spec: Spec) -> str:
        try:
            return rscript.render(spec)
        except translate.TranslationError as e:
            return f"# lme4 cannot fit spec {spec.id}: {e}\n"

    def close(self) -> None:
        """Stop every R worker this process started (they are restarted on demand)."""
        client.POOL.close()

    def interrupt(self) -> int:
        """Kill every R worker now, mid-fit or not (they are restarted on demand)."""
        return client.POOL.kill()

    # ---- what differs between the backends that share the R worker ---------------------------
    def plan(self, spec: Spec, model: Model, data: pd.DataFrame) -> translate.RPlan:
        return translate.plan(spec, model, data)

    def script(self, spec: Spec, model: Model, plan: translate.RPlan,
               data_path: Any) -> str:
        return rscript.render_script(spec, model, plan, data_path)

    def timeout(self, spec: Spec) -> float:
        return timeout_for(spec)

    # ---- fitting ------------------------------------------------------------------------------
    def fit(self, job: FitJob) -> FitResult:
        spec, model = job.spec, job.model
        refused = self.refusal(job)
        if refused:
            return refused
        try:
            plan = self.plan(spec, model, job.data)
            columns, buffers = column_payload(job.data, plan.columns)
        except translate.TranslationError as e:
            return FitResult.failed(spec.id, self.name, "error", str(e))
        script = self.script(spec, model, plan, job.data_path)
        header = {"op": "fit", "kind": plan.kind, "call": plan.call, "columns": columns,
                  "setup": list(plan.factor_lines), "cluster": plan.cluster, "ols": plan.ols}
        timeout = self.timeout(spec)
        worker = client.POOL.get()
        started_here = not worker.alive
        t0 = time.perf_counter()
        try:
            if started_here:
                worker.start()
            t1 = time.perf_counter()
            reply = worker.request(header, buffers, timeout=timeout)
        except client.WorkerError as e:
            result = FitResult.failed(spec.id, self.name, "error", str(e))
            self._provenance(result, job, plan, script, worker)
            return result
        round_trip = time.perf_counter() - t1
        if reply.get("status") != "ok":
            result = FitResult.failed(spec.id, self.name, "error",
                                      str(_first(reply.get("message")) or "unknown R error"))
            result.diagnostics = Diagnostics(
                warnings=[str(w) for w in reply.get("warnings") or []],
                messages=[str(m) for m in reply.get("messages") or []])
        else:
            result = convert.to_result(spec.id, reply, plan, model.parsed.grouping_factors,
                                       rows_sent=len(job.data), backend=self.name)
        self._provenance(result, job, plan, script, worker)
        timings = {"round_trip": round_trip}
        if reply.get("fit_r") is not None:
            timings["fit_r"] = float(_first(reply["fit_r"]))
        if reply.get("bind_s") is not None:
            timings["transfer_bind"] = float(reply["bind_s"])
        if started_here:
            timings["worker_start"] = t1 - t0
        result.timings.update(timings)
        return result

    def _provenance(self, result: FitResult, job: FitJob, plan: translate.RPlan, script: str,
                    worker: client.RWorker) -> None:
        v = worker.versions or dict(self.availability().versions)
        software = {k: str(v[k]) for k in self.software if v.get(k)}
        if v.get("rpy2_cffi_mode"):
            software["rpy2_cffi_mode"] = str(v["rpy2_cffi_mode"])
        r_platform = f"; R {v['platform']}" if v.get("platform") else ""
        result.provenance = Provenance(
            backend=self.name, mode="live", software=software,
            platform=platform.platform() + r_platform, data_sha256=job.data_sha256,
            call=plan.call, script=script,
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        if result.status == "ok":
            result.set_estimator(plan.estimator)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value
