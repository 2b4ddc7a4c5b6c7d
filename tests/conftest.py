"""Shared test configuration.

``--require-backend NAME`` (repeatable) turns "backend unavailable" from a skip into a failure for
tests that need that backend; CI passes ``--require-backend lme4`` so a broken R/lme4 path is red,
never silently skipped. BLAS threads are pinned to one so reduction order (and so the last digits)
does not depend on the machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-backend", action="append", default=[],
                     help="fail (instead of skip) tests whose backend is unavailable (lme4, browser)")


def course_data_dir() -> Path | None:
    """The course datasets: $MLM_HARNESS_DATA, else ../shared/data/sgsss-2025 beside the repo."""
    env = os.environ.get("MLM_HARNESS_DATA")
    for candidate in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared/data/sgsss-2025"]:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = course_data_dir()
    if found is None:
        pytest.skip("course datasets not found: set MLM_HARNESS_DATA to the folder holding "
                    "gcse.dta etc. (or run `mlm-harness data fetch`)")
    return found


def require_backend(request: pytest.FixtureRequest, name: str) -> None:
    """Skip when ``name`` is unavailable, or fail when the run requires it."""
    from backends.base import get_backend

    availability = get_backend(name).availability()
    if availability.ok:
        return
    message = f"backend {name} unavailable: {availability.message()}"
    if name in request.config.getoption("--require-backend"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def rscript(request: pytest.FixtureRequest) -> None:
    """Skip (or, with --require-backend lme4, fail) unless Rscript with lme4 runs: for tests
    that call R directly (benchmarks/rscript.py, data exported from R packages)."""
    from benchmarks.rscript import lme4_status

    ok, reason = lme4_status()
    if ok:
        return
    message = f"lme4 via Rscript unavailable: {reason}"
    if "lme4" in request.config.getoption("--require-backend"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def lme4_backend(request: pytest.FixtureRequest):
    require_backend(request, "lme4")
    from backends.base import get_backend

    return get_backend("lme4")
