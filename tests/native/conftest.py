"""Fixtures for the native estimator's tests: course data, and lme4 fits through Rscript.

All lme4 fits of a session run in one R process (R and lme4 start once, ~3 s), with lme4's
default settings and with tight optimiser tolerances, so a native-vs-lme4 difference can be
told apart from lme4 stopping early.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.cases import CASES, data_dir, dataset_path
from benchmarks.rscript import TIGHT, RModel, run_lme4
from tests.conftest import no_data_reason


@pytest.fixture(scope="session")
def course_data():
    if not (data_dir() / "gcse.dta").exists():
        pytest.skip(no_data_reason())
    return data_dir()


@pytest.fixture(scope="session")
def lme4_fits(rscript, course_data) -> dict[str, dict[str, Any]]:
    """id -> lme4 result (default control) and id + '@tight' -> tight-tolerance result."""
    models = []
    for c in CASES:
        path = str(dataset_path(c.dataset))
        models.append(RModel(c.id, path, c.formula, c.reml, c.derive, c.factors))
        models.append(RModel(c.id + "@tight", path, c.formula, c.reml, c.derive, c.factors,
                             control=TIGHT))
    return run_lme4(models)
