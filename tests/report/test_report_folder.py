"""Report folders: locked while written, staged and swapped in whole, never mixed or half-done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report_folder import (COMPLETE, LOCK, MARKER, STAGING_PREFIX, ReportFolderError,
                                   open_report_folder)


def fill(folder, text: str) -> None:
    """What write_report does: results/, then the pages and summary.json."""
    (folder.staging / "results").mkdir()
    (folder.staging / "results" / "r.json").write_text(text)
    for name in (*COMPLETE, "junit.xml"):
        (folder.staging / name).write_text(text)


def visible(path: Path) -> set[str]:
    return {p.name for p in path.iterdir() if not p.name.startswith(".")}


def test_a_report_appears_only_when_committed(tmp_path: Path) -> None:
    out = tmp_path / "r"
    folder = open_report_folder(out, False, tmp_path)
    fill(folder, "new")
    assert visible(out) == set()  # nothing that looks like a report yet
    folder.commit()
    assert visible(out) == {"results", "junit.xml", *COMPLETE}
    assert not any(p.name.startswith(STAGING_PREFIX) for p in out.iterdir())
    assert (out / MARKER).exists()


def test_an_abandoned_run_leaves_nothing_and_keeps_the_earlier_report(tmp_path: Path) -> None:
    out = tmp_path / "r"
    first = open_report_folder(out, False, tmp_path)
    fill(first, "old")
    first.commit()
    second = open_report_folder(out, True, tmp_path)
    fill(second, "new")
    second.close()  # interrupted before commit
    assert (out / "summary.json").read_text() == "old"
    assert (out / "results" / "r.json").read_text() == "old"
    assert not any(p.name.startswith(STAGING_PREFIX) for p in out.iterdir())


def test_overwrite_replaces_every_file_of_the_earlier_report(tmp_path: Path) -> None:
    out = tmp_path / "r"
    first = open_report_folder(out, False, tmp_path)
    fill(first, "old")
    (first.staging / "results" / "gone.json").write_text("old only")
    first.commit()
    with pytest.raises(ReportFolderError, match="pass --overwrite"):
        open_report_folder(out, False, tmp_path)
    second = open_report_folder(out, True, tmp_path)
    fill(second, "new")
    second.commit()
    assert not (out / "results" / "gone.json").exists()  # no mix of two runs
    assert {p.read_text() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")} \
        == {"new"}


def test_a_second_run_into_a_locked_folder_fails_at_once(tmp_path: Path) -> None:
    out = tmp_path / "r"
    folder = open_report_folder(out, False, tmp_path)
    with pytest.raises(ReportFolderError, match=rf"being written by another mlm-harness run "
                                                rf"\(pid {os.getpid()}"):
        open_report_folder(out, True, tmp_path)
    folder.close()
    open_report_folder(out, True, tmp_path).close()  # free again once released


def test_the_lock_of_a_killed_run_is_released_by_the_kernel(tmp_path: Path) -> None:
    out = tmp_path / "r"
    code = ("import os, sys; sys.path.insert(0, sys.argv[2]); from pathlib import Path; "
            "from harness.report_folder import open_report_folder; "
            "f = open_report_folder(Path(sys.argv[1]), False, Path(sys.argv[1]).parent); "
            "(f.staging / 'summary.json').write_text('half'); os._exit(9)")
    repo = str(Path(__file__).resolve().parents[2])
    assert subprocess.run([sys.executable, "-c", code, str(out), repo]).returncode == 9
    assert (out / LOCK).exists() and visible(out) == set()  # killed: nothing looks complete
    folder = open_report_folder(out, False, tmp_path)  # not blocked, no --overwrite needed
    assert [p.name for p in out.iterdir() if p.name.startswith(STAGING_PREFIX)] == \
        [folder.staging.name]  # the dead run's staging area was removed
    folder.close()


def test_default_folders_never_collide_within_one_second(tmp_path: Path) -> None:
    folders = [open_report_folder(None, False, tmp_path) for _ in range(5)]
    names = [f.path.name for f in folders]
    assert len(set(names)) == 5
    assert names[1] == names[0] + "-2" or names[0][:15] != names[1][:15]
    for f in folders:
        f.close()
    assert list(tmp_path.iterdir()) == []  # unused default folders are removed again


def test_a_foreign_folder_or_a_file_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ReportFolderError, match="exists and is not empty"):
        open_report_folder(foreign, True, tmp_path)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    with pytest.raises(ReportFolderError, match="is a file, not a folder"):
        open_report_folder(afile, True, tmp_path)


def test_two_runs_into_one_folder_one_fails_at_once(tmp_path: Path, data_dir: Path) -> None:
    """Two real runs with --overwrite into one --out: one writes, the other stops with exit 2
    at once (it used to mix its files into the other's report)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({
        "id": "two.runs", "title": "t", "source": "s", "dataset": "gcse",
        "model": {"formula": "gcse ~ lrt + (1 | school)", "method": "ML"}}))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "harness.cli", "run", str(spec), "--backends", "native",
           "--out", str(out), "--overwrite", "--no-progress", "--no-cache", "--data-dir",
           str(data_dir)]
    procs = [subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    if codes == [0, 0]:  # the first finished before the second started: no overlap to test
        pytest.skip("the runs did not overlap on this machine")
    assert codes == [0, 2], results
    assert any("is being written by another mlm-harness run" in e for _, e in results)
    assert json.loads((out / "summary.json").read_text())["totals"]["specs"] == 1
