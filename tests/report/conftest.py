from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import write_report
from tests.report.fixtures import suite


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "latest"
    out.mkdir()
    write_report(suite(), out)
    return out
