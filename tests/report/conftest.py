from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import prepare_folder, write_report
from tests.report.fixtures import suite


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "latest"
    prepare_folder(out, overwrite=False)
    write_report(suite(), out)
    return out
