"""The test suite's own configuration (tests/conftest.py): without the course datasets the run
says how many tests were skipped and why, and ``--require-data`` makes those skips failures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: two data tests (they read the course files) and one that needs no data
SELECTION = ["tests/test_datasets.py", "-k",
             "course_path or every_registry_dataset or lookup_order"]


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLM_HARNESS_DATA"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "empty")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *SELECTION, *extra], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_skips_for_missing_data_are_counted_with_the_places_looked_in(tmp_path: Path) -> None:
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b1 passed, 2 skipped, \d+ deselected", proc.stdout), proc.stdout
    assert ("mlm-harness: 2 of 3 tests were skipped: course datasets not found (looked in "
            f"(not set) [$MLM_HARNESS_DATA], {tmp_path / 'empty' / 'mlm-harness' / 'data'} "
            "[user cache]): run `mlm-harness data fetch`") in proc.stdout


def test_require_data_turns_those_skips_into_failures(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--require-data")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"\b1 passed, \d+ deselected, 2 errors", proc.stdout), proc.stdout
    assert "course datasets not found" in proc.stdout
