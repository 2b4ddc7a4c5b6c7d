"""Stata backend: live through pystata, a batch do-file, or stored results, and says which.

Every result carries ``provenance.mode``:

* ``live``: fitted now in a pystata session;
* ``batch``: fitted now by ``stata -b do`` on a generated do-file;
* ``stored``: read from the stored-results folder (``backends.stata.stored.stored_dir``),
  imported from a results file that an exported do-file wrote on a machine with Stata;
  ``provenance.source`` says which file, Stata version and date.

Numbers the course printed are never a Stata result: they are the specs' references.

Availability (what ``doctor`` and the report show):

* a usable Stata (found and its probe ran): available, mode live/batch, with version and flavour;
* no usable Stata, but stored results exist: **available, "stored results only"**; specs with a
  stored result get it (status ok, mode stored); the others are ``unavailable`` with
  the reason and the fix (or ``error`` when a Stata was found but failed, e.g. its licence);
* neither: unavailable, with the reason and the fix.
"""

from __future__ import annotations

import os
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from backends.base import Availability, Backend, FitJob
from backends.stata.execution import (StataInstall, StataRunError, detect, run_batch, run_live,
                                      stop_batches)
from backends.stata.mapping import record_to_result
from backends.stata.render import (StataRenderError, data_reference, model_do, plan, show_do,
                                   unsupported_reason)
from backends.stata.stored import (StoredResultError, fingerprint_mismatch, load_stored,
                                   stored_dir, stored_ids, stored_path)
from harness.results import FitResult
from harness.options import StataOptions
from harness.spec import Model, Spec
from harness.statasyntax import stata_comment

FIX = ("install a licensed Stata 15+ and set STATA_HOME (live, with pip install stata_setup) "
       "or put stata-se/stata-mp on PATH (batch); or, on a machine with Stata, run "
       "`mlm-harness stata export` there and `mlm-harness stata import RESULTS` here")
_ENV = ("STATA_HOME", "STATA_EDITION", "STATA_EXE", "MLMH_STATA_MODE", "PATH",
        "MLMH_STATA_STORED")


@lru_cache(maxsize=8)
def _install_for(env: tuple[str | None, ...], home: str | None) -> StataInstall:
    return detect(home=home)


def installation(home: str | None = None) -> StataInstall:
    """The Stata found on this machine (in ``home`` first when a spec names one, as
    ``backends.stata.options.stata_home``), probed once per environment (cached)."""
    return _install_for(tuple(os.environ.get(k) for k in _ENV), home)


def reset_detection() -> None:
    """Forget the cached detection (tests change the environment)."""
    _install_for.cache_clear()


class StataBackend(Backend):
    name = "stata"
    unsupported_status = "not_estimable"

    # ---- availability --------------------------------------------------------------------
    def availability(self) -> Availability:
        inst = installation()
        if inst.usable:
            return Availability(True, versions=(
                ("Stata", f"{inst.version} {inst.flavour}".strip() or "?"),
                ("mode", inst.mode), ("at", inst.location)))
        n = len(stored_ids())
        why = inst.problem or "no usable Stata"
        if n:
            return Availability(
                True, reason=f"{why}: stored results only ({n} specs in {stored_dir()})",
                fix=FIX, versions=(("Stata", "not usable here"),
                                   ("mode", f"stored results only, {n} specs")))
        return Availability(False, reason=why, fix=FIX)

    def unsupported_reason(self, model: Model) -> str | None:
        return unsupported_reason(model)

    # ---- code ----------------------------------------------------------------------------
    def render(self, spec: Spec) -> str:
        frame, path = None, None
        try:
            from harness.runner import prepare_data
            prepared = prepare_data(spec)
            frame, path = prepared.frame, prepared.path
        except Exception:  # no data here: render from the formula alone (the code says so)
            pass
        try:
            text = show_do(spec, plan(spec, frame), data_reference(spec, path))
        except StataRenderError as e:
            return stata_comment(f"cannot write this model for Stata: {e}")
        if stored_path(spec.id).is_file():
            text += (f"\n* without Stata here, the Stata column comes from the stored result "
                     f"{stored_path(spec.id).name} (backends/stata/stored)")
        return text

    def interrupt(self) -> int:
        """Kill the batch Stata processes in progress (pystata runs in-process: nothing)."""
        return stop_batches()

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, job: FitJob) -> FitResult:
        spec = job.spec
        settings = spec.backends.stata
        options = settings.options if settings is not None else StataOptions()
        try:  # a model Stata cannot express is not estimable, whichever mode would run it
            plan(spec, job.data)
        except StataRenderError as e:
            return FitResult.failed(spec.id, self.name, "not_estimable", str(e))
        inst = installation(options.stata_home)
        if inst.usable and options.mode != "stored":
            return self._fit_now(job, inst, options)
        return self._stored(spec, job, inst)

    def _fit_now(self, job: FitJob, inst: StataInstall, options: StataOptions) -> FitResult:
        spec = job.spec
        start = time.perf_counter()
        if job.data_path is None:
            return FitResult.failed(spec.id, self.name, "error",
                                    "Stata needs the dataset as a file, and this job has none")
        try:
            layout = plan(spec, job.data)
            do_text = model_do(spec, layout, data_reference(spec, job.data_path), "@RESULTS@",
                               job.data_sha256)
        except StataRenderError as e:
            return FitResult.failed(spec.id, self.name, "not_estimable", str(e))
        timeout = float(options.timeout or os.environ.get("MLMH_STATA_TIMEOUT") or 3600)
        with tempfile.TemporaryDirectory(prefix="mlmh-stata-") as tmp:
            try:
                if inst.mode == "live":
                    records, _ = run_live(inst.location, inst.edition, do_text, Path(tmp))
                else:
                    records, _ = run_batch(inst.location, do_text, Path(tmp), timeout=timeout)
            except StataRunError as e:
                r = FitResult.failed(spec.id, self.name, "error", str(e))
                r.provenance.mode = inst.mode
                r.provenance.script = do_text
                return r
        record = records.get(spec.id)
        if record is None:
            return FitResult.failed(spec.id, self.name, "error",
                                    f"Stata's results file has no block for {spec.id}")
        result = record_to_result(record, mode=inst.mode, script=do_text, layout=layout)
        result.timings["stata_seconds"] = time.perf_counter() - start
        return result

    def _stored(self, spec: Spec, job: FitJob, inst: StataInstall) -> FitResult:
        try:
            found = load_stored(spec.id)
        except StoredResultError as e:
            return FitResult.failed(spec.id, self.name, "error", str(e))
        if found is None:
            if inst.licence_failure or (inst.mode in ("live", "batch") and inst.problem):
                return FitResult.failed(spec.id, self.name, "error",
                                        f"Stata was found but cannot run: {inst.problem} "
                                        f"(and there is no stored Stata result for {spec.id})")
            return FitResult.failed(
                spec.id, self.name, "unavailable",
                f"{inst.problem or 'no usable Stata'}, and no stored Stata result for "
                f"{spec.id} (fix: {FIX})")
        result, raw = found
        mismatch = fingerprint_mismatch(spec, raw)
        if mismatch:
            return FitResult.failed(
                spec.id, self.name, "error",
                f"the stored Stata result {stored_path(spec.id).name} was made for another model "
                f"({mismatch}); refit it in Stata (mlm-harness stata export/import) or fix the spec")
        stored_sha, now_sha = result.provenance.data_sha256, job.data_sha256
        if stored_sha and now_sha and stored_sha != now_sha:
            return FitResult.failed(
                spec.id, self.name, "error",
                f"the stored Stata result was computed on data with SHA-256 {stored_sha[:12]}..., "
                f"but this dataset is {now_sha[:12]}...; refit it in Stata")
        mode = result.provenance.mode
        note = (f"Stata not run here ({inst.problem or 'no usable Stata'}): {mode} result from "
                f"{result.provenance.source or stored_path(spec.id).name}")
        result.message = (result.message + " " if result.message else "") + note
        return result
