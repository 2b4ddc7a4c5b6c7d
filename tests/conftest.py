"""Shared test configuration.

``--require-backend NAME`` (repeatable) turns "backend unavailable" from a skip into a failure for
tests that need that backend; CI passes ``--require-backend lme4`` so a broken R/lme4 path is red,
never silently skipped. The course datasets are looked for where the README says ($MLM_HARNESS_DATA,
then the user cache); tests that need them skip with one reason when they are absent, the run's
summary counts those skips, and ``--require-data`` turns them into failures. BLAS threads are pinned to one so reduction order (and so the last digits)
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
    parser.addoption("--require-data", action="store_true",
                     help="fail (instead of skip) tests that need the course datasets")


#: the registry datasets the data tests read, all from one folder
COURSE_DATASETS = ("gcse", "popular2", "nurses", "pupcross", "census", "census_sav")
#: every skip for missing data says this, so the summary can count them (see below)
NO_DATA = "course datasets not found"


def course_data_dir() -> Path | None:
    """The first of $MLM_HARNESS_DATA and the user cache (~/.cache/mlm-harness/data, where
    ``mlm-harness data fetch`` puts them; README "Install") that holds every course dataset."""
    from harness.datasets import folder_with, load_registry

    registry = load_registry()
    return folder_with(registry[name].file for name in COURSE_DATASETS)


def no_data_reason() -> str:
    from harness.datasets import search_dirs

    places = ", ".join(f"{folder or '(not set)'} [{where}]" for where, folder in search_dirs()
                       if where != "--data-dir")
    return (f"{NO_DATA} (looked in {places}): run `mlm-harness data fetch` or set "
            f"MLM_HARNESS_DATA to the folder holding gcse.dta etc.")


def skip_without_data() -> Path:
    """The course data folder, or skip the calling test saying where it was looked for."""
    found = course_data_dir()
    if found is None:
        pytest.skip(no_data_reason())
    return found


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return skip_without_data()


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """With ``--require-data`` a skip for missing course data is a failure (CI, scripts/test.sh
    when the data could be fetched), so a run cannot pass while most data tests did not run."""
    report = yield
    if (report.skipped and item.config.getoption("--require-data")
            and NO_DATA in _skip_reason(report)):
        report.outcome = "failed"
        report.longrepr = _skip_reason(report)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    """Say how many tests were skipped for missing course data and why (not only "N skipped")."""
    reports = [r for r in terminalreporter.stats.get("skipped", [])
               if NO_DATA in _skip_reason(r)]
    if reports:
        total = sum(len(terminalreporter.stats.get(k, []))
                    for k in ("passed", "failed", "skipped", "error", "xfailed", "xpassed"))
        terminalreporter.write_line(
            f"mlm-harness: {len(reports)} of {total} tests were skipped: {no_data_reason()}; "
            f"--require-data makes that a failure.", yellow=True)


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
