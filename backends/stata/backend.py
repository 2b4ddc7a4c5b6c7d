"""Stata backend, first cut: detects Stata and says plainly when it is not there.

Command generation, live/batch modes and stored results are issue 8; until then this backend
never fits, and says why, so a suite that asks for it reports "unavailable" rather than nothing.
"""

from __future__ import annotations

import os
import shutil
from functools import cache

from backends.base import Availability, Backend, FitJob
from harness.results import FitResult


@cache
def _find_stata() -> Availability:
    home = os.environ.get("STATA_HOME")
    exe = next((shutil.which(n) for n in ("stata-mp", "stata-se", "stata") if shutil.which(n)), None)
    if not home and not exe:
        return Availability(False, "no Stata found (STATA_HOME is not set and no stata, stata-se "
                            "or stata-mp is on PATH)",
                            "install a licensed Stata 17+ and set STATA_HOME to its folder")
    return Availability(False, f"Stata found at {home or exe}, but the live Stata backend is not "
                        "implemented yet (issue 8)", "")


class StataBackend(Backend):
    name = "stata"

    def availability(self) -> Availability:
        return _find_stata()

    def fit(self, job: FitJob) -> FitResult:
        return FitResult.failed(job.spec.id, self.name, "unavailable",
                                self.availability().message())
