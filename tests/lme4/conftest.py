"""Fixtures for the lme4 backend tests.

Tests that run R use the ``lme4`` fixture: it skips when R/rpy2/lme4 are unavailable, or fails
with the availability message under ``--require-backend lme4`` (tests/conftest.py). Data come
through the harness's own preparation (registry lookup with checksum, derivations, subset), so
the backend sees exactly what a suite run gives it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.base import FitJob
from harness.results import FitResult
from harness.runner import PreparedData, prepare_data
from harness.spec import Spec

from .helpers import make_spec


@pytest.fixture
def lme4(lme4_backend):
    """The lme4 backend (skip or fail per --require-backend when unavailable)."""
    return lme4_backend


_PREPARED: dict[str, PreparedData] = {}


@pytest.fixture
def prepare(data_dir: Path) -> Callable[[Spec], PreparedData]:
    """The harness's data preparation for a spec, cached across tests (datasets are small)."""

    def _prepare(spec: Spec) -> PreparedData:
        key = spec.model_dump_json(include={"dataset", "derive", "subset", "replicate",
                                            "model"})
        if key not in _PREPARED:
            _PREPARED[key] = prepare_data(spec, data_dir)
        return _PREPARED[key]

    return _prepare


@pytest.fixture
def job_for(prepare) -> Callable[[Spec], FitJob]:
    def _job(spec: Spec) -> FitJob:
        data = prepare(spec)
        return FitJob(spec=spec, model=spec.model_for("lme4"), data=data.frame,
                      data_path=data.path, data_sha256=data.sha256)

    return _job


@pytest.fixture
def fit(lme4, job_for) -> Callable[..., FitResult]:
    """fit(dataset, model_dict, **spec_keys) -> FitResult through the real backend."""

    def _fit(dataset: str, model: dict[str, Any], **extra: Any) -> FitResult:
        return lme4.fit(job_for(make_spec(dataset, model, **extra)))

    return _fit
